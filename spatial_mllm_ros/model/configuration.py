"""Configuration of Spatial-MLLM: Qwen2.5-VL (vision + text) + VGGT spatial encoder + connector.

Two released ``config.json`` forms are read (see ``load_config``):

* v1.1 (``Diankun/Spatial-MLLM-v1.1-Instruct-*``, public code ``src/qwenvl/model/spatial_mllm.py``):
  ``"model_type": "spatial-mllm"``, ``"architectures": ["SpatialMLLMForConditionalGeneration"]``,
  the Qwen2.5-VL fields (flat text fields as transformers 4.51 saves them, ``vision_config``), plus
  ``"spatial_config": {"model_type": "vggt_spatial_encoder", "img_size": 518, "patch_size": 14,
  "embed_dim": 1024}`` and ``"connector_config": {"connector_type": "mlp_add",
  "spatial_embeds_layer_idx": <int>}``.
* v1.0 (``Diankun/Spatial-MLLM-subset-sft``, public code branch ``v1.0``): a plain Qwen2.5-VL
  config (``"model_type": "qwen2_5_vl"``) with ``"architectures":
  ["Qwen2_5_VL_VGGTForConditionalGeneration"]``; VGGT has its default (1B) sizes and the
  ``vggt_embedding_merger`` reads the last aggregator layer.  A ``spatial_config`` key, if present
  (the project's tiny checkpoints add one), overrides the VGGT sizes.
* plain Qwen2.5-VL (``"model_type": "qwen2_5_vl"``, ``"architectures":
  ["Qwen2_5_VLForConditionalGeneration"]``, no ``spatial_config`` / ``connector_config``): the
  spatial models fine-tuned in Qwen2.5-VL's own layout (VST-3B-SFT/-RL, SpatialLadder-3B,
  SenseNova-SI-1.1-Qwen2.5-VL-3B), read as :class:`PlainQwenConfig` (layout ``qwen2.5-vl``): no
  spatial encoder, no connector; its ``spatial_config`` only sizes the VGGT that a geometry
  checkpoint (``model.vggt_checkpoint``) may add for colour-only sampling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from transformers import AutoConfig, PretrainedConfig, Qwen2_5_VLConfig
from transformers.configuration_utils import SubConfigSpec

from spatial_mllm_ros.model.errors import ConfigError, require_checkpoint
from spatial_mllm_ros.model.vggt import VGGTConfig

#: Connector types: the two released ones and the project's fine-tuning variant (no weights).
CONNECTOR_V1_0 = "vggt_embedding_merger"
CONNECTOR_V1_1 = "mlp_add"
CONNECTOR_GATED = "gated"
CONNECTOR_TYPES = (CONNECTOR_V1_0, CONNECTOR_V1_1, CONNECTOR_GATED)

V1_0_ARCHITECTURE = "Qwen2_5_VL_VGGTForConditionalGeneration"
V1_1_ARCHITECTURE = "SpatialMLLMForConditionalGeneration"
V1_1_MODEL_TYPE = "spatial-mllm"
QWEN2_5_VL_ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration"
QWEN2_5_VL_MODEL_TYPE = "qwen2_5_vl"
PLAIN_QWEN_LAYOUT = "qwen2.5-vl"
"""Layout name of a plain Qwen2.5-VL checkpoint (as :mod:`spatial_mllm_ros.model.plan` names it)."""
RELEASED_SPATIAL_MODEL_TYPE = "vggt_spatial_encoder"


class SpatialConnectorConfig(PretrainedConfig):
    """Connector settings.

    Attributes:
        connector_type: ``"vggt_embedding_merger"`` (v1.0), ``"mlp_add"`` (v1.1) or ``"gated"``.
        spatial_embeds_layer_idx: aggregator layer fed to the connector (python index, -1 = last).
            v1.0 always uses the last layer.
    """

    model_type = "spatial_mllm_connector"

    def __init__(
        self,
        connector_type: str = CONNECTOR_V1_1,
        spatial_embeds_layer_idx: int = -1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if connector_type not in CONNECTOR_TYPES:
            raise ConfigError(
                f"unknown connector_type {connector_type!r}; expected one of {CONNECTOR_TYPES}"
            )
        self.connector_type = connector_type
        self.spatial_embeds_layer_idx = int(spatial_embeds_layer_idx)


def spatial_config_from_dict(data: dict[str, Any] | None) -> VGGTConfig:
    """VGGT configuration from a ``spatial_config`` dict in any of the accepted forms.

    The released form only names ``img_size``/``patch_size``/``embed_dim``; every other size keeps
    the VGGT-1B value.  Keys unknown to ``VGGTConfig`` are ignored.
    """
    base = VGGTConfig.vggt_1b()
    if not data:
        return base
    merged = base.to_dict()
    for key, value in data.items():
        if key in ("model_type", "transformers_version", "architectures"):
            continue
        if key in merged or hasattr(base, key):
            merged[key] = value
    merged.pop("model_type", None)
    return VGGTConfig(**merged)


class SpatialMLLMConfig(Qwen2_5_VLConfig):
    """Qwen2.5-VL configuration with a VGGT ``spatial_config`` and a ``connector_config``.

    ``sub_configs``: ``vision_config`` / ``text_config`` (Qwen2.5-VL), ``spatial_config``
    (:class:`VGGTConfig`), ``connector_config`` (:class:`SpatialConnectorConfig`).
    """

    model_type = V1_1_MODEL_TYPE
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        **Qwen2_5_VLConfig.sub_configs_defaults,
        "spatial_config": SubConfigSpec(config_class=VGGTConfig),
        "connector_config": SubConfigSpec(config_class=SpatialConnectorConfig),
    }

    spatial_config: dict | PretrainedConfig | None = None
    connector_config: dict | PretrainedConfig | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        if not isinstance(self.spatial_config, PretrainedConfig):
            self.spatial_config = spatial_config_from_dict(self.spatial_config)
        if isinstance(self.connector_config, dict):
            self.connector_config = SpatialConnectorConfig(**self.connector_config)
        elif self.connector_config is None:
            self.connector_config = SpatialConnectorConfig()
        super().__post_init__(**kwargs)

    @property
    def connector_type(self) -> str:
        assert isinstance(self.connector_config, SpatialConnectorConfig)
        return str(self.connector_config.connector_type)

    @property
    def layout(self) -> str:
        """Released checkpoint layout this configuration saves/loads as: ``v1.0`` or ``v1.1``."""
        return "v1.0" if self.connector_type == CONNECTOR_V1_0 else "v1.1"

    @property
    def has_spatial_encoder(self) -> bool:
        """True: answers fuse VGGT's tokens through the connector."""
        return True


