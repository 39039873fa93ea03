"""``spatial-mllm-vsibench DIR --out OUT``: VSI-Bench through the node's answering path.

Reads the benchmark as published (:mod:`.dataset`), answers every question with the profile's
settings (:mod:`.worker`), on one in-process worker or on Ray (:mod:`.pool`), and writes
``OUT/results.jsonl`` (resumable), ``OUT/errors.jsonl``, ``OUT/metrics.json``,
``OUT/results_spatial-mllm.json`` and ``OUT/report.md`` (:mod:`.report`).  Prints the
metrics as JSON on stdout.

Exit codes (:class:`~spatial_mllm_ros.exitcodes.ExitCode`): 0 every selected question
answered; 1 some questions got an error (each listed on stderr and in ``errors.jsonl``; the
others are answered and scored); 2 bad arguments or parameters; 3 the dataset cannot be read
(no parquet, unreadable parquet or card, missing columns); 4 the model did not load; 5 OUT
cannot be written or holds results of other settings; 130 interrupted (run the same command
again to resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spatial_mllm_ros.benchmark.dataset import load_questions, parquet_files, select_types
from spatial_mllm_ros.benchmark.errors import DatasetError, OutputError
from spatial_mllm_ros.benchmark.frames import REFERENCE_CANDIDATES
from spatial_mllm_ros.benchmark.pool import PoolOptions
from spatial_mllm_ros.benchmark.runner import RunSummary, run_benchmark
from spatial_mllm_ros.benchmark.worker import SAMPLINGS, ModelLoadError, RunConfig
from spatial_mllm_ros.core.progress import StageLog
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.param_flags import ParamFlag, add_param_flags, param_overrides
from spatial_mllm_ros.params import ParamError
from spatial_mllm_ros.settings import Settings, parse_overrides

PROG = "spatial-mllm-vsibench"
#: Generation settings of the authors' evaluation, unless ``-p`` says otherwise.
REFERENCE_GENERATION = {"answer.decoding": "reference", "answer.max_new_tokens": 1024}
#: The parameter flags (:mod:`spatial_mllm_ros.param_flags`); ``-p`` sets any parameter.
VSIBENCH_FLAGS: tuple[ParamFlag, ...] = (
    ParamFlag("--checkpoint", "model.checkpoint", "Spatial-MLLM checkpoint directory", "DIR"),
)

__all__ = ["vsibench_main", "vsibench_parser"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def vsibench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Answer VSI-Bench (the published dataset folder) with the node's "
                    "answering path and score it as the Spatial-MLLM authors do. Re-running "
                    "the same command resumes.")
    p.add_argument("dir", type=Path, help="the VSI-Bench folder: dataset card README.md, "
                   "test parquet, <dataset>/<scene>.mp4")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    p.add_argument("--config", default="cpu_tiny",
                   help="parameter profile: config/<NAME>.yaml or a YAML path (default cpu_tiny)")
    add_param_flags(p, VSIBENCH_FLAGS)
    p.add_argument("--nframes", type=_positive_int, default=16,
                   help="frames per question (default 16, the paper's)")
    p.add_argument("--sampling", choices=SAMPLINGS, default="uniform",
                   help="uniform: qwen_vl_utils' frames of the mp4; space_aware: the "
                        "reference's sa_sampling on VGGT geometry, once per video")
    p.add_argument("--candidates", type=_positive_int, default=REFERENCE_CANDIDATES,
                   help="space_aware: frames whose geometry VGGT predicts (default 128)")
    p.add_argument("--video-dir", type=Path, default=None,
                   help="where <dataset>/<scene>.mp4 or <dataset>/<scene>/*.png are "
                        "(default DIR; the reference's --video_dir)")
    p.add_argument("--workers", type=int, default=1,
                   help="model workers: 1 = in this process; N > 1 = a local Ray cluster of "
                        "N actors (one GPU each on a CUDA profile); with --ray, 0 = one per GPU")
    p.add_argument("--ray", default="", metavar="ADDRESS",
                   help="join a running Ray cluster (e.g. auto or ray://host:10001)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="only the first N questions (after --types)")
    p.add_argument("--types", default="",
                   help="comma-separated question types (object_rel_direction = its three "
                        "difficulties); default all")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="override a parameter of the profile (default here: "
                        "answer.decoding:=reference, answer.max_new_tokens:=1024)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or stage lines")
    return p


def _fail(msg: str, code: ExitCode) -> int:
    print(f"{PROG}: {msg}", file=sys.stderr)
    return int(code)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Parameter overrides: the reference's generation, the flags, then ``-p``."""
    overrides: dict[str, Any] = dict(REFERENCE_GENERATION)
    overrides["answer.grounding"] = False
    overrides.update(param_overrides(args, VSIBENCH_FLAGS))
    overrides.update(parse_overrides(args.param))
    return overrides


