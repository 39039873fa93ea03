"""High-level inference engine: load a checkpoint directory, answer questions, predict geometry."""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import GenerationConfig, Qwen2_5_VLProcessor, StoppingCriteriaList

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.core.memory import release_heap
from spatial_mllm_ros.model.backends.config import VisionSpec
from spatial_mllm_ros.model.backends.status import SizeStatus, VisionStatus, VisionUsage
from spatial_mllm_ros.model.configuration import (
    SpatialMLLMConfig,
    load_config,
    register_auto_config,
    spatial_config_from_dict,
)
from spatial_mllm_ros.model.decoding import (
    DecodingSpec,
    generation_config_for,
    load_generation_config,
)
from spatial_mllm_ros.model.errors import ConfigError, GeometryUnavailableError, InputError
from spatial_mllm_ros.model.layout import HEAD_NAMES, parameters_on_meta, to_internal
from spatial_mllm_ros.model.loading import LoadReport, load_weights, resolve_dtype, tensor_names
from spatial_mllm_ros.model.modeling import STAGES, SpatialMLLMForConditionalGeneration
from spatial_mllm_ros.model.plan import Quantization
from spatial_mllm_ros.model.processing import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    DEFAULT_VIDEO_FPS,
    PreparedClip,
    build_inputs,
    prepare_clip,
    sampling_tensor,
)
from spatial_mllm_ros.model.quantization import LinearQuantizer
from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.model.streaming import OnToken, StopWhen, TokenStream
from spatial_mllm_ros.model.vggt import vggt_geometry
from spatial_mllm_ros.sampling.predicted import PredictedGeometry

TIED = {"lm_head.weight": "model.language_model.embed_tokens.weight"}


def load_model(
    checkpoint_dir: str | Path,
    dtype: str | torch.dtype = "float32",
    extra_sources: Sequence[str | Path] = (),
    config: SpatialMLLMConfig | None = None,
    strict: bool = True,
    geometry_heads: bool = True,
    quantization: str = "none",
    device: str = "cpu",
) -> tuple[SpatialMLLMForConditionalGeneration, LoadReport]:
    """Build the model of ``checkpoint_dir/config.json`` on meta and load its safetensors.

    ``extra_sources`` (e.g. a VGGT-1B conversion) fill what the main checkpoint lacks.
    ``geometry_heads`` False: the VGGT heads and the aggregator's blocks past the connector's
    layer are neither built nor read (answering needs them only for colour-only sampling).
    ``quantization``: the decoder's weight-only quantization (:mod:`.quantization`), applied
    to each weight as it is loaded, on ``device``.

    A plain Qwen2.5-VL checkpoint (layout ``qwen2.5-vl``) has no spatial encoder: a VGGT is
    built (sized by the first extra source's ``config.json``, else VGGT-1B) only when
    ``extra_sources`` and ``geometry_heads`` ask for geometry.
    """
    config = config or load_config(checkpoint_dir)
    geometry = False
    if not config.has_spatial_encoder:
        _check_plain_weights(checkpoint_dir)
        geometry = bool(extra_sources) and geometry_heads
        if geometry:
            config.spatial_config = geometry_config(extra_sources[0])
    with parameters_on_meta():
        model = SpatialMLLMForConditionalGeneration(config, geometry_encoder=geometry)
    skip = None if geometry_heads else _drop_geometry(model)
    quantizer = LinearQuantizer(model, Quantization(quantization), device)
    tied = TIED if config.tie_word_embeddings else {}
    report = load_weights(
        model, [checkpoint_dir, *extra_sources], dtype=dtype, tied=tied, strict=strict,
        skip=skip, on_assign=quantizer
    )
    report.quantization = quantizer.report
    if quantizer.report.quantized:
        release_heap()  # quantizing leaves freed full-precision temporaries in glibc's arenas
    target = resolve_dtype(dtype)
    spatial_modules = model.spatial_encoder.modules() if model.spatial_encoder else ()
    for sub in spatial_modules:
        for name, buf in list(sub._buffers.items()):
            if buf is not None and buf.is_floating_point():
                sub._buffers[name] = buf.to(target)
    model.eval()
    return model, report


def geometry_config(source: str | Path) -> Any:
    """The VGGT configuration of a geometry checkpoint: its ``config.json`` when it has one
    (a directory), else VGGT-1B's sizes."""
    path = Path(source) / "config.json"
    if not path.is_file():
        return spatial_config_from_dict(None)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not readable JSON: {err}") from err
    return spatial_config_from_dict(data if isinstance(data, dict) else None)