class PlainQwenConfig(SpatialMLLMConfig):
    """A plain Qwen2.5-VL checkpoint's configuration (layout ``qwen2.5-vl``): no connector
    (``connector_config`` None); ``spatial_config`` sizes only an optional geometry VGGT (a
    ``model.vggt_checkpoint``), VGGT-1B by default."""

    model_type = QWEN2_5_VL_MODEL_TYPE

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        self.connector_config = None

    @property
    def connector_type(self) -> str:
        return ""

    @property
    def layout(self) -> str:
        return PLAIN_QWEN_LAYOUT

    @property
    def has_spatial_encoder(self) -> bool:
        return False


def register_auto_config() -> None:
    """Make transformers' ``AutoConfig`` read a v1.1 ``config.json`` (``model_type``
    ``spatial-mllm``) as :class:`SpatialMLLMConfig`.  Idempotent.

    Why: ``Qwen2_5_VLProcessor.from_pretrained(dir)`` loads the tokenizer through
    ``AutoTokenizer``, which reads ``dir/config.json`` with ``AutoConfig``; a model type it
    does not know makes it fall back to the bare ``PretrainedConfig``, which warns that the
    types differ and then, given Qwen2.5-VL's flat ``rope_scaling`` (``mrope``), that it knows
    neither key.  Registered, the file is read by the class that understands it, silently.
    (A v1.0 ``config.json`` is a plain ``qwen2_5_vl`` one, which transformers knows.)
    """
    AutoConfig.register(V1_1_MODEL_TYPE, SpatialMLLMConfig, exist_ok=True)


