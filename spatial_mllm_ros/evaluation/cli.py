"""Command-line entry points of the offline evaluation (no rclpy).

* ``spatial-mllm-eval BAG --questions Q.jsonl --out DIR`` -- :func:`eval_main`
* ``spatial-mllm-bag-from-rgbd SRC_DIR OUT_BAG`` -- :func:`bag_from_rgbd_main`
* ``spatial-mllm-scene OUT_DIR --seed S`` -- :func:`scene_main` (a line per stage on stderr,
  and the rendered frames counted)

Exit codes are :class:`~spatial_mllm_ros.exitcodes.ExitCode` (the README's "Exit codes"):
USAGE for a wrong flag, parameter or strategy; INPUT for a bag, questions file, RGB-D folder
or checkpoint directory that does not exist or cannot be read; MODEL for a model that fails
to load; OUTPUT for an output that exists (a bag) or cannot be resumed or written;
INTERRUPTED after Ctrl-C (re-run the same command to resume).  Everything the command line
names is checked before the model is loaded.  A refusal is one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spatial_mllm_ros.answering.handle import EngineHandle, ModelHandle, load_engine_handle
from spatial_mllm_ros.bags import (
    BagError,
    BagSource,
    FrameTopics,
    camera_topics,
    plan_cameras,
    topics_from_params,
    write_cameras,
    write_frames,
)
from spatial_mllm_ros.camera_params import DEFAULT_CAMERA
from spatial_mllm_ros.core.progress import StageLog
from spatial_mllm_ros.evaluation.errors import EvaluationError, MetricsError, QuestionsFileError
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.param_flags import ParamFlag, add_param_flags, param_overrides
from spatial_mllm_ros.params import ParamError, load_profile
from spatial_mllm_ros.settings import Settings, parse_overrides

if TYPE_CHECKING:
    from spatial_mllm_ros.evaluation.questions import Question
    from spatial_mllm_ros.evaluation.run_plan import RunSummary

#: First stamp of generated bags: 2023-11-14T22:13:20Z (fixed, so output is reproducible).
DEFAULT_START_S = 1_700_000_000.0


EVAL_PROG = "spatial-mllm-eval"


class Refused(Exception):
    """A command refuses to go on: ``message`` (what is wrong and what to do) and its
    exit ``code``."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _err(prog: str, msg: str) -> None:
    print(f"{prog}: error: {msg}", file=sys.stderr)


def _params(profile: str) -> dict[str, Any]:
    try:
        return dict(load_profile(profile))
    except ParamError as err:
        raise Refused(ExitCode.USAGE, f"profile {profile!r}: {err}") from err


def _named_cameras(settings: Settings) -> dict[str, FrameTopics]:
    """The topics of the cameras the profile names (``cameras``); {} = the one camera of
    ``topics.*``."""
    if [c.name for c in settings.cameras] in ([DEFAULT_CAMERA], []):
        return {}
    return camera_topics(settings.cameras)


