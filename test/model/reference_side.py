"""Reference side of the parity check (``test_reference_parity.py``): run the authors' code.

Run ONLY as a script, by the interpreter of ``$SPATIAL_MLLM_REFERENCE_PYTHON`` (transformers
4.51.3, qwen_vl_utils and the reference's other requirements), with the working directory a
checkout of github.com/diankun-wu/Spatial-MLLM; the project never imports it. It contains none
of the reference's code: it calls the reference's own functions (``prepare_chat_batch`` of
``src/evaluation/vsibench/eval_vsibench.py`` -- chat text, ``qwen_vl_utils.process_vision_info``,
the processor, ``prepare_spatial_mllm_inputs`` --, ``SpatialMLLMConfig`` /
``SpatialMLLMForConditionalGeneration.from_pretrained``, ``get_rope_index``, ``generate``).

One adaptation, because the reference builds VGGT at its released sizes whatever the config
says (``VGGT(img_size, patch_size, embed_dim)``: 24 blocks, 16 heads, a ViT-L/14 patch embed
of width 1024): when the checkpoint's ``spatial_config`` names other sizes (a tiny checkpoint),
the reference's own ``Aggregator`` and ``DinoVisionTransformer`` classes are constructed with
those sizes (their constructor arguments; the forward code is the reference's), and the VGGT
heads, which question answering never runs, are not built. A released checkpoint (only
``img_size``/``patch_size``/``embed_dim`` in its ``spatial_config``) is loaded unchanged.

Usage: ``python reference_side.py REQUEST.json OUT_DIR``. REQUEST holds ``checkpoint`` (dir),
``video_dir`` (VSI-Bench layout: ``<video_dir>/<dataset>/<scene_name>/*.png``), ``nframes``,
``items`` (VSI-Bench samples: question, question_type, options, dataset, scene_name; the first
one is run through the model), ``max_new_tokens``, ``threads``, ``attn_implementation``.
Writes ``OUT_DIR/result.json`` (texts, versions, load info, generated ids) and
``OUT_DIR/arrays.npz`` (model inputs, M-RoPE positions, logits of every generated step).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

# Aggregator defaults that a tiny spatial_config may override (reference constructor names).
AGGREGATOR_KEYS = (
    "depth", "num_heads", "mlp_ratio", "num_register_tokens", "qk_norm", "rope_freq",
    "init_values", "aa_order", "aa_block_size",
)


def _import_reference(reference_dir: Path) -> None:
    """Make ``src.*`` and the vendored ``vggt`` package of the checkout importable."""
    for path in (reference_dir / "src" / "qwenvl" / "external", reference_dir):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    os.chdir(reference_dir)  # the reference appends relative paths to sys.path


def _size_reference_vggt(spatial: dict[str, Any]) -> dict[str, Any]:
    """Construct the reference's VGGT at the sizes of ``spatial`` (see the module docstring).

    Returns the constructor arguments applied ({} for a released-size config)."""
    import src.qwenvl.model.spatial_encoder as encoder_module

    vggt_cls = encoder_module.VGGT
    vggt_module: Any = sys.modules[vggt_cls.__module__]
    aggregator_module: Any = sys.modules[vggt_module.Aggregator.__module__]
    if "depth" not in spatial and "patch_embed_depth" not in spatial:
        return {}
    aggregator_kwargs = {k: spatial[k] for k in AGGREGATOR_KEYS if k in spatial}
    if "rope_freq" in aggregator_kwargs:
        aggregator_kwargs["rope_freq"] = int(aggregator_kwargs["rope_freq"])
    patch_kwargs = {
        "embed_dim": int(spatial["embed_dim"]),
        "depth": int(spatial.get("patch_embed_depth", 24)),
        "num_heads": int(spatial.get("patch_embed_num_heads", 16)),
        "mlp_ratio": 4,
    }
    vit_module: Any = sys.modules[aggregator_module.vit_large.__module__]
    dino = vit_module.DinoVisionTransformer  # with vit_large's own block and attention classes
    block = functools.partial(vit_module.Block, attn_class=vit_module.MemEffAttention)

    def patch_embed(**kwargs: Any) -> Any:
        return dino(**patch_kwargs, block_fn=block, **kwargs)

    aggregator_module.vit_large = patch_embed
    vggt_module.Aggregator = functools.partial(vggt_module.Aggregator, **aggregator_kwargs)
    encoder_module.VGGT = functools.partial(
        vggt_cls, enable_camera=False, enable_point=False, enable_depth=False, enable_track=False
    )
    return {"aggregator": aggregator_kwargs, "patch_embed": patch_kwargs, "heads": False}


def _numpy(value: Any) -> Any:
    return value.detach().cpu().numpy()


def main(request_path: str, out_dir: str) -> None:
    request = json.loads(Path(request_path).read_text())
    reference_dir = Path.cwd().resolve()
    _import_reference(reference_dir)

    import numpy as np
    import qwen_vl_utils
    import torch
    import transformers
    from transformers import Qwen2_5_VLProcessor

    torch.set_num_threads(int(request.get("threads", 1)))
    transformers.logging.set_verbosity_error()
    checkpoint = str(request["checkpoint"])
    config_json = json.loads((Path(checkpoint) / "config.json").read_text())
    sizing = _size_reference_vggt(dict(config_json.get("spatial_config") or {}))

    from src.evaluation.vsibench import eval_vsibench
    from src.qwenvl.model.spatial_mllm import (
        SpatialMLLMConfig,
        SpatialMLLMForConditionalGeneration,
    )

    # eval_vsibench.load_model_and_processor, on CPU in float32 (it asks for CUDA + flash-attn).
    config = SpatialMLLMConfig.from_pretrained(checkpoint)
    model, loading = SpatialMLLMForConditionalGeneration.from_pretrained(
        checkpoint,
        config=config,
        torch_dtype=torch.float32,
        attn_implementation=str(request.get("attn_implementation", "sdpa")),
        output_loading_info=True,
    )
    model.eval()
    processor = Qwen2_5_VLProcessor.from_pretrained(checkpoint)

    video_dir = Path(request["video_dir"])
    nframes = int(request["nframes"])
    items: list[dict[str, Any]] = list(request["items"])
    prompts: list[str] = []
    for item in items:
        _, texts = eval_vsibench.prepare_chat_batch(
            [item], processor, "spatial-mllm", video_dir, nframes
        )
        prompts.append(texts[0])
    batch, _ = eval_vsibench.prepare_chat_batch(
        [items[0]], processor, "spatial-mllm", video_dir, nframes
    )

    with torch.no_grad():
        positions, rope_deltas = model.get_rope_index(
            batch["input_ids"], None, batch["video_grid_thw"], batch["second_per_grid_ts"],
            batch["attention_mask"],
        )
        torch.manual_seed(0)
        # eval_vsibench.inference_batch's settings, with the checkpoint's generation_config.
        out = model.generate(
            **batch,
            max_new_tokens=int(request["max_new_tokens"]),
            do_sample=True,
            temperature=0.1,
            top_p=0.001,
            use_cache=True,
            output_logits=True,
            return_dict_in_generate=True,
        )
    prompt_len = int(batch["input_ids"].shape[1])
    new_ids = out.sequences[0, prompt_len:].tolist()
    logits = torch.stack([step[0] for step in out.logits]).float()  # (steps, vocab)
    video_tchw = batch["video_tchw"][0]  # (S, 3, H, W) in [0, 1]

    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_path / "arrays.npz",
        input_ids=_numpy(batch["input_ids"]),
        attention_mask=_numpy(batch["attention_mask"]),
        video_grid_thw=_numpy(batch["video_grid_thw"]),
        second_per_grid_ts=np.asarray(
            [float(v) for v in batch["second_per_grid_ts"]], dtype=np.float64
        ),
        pixel_values_videos=_numpy(batch["pixel_values_videos"]).astype(np.float32),
        video_tchw=_numpy(video_tchw).astype(np.float32),
        position_ids=_numpy(positions),
        rope_deltas=_numpy(rope_deltas),
        step_logits=_numpy(logits),
        new_ids=np.asarray(new_ids, dtype=np.int64),
    )
    result = {
        "prompts": prompts,
        "new_ids": new_ids,
        "generation_config": model.generation_config.to_dict(),
        "versions": {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "qwen_vl_utils": getattr(qwen_vl_utils, "__version__", _dist_version("qwen_vl_utils")),
        },
        "vggt_sizing": sizing,
        "loading": {k: sorted(map(str, v)) for k, v in loading.items()},
    }
    (out_path / "result.json").write_text(json.dumps(result, indent=1))


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: reference_side.py REQUEST.json OUT_DIR")
    main(sys.argv[1], sys.argv[2])
