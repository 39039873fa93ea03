"""Offline evaluation throughput on a synthetic scene bag with the tiny checkpoint.

Prints answers per minute, questions per minute (each question answered once per strategy),
and the share of wall time spent outside the model (bag reading, conversion, pairing, the
space-aware buffer, sampling, scoring, result writing, contact sheets). Target: < 10 %.

    python benchmarks/bench_eval.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spatial_mllm_ros.bags import topics_from_params, write_frames  # noqa: E402
from spatial_mllm_ros.evaluation.report import write_report  # noqa: E402
from spatial_mllm_ros.evaluation.run_plan import EvalConfig  # noqa: E402
from spatial_mllm_ros.evaluation.runner import EvalRunner  # noqa: E402
from spatial_mllm_ros.evaluation.scene_questions import (  # noqa: E402
    SceneQuestionConfig,
    generate_scene_questions,
)
from spatial_mllm_ros.settings import Settings  # noqa: E402
from spatial_mllm_ros.synthetic import make_walkthrough  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_frames, width, height, per_type = (20, 320, 240, 1) if args.quick else (60, 640, 480, 2)
    budget = 8
    from spatial_mllm_ros.model.engine import SpatialMLLMEngine
    from spatial_mllm_ros.model.tiny import write_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        ckpt = ROOT / "artifacts" / "tiny-v1.1"
        if not (ckpt / "config.json").exists():
            ckpt = write_checkpoint(t / "tiny", layout="v1.1")
        settings = Settings.from_values({"sampling.frame_budget": budget,
                                         "answer.grounding": False})
        params = settings.values
        scene = make_walkthrough(7, n_frames=n_frames, fps=5.0, width=width, height=height,
                                 start_ns=1_700_000_000_000_000_000)
        write_frames(scene.frames, t / "bag", topics_from_params(params))
        questions = generate_scene_questions(scene.layout, scene.first_seen_ns(),
                                             SceneQuestionConfig(seed=7, max_per_type=per_type))
        engine = SpatialMLLMEngine.from_pretrained(ckpt)
        engine.answer(scene.frames[:budget], "These are frames of a video.\nwarm up", 4)
        config = EvalConfig(strategies=("coverage", "uniform"), progress=False)
        runner = EvalRunner(engine, settings, config)
        t0 = time.perf_counter()
        summary = runner.run(t / "bag", questions, t / "out")
        t_run = time.perf_counter() - t0
        t1 = time.perf_counter()
        write_report(t / "out", "vsibench", summary)
        t_report = time.perf_counter() - t1
    answers = summary.pairs_answered
    share = summary.outside_model_share
    print(f"scene: {n_frames} frames {width}x{height}, {len(questions)} questions x 2 strategies "
          f"= {answers} answers, frame budget {budget}, tiny checkpoint, CPU")
    print(f"evaluation: {t_run:.2f} s wall, {summary.seconds_model:.2f} s in the model, "
          f"{summary.seconds_bag:.2f} s reading + ingesting {summary.bag_messages} bag messages")
    print(f"throughput: {60 * answers / t_run:.1f} answers/min, "
          f"{60 * len(questions) / t_run:.1f} questions/min (both strategies)")
    print(f"outside the model: {100 * share:.1f} % of wall time (target < 10 %)")
    print(f"report (metrics.json + 3 plots + report.md): {t_report:.2f} s (after the run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