def qwen2_5_vl_3b_kwargs() -> dict[str, Any]:
    """Qwen2.5-VL-3B-Instruct configuration values (flat transformers-4 form of its config.json)."""
    return {
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 128000,
        "max_window_layers": 70,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "sliding_window": 32768,
        "use_sliding_window": False,
        "tie_word_embeddings": True,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "vision_config": {
            "depth": 32,
            "hidden_act": "silu",
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "in_chans": 3,
            "out_hidden_size": 2048,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "tokens_per_second": 2,
            "temporal_patch_size": 2,
        },
    }


def real_config(layout: str) -> SpatialMLLMConfig:
    """Configuration of a released real-size model: ``layout`` is ``v1.0``, ``v1.1`` or
    ``qwen2.5-vl`` (Qwen2.5-VL-3B-Instruct's sizes, no spatial encoder)."""
    if layout == PLAIN_QWEN_LAYOUT:
        return PlainQwenConfig(**qwen2_5_vl_3b_kwargs())
    connector = CONNECTOR_V1_0 if layout == "v1.0" else CONNECTOR_V1_1
    return SpatialMLLMConfig(
        spatial_config=VGGTConfig.vggt_1b(),
        connector_config={"connector_type": connector, "spatial_embeds_layer_idx": -1},
        **qwen2_5_vl_3b_kwargs(),
    )