def _run_settings(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """What changes the answers, recorded in ``OUT/run.json`` (a resume must match it)."""
    keys = ("model.checkpoint", "model.vggt_checkpoint", "model.dtype", "model.max_pixels",
            "model.video_fps", "answer.decoding", "answer.repetition_penalty",
            "answer.max_new_tokens", "answer.prompt_template")
    recorded: dict[str, Any] = {k: settings.values[k] for k in keys}
    recorded.update(nframes=args.nframes, sampling=args.sampling,
                    candidates=args.candidates if args.sampling == "space_aware" else None,
                    dataset=str(args.dir.resolve()))
    return recorded


def _print_summary(summary: RunSummary, out: Path) -> None:
    for line in summary.error_lines:
        print(f"{PROG}: error: {line}", file=sys.stderr)
    print(f"{PROG}: {summary.total} questions: {summary.resumed} already answered, "
          f"{summary.answered} answered now, {summary.errors} with an error; "
          f"{summary.geometry_passes} geometry passes; report: {out / 'report.md'}",
          file=sys.stderr)
    print(json.dumps(summary.metrics, indent=2))


def vsibench_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-vsibench``; returns the exit code."""
    args = vsibench_parser().parse_args(argv)
    log = StageLog(PROG, enabled=not args.no_progress)
    if args.workers < 0 or (args.workers == 0 and not args.ray):
        return _fail("--workers must be >= 1 (0 only with --ray: one per GPU)", ExitCode.USAGE)
    try:
        overrides = _overrides(args)
        settings = Settings.from_profile(args.config, overrides)
    except ParamError as err:
        return _fail(str(err), ExitCode.USAGE)
    for name in ("model.checkpoint", "model.vggt_checkpoint"):
        path = str(settings.values[name])
        if path and not Path(path).exists():
            return _fail(f"{name} {path} does not exist (give --checkpoint DIR or "
                         f"-p {name}:=PATH)", ExitCode.INPUT)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    try:
        files = parquet_files(args.dir)
        questions = select_types(load_questions(files), types)
    except DatasetError as err:
        code = ExitCode.USAGE if str(err).startswith("--types") else ExitCode.INPUT
        return _fail(str(err), code)
    if args.limit is not None:
        questions = questions[: args.limit]
    config = RunConfig(profile=args.config, overrides=overrides,
                       video_dir=str((args.video_dir or args.dir).resolve()),
                       out_dir=str(args.out.resolve()), nframes=args.nframes,
                       sampling=args.sampling, candidates=args.candidates)
    pool = PoolOptions(address=args.ray, workers=args.workers)
    log.note(f"{len(questions)} questions from {', '.join(f.name for f in files)}; "
             f"loading the model ({settings.engine.description} on {settings.engine.device})")
    try:
        summary = run_benchmark(
            config, questions, pool, _run_settings(args, settings),
            progress=not args.no_progress,
            on_ready=lambda n: log.note(f"{n} worker(s) ready"))
    except KeyboardInterrupt:
        return _fail(f"interrupted; results so far are in {args.out / 'results.jsonl'} -- run "
                     "the same command again to resume", ExitCode.INTERRUPTED)
    except ModelLoadError as err:
        return _fail(str(err), ExitCode.MODEL)
    except OutputError as err:
        return _fail(str(err), ExitCode.OUTPUT)
    _print_summary(summary, args.out)
    return int(ExitCode.NOT_OK if summary.errors else ExitCode.OK)


if __name__ == "__main__":
    raise SystemExit(vsibench_main())
