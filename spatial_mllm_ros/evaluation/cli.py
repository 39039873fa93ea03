"""Command-line entry points of the offline evaluation (no rclpy).

* ``spatial-mllm-eval BAG --questions Q.jsonl --out DIR`` -- :func:`eval_main`
* ``spatial-mllm-bag-from-rgbd SRC_DIR OUT_BAG`` -- :func:`bag_from_rgbd_main`
* ``spatial-mllm-scene OUT_DIR --seed S`` -- :func:`scene_main` (a line per stage on stderr)

Exit codes: 0 success; 2 bad arguments or input files (questions file, RGB-D directory,
profile); 3 bag problems (missing, empty, not a bag, without the configured topics, output
exists); 4 model problems (checkpoint missing or failing to load); 5 an output directory that
cannot be resumed; 130 interrupted (re-run the same command to resume).  User errors print one
clear message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spatial_mllm_ros.bags import (
    BagError,
    BagSource,
    FrameTopics,
    topics_from_params,
    write_frames,
)
from spatial_mllm_ros.core.progress import StageLog
from spatial_mllm_ros.evaluation.errors import EvaluationError, MetricsError, QuestionsFileError
from spatial_mllm_ros.params import ParamError, load_profile
from spatial_mllm_ros.settings import Settings, parse_overrides

if TYPE_CHECKING:
    pass

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BAG = 3
EXIT_MODEL = 4
EXIT_RESUME = 5
EXIT_INTERRUPTED = 130

#: First stamp of generated bags: 2023-11-14T22:13:20Z (fixed, so output is reproducible).
DEFAULT_START_S = 1_700_000_000.0


def _err(prog: str, msg: str) -> None:
    print(f"{prog}: error: {msg}", file=sys.stderr)


def _params(profile: str, prog: str) -> dict[str, Any] | None:
    try:
        return dict(load_profile(profile))
    except ParamError as err:
        _err(prog, f"profile {profile!r}: {err}")
        return None


def _topic_overrides(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        kind, sep, name = item.partition("=")
        if not sep:
            raise ValueError(f"--topic {item!r}: expected KIND=TOPIC (e.g. colour=/cam/image)")
        out[kind.strip()] = name.strip()
    return out


# ----------------------------------------------------------------------------- eval
def eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spatial-mllm-eval",
        description=(
            "Evaluate Spatial-MLLM on a rosbag2 (sqlite3 or mcap) with VSI-Bench metrics. The "
            "bag is streamed through the node's ingestion and answering code; each question is "
            "answered when the bag reaches its cutoff. Results are appended to DIR/results.jsonl "
            "as they come: re-running the same command resumes an interrupted run."
        ),
    )
    p.add_argument("bag", help="rosbag2 directory")
    p.add_argument("--questions", required=True, help="questions file (JSON Lines)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--config", default="cpu_tiny",
                   help="parameter profile: config/<NAME>.yaml or a YAML path (default cpu_tiny)")
    p.add_argument("--checkpoint", default=None,
                   help="Spatial-MLLM checkpoint directory (= -p model.checkpoint:=DIR)")
    p.add_argument("--device", default=None, help="torch device (= -p model.device:=DEV)")
    p.add_argument("--vision-backend", choices=("torch", "onnxruntime", "tensorrt"),
                   default=None,
                   help="what runs the vision encoders (= -p model.vision_backend:=NAME)")
    p.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"),
                   help="weights dtype (= -p model.dtype:=DTYPE)")
    p.add_argument("--strategies", default="coverage,uniform",
                   help="comma-separated sampling strategies compared in one run")
    p.add_argument("--frame-budget", type=int, default=None,
                   help="frames per answer (= -p sampling.frame_budget:=N)")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--mra-thresholds", default="vsibench",
                   choices=("vsibench", "paper", "linspace11"),
                   help="MRA threshold set (default vsibench: the published code's 10 values)")
    p.add_argument("--grounding", action=argparse.BooleanOptionalAction, default=None,
                   help="run the box-grounding pass (= -p answer.grounding:=true|false; boxes "
                        "are not scored, so --no-grounding saves time without changing scores)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="answer length in tokens (= -p answer.max_new_tokens:=N)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="override any parameter of the profile, as the node's --ros-args -p "
                        "(e.g. -p sampling.adaptive_budget:=true); validated by the schema")
    p.add_argument("--topic", action="append", default=[], metavar="KIND=TOPIC",
                   help="override a topic (kinds: colour, colour_compressed, depth, "
                        "camera_info, pose, odometry); '' disables it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-thumbnails", action="store_true", help="no per-answer contact sheets")
    return p


def eval_settings(args: argparse.Namespace) -> Settings:
    """The evaluation's settings: the profile (``--config``) with the flags and ``-p`` items as
    parameter overrides -- the same :class:`Settings` the node builds from that profile.

    Raises:
        ParamError: a profile, flag or ``-p`` value the schema refuses.
    """
    flags = {"model.checkpoint": args.checkpoint, "model.device": args.device,
             "model.dtype": args.dtype, "sampling.frame_budget": args.frame_budget,
             "answer.max_new_tokens": args.max_new_tokens, "answer.grounding": args.grounding,
             "model.vision_backend": args.vision_backend}
    overrides = {k: v for k, v in flags.items() if v is not None}
    overrides.update(parse_overrides(args.param))
    return Settings.from_profile(args.config, overrides)


def eval_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-eval``; returns the exit code."""
    from spatial_mllm_ros.evaluation.errors import ResultsFileError, ResumeMismatchError
    from spatial_mllm_ros.evaluation.questions import load_questions
    from spatial_mllm_ros.evaluation.report import write_report
    from spatial_mllm_ros.evaluation.run_plan import EvalConfig
    from spatial_mllm_ros.evaluation.runner import EvalRunner

    prog = "spatial-mllm-eval"
    args = eval_parser().parse_args(argv)
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    if args.limit is not None and args.limit < 1:
        _err(prog, "--limit must be >= 1")
        return EXIT_USAGE
    try:
        settings = eval_settings(args)
    except ParamError as err:
        _err(prog, f"profile {args.config!r}: {err}")
        return EXIT_USAGE
    params = settings.values
    try:
        topics: FrameTopics = topics_from_params(params).with_overrides(
            _topic_overrides(args.topic)
        )
    except ValueError as err:
        _err(prog, str(err))
        return EXIT_USAGE
    try:
        questions = load_questions(args.questions)
    except QuestionsFileError as err:
        _err(prog, f"questions file: {err}")
        return EXIT_USAGE
    try:
        with BagSource(args.bag) as src:
            _, warnings = src.plan(topics)
    except BagError as err:
        _err(prog, str(err))
        return EXIT_BAG
    for w in warnings:
        print(f"{prog}: warning: {w}", file=sys.stderr)

    from spatial_mllm_ros.model.spec import load_engine, resolve_checkpoint

    # the node's rules (model.max_pixels, num_threads, the embedded default, decoding, ...):
    # the model sees the same inputs offline as on the robot
    log = StageLog(prog, enabled=not args.no_progress)
    with log.stage(f"loading the model ({settings.engine.description})"):
        engine, error = load_engine(settings.engine)
    if engine is None:
        _err(prog, f"{error}. The tiny checkpoint is made with: spatial-mllm-checkpoint tiny "
                   "DIR --layout v1.1")
        return EXIT_MODEL
    checkpoint = resolve_checkpoint(settings.engine)

    config = EvalConfig(
        strategies=strategies, thresholds=args.mra_thresholds, limit=args.limit,
        progress=not args.no_progress, thumbnails=not args.no_thumbnails,
    )
    try:
        runner = EvalRunner(engine, settings, config, topics,
                            model_id=str(checkpoint.resolve()))
        summary = runner.run(args.bag, questions, args.out)
        files = write_report(args.out, args.mra_thresholds, summary)
    except KeyboardInterrupt:
        _err(prog, f"interrupted; results so far are in {args.out}/results.jsonl -- run the "
                   "same command again to resume")
        return EXIT_INTERRUPTED
    except BagError as err:
        _err(prog, str(err))
        return EXIT_BAG
    except (ResumeMismatchError, ResultsFileError) as err:
        _err(prog, str(err))
        return EXIT_RESUME
    except (MetricsError, EvaluationError) as err:
        _err(prog, str(err))
        return EXIT_USAGE
    _print_summary(files.metrics, summary.to_dict())
    print(f"report: {files.report}")
    return EXIT_OK


