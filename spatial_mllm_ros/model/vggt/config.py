"""Configuration of the VGGT geometry model (aggregator + camera/depth/point/track heads).

The defaults are the sizes of the released ``facebook/VGGT-1B`` checkpoint; :meth:`VGGTConfig.tiny`
builds the same module tree with small shapes for tests and the embedded tiny checkpoint.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from spatial_mllm_ros.model.vggt.errors import VGGTConfigError

_AA_TYPES = ("frame", "global")


@strict
class VGGTConfig(PreTrainedConfig):
    """Sizes and switches of :class:`~spatial_mllm_ros.model.vggt.model.VGGT`.

    Aggregator (spatial encoder):
        img_size / patch_size: DINOv2 training resolution (px) and patch side (px); the
            learned position table covers ``(img_size // patch_size) ** 2`` patches and is
            bicubically resized to other grids.
        embed_dim, depth, num_heads, mlp_ratio: width, number of frame (= global) blocks,
            heads and MLP expansion of the alternating-attention trunk.
        num_register_tokens: register tokens of the DINOv2 patch embed and of the aggregator.
        aa_order / aa_block_size: order of attention types in one step, blocks per type per step.
        qk_norm, rope_freq, init_values: per-head LayerNorm of q and k, 2D RoPE base frequency
            (0 disables RoPE), LayerScale initial value of the trunk blocks.
        patch_embed_depth / patch_embed_num_heads / patch_embed_init_values: the DINOv2
            backbone (ViT-L/14 with registers: 24 blocks, 16 heads, LayerScale 1.0).
    Heads:
        intermediate_layer_idx: aggregator layers the DPT heads read (4 of them).
        dpt_features / dpt_out_channels: DPT fusion width and per-level projection widths.
        camera_*: camera head trunk depth, heads, refinement iterations.
        track_*: track head feature width (DPT feature extractor) and tracker sizes.
        enable_*: build the head (its weights are then expected in a checkpoint).
    """

    model_type = "spatial_mllm_vggt"

    img_size: int = 518
    patch_size: int = 14
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    aa_order: list[str] | tuple[str, ...] = ("frame", "global")
    aa_block_size: int = 1
    qk_norm: bool = True
    rope_freq: float = 100.0
    init_values: float = 0.01
    patch_embed_depth: int = 24
    patch_embed_num_heads: int = 16
    patch_embed_init_values: float = 1.0
    intermediate_layer_idx: list[int] | tuple[int, ...] = (4, 11, 17, 23)
    dpt_features: int = 256
    dpt_out_channels: list[int] | tuple[int, ...] = (256, 512, 1024, 1024)
    camera_trunk_depth: int = 4
    camera_num_heads: int = 16
    camera_iterations: int = 4
    track_features: int = 128
    track_hidden_size: int = 384
    track_depth: int = 6
    track_num_heads: int = 8
    track_num_virtual_tracks: int = 64
    track_corr_levels: int = 7
    track_corr_radius: int = 4
    track_stride: int = 2
    track_iters: int = 4
    track_max_scale: float = 518.0
    enable_camera: bool = True
    enable_depth: bool = True
    enable_point: bool = True
    enable_track: bool = True

    def __post_init__(self, **kwargs: object) -> None:
        self.aa_order = list(self.aa_order)
        self.intermediate_layer_idx = list(self.intermediate_layer_idx)
        self.dpt_out_channels = list(self.dpt_out_channels)
        super().__post_init__(**kwargs)
        self.check()

    def check(self) -> None:
        """Raise :class:`VGGTConfigError` if the sizes cannot build a model."""
        problems: list[str] = []
        if self.embed_dim % self.num_heads or (self.embed_dim // self.num_heads) % 4:
            problems.append("embed_dim / num_heads must be a multiple of 4 (2D RoPE)")
        if self.embed_dim % self.patch_embed_num_heads:
            problems.append("embed_dim must be divisible by patch_embed_num_heads")
        if (2 * self.embed_dim) % self.camera_num_heads:
            problems.append("2 * embed_dim must be divisible by camera_num_heads")
        if sorted(self.aa_order) != sorted(_AA_TYPES):
            problems.append(f"aa_order must hold each of {_AA_TYPES} once")
        if self.aa_block_size < 1 or self.depth % self.aa_block_size:
            problems.append("depth must be a positive multiple of aa_block_size")
        if len(self.intermediate_layer_idx) != 4 or len(self.dpt_out_channels) != 4:
            problems.append("DPT heads need exactly 4 intermediate layers and 4 out_channels")
        if any(not 0 <= i < self.depth for i in self.intermediate_layer_idx):
            problems.append("intermediate_layer_idx must lie within [0, depth)")
        if self.img_size % self.patch_size:
            problems.append("img_size must be a multiple of patch_size")
        if self.track_hidden_size % self.track_num_heads:
            problems.append("track_hidden_size must be divisible by track_num_heads")
        if self.track_features % 4:
            problems.append("track_features must be a multiple of 4")
        if problems:
            raise VGGTConfigError("invalid VGGTConfig: " + "; ".join(problems))

    @property
    def patch_start_idx(self) -> int:
        """Index of the first patch token in each frame's token row (camera + registers)."""
        return 1 + self.num_register_tokens

    @property
    def output_dim(self) -> int:
        """Width of each aggregator layer output: frame and global tokens concatenated."""
        return 2 * self.embed_dim

    @classmethod
    def vggt_1b(cls) -> VGGTConfig:
        """The released ``facebook/VGGT-1B`` sizes (1.26 B parameters, 1,797 tensors)."""
        return cls()

    @classmethod
    def tiny(cls, **overrides: object) -> VGGTConfig:
        """Same module tree as VGGT-1B with tiny shapes (tests, embedded tiny checkpoint)."""
        sizes: dict[str, object] = {
            "img_size": 56,
            "embed_dim": 32,
            "depth": 4,
            "num_heads": 2,
            "patch_embed_depth": 2,
            "patch_embed_num_heads": 2,
            "intermediate_layer_idx": [0, 1, 2, 3],
            "dpt_features": 16,
            "dpt_out_channels": [8, 16, 16, 16],
            "camera_trunk_depth": 1,
            "camera_num_heads": 2,
            "camera_iterations": 2,
            "track_features": 8,
            "track_hidden_size": 16,
            "track_depth": 2,
            "track_num_heads": 2,
            "track_num_virtual_tracks": 4,
            "track_corr_levels": 2,
            "track_corr_radius": 2,
            "track_iters": 2,
        }
        sizes.update(overrides)
        return cls(**sizes)  # type: ignore[arg-type]
