"""Reference side of the VSI-Bench parity check (``test_vsibench_reference_parity.py``): the
authors' ``src/evaluation/vsibench/eval_vsibench.py`` over a whole (small) VSI-Bench folder.

Run ONLY as a script, by ``$SPATIAL_MLLM_REFERENCE_PYTHON`` with the working directory a
checkout of github.com/diankun-wu/Spatial-MLLM, like ``reference_side.py`` (whose model loading
on the CPU and tiny-VGGT sizing it reuses). It contains none of the reference's code: it loads
the dataset as ``main`` does (``datasets.load_dataset(DIR, "full")["test"]``), then for each
question calls ``prepare_chat_batch``, ``inference_batch`` and ``postprocess_batch``, and
``calculate_metrics`` on all of them -- ``evaluate_vsibench`` with batch size 1, on the CPU --
and ``calculate_metrics`` again on the project's ``results_spatial-mllm.json`` (the reference's
``--results_json`` mode). The frame indices the video reader is asked for are recorded by
wrapping ``decord.VideoReader.get_batch`` (the reader ``qwen_vl_utils`` uses when decord is
installed, as the reference's README installs it).

Usage: ``python reference_vsibench_side.py REQUEST.json OUT_DIR``; REQUEST holds
``checkpoint``, ``dataset_dir``, ``nframes``, ``threads``, ``project_results``.
Writes ``OUT_DIR/result.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import reference_side


def main(request_path: str, out_dir: str) -> None:
    request = json.loads(Path(request_path).read_text())
    reference_dir = Path.cwd().resolve()
    reference_side._import_reference(reference_dir)

    import torch
    import transformers
    from datasets import load_dataset

    indices: list[list[int]] = []
    backend = "not decord"
    try:
        import decord

        get_batch = decord.VideoReader.get_batch

        def recording(self: Any, idx: Any) -> Any:
            indices.append([int(i) for i in idx])
            return get_batch(self, idx)

        decord.VideoReader.get_batch = recording
        backend = "decord"
    except ImportError:
        pass

    torch.set_num_threads(int(request.get("threads", 1)))
    transformers.logging.set_verbosity_error()
    checkpoint = str(request["checkpoint"])
    config_json = json.loads((Path(checkpoint) / "config.json").read_text())
    reference_side._size_reference_vggt(dict(config_json.get("spatial_config") or {}))

    from src.evaluation.vsibench import eval_vsibench
    from src.qwenvl.model.spatial_mllm import (
        SpatialMLLMConfig,
        SpatialMLLMForConditionalGeneration,
    )
    from transformers import Qwen2_5_VLProcessor

    config = SpatialMLLMConfig.from_pretrained(checkpoint)
    model = SpatialMLLMForConditionalGeneration.from_pretrained(
        checkpoint, config=config, torch_dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    processor = Qwen2_5_VLProcessor.from_pretrained(checkpoint)

    dataset_dir = Path(request["dataset_dir"]).resolve()
    data = load_dataset(str(dataset_dir), "full")["test"]
    items = [data[i] for i in range(len(data))]
    results: list[dict[str, Any]] = []
    for item in items:
        batch, prompts = eval_vsibench.prepare_chat_batch(
            [item], processor, "spatial-mllm", dataset_dir, int(request["nframes"]))
        texts = eval_vsibench.inference_batch(batch, model, processor)
        results.extend(eval_vsibench.postprocess_batch([item], texts, prompts))
    project = json.loads(Path(request["project_results"]).read_text())
    out = {
        "results": results,
        "metrics": eval_vsibench.calculate_metrics(results),
        "metrics_of_project_results": eval_vsibench.calculate_metrics(project),
        "frame_indices": indices,
        "video_backend": backend,
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
    }
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    (out_path / "result.json").write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: reference_vsibench_side.py REQUEST.json OUT_DIR")
    main(sys.argv[1], sys.argv[2])