def _print_summary(metrics_path: Path, run: dict[str, Any]) -> None:
    import json

    doc = json.loads(metrics_path.read_text(encoding="utf-8"))
    for s, m in doc["strategies"].items():
        overall = m["overall"]
        scores = ", ".join(f"{t} {v:.1f}" for t, v in m["scores"].items())
        unp = sum(m["unparseable"].values())
        print(f"[{s}] overall {overall if overall is None else round(overall, 2)} | {scores} | "
              f"unparseable {unp} | coverage {m['mean_coverage']} vs uniform "
              f"{m['mean_uniform_coverage']}")
    share = run.get("outside_model_share")
    print(f"answered {run['pairs_answered']}, resumed {run['pairs_resumed']}, "
          f"{run['seconds_total']:.2f} s, outside the model "
          f"{'-' if share is None else f'{100 * share:.1f} %'}")


# ----------------------------------------------------------------------------- bag from rgbd
def bag_from_rgbd_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-bag-from-rgbd``; returns the exit code."""
    from spatial_mllm_ros.core.errors import RgbdDirError
    from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir

    prog = "spatial-mllm-bag-from-rgbd"
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Convert a posed RGB-D directory (frame-NNNNNN.color.png, .depth.png uint16 mm, "
            ".pose.txt 4x4 camera-to-world, camera_intrinsics.txt; the real_rgbd_shelf "
            "convention and the synthetic generator's output) into a rosbag2 on the node's "
            "default topics: colour rgb8 Image (or jpeg CompressedImage on <colour>/compressed), "
            "16UC1 depth, CameraInfo, PoseStamped."
        ),
    )
    p.add_argument("src_dir")
    p.add_argument("out_bag", help="output bag directory (must not exist)")
    p.add_argument("--rate", type=float, default=None,
                   help="frame rate for the stamps, Hz (default: scene.json stamps, else 30)")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    p.add_argument("--compressed", action="store_true", help="jpeg CompressedImage colour")
    p.add_argument("--config", default="cpu_tiny", help="profile whose topics are used")
    p.add_argument("--start-s", type=float, default=DEFAULT_START_S,
                   help=f"stamp of the first frame, seconds (default {DEFAULT_START_S:.0f})")
    p.add_argument("--frame-id", default="camera_color_optical_frame")
    p.add_argument("--world-frame", default="map")
    args = p.parse_args(argv)
    if args.rate is not None and not args.rate > 0:
        _err(prog, "--rate must be > 0")
        return EXIT_USAGE
    params = _params(args.config, prog)
    if params is None:
        return EXIT_USAGE
    try:
        frames = load_rgbd_dir(args.src_dir, rate_hz=args.rate or 30.0,
                               frame_id=args.frame_id, world_frame_id=args.world_frame)
    except RgbdDirError as err:
        _err(prog, f"{args.src_dir}: {err}")
        return EXIT_USAGE
    frames = restamp(frames, args.start_s, args.rate)
    topics = topics_from_params(params)
    try:
        counts = write_frames(frames, args.out_bag, topics, args.storage, args.compressed)
    except BagError as err:
        _err(prog, str(err))
        return EXIT_BAG
    span = (frames[-1].stamp_ns - frames[0].stamp_ns) / 1e9
    print(f"wrote {args.out_bag} ({args.storage}): {len(frames)} frames over {span:.2f} s")
    for topic, n in counts.items():
        print(f"  {topic}: {n}")
    if args.compressed:
        colour = next(t for t in counts if t.endswith("/compressed"))
        print(f"evaluate / run the node with topics.colour_compressed={colour} and "
              f"topics.colour='' (spatial-mllm-eval: --topic colour_compressed={colour} "
              f"--topic colour=)")
    return EXIT_OK


def restamp(frames: Sequence[Any], start_s: float, rate: float | None) -> list[Any]:
    """Frames with stamps ``start + i / rate`` (or their relative stamps shifted to start)."""
    import dataclasses

    start_ns = round(start_s * 1e9)
    if not frames:
        return []
    t0 = frames[0].stamp_ns
    out = []
    for i, f in enumerate(frames):
        stamp = start_ns + (round(i * 1e9 / rate) if rate else f.stamp_ns - t0)
        out.append(dataclasses.replace(f, stamp_ns=stamp))
    return out


# ----------------------------------------------------------------------------- scene
def scene_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-scene``; returns the exit code."""
    import json

    from spatial_mllm_ros.evaluation.questions import write_questions
    from spatial_mllm_ros.evaluation.scene_questions import (
        SceneQuestionConfig,
        generate_scene_questions,
    )
    from spatial_mllm_ros.synthetic.walkthrough import make_walkthrough

    prog = "spatial-mllm-scene"
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Render a synthetic RGB-D walkthrough and write OUT_DIR/bag (rosbag2 on the node's "
            "topics), OUT_DIR/questions.jsonl (VSI-Bench-style questions with exact answers) "
            "and OUT_DIR/scene.json (the ground truth)."
        ),
    )
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--fps", type=float, default=5.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    p.add_argument("--max-per-type", type=int, default=2)
    p.add_argument("--config", default="cpu_tiny", help="profile whose topics are used")
    p.add_argument("--no-progress", action="store_true", help="no stage lines on stderr")
    args = p.parse_args(argv)
    log = StageLog(prog, enabled=not args.no_progress)
    if args.frames < 1 or args.width < 16 or args.height < 16 or not args.fps > 0 \
            or args.max_per_type < 1:
        _err(prog, "--frames and --max-per-type must be >= 1, --width/--height >= 16, --fps > 0")
        return EXIT_USAGE
    params = _params(args.config, prog)
    if params is None:
        return EXIT_USAGE
    out = Path(args.out_dir)
    bag = out / "bag"
    if bag.exists():
        _err(prog, f"{bag} already exists; remove it or pick another OUT_DIR")
        return EXIT_BAG
    with log.stage(f"rendering {args.frames} frames {args.width}x{args.height}"):
        scene = make_walkthrough(args.seed, n_frames=args.frames, fps=args.fps,
                                 width=args.width, height=args.height,
                                 start_ns=int(DEFAULT_START_S * 1e9))
    out.mkdir(parents=True, exist_ok=True)
    try:
        with log.stage(f"writing {bag} ({args.storage})"):
            write_frames(scene.frames, bag, topics_from_params(params), args.storage)
    except BagError as err:
        _err(prog, str(err))
        return EXIT_BAG
    questions = generate_scene_questions(
        scene.layout, scene.first_seen_ns(),
        SceneQuestionConfig(seed=args.seed, max_per_type=args.max_per_type),
    )
    write_questions(out / "questions.jsonl", questions)
    gt = scene.ground_truth()
    gt["route_planning"] = "not generated (see evaluation/scene_questions.py)"
    (out / "scene.json").write_text(json.dumps(gt, indent=1), encoding="utf-8")
    by_type: dict[str, int] = {}
    for q in questions:
        by_type[q.question_type] = by_type.get(q.question_type, 0) + 1
    print(f"wrote {bag} ({args.frames} frames {args.width}x{args.height} at {args.fps} Hz), "
          f"{out / 'questions.jsonl'} ({len(questions)} questions: "
          + ", ".join(f"{k} {v}" for k, v in by_type.items()) + f"), {out / 'scene.json'}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(eval_main())