def _topic_overrides(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        kind, sep, name = item.partition("=")
        if not sep:
            raise ValueError(f"--topic {item!r}: expected KIND=TOPIC (e.g. colour=/cam/image)")
        out[kind.strip()] = name.strip()
    return out


def _writable_folder(path: Path, flag: str) -> None:
    """Refuse (OUTPUT) an output folder that is a file or cannot be created."""
    if path.exists() and not path.is_dir():
        raise Refused(ExitCode.OUTPUT, f"{flag} {path} is a file, not a folder; pick another "
                                       f"{flag}")
    parent = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    if not path.exists() and not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
        raise Refused(ExitCode.OUTPUT, f"{flag} {path} cannot be created ({parent} is not a "
                                       "writable folder)")


def format_sig(x: float | None, digits: int = 3, sign: bool = False) -> str:
    """``x`` to ``digits`` significant places, trailing zeros kept (``-`` for None):
    0.8624743 -> ``0.862``, 0.84 -> ``0.840``; ``sign``: always a sign (``+0.0159``)."""
    return "-" if x is None else f"{x:{'+' if sign else ''}#.{digits}g}"


# ----------------------------------------------------------------------------- eval
#: The command's parameter flags (each = ``-p NAME:=VALUE`` of the schema).
EVAL_FLAGS: tuple[ParamFlag, ...] = (
    ParamFlag("--endpoint", "model.endpoint",
              "ask the model server (spatial-mllm-serve) at URL instead of loading the model "
              "here (token: $SPATIAL_MLLM_TOKEN)", "URL"),
    ParamFlag("--checkpoint", "model.checkpoint", "Spatial-MLLM checkpoint directory", "DIR"),
    ParamFlag("--device", "model.device", "torch device", "DEV"),
    ParamFlag("--vision-backend", "model.vision_backend", "what runs the vision encoders"),
    ParamFlag("--dtype", "model.dtype", "weights dtype"),
    ParamFlag("--frame-budget", "sampling.frame_budget", "frames per answer", "N"),
    ParamFlag("--grounding", "answer.grounding",
              "run the box-grounding pass (boxes are not scored, so --no-grounding saves time "
              "without changing scores)"),
    ParamFlag("--max-new-tokens", "answer.max_new_tokens", "answer length in tokens", "N"),
)


def eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=EVAL_PROG,
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
    add_param_flags(p, EVAL_FLAGS)
    p.add_argument("--strategies", default="coverage,uniform",
                   help="comma-separated sampling strategies compared in one run")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--mra-thresholds", default="vsibench",
                   choices=("vsibench", "paper", "linspace11"),
                   help="MRA threshold set (default vsibench: the published code's 10 values)")
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
    overrides = param_overrides(args, EVAL_FLAGS)
    overrides.update(parse_overrides(args.param))
    return Settings.from_profile(args.config, overrides)


@dataclass(frozen=True)
class EvalInputs:
    """Everything an evaluation reads, checked before the model is loaded.

    Attributes:
        settings: the profile with the flags and ``-p`` overrides.
        strategies: the sampling strategies to compare, known ones.
        topics: the bag's topics to read.
        questions: the questions file's questions.
        warnings: what the bag's plan warns of (topics absent, ...).
    """

    settings: Settings
    strategies: tuple[str, ...]
    topics: FrameTopics
    questions: list[Question]
    warnings: list[str]


def _strategies(text: str) -> tuple[str, ...]:
    from spatial_mllm_ros.sampling.strategies import available_strategies

    strategies = tuple(s.strip() for s in text.split(",") if s.strip())
    known = available_strategies()
    unknown = [s for s in strategies if s not in known]
    if unknown or not strategies:
        raise Refused(ExitCode.USAGE, f"--strategies {text!r}: unknown "
                                      f"{', '.join(unknown) or '(none given)'}; "
                                      f"known: {', '.join(known)}")
    return strategies


def _checkpoint_exists(settings: Settings) -> None:
    """Refuse (INPUT) a checkpoint that is not there ("" is the embedded default, generated
    when absent), and (USAGE) a model that cannot fit its memory budget."""
    from spatial_mllm_ros.model.errors import CheckpointNotFoundError
    from spatial_mllm_ros.model.spec import check_checkpoint

    try:
        check_checkpoint(settings.engine)
    except CheckpointNotFoundError as err:
        raise Refused(ExitCode.INPUT, f"{err}; pass an existing checkpoint folder (or no "
                                      "--checkpoint for the embedded tiny one)") from err
    from spatial_mllm_ros.model.fit import check_configuration

    problem = check_configuration(settings.engine, settings.values).problem
    if problem:  # model.memory_budget_gb, model.quantization: before anything loads
        raise Refused(ExitCode.USAGE, problem)