def config_from_dict(data: dict[str, Any]) -> SpatialMLLMConfig:
    """Parse a released (or project) ``config.json`` dict (forms: see the module docstring)."""
    data = dict(data)
    model_type = data.pop("model_type", None)
    architectures = list(data.get("architectures") or [])
    if model_type == V1_1_MODEL_TYPE or "connector_config" in data:
        connector = data.pop("connector_config", None) or {"connector_type": CONNECTOR_V1_1}
        if isinstance(connector, dict) and "connector_type" not in connector:
            connector = {**connector, "connector_type": CONNECTOR_V1_1}
    elif V1_0_ARCHITECTURE in architectures:
        connector = {"connector_type": CONNECTOR_V1_0, "spatial_embeds_layer_idx": -1}
    elif is_plain_qwen(model_type, architectures, data):
        return _plain_config(data)
    else:
        raise ConfigError(
            f"config.json (model_type={model_type!r}, architectures={architectures}) is neither "
            "a Spatial-MLLM nor a plain Qwen2.5-VL configuration: expected model_type "
            f"'spatial-mllm' (v1.1), architecture {V1_0_ARCHITECTURE!r} (v1.0) or model_type "
            f"{QWEN2_5_VL_MODEL_TYPE!r} with architecture {QWEN2_5_VL_ARCHITECTURE!r} "
            "(qwen2.5-vl). A VGGT checkpoint is given as model.vggt_checkpoint, not as the main "
            "checkpoint."
        )
    spatial = data.pop("spatial_config", None)
    try:
        return SpatialMLLMConfig(
            spatial_config=spatial_config_from_dict(spatial), connector_config=connector, **data
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build the configuration: {err}") from err


def is_plain_qwen(model_type: str | None, architectures: list[str], data: dict[str, Any]) -> bool:
    """A plain Qwen2.5-VL ``config.json``: model_type ``qwen2_5_vl``, the architecture
    ``Qwen2_5_VLForConditionalGeneration`` (or none named), no spatial or connector config."""
    return (model_type == QWEN2_5_VL_MODEL_TYPE
            and set(architectures) <= {QWEN2_5_VL_ARCHITECTURE}
            and not data.get("spatial_config") and not data.get("connector_config"))


def _plain_config(data: dict[str, Any]) -> PlainQwenConfig:
    data.pop("spatial_config", None)
    data.pop("connector_config", None)
    try:
        return PlainQwenConfig(spatial_config=VGGTConfig.vggt_1b(), **data)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build the Qwen2.5-VL configuration: {err}") from err


def load_config(checkpoint_dir: str | Path) -> SpatialMLLMConfig:
    """Read ``checkpoint_dir/config.json`` into a :class:`SpatialMLLMConfig`.

    Raises:
        CheckpointNotFoundError: ``checkpoint_dir`` does not exist.
        ConfigError: no readable Spatial-MLLM ``config.json`` in it.
    """
    path = require_checkpoint(checkpoint_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"no config.json in {checkpoint_dir}") from err
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return config_from_dict(data)


_ARCHITECTURES = {"v1.0": V1_0_ARCHITECTURE, "v1.1": V1_1_ARCHITECTURE,
                  PLAIN_QWEN_LAYOUT: QWEN2_5_VL_ARCHITECTURE}


def released_config_dict(
    config: SpatialMLLMConfig, vision_token_id: int = 151654
) -> dict[str, Any]:
    """``config.json`` content in the released form of ``config.layout`` (transformers-4 style)."""
    assert isinstance(config.text_config, PretrainedConfig)
    assert isinstance(config.vision_config, PretrainedConfig)
    text = config.text_config
    rope = dict(getattr(text, "rope_parameters", None) or {})
    vision = {
        key: getattr(config.vision_config, key)
        for key in (
            "depth",
            "hidden_act",
            "hidden_size",
            "intermediate_size",
            "num_heads",
            "out_hidden_size",
            "patch_size",
            "spatial_merge_size",
            "window_size",
            "fullatt_block_indexes",
            "tokens_per_second",
            "temporal_patch_size",
        )
    }
    vision.update(
        {"in_chans": 3, "spatial_patch_size": vision["patch_size"], "model_type": "qwen2_5_vl"}
    )
    out: dict[str, Any] = {
        "architectures": [_ARCHITECTURES[config.layout]],
        "model_type": V1_1_MODEL_TYPE if config.layout == "v1.1" else QWEN2_5_VL_MODEL_TYPE,
        "attention_dropout": 0.0,
        "bos_token_id": text.bos_token_id,
        "eos_token_id": text.eos_token_id,
        "hidden_act": text.hidden_act,
        "hidden_size": text.hidden_size,
        "image_token_id": config.image_token_id,
        "initializer_range": 0.02,
        "intermediate_size": text.intermediate_size,
        "max_position_embeddings": text.max_position_embeddings,
        "max_window_layers": text.max_window_layers,
        "num_attention_heads": text.num_attention_heads,
        "num_hidden_layers": text.num_hidden_layers,
        "num_key_value_heads": text.num_key_value_heads,
        "rms_norm_eps": text.rms_norm_eps,
        "rope_scaling": {
            "type": "mrope",
            "mrope_section": list(rope.get("mrope_section", [16, 24, 24])),
        },
        "rope_theta": float(rope.get("rope_theta", 1000000.0)),
        "sliding_window": 32768,
        "tie_word_embeddings": bool(config.tie_word_embeddings),
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.3",
        "use_cache": True,
        "use_sliding_window": False,
        "video_token_id": config.video_token_id,
        "vision_config": vision,
        "vision_end_token_id": config.vision_end_token_id,
        "vision_start_token_id": config.vision_start_token_id,
        "vision_token_id": vision_token_id,
        "vocab_size": text.vocab_size,
    }
    if not config.has_spatial_encoder:
        return out
    assert isinstance(config.spatial_config, PretrainedConfig)
    spatial = {
        k: v for k, v in config.spatial_config.to_dict().items() if k != "transformers_version"
    }
    spatial["model_type"] = RELEASED_SPATIAL_MODEL_TYPE
    out["spatial_config"] = spatial
    if config.layout == "v1.1":
        assert isinstance(config.connector_config, SpatialConnectorConfig)
        out["connector_config"] = {
            "connector_type": config.connector_config.connector_type,
            "spatial_embeds_layer_idx": config.connector_config.spatial_embeds_layer_idx,
        }
    return out