def _check_plain_weights(checkpoint_dir: str | Path) -> None:
    """Refuse a plain Qwen2.5-VL ``config.json`` beside weights with a spatial encoder or a
    connector (the config does not describe them: answers would silently drop them)."""
    spatial = [n for n in tensor_names(checkpoint_dir)
               if (hit := to_internal(n)) is not None and hit[1] in ("v1.0", "v1.1", "vggt")]
    if spatial:
        raise ConfigError(
            f"{checkpoint_dir}: config.json describes a plain Qwen2.5-VL model but the weights "
            f"hold {len(spatial)} spatial-encoder/connector tensor(s), e.g. {spatial[:3]}: "
            "give the checkpoint's own Spatial-MLLM config.json"
        )


def _drop_geometry(model: SpatialMLLMForConditionalGeneration) -> Callable[[str], bool]:
    """Remove the VGGT heads and the aggregator blocks past the connector's layer from
    ``model`` (on meta); returns the loader's ``skip`` for their checkpoint tensors.  Without
    a connector (plain Qwen2.5-VL) nothing of a VGGT is read."""
    spatial = model.spatial_encoder
    if spatial is None or model.connector is None:
        model.spatial_encoder = None
        return lambda name: name.startswith("spatial_encoder.")
    for head in HEAD_NAMES:
        setattr(spatial, head, None)
    aggregator = spatial.aggregator
    step = int(aggregator.aa_block_size)
    layer = model.connector.layer_idx % int(aggregator.depth)
    keep = -(-(layer + 1) // step) * step
    prefixes = ("spatial_encoder.aggregator." + p for p in aggregator.keep_layers(keep))
    dropped = (*(f"spatial_encoder.{h}." for h in HEAD_NAMES), *prefixes)
    return lambda name: name.startswith(dropped)


def load_processor(checkpoint_dir: str | Path) -> Any:
    """The checkpoint's Qwen2.5-VL processor (tokenizer, image and video processors, chat
    template), read with the checkpoint's model type known to ``AutoConfig``
    (:func:`~spatial_mllm_ros.model.configuration.register_auto_config`: without it the
    tokenizer's loader warns three times about the unknown ``spatial-mllm`` type)."""
    register_auto_config()
    return Qwen2_5_VLProcessor.from_pretrained(str(checkpoint_dir))


class SpatialMLLMEngine:
    """Spatial-MLLM question answering over a clip of frames (any size; numpy RGB inside Frame).

    Args:
        model, processor, report: the loaded model, its Qwen2.5-VL processor, the load report.
        device: torch device of the model.
        min_pixels, max_pixels: per-frame input size bounds (Qwen2.5-VL ``smart_resize``).
        video_fps: the frame rate the model is told (``second_per_grid_ts`` = 2 / fps; see
            :mod:`spatial_mllm_ros.model.processing`), 2.0 as the checkpoints were evaluated.
        generation_config: the checkpoint's decoding settings (``generation_config.json``);
            None = derived from the model config (greedy).
        decoding: overrides applied to ``generation_config`` for every answer.
        vision: how the vision encoders run (:mod:`spatial_mllm_ros.model.backends`);
            None = PyTorch.
        fingerprint: names the checkpoint's cached ONNX graphs (None = not cached).

    Thread-safe: :attr:`lock` serialises every use of the model (answers, geometry, and the
    accelerated encoders' export and parity check in their background worker).
    """

    def __init__(
        self,
        model: SpatialMLLMForConditionalGeneration,
        processor: Any,
        report: LoadReport,
        device: str = "cpu",
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        video_fps: float = DEFAULT_VIDEO_FPS,
        generation_config: GenerationConfig | None = None,
        decoding: DecodingSpec | None = None,
        vision: VisionSpec | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.report = report
        self.device = torch.device(device)
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.video_fps = video_fps
        base = generation_config or GenerationConfig.from_model_config(model.config)
        self.generation_config = generation_config_for(base, decoding or DecodingSpec())
        self.lock = threading.RLock()
        self.vision = vision or VisionSpec.torch_only()
        self._vision: Any = None
        if self.vision.accelerated:
            from spatial_mllm_ros.model.backends.accelerated import AcceleratedVision

            self._vision = AcceleratedVision(model, self.vision, self.lock, fingerprint)
            model.vision_backend = self._vision

    @property
    def vision_backend_status(self) -> VisionStatus:
        """What the vision encoders run on, per input size (plain data, for ``/diagnostics``)."""
        if self._vision is None:
            return VisionStatus(self.vision.backend, self.vision.precision)
        status: VisionStatus = self._vision.status()
        return status

    def prepare_vision(
        self, height: int, width: int, wait_s: float | None = 0.0
    ) -> SizeStatus | None:
        """Prepare the accelerated encoders for model input ``height x width`` ahead of use,
        waiting up to ``wait_s`` (None = until done); None with the torch backend."""
        if self._vision is None:
            return None
        status: SizeStatus = self._vision.wait(height, width, wait_s)
        return status

    def warm_up(self) -> None:
        """One tiny generation, so that one-off first-call costs are paid now; it prepares no
        accelerated encoders for its (meaningless) input size."""
        paused = self._vision.paused() if self._vision is not None else contextlib.nullcontext()
        with paused:
            self.answer_images([np.zeros((56, 56, 3), dtype=np.uint8)] * 2, "warm-up", 1)

    @property
    def vision_usage(self) -> VisionUsage:
        """What ran each vision encoder of this engine's answers so far (per backend, in
        calls), with :attr:`vision_backend_status`'s message: the truthful answer to "did
        the requested backend answer?" (torch runs a size until its engines are ready)."""
        with self.lock:
            calls = self.model.encoder_calls.snapshot()
        return VisionUsage(self.vision.backend, calls, self.vision_backend_status.message)

    def close(self) -> None:
        """Stop the accelerated encoders' background worker and wait for it to end (a step
        in progress -- an export, an engine build -- finishes first); the model stays usable,
        on the torch encoders.  Every process that loads an accelerated engine closes it
        before it exits (the worker is also joined at interpreter exit if it was not), never
        while holding :attr:`lock`."""
        if self._vision is not None:
            self._vision.close()

    @property
    def checkpoint_layout(self) -> str:
        """``v1.0``, ``v1.1`` or ``qwen2.5-vl``: the released layout of the loaded checkpoint
        (it selects the prompt family,
        :func:`spatial_mllm_ros.vsibench.templates.template_for_layout`)."""
        return str(self.model.config.layout)

    @classmethod
    def from_pretrained(
        cls,
        checkpoint_dir: str | Path,
        device: str = "cpu",
        dtype: str = "float32",
        vggt_checkpoint: str | Path | None = None,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        video_fps: float = DEFAULT_VIDEO_FPS,
        decoding: DecodingSpec | None = None,
        vision: VisionSpec | None = None,
        quantization: str = "none",
        geometry_heads: bool = True,
    ) -> SpatialMLLMEngine:
        """Load a local checkpoint directory (safetensors only, no remote code), with its
        ``generation_config.json`` (see :mod:`spatial_mllm_ros.model.decoding`).

        ``vggt_checkpoint``: a VGGT-1B safetensors directory/file supplying the geometry heads
        when the Spatial-MLLM checkpoint lacks them. ``vision``: the vision backend (None =
        PyTorch); accelerated graphs are cached under the checkpoint's fingerprint.
        ``quantization``, ``geometry_heads``: see :func:`load_model`.
        """
        extra = [vggt_checkpoint] if vggt_checkpoint is not None else []
        model, report = load_model(checkpoint_dir, dtype=dtype, extra_sources=extra,
                                   geometry_heads=geometry_heads, quantization=quantization,
                                   device=device)
        model.to(device)  # type: ignore[arg-type]
        processor = load_processor(checkpoint_dir)
        generation = load_generation_config(checkpoint_dir, model.config)
        fingerprint = None
        if vision is not None and vision.accelerated:
            from spatial_mllm_ros.model.backends.cache import checkpoint_fingerprint

            fingerprint = checkpoint_fingerprint(checkpoint_dir, f"{vggt_checkpoint}")
        return cls(model, processor, report, device, min_pixels, max_pixels, video_fps,
                   generation, decoding, vision, fingerprint)

    # -- question answering ---------------------------------------------------------------------
    def prepare(self, images: Sequence[npt.NDArray[np.uint8]],
                size: tuple[int, int] | None = None) -> PreparedClip:
        """The clip of ``images`` at the model size (``size`` (W, H) when already known)."""
        vision: Any = self.model.config.vision_config
        return prepare_clip(
            images, self.min_pixels, self.max_pixels, int(vision.temporal_patch_size), size
        )

    def model_inputs(self, clip: PreparedClip, prompt: str) -> dict[str, Any]:
        """The model's inputs for ``prompt`` about ``clip``, on the model's device and dtype:
        the one path by which the node, the evaluator and the CLI build them (chat text, video
        tensors, ``second_per_grid_ts`` from :attr:`video_fps`, the spatial encoder's frames)."""
        inputs = build_inputs(self.processor, clip, prompt, self.video_fps)
        dtype = next(self.model.parameters()).dtype
        batch: dict[str, Any] = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                if key in ("pixel_values_videos", "video_tchw"):
                    value = value.to(dtype)
            batch[key] = value
        return batch

    @torch.no_grad()
    def answer_images(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        prompt: str,
        max_new_tokens: int = 64,
        use_cache: bool = True,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
        size: tuple[int, int] | None = None,
    ) -> GenerationResult:
        """Answer ``prompt`` (already in its VSI-Bench form) about (H, W, 3) uint8 RGB images,
        decoding with :attr:`generation_config` (at most ``max_new_tokens`` new tokens).
        ``size``: the model input size (W, H) of images already resized to it (the model
        server's frames); None = chosen from the first image.

        ``on_token(ids, text)`` is called after every generated token with everything so far;
        ``should_stop()`` is checked after every token: once true, generation ends there (within
        one token of the request) and the result has ``stopped`` set (a cancel, a deadline).
        """
        clip = self.prepare(images, size)
        if self._vision is not None:
            width, height = clip.resized_size
            self._vision.before_clip(height, width)
        with self.lock:
            return self._generate(clip, prompt, max_new_tokens, use_cache, on_token, should_stop)

    def _generate(
        self,
        clip: PreparedClip,
        prompt: str,
        max_new_tokens: int,
        use_cache: bool,
        on_token: OnToken | None,
        should_stop: Callable[[], bool] | None,
    ) -> GenerationResult:
        batch = self.model_inputs(clip, prompt)
        self.model.stage_timer.reset()
        generation = copy.deepcopy(self.generation_config)
        generation.max_new_tokens = max_new_tokens
        # in the config, not as generate()'s argument: transformers deprecates (and warns
        # about) generation arguments passed beside a generation_config
        generation.use_cache = use_cache
        hooks: dict[str, Any] = {}
        if on_token is not None:
            hooks["streamer"] = TokenStream(self.processor.tokenizer, on_token)
        stop = StopWhen(should_stop) if should_stop is not None else None
        if stop is not None:
            hooks["stopping_criteria"] = StoppingCriteriaList([stop])
        out = self.model.generate(**batch, generation_config=generation, **hooks)
        new = out[0, batch["input_ids"].shape[1] :].tolist()
        tokenizer = self.processor.tokenizer
        text = tokenizer.decode(new, skip_special_tokens=True)
        raw = tokenizer.decode(new, skip_special_tokens=False)
        for end in ("<|im_end|>", "<|endoftext|>"):
            raw = raw.replace(end, "")
        timings = {k: float(self.model.stage_timer.seconds.get(k, 0.0)) for k in STAGES}
        n_video = int((batch["input_ids"] == self.model.config.video_token_id).sum())
        return GenerationResult(
            text=text,
            timings_s=timings,
            num_new_tokens=len(new),
            resized_size=clip.resized_size,
            raw_text=raw,
            original_size=clip.original_size,
            token_ids=new,
            num_video_tokens=n_video,
            stopped=stop is not None and stop.stopped,
        )

    def answer(
        self,
        frames: Sequence[Frame],
        prompt: str,
        max_new_tokens: int = 64,
        *,
        on_token: OnToken | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """Answer ``prompt`` about ``frames`` (their ``rgb`` images, in order); see
        :meth:`answer_images` for ``on_token`` and ``should_stop``."""
        if not frames:
            raise InputError("no frames given")
        return self.answer_images([f.rgb for f in frames], prompt, max_new_tokens,
                                  on_token=on_token, should_stop=should_stop)

    # -- geometry -------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_geometry(
        self, frames: Sequence[Frame] | Sequence[npt.NDArray[np.uint8]]
    ) -> list[PredictedGeometry]:
        """Per-frame world points (frame 0's camera as world), confidence, pose and intrinsics
        from the VGGT heads, as the reference space-aware sampling predicts them: frames
        prepared by :func:`~spatial_mllm_ros.model.processing.sampling_tensor` (518 px wide),
        points and confidence from the point-map head (``world_points``,
        ``world_points_conf``), at that input resolution.

        Raises:
            GeometryUnavailableError: the camera/depth/point heads were not loaded (for a
                plain Qwen2.5-VL checkpoint: no ``model.vggt_checkpoint`` was configured).
        """
        encoder = self.model.spatial_encoder
        if encoder is None or not self.model.has_geometry_heads:
            plain = not self.model.config.has_spatial_encoder
            what = ("a qwen2.5-vl checkpoint has no spatial encoder" if plain
                    else "the VGGT camera/depth/point heads are not loaded")
            raise GeometryUnavailableError(
                f"{what}: set model.vggt_checkpoint (vggt_checkpoint= of "
                "SpatialMLLMEngine.from_pretrained) to a VGGT-1B safetensors conversion"
            )
        images = [f.rgb if isinstance(f, Frame) else f for f in frames]
        if not images:
            raise InputError("no frames given")
        dtype = next(encoder.parameters()).dtype
        x = sampling_tensor(images).to(self.device, dtype)
        with self.lock:
            output = encoder(x)
        return vggt_geometry(output, source="points")