def eval_inputs(args: argparse.Namespace) -> EvalInputs:
    """Check every argument and input of ``spatial-mllm-eval``, loading nothing heavy.

    Raises:
        Refused: USAGE (flags, parameters, strategies), INPUT (bag, questions file,
            checkpoint folder), OUTPUT (``--out`` is a file or cannot be created).
    """
    from spatial_mllm_ros.evaluation.questions import load_questions

    if args.limit is not None and args.limit < 1:
        raise Refused(ExitCode.USAGE, "--limit must be >= 1")
    strategies = _strategies(args.strategies)
    try:
        settings = eval_settings(args)
    except ParamError as err:
        raise Refused(ExitCode.USAGE, f"profile {args.config!r}: {err}") from err
    try:
        topics = topics_from_params(settings.values).with_overrides(
            _topic_overrides(args.topic))
    except ValueError as err:
        raise Refused(ExitCode.USAGE, str(err)) from err
    try:
        questions = load_questions(args.questions)
    except QuestionsFileError as err:
        raise Refused(ExitCode.INPUT, f"questions file: {err}") from err
    cameras = _named_cameras(settings)
    if cameras and args.topic:
        raise Refused(ExitCode.USAGE, "--topic sets the topics.* of one camera; the profile "
                                      "names cameras: set -p camera.<name>.<kind>:=TOPIC")
    try:
        with BagSource(args.bag) as src:
            warnings = plan_cameras(src, cameras or {DEFAULT_CAMERA: topics}).warnings
    except BagError as err:
        raise Refused(ExitCode.INPUT, str(err)) from err
    if not settings.remote.endpoint:  # a server's checkpoint is on the server
        _checkpoint_exists(settings)
    _writable_folder(Path(args.out), "--out")
    return EvalInputs(settings, strategies, topics, questions, list(warnings))


def eval_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-eval``: the arguments, then :func:`eval_command`; returns the exit code."""
    args = eval_parser().parse_args(argv)
    try:
        eval_command(EVAL_PROG, args)
    except Refused as refusal:
        _err(EVAL_PROG, refusal.message)
        return refusal.code
    return ExitCode.OK


def eval_command(prog: str, args: argparse.Namespace) -> None:
    """Check the inputs, load the model, evaluate (:func:`_evaluate`) and close the model
    whatever happens (an :class:`contextlib.ExitStack`).

    Raises:
        Refused: with the exit code and the one line to print.
    """
    inputs = eval_inputs(args)
    for w in inputs.warnings:
        print(f"{prog}: warning: {w}", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        log = StageLog(prog, enabled=not args.no_progress)
        model = _load_model(prog, inputs.settings, log)
        stack.callback(model.handle.close)
        _evaluate(args, inputs, model)


@dataclass(frozen=True)
class LoadedModel:
    """The model an evaluation asks: its handle and its id in the run's resume keys."""

    handle: ModelHandle
    model_id: str

    @property
    def vision(self) -> str:
        """What ran the vision encoders, one line for the report ("" for a model server,
        whose ``/v1/health`` says it)."""
        if isinstance(self.handle, EngineHandle):
            return self.handle.engine.vision_usage.line
        return ""


def _load_model(prog: str, settings: Settings, log: StageLog) -> LoadedModel:
    """The model of ``settings``: the server of ``--endpoint``, else the checkpoint loaded
    here, with the node's rules (model.max_pixels, num_threads, the embedded default,
    decoding, ...): the model sees the same inputs offline as on the robot.

    Raises:
        Refused: MODEL: the model does not load, or the server cannot be reached.
    """
    from spatial_mllm_ros.model.spec import resolve_checkpoint

    if settings.remote.endpoint:
        return _remote(prog, settings)
    with log.stage(f"loading the model ({settings.engine.description})"):
        handle, error = load_engine_handle(settings.engine)
    if handle is None:
        raise Refused(ExitCode.MODEL, f"{error}. The tiny checkpoint is made with: "
                                      "spatial-mllm-checkpoint tiny DIR --layout v1.1")
    return LoadedModel(handle, str(resolve_checkpoint(settings.engine).resolve()))


