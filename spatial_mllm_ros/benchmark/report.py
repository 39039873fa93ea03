"""The files a finished run leaves in OUT besides ``results.jsonl``.

- ``metrics.json``: ``overall`` and one key per reported question type, x100 as the paper's
  table; ``counts`` per type; ``reference``: the authors' ``calculate_metrics`` dict (0..1);
  ``questions``, ``errors``, ``geometry_passes``.
- ``results_spatial-mllm.json``: the results in the authors' results-JSON form (``sample``,
  ``prompt``, ``model_output``, ``cleaned_model_output``, ``cleaned_gt_answer``, ``reward``,
  ``correct``), so their ``eval_vsibench.py --results_json`` recomputes the same metrics.
- ``report.md``: the per-type table and the frames each scene was answered over.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spatial_mllm_ros.benchmark.metrics import calculate_metrics, summary

__all__ = ["REFERENCE_RESULTS", "reference_results", "write_outputs"]

REFERENCE_RESULTS = "results_spatial-mllm.json"


def reference_results(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``results.jsonl`` lines in the authors' results-JSON form."""
    return [{
        "sample": r["sample"], "prompt": r["prompt"], "model_output": r["model_output"],
        "cleaned_model_output": r["prediction"], "cleaned_gt_answer": r["cleaned_gt_answer"],
        "reward": r["score"], "correct": r["score"] == 1.0,
    } for r in results]


def _metrics(results: Sequence[Mapping[str, Any]], errors: int,
             geometry_passes: int) -> dict[str, Any]:
    paper = summary(results)
    overall = paper.overall if math.isfinite(paper.overall) else None
    return {"overall": overall, **paper.scores, "counts": paper.counts,
            "reference": calculate_metrics(reference_results(results)),
            "questions": len(results), "errors": errors, "geometry_passes": geometry_passes}


def _report(metrics: Mapping[str, Any], results: Sequence[Mapping[str, Any]],
            settings: Mapping[str, Any]) -> str:
    lines = ["# VSI-Bench", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | `{v}` |" for k, v in sorted(settings.items())]
    lines += ["", "| question type | questions | score |", "| --- | ---: | ---: |"]
    for t, n in metrics["counts"].items():
        lines.append(f"| {t} | {n} | {metrics[t]:.2f} |")
    overall = metrics["overall"]
    lines.append(f"| **overall** | {metrics['questions']} | "
                 f"{'-' if overall is None else f'{overall:.2f}'} |")
    lines += ["", f"Questions not answered (see errors.jsonl): {metrics['errors']}. "
              f"Geometry passes this run: {metrics['geometry_passes']}.", "",
              "## Frames per scene", "", "| scene | source | sampling | frames |",
              "| --- | --- | --- | --- |"]
    seen: dict[str, Mapping[str, Any]] = {}
    for r in results:
        seen.setdefault(f"{r['dataset']}/{r['scene_name']}", r)
    for scene, r in sorted(seen.items()):
        frames = " ".join(str(f) for f in r["frames"])
        lines.append(f"| {scene} | {r['frames_source']} | {r['sampling']} | {frames} |")
    return "\n".join(lines) + "\n"


def _id_order(result: Mapping[str, Any]) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then other ids as text."""
    rid = result["id"]
    return (0, rid, "") if isinstance(rid, int) else (1, 0, str(rid))


def write_outputs(out: Path, results: Sequence[Mapping[str, Any]], errors: int,
                  geometry_passes: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``metrics.json``, the reference-form results and ``report.md``; return the
    metrics."""
    ordered = sorted(results, key=_id_order)
    metrics = _metrics(ordered, errors, geometry_passes)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n",
                                      encoding="utf-8")
    (out / REFERENCE_RESULTS).write_text(
        json.dumps(reference_results(ordered), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8")
    (out / "report.md").write_text(_report(metrics, ordered, settings), encoding="utf-8")
    return metrics