def _evaluate(args: argparse.Namespace, inputs: EvalInputs, model: LoadedModel) -> None:
    """Evaluate, write the report and print its summary.

    Raises:
        Refused: INPUT (the bag, read again), OUTPUT (resume refused, results unreadable, a
            file that cannot be written), USAGE (thresholds), INTERRUPTED.
    """
    from spatial_mllm_ros.evaluation.errors import ResultsFileError, ResumeMismatchError
    from spatial_mllm_ros.evaluation.report import write_report
    from spatial_mllm_ros.evaluation.run_plan import EvalConfig
    from spatial_mllm_ros.evaluation.runner import EvalRunner

    config = EvalConfig(
        strategies=inputs.strategies, thresholds=args.mra_thresholds, limit=args.limit,
        progress=not args.no_progress, thumbnails=not args.no_thumbnails,
    )
    try:
        runner = EvalRunner(model.handle, inputs.settings, config, inputs.topics,
                            model_id=model.model_id)
        summary = runner.run(args.bag, inputs.questions, args.out)
        files = write_report(args.out, args.mra_thresholds, summary, vision=model.vision)
    except KeyboardInterrupt as err:
        raise Refused(ExitCode.INTERRUPTED, f"interrupted; results so far are in "
                                            f"{args.out}/results.jsonl -- run the same "
                                            "command again to resume") from err
    except BagError as err:
        raise Refused(ExitCode.INPUT, str(err)) from err
    except (ResumeMismatchError, ResultsFileError) as err:
        raise Refused(ExitCode.OUTPUT, str(err)) from err
    except (MetricsError, EvaluationError) as err:
        raise Refused(ExitCode.USAGE, str(err)) from err
    except OSError as err:
        raise Refused(ExitCode.OUTPUT, f"cannot write to {args.out}: {err}") from err
    print_summary(files.metrics, summary)
    print(f"report: {files.report}")


def _remote(prog: str, settings: Settings) -> LoadedModel:
    """The model server's answerer (``--endpoint``) and the model's id (the server and its
    checkpoint).

    Raises:
        Refused: MODEL: the server cannot be reached or refuses the token.
    """
    from spatial_mllm_ros.answering.errors import AnsweringError
    from spatial_mllm_ros.settings import remote_answerer

    answerer, error = remote_answerer(settings, prog)
    try:
        if answerer is None:
            raise AnsweringError(error)
        info = answerer.server_info()
    except AnsweringError as err:
        raise Refused(ExitCode.MODEL, f"{err}; start it with spatial-mllm-serve") from err
    return LoadedModel(answerer, f"{settings.remote.endpoint} ({info.health.get('checkpoint')})")


def summary_lines(doc: dict[str, Any], run: RunSummary) -> list[str]:
    """What ``spatial-mllm-eval`` prints when done, from its metrics.json ``doc``: the model
    note (random weights), a line per strategy (coverage to 3 significant places), and this
    invocation's work."""
    lines = []
    model = doc.get("model") or {}
    if model.get("random_weights"):
        lines.append(f"note: {model['note']}")
    for s, m in doc["strategies"].items():
        overall = m["overall"]
        scores = ", ".join(f"{t} {v:.1f}" for t, v in m["scores"].items())
        unp = sum(m["unparseable"].values())
        cov, uni = m["mean_coverage"], m["mean_uniform_coverage"]
        against = "" if s == "uniform" else f" vs uniform {format_sig(uni)}" + (
            "" if cov is None or uni is None else f" ({format_sig(cov - uni, sign=True)})")
        lines.append(f"[{s}] overall {overall if overall is None else round(overall, 2)} | "
                     f"{scores} | unparseable {unp} | coverage {format_sig(cov)}{against}")
    lines.append(f"answered {run.pairs_answered}, resumed {run.pairs_resumed}: "
                 f"{run.time_split()}")
    return lines


def print_summary(metrics_path: Path, run: RunSummary) -> None:
    """Print :func:`summary_lines` of the metrics.json at ``metrics_path``."""
    import json

    doc = json.loads(metrics_path.read_text(encoding="utf-8"))
    print("\n".join(summary_lines(doc, run)))


# ----------------------------------------------------------------------------- bag from rgbd
def bag_from_rgbd_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-bag-from-rgbd``; returns the exit code."""
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
    p.add_argument("src_dir", nargs="?", default="",
                   help="the RGB-D folder (one camera; or --camera for several)")
    p.add_argument("out_bag", help="output bag directory (must not exist)")
    p.add_argument("--camera", action="append", default=[], metavar="NAME=DIR",
                   help="a camera the --config profile names (`cameras`) and its RGB-D folder, "
                        "written on that camera's topics with frame id <NAME>_color_optical_"
                        "frame; repeat per camera, instead of SRC_DIR")
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
    try:
        frames, counts = _bag_from_rgbd(args)
    except Refused as refusal:
        _err(prog, refusal.message)
        return refusal.code
    span = (frames[-1].stamp_ns - frames[0].stamp_ns) / 1e9
    print(f"wrote {args.out_bag} ({args.storage}): {len(frames)} frames over {span:.2f} s")
    for topic, n in counts.items():
        print(f"  {topic}: {n}")
    if args.compressed:
        colour = next(t for t in counts if t.endswith("/compressed"))
        print(f"evaluate / run the node with topics.colour_compressed={colour} and "
              f"topics.colour='' (spatial-mllm-eval: --topic colour_compressed={colour} "
              f"--topic colour=)")
    return ExitCode.OK


def _bag_from_rgbd(args: argparse.Namespace) -> tuple[list[Any], dict[str, int]]:
    """Check the arguments, read the RGB-D folder, write the bag; the frames and the
    messages per topic.

    Raises:
        Refused: USAGE (flags, profile), OUTPUT (the bag exists or cannot be written),
            INPUT (the folder is missing or unreadable).
    """
    from spatial_mllm_ros.core.errors import RgbdDirError
    from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir

    if args.rate is not None and not args.rate > 0:
        raise Refused(ExitCode.USAGE, "--rate must be > 0")
    if bool(args.camera) == bool(args.src_dir):
        raise Refused(ExitCode.USAGE, "give SRC_DIR (one camera) or --camera NAME=DIR for "
                                      "each camera, not both")
    values = _params(args.config)
    topics = topics_from_params(values)
    out = Path(args.out_bag)
    if out.exists():
        raise Refused(ExitCode.OUTPUT, f"output bag {out} already exists; remove it or pick "
                                       "another path")
    _writable_folder(out, "OUT_BAG")
    if args.camera:
        return _cameras_bag(args, values, out)
    try:
        frames = load_rgbd_dir(args.src_dir, rate_hz=args.rate or 30.0,
                               frame_id=args.frame_id, world_frame_id=args.world_frame)
    except RgbdDirError as err:
        raise Refused(ExitCode.INPUT, f"{args.src_dir}: {err}") from err
    frames = restamp(frames, args.start_s, args.rate)
    try:
        counts = write_frames(frames, out, topics, args.storage, args.compressed)
    except BagError as err:
        raise Refused(ExitCode.OUTPUT, str(err)) from err
    return frames, counts


def _cameras_bag(args: argparse.Namespace, values: dict[str, Any], out: Path
                 ) -> tuple[list[Any], dict[str, int]]:
    """``--camera NAME=DIR`` items: each camera's folder on its topics of the profile, one bag
    (each folder stamped from ``--start-s``: the cameras' clocks are taken as one).

    Raises:
        Refused: USAGE (an item that is not NAME=DIR or names no camera of the profile),
            INPUT (a folder), OUTPUT (the bag).
    """
    import dataclasses

    from spatial_mllm_ros.core.errors import RgbdDirError
    from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir

    try:
        cameras = _named_cameras(Settings.from_values(values))
    except ParamError as err:
        raise Refused(ExitCode.USAGE, f"profile {args.config!r}: {err}") from err
    frames: dict[str, list[Any]] = {}
    for item in args.camera:
        name, sep, folder = item.partition("=")
        if not sep or name not in cameras or name in frames:
            raise Refused(ExitCode.USAGE, f"--camera {item!r}: expected NAME=DIR with NAME one "
                                          f"of the profile's cameras [{', '.join(cameras)}], "
                                          "each once")
        try:
            loaded = load_rgbd_dir(folder, rate_hz=args.rate or 30.0,
                                   frame_id=f"{name}_color_optical_frame",
                                   world_frame_id=args.world_frame)
        except RgbdDirError as err:
            raise Refused(ExitCode.INPUT, f"{folder}: {err}") from err
        frames[name] = [dataclasses.replace(f, camera=name)
                        for f in restamp(loaded, args.start_s, args.rate)]
    try:
        counts = write_cameras(frames, out, {n: cameras[n] for n in frames}, args.storage,
                               args.compressed)
    except BagError as err:
        raise Refused(ExitCode.OUTPUT, str(err)) from err
    merged = sorted((f for fs in frames.values() for f in fs), key=lambda f: f.stamp_ns)
    return merged, counts


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
def scene_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spatial-mllm-scene",
        description=(
            "Render a synthetic RGB-D walkthrough and write OUT_DIR/bag (rosbag2 on the node's "
            "topics), OUT_DIR/questions.jsonl (VSI-Bench-style questions with exact answers) "
            "and OUT_DIR/scene.json (the ground truth; with a profile that names cameras, "
            "also each camera's frame id and extrinsic)."
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
    p.add_argument("--no-progress", action="store_true",
                   help="no stage lines nor frame counts on stderr")
    return p


def scene_main(argv: list[str] | None = None) -> int:
    """``spatial-mllm-scene``; returns the exit code."""
    prog = "spatial-mllm-scene"
    args = scene_parser().parse_args(argv)
    try:
        print(_scene(args, StageLog(prog, enabled=not args.no_progress)))
    except Refused as refusal:
        _err(prog, refusal.message)
        return refusal.code
    return ExitCode.OK


def _scene(args: argparse.Namespace, log: StageLog) -> str:
    """Check the arguments, render (counting the frames on ``log``), write the bag, the
    questions and the ground truth; what was written, in one line.

    Raises:
        Refused: USAGE (flags, profile), OUTPUT (the bag exists, or a write fails).
    """
    from spatial_mllm_ros.evaluation.questions import write_questions
    from spatial_mllm_ros.evaluation.scene_questions import (
        SceneQuestionConfig,
        generate_scene_questions,
    )
    from spatial_mllm_ros.synthetic.walkthrough import make_walkthrough

    if args.frames < 1 or args.width < 16 or args.height < 16 or not args.fps > 0 \
            or args.max_per_type < 1:
        raise Refused(ExitCode.USAGE, "--frames and --max-per-type must be >= 1, "
                                      "--width/--height >= 16, --fps > 0")
    values = _params(args.config)
    topics = topics_from_params(values)
    try:
        cameras = _named_cameras(Settings.from_values(values))
    except ParamError as err:
        raise Refused(ExitCode.USAGE, f"profile {args.config!r}: {err}") from err
    out = Path(args.out_dir)
    bag = out / "bag"
    if bag.exists():
        raise Refused(ExitCode.OUTPUT, f"{bag} already exists; remove it or pick another "
                                       "OUT_DIR")
    _writable_folder(out, "OUT_DIR")
    if cameras:
        return _rig_scene(args, log, cameras, out)
    what = f"rendering {args.frames} frames {args.width}x{args.height}"
    with log.stage(what):
        scene = make_walkthrough(args.seed, n_frames=args.frames, fps=args.fps,
                                 width=args.width, height=args.height,
                                 start_ns=int(DEFAULT_START_S * 1e9),
                                 on_frame=log.counter(what, "frames"))
    questions = generate_scene_questions(
        scene.layout, scene.first_seen_ns(),
        SceneQuestionConfig(seed=args.seed, max_per_type=args.max_per_type),
    )
    gt = scene.ground_truth()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with log.stage(f"writing {bag} ({args.storage})"):
            write_frames(scene.frames, bag, topics, args.storage)
        write_questions(out / "questions.jsonl", questions)
        _write_truth(out, gt)
    except (BagError, OSError) as err:
        raise Refused(ExitCode.OUTPUT, f"cannot write {out}: {err}") from err
    by_type: dict[str, int] = {}
    for q in questions:
        by_type[q.question_type] = by_type.get(q.question_type, 0) + 1
    return (f"wrote {bag} ({args.frames} frames {args.width}x{args.height} at {args.fps} Hz), "
            f"{out / 'questions.jsonl'} ({len(questions)} questions: "
            + ", ".join(f"{k} {v}" for k, v in by_type.items()) + f"), {out / 'scene.json'}")



def _write_truth(out: Path, truth: dict[str, Any]) -> None:
    """OUT_DIR/scene.json: the scene's ground truth (route planning questions are not
    generated).

    Raises:
        OSError: it cannot be written.
    """
    import json

    truth["route_planning"] = "not generated (see evaluation/scene_questions.py)"
    (out / "scene.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")


def _rig_scene(args: argparse.Namespace, log: StageLog, cameras: dict[str, FrameTopics],
               out: Path) -> str:
    """The scene of a profile that names cameras: the synthetic room seen by those rig
    cameras (front, left, right) on one moving base, each on its own topics in one bag.

    Raises:
        Refused: USAGE (a camera that is not a rig camera), OUTPUT (a write fails).
    """
    from spatial_mllm_ros.evaluation.questions import write_questions
    from spatial_mllm_ros.evaluation.scene_questions import (
        SceneQuestionConfig,
        generate_scene_questions,
    )
    from spatial_mllm_ros.synthetic.rig import RIG_MOUNTS, make_rig_walkthrough

    unknown = [c for c in cameras if c not in RIG_MOUNTS]
    if unknown:
        raise Refused(ExitCode.USAGE, f"profile {args.config!r}: camera {unknown[0]!r} is "
                                      f"not a synthetic rig camera ({', '.join(RIG_MOUNTS)})")
    with log.stage(f"rendering {args.frames} steps x {len(cameras)} cameras "
                   f"{args.width}x{args.height}"):
        rig = make_rig_walkthrough(args.seed, n_steps=args.frames, fps=args.fps,
                                   width=args.width, height=args.height,
                                   cameras=tuple(cameras), start_ns=int(DEFAULT_START_S * 1e9))
    questions = generate_scene_questions(
        rig.layout, rig.first_seen_ns(),
        SceneQuestionConfig(seed=args.seed, max_per_type=args.max_per_type))
    bag = out / "bag"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with log.stage(f"writing {bag} ({args.storage})"):
            write_cameras(rig.frames, bag, cameras, args.storage)
        write_questions(out / "questions.jsonl", questions)
        _write_truth(out, rig.ground_truth())
    except (BagError, OSError) as err:
        raise Refused(ExitCode.OUTPUT, f"cannot write {out}: {err}") from err
    return (f"wrote {bag} ({args.frames} steps x cameras {', '.join(cameras)} "
            f"{args.width}x{args.height} at {args.fps} Hz), {out / 'questions.jsonl'} "
            f"({len(questions)} questions), {out / 'scene.json'}")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(eval_main())
