"""The node's parameter schema, declared once.  Never imports rclpy.

``SCHEMA`` lists every parameter with its type, default, description, range/choices and
whether it is read-only at run time.  The node declares its ROS parameters from it
(``spatial_mllm_ros.ros.node``), ``config/*.yaml`` holds profiles of it (ROS params format),
and the offline evaluator loads the same profiles with :func:`load_profile`.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import yaml

from spatial_mllm_ros import camera_params

__all__ = [
    "NODE_NAME",
    "RULES",
    "SCHEMA",
    "CrossRule",
    "ParamError",
    "ParamSpec",
    "Scope",
    "config_dir",
    "default_bool",
    "default_float",
    "default_int",
    "default_str",
    "defaults",
    "load_profile",
    "load_yaml",
    "spec",
    "validate",
]

NODE_NAME = "spatial_mllm"

ParamValue = bool | int | float | str


class ParamError(ValueError):
    """A parameter value or parameter file is invalid."""


class Scope(enum.Enum):
    """Where a parameter's value goes (test/unit/test_param_binding.py checks it).

    Attributes:
        FIELD: exactly one config field, bound to it by :func:`bound`.
        DERIVED: no field of its own: ``spatial_mllm_ros.settings`` computes config values from
            it together with other parameters (e.g. the pairing partners from the topics).
        NODE: only the ROS node (``spatial_mllm_ros.ros``) reads it; it reaches no config.
    """

    FIELD = "field"
    DERIVED = "derived"
    NODE = "node"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter.

    Attributes:
        name: dotted ROS parameter name (e.g. ``pairing.slop_s``).
        type: ``bool``, ``int``, ``float`` or ``str``.
        default: default value (of ``type``).
        description: what it does, with units.
        min, max: inclusive numeric range (None = unbounded).
        choices: allowed values for strings (empty = free text).
        read_only: cannot change after the node started (topics, QoS, model files).
        scope: where its value goes (:class:`Scope`): one config field, several derived
            values, or only the ROS node.
    """

    name: str
    type: type
    default: ParamValue
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    scope: Scope = Scope.FIELD

    def check(self, value: Any) -> ParamValue:
        """Return ``value`` coerced to ``type`` (int -> float only), or raise ParamError."""
        v: Any = value
        if self.type is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if self.type in (int, float) and isinstance(v, bool):
            raise ParamError(f"{self.name}: expected {self.type.__name__}, got bool {value!r}")
        if not isinstance(v, self.type):
            raise ParamError(
                f"{self.name}: expected {self.type.__name__}, got {type(value).__name__} {value!r}"
            )
        v = cast(Any, v)
        if self.min is not None and v < self.min:
            raise ParamError(f"{self.name}: {v!r} is below the minimum {self.min}")
        if self.max is not None and v > self.max:
            raise ParamError(f"{self.name}: {v!r} is above the maximum {self.max}")
        if self.choices and v not in self.choices:
            raise ParamError(f"{self.name}: {v!r} is not one of {list(self.choices)}")
        out: ParamValue = v
        return out


_GIB = 1 << 30
_P = ParamSpec
_DERIVED = Scope.DERIVED
_NODE = Scope.NODE

SCHEMA: tuple[ParamSpec, ...] = (
    _P("autostart", bool, True,
       "Configure and activate the lifecycle node at start-up (for systems without the "
       "`ros2 lifecycle` CLI or a lifecycle manager).", read_only=True),
    # --- topics (defaults follow the RealSense ROS 2 wrapper, namespace camera/camera)
    _P("topics.colour", str, "/camera/camera/color/image_raw",
       "Colour sensor_msgs/Image topic (rgb8, bgr8, rgba8, bgra8, mono8); '' = off.",
       read_only=True, scope=_DERIVED),
    _P("topics.colour_compressed", str, "",
       "Colour sensor_msgs/CompressedImage topic (jpeg/png); '' = off. Use this or "
       "topics.colour for one camera, not both.", read_only=True, scope=_DERIVED),
    _P("topics.depth", str, "/camera/camera/aligned_depth_to_color/image_raw",
       "Depth sensor_msgs/Image registered to colour (16UC1 mm or 32FC1 m); '' = off.",
       read_only=True, scope=_DERIVED),
    _P("topics.camera_info", str, "/camera/camera/color/camera_info",
       "sensor_msgs/CameraInfo of the colour camera; '' = off.", read_only=True, scope=_DERIVED),
    _P("topics.pose", str, "~/camera_pose",
       "geometry_msgs/PoseStamped of the camera optical frame in the world frame; '' = off.",
       read_only=True, scope=_DERIVED),
    _P("topics.odometry", str, "",
       "nav_msgs/Odometry of the camera optical frame (child_frame_id) in the world frame; "
       "'' = off.", read_only=True, scope=_DERIVED),
    _P("tf.enabled", bool, False,
       "Look the camera pose up in tf2 (world_frame <- image frame_id at the image stamp) "
       "for frames without a paired pose message; needs tf2_ros.", read_only=True),
    _P("tf.world_frame", str, "map", "World frame for tf lookups (REP 105: map or odom).",
       read_only=True),
    # --- QoS
    _P("qos.reliability", str, "best_effort",
       "Camera subscription reliability (sensor-data QoS is best_effort).",
       choices=("best_effort", "reliable"), read_only=True),
    _P("qos.depth", int, 10, "Camera subscription history depth, messages: how many may wait "
       "while the node's callbacks are busy.",
       min=1, max=1000, read_only=True),
    # --- pairing
    _P("pairing.slop_s", float, 0.02,
       "Largest |partner stamp - colour stamp| for pairing depth/pose/info, seconds.",
       min=0.0, max=1.0, read_only=True),
    _P("pairing.wait_s", float, 2.0,
       "Longest a colour image waits for its depth and for the pose history to cover its "
       "stamp before it is kept without them, seconds: at least the pose source's latency "
       "(README 'The node').", min=0.0, max=10.0, read_only=True),
    _P("pairing.info_wait_s", float, 5.0,
       "Longest a colour image waits for the first camera info of its camera (later frames "
       "use the latched one at once), seconds.", min=0.0, max=60.0, read_only=True),
    _P("pairing.queue_size", int, 150,
       "Bound of each pairing queue, messages: colour images waiting for partners and "
       "partner messages; a full queue drops its oldest (README 'The node' sizes it).",
       min=1, max=10_000, read_only=True),
    _P("pairing.camera_info", str, "latest",
       "Camera info: 'latest' = latched per camera (one message serves until it changes; "
       "frames before the first one wait for it) or 'nearest' stamp.",
       choices=("latest", "nearest"), read_only=True, scope=_DERIVED),
    # --- image limits
    _P("image.max_pixels", int, 3840 * 2160,
       "Largest accepted image, width * height pixels; larger ones are rejected.",
       min=1, max=100_000_000, read_only=True),
    _P("pose.quaternion_tolerance", float, 1e-3,
       "Accepted |norm - 1| of a pose quaternion (normalised within it, rejected beyond).",
       min=0.0, max=0.5, read_only=True),
    _P("pose.history_s", float, 10.0,
       "Pose history kept (PoseStamped/Odometry as a time series, as tf2 keeps transforms), "
       "seconds before the newest pose.", min=0.1, max=3600.0, read_only=True),
    _P("pose.max_extrapolation_s", float, 0.05,
       "An image stamped up to this far past either end of the pose history gets the end "
       "pose (held); further out it waits or has none, seconds.", min=0.0, max=5.0,
       read_only=True),
    _P("pose.max_gap_s", float, 0.5,
       "Poses further apart than this are not interpolated between (the image gets no pose), "
       "seconds.", min=0.001, max=60.0, read_only=True),
    # --- clock
    _P("clock.max_future_s", float, 1.0,
       "Reject messages stamped more than this ahead of the receive time (the node's clock, "
       "sim time under use_sim_time), seconds; 0 = no check.", min=0.0, max=86400.0,
       read_only=True),
    _P("clock.jump_back_s", float, 1.0,
       "A stamp this much earlier than its stream's previous one starts a new time base "
       "(sim time reset, bag loop, bag replayed after live data): logged once and counted; "
       "smaller steps back are rejected as stamp_backwards, seconds.", min=0.001,
       max=86400.0, read_only=True),
    _P("clock.jump_forward_s", float, 600.0,
       "A stamp this much later than the newest stamp of every input stream also starts a "
       "new time base (live data after a replayed bag, a bag recorded later, sim time set "
       "ahead), seconds; so does a gap of all streams this long (cameras off). A stream "
       "that stops alone (a pose outage) is judged against the others and is no jump. "
       "0 = only steps back start a new time base.", min=0.0, max=1e9, read_only=True),
    _P("clock.on_time_reset", str, "clear",
       "At a new time base: 'clear' the frame buffer (answers come only from the new time "
       "base) or 'keep' it.", choices=("clear", "keep"), read_only=True),
    # --- buffer
    _P("buffer.max_frames", int, 256, "Rolling buffer bound, frames.", min=1, max=100_000,
       read_only=True),
    _P("buffer.max_bytes", int, 768 * (1 << 20),
       "Rolling buffer bound, bytes of frame arrays.", min=1 << 20, max=256 * _GIB, read_only=True),
    _P("buffer.voxel_size_m", float, 0.1,
       "Voxel edge for coverage, metres (fixed per buffer so that coverage is comparable "
       "across a stream; the paper's bbox/20 rule needs the whole scene in advance).",
       min=0.005, max=5.0, read_only=True),
    _P("buffer.depth_stride", int, 8,
       "Pixel stride when back-projecting depth for coverage (8: 80x60 points at 640x480).",
       min=1, max=64, read_only=True),
    _P("buffer.min_new_voxels", int, 20,
       "Every frame is kept while the buffer is under its bounds; once it is full, a frame "
       "with geometry is admitted when it adds at least this many new voxels ...",
       min=0, max=10_000_000, read_only=True),
    _P("buffer.max_interval_s", float, 5.0,
       "... or when this long has passed since the last admitted frame, seconds.",
       min=0.0, max=3600.0, read_only=True),
    _P("buffer.max_depth_m", float, 10.0,
       "Depth beyond this is ignored for coverage, metres.", min=0.1, max=1000.0, read_only=True),
    _P("buffer.colour_only_share", float, 0.25,
       "Fraction of buffer.max_frames that colour-only frames (no depth/pose) may hold.",
       min=0.0, max=1.0, read_only=True),
    # --- the node's executor
    _P("executor.threads", int, 1,
       "Threads of the executor that runs the camera, pose, timer, lifecycle and parameter "
       "callbacks (questions have their own). 1 = rclpy's SingleThreadedExecutor; > 1 = a "
       "MultiThreadedExecutor with that many threads (one callback group per topic). The "
       "README says which keeps up with a 30 Hz stream.",
       min=1, max=64, read_only=True, scope=_NODE),
    # --- diagnostics
    _P("diagnostics.period_s", float, 1.0,
       "Period of the DiagnosticArray on /diagnostics, seconds.", min=0.05, max=60.0,
       read_only=True),
    _P("diagnostics.silent_periods", int, 3,
       "A configured colour, depth or pose/odometry topic that received nothing for this "
       "many diagnostics periods (while active) is reported silent, and the ingest status "
       "is WARN; one with no publisher at all is reported 'no publisher' (WARN).",
       min=1, max=10_000, read_only=True, scope=_NODE),
    # --- start-up and what other participants may do (README "Security and multi-tenant
    # domains")
    _P("startup.name_check_s", float, 2.0,
       "At start-up, before it configures, how long the node watches for another node of "
       "its fully qualified name, seconds: one that publishes /diagnostics (a running node "
       "of this package) = it refuses to start (exit 2); one only in the ROS graph (DDS "
       "keeps a stopped node's entry a while: README 'Security and multi-tenant domains') = "
       "a warning. At least the other node's diagnostics.period_s plus the discovery time. "
       "0 = no check.",
       min=0.0, max=60.0, read_only=True, scope=_NODE),
    _P("security.allow_cancel_all", bool, False,
       "Accept a CancelGoal on ~/ask_stream that names no goal (cancel every goal) or a "
       "time stamp (every goal accepted before it): another caller's goals with it. "
       "false = refused (ERROR_REJECTED); a cancel of one goal by its id is always accepted.",
       read_only=True, scope=_NODE),
    # --- the model
    _P("model.checkpoint", str, "",
       "Spatial-MLLM checkpoint directory (v1.0 or v1.1 layout, safetensors). '' = the "
       "embedded default: a tiny checkpoint generated once into the cache (meaningless "
       "answers; for trying the system without weights).", read_only=True),
    _P("model.vggt_checkpoint", str, "",
       "VGGT checkpoint for monocular geometry; '' = use the model's own spatial encoder.",
       read_only=True),
    _P("model.device", str, "cpu", "Torch device, e.g. cpu, cuda, cuda:0.", read_only=True),
    _P("model.dtype", str, "float32", "Model weights dtype.",
       choices=("float32", "float16", "bfloat16"), read_only=True),
    _P("model.quantization", str, "none",
       "Weight-only quantization of the language model's decoder Linear layers (torchao): "
       "none, int8_weight (1 B/weight) or int4_weight (0.5 B/weight; on cuda with "
       "model.dtype bfloat16). Embeddings, lm_head and the vision encoders stay at "
       "model.dtype (README 'Fit the device').",
       choices=("none", "int8_weight", "int4_weight"), read_only=True),
    _P("model.geometry_heads", bool, True,
       "Load VGGT's camera/depth/point heads (if the checkpoint or model.vggt_checkpoint has "
       "them): coverage sampling of a colour-only camera predicts geometry with them. false "
       "= an RGB-D robot: neither the heads nor the aggregator layers past the connector's "
       "are loaded (less memory).", read_only=True),
    _P("model.memory_budget_gb", float, 0.0,
       "Memory the model may use, GB: at configure the node plans the checkpoint at "
       "sampling.max_frame_budget frames and model.max_pixels and refuses a configuration "
       "that does not fit, naming what to lower. 0 = on cuda the device's total memory, on "
       "cpu no check.", min=0.0, max=4096.0, read_only=True),
    _P("model.process", bool, True,
       "Run the model in a child process, so that its Python work never competes with camera "
       "ingestion for the interpreter lock; cleanup ends the process and returns its memory.",
       read_only=True),
    _P("model.endpoint", str, "",
       "The model server (spatial-mllm-serve) answering this node's questions: "
       "http://HOST:PORT or https://HOST:PORT. '' = the model runs here (model.process). "
       "Only the selected frames travel, at the model's input size (README 'Fleet').",
       read_only=True),
    _P("model.token_file", str, "",
       "File whose first line is the model server's shared token; '' = the environment "
       "variable SPATIAL_MLLM_TOKEN. Never logged.", read_only=True),
    _P("model.frame_encoding", str, "png",
       "Frames sent to the model server: png (lossless, the server's answer equals the local "
       "model's), raw (lossless RGB bytes, no encoding time) or jpeg (smaller, lossy).",
       choices=("png", "raw", "jpeg"), read_only=True),
    _P("model.jpeg_quality", int, 90, "JPEG quality of model.frame_encoding jpeg.",
       min=1, max=100, read_only=True),
    _P("model.stop_grace_s", float, 0.5,
       "Seconds the model process may stay silent after its question's deadline or cancel "
       "before it is taken for hung (or stopped by a signal), killed and started again. A "
       "working model process sends a token or a heartbeat (every 0.1 s) all along, also "
       "through a long encoder pass or prefill, and is left to reach its next token.",
       min=0.3, max=600.0, read_only=True),
    _P("model.max_restarts", int, 5,
       "Failed starts in a row of the model process before the supervisor gives up (model "
       "state `failed`, every question MODEL_ERROR until cleanup + configure).",
       min=0, max=100, read_only=True),
    _P("model.nice", int, 10,
       "CPU scheduling priority of the model process, as nice(1) adds to the node's: 0 = "
       "the node's own, 19 = the lowest. Above 0, camera ingestion (the node's process) gets "
       "the CPU first while a question is answered, and the answer takes what is left: on a "
       "machine with few cores the cameras keep their rate and answers take longer. The "
       "model process of the ROS node only (model.process); restarts get it too.",
       min=0, max=19, read_only=True),
    _P("model.num_threads", int, 0,
       "CPU threads torch may use for the model; 0 = torch's default. On small machines, "
       "leave a core to ingestion.", min=0, max=256, read_only=True),
    _P("model.max_pixels", int, 0,
       "Largest model input per frame, pixels (each side then rounded to 28 px); 0 = the "
       "processor's default. Bounds the video tokens and the spatial encoder's cost.",
       min=0, max=16_777_216, read_only=True, scope=_DERIVED),
    _P("model.video_fps", float, 2.0,
       "Frame rate the model is told for every clip, frames/s: it fixes the video tokens' "
       "temporal positions (second_per_grid_ts = 2 / fps). Not the cameras' rate: the "
       "selected frames are not evenly spaced in time, and the released checkpoints were "
       "evaluated with 2.0 (positions 0, 2, 4, ...); keep 2.0 to get their answers.",
       min=0.01, max=1000.0, read_only=True),
    # --- the vision encoders' backend (spatial_mllm_ros.model.backends)
    _P("model.vision_backend", str, "torch",
       "What runs the two vision encoders (Qwen2.5-VL's vision tower, VGGT's aggregator): "
       "torch, onnxruntime (CPU, or CUDA with onnxruntime-gpu) or tensorrt (GPU). Until an "
       "input size's engines are built and pass the parity check, torch runs it.",
       choices=("torch", "onnxruntime", "tensorrt"), read_only=True),
    _P("model.vision_precision", str, "fp32",
       "Precision of the TensorRT engines (fp32, fp16, bf16); onnxruntime runs float32.",
       choices=("fp32", "fp16", "bf16"), read_only=True),
    _P("model.vision_cache_dir", str, "",
       "Directory of the cached ONNX graphs and engines; '' = "
       "$XDG_CACHE_HOME/spatial_mllm_ros/engines (~/.cache by default).", read_only=True),
    _P("model.vision_sizes", str, "",
       "Model input sizes HxW (multiples of 28, comma separated, e.g. 476x644) whose "
       "engines are prepared as soon as the model is loaded; other sizes on first use.",
       read_only=True),
    _P("model.vision_parity_tolerance", float, 0.0,
       "Largest relative RMS error of an accelerated encoder against torch on the probe "
       "clip before torch is used instead; 0 = per precision (fp32 1e-3, fp16 2e-2, "
       "bf16 5e-2, the looser of the engine's and the model dtype's).",
       min=0.0, max=1.0, read_only=True),
    _P("model.vision_build_wait_s", float, 0.0,
       "How long an answer at an input size whose engines are still being prepared waits "
       "for them, seconds; 0 = torch answers meanwhile.", min=0.0, max=86400.0,
       read_only=True),
    _P("sampling.strategy", str, "coverage", "Default frame sampling strategy.",
       choices=("coverage", "scored", "uniform")),
    _P("sampling.frame_budget", int, 8, "Default number of frames given to the model.",
       min=1, max=64),
    _P("sampling.adaptive_budget", bool, False,
       "A question that names no frame budget gets the adaptive budget (8 frames, 16 when "
       "the buffer spans over 60 s, +4 for strong motion, capped by sampling.max_video_tokens) "
       "instead of sampling.frame_budget.", scope=_DERIVED),
    _P("sampling.max_video_tokens", int, 16384,
       "Token cap of the adaptive budget: video tokens = ceil(frames/2) * (H'/28) * (W'/28) at "
       "the model's input size (model.max_pixels).", min=64, max=1_000_000),
    _P("sampling.monocular_candidates", int, 32,
       "Monocular cameras (no buffered frame has depth and pose): frames whose geometry the "
       "spatial encoder's heads predict, in one batch, for coverage sampling (paper: up to "
       "128 candidates for 16 frames).", min=1, max=256),
    _P("sampling.max_frame_budget", int, 32,
       "Largest frame budget a question may ask for (more: INVALID_QUESTION).", min=1, max=256),
    _P("answer.max_new_tokens", int, 32, "Generation length of an answer, tokens.",
       min=1, max=4096),
    _P("answer.prompt_template", str, "auto",
       "Prompt wording: 'auto' = the family of the loaded checkpoint (v1.0 layout -> "
       "spatial-mllm-v1.0, with <answer> tags; v1.1 -> spatial-mllm-v1.1; a plain Qwen2.5-VL "
       "checkpoint -> lmms-eval, as VST and SenseNova-SI), as its authors evaluated it; "
       "'lmms-eval' = VSI-Bench's published form, to compare with other models; "
       "'spatialladder' = SpatialLadder-3B's thinking form (<think> and <answer> tags).",
       choices=("auto", "spatial-mllm-v1.1", "spatial-mllm-v1.0", "lmms-eval",
                "spatialladder")),
    _P("answer.decoding", str, "checkpoint",
       "Decoding: 'checkpoint' = the checkpoint's generation_config.json (released: greedy in "
       "effect, repetition penalty 1.05); 'reference' = that plus the authors' evaluation "
       "settings (do_sample, temperature 0.1, top_p 0.001); 'greedy' = plain greedy, no "
       "penalty.", choices=("checkpoint", "reference", "greedy"), read_only=True),
    _P("answer.repetition_penalty", float, 0.0,
       "Repetition penalty replacing the checkpoint's; 0 = keep the checkpoint's.",
       min=0.0, max=10.0, read_only=True),
    _P("answer.grounding", bool, True,
       "Run a second, short generation that asks for the boxes of the objects the question "
       "names (JSON bbox_2d form) on the most recent selected frame."),
    _P("answer.grounding_max_new_tokens", int, 64,
       "Generation length of the grounding pass, tokens.", min=1, max=4096),
    _P("answer.markers", bool, True,
       "Publish a visualization_msgs/MarkerArray of each answer's 3D boxes on ~/markers."),
    _P("queue.size", int, 4, "Question queue bound; a full queue answers BUSY.",
       min=1, max=1000, read_only=True),
    _P("queue.request_depth", int, 1000,
       "History depth (reliable, keep last) of the request readers of ~/ask, of the "
       "~/ask_stream goal, cancel and result services and of ~/question, and of the response "
       "writers: requests that may arrive at once before the node takes them (each is "
       "answered, BUSY beyond the queue). A burst larger than it loses requests in DDS, "
       "unanswered (rclpy's default is 10). At least queue.size + 1 is used.",
       min=1, max=100_000, read_only=True, scope=_NODE),
    _P("queue.timeout_s", float, 60.0, "Default question deadline, seconds.",
       min=0.001, max=3600.0),
    _P("question.max_chars", int, 1000,
       "Longest accepted question text, characters (longer: INVALID_QUESTION).",
       min=1, max=100_000),
    _P("question.max_option_chars", int, 2000,
       "Longest accepted options of one question, all together, characters (longer: "
       "INVALID_QUESTION at once). At most 26 options (A-Z).", min=1, max=100_000),
    _P("question.max_prompt_tokens", int, 8192,
       "Longest accepted prompt text, tokens of the checkpoint's tokenizer; the checkpoint's "
       "context, less the video tokens of the largest clip and the answer, bounds it too. "
       "Checked before a question is queued (INVALID_QUESTION at once).",
       min=16, max=1_000_000),
)

_BY_NAME = {p.name: p for p in SCHEMA}


def spec(name: str) -> ParamSpec:
    """The schema entry of ``name``.

    Raises:
        ParamError: ``name`` is not a parameter (the message names the closest one, if any).
    """
    try:
        return _BY_NAME[name]
    except KeyError as err:
        close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ParamError(f"unknown parameter {name!r}{hint}") from err


def defaults() -> dict[str, ParamValue]:
    """Every parameter's default, by dotted name."""
    return {p.name: p.default for p in SCHEMA}


def _typed_default(name: str, kind: type) -> Any:
    value = spec(name).default
    if type(value) is not kind:
        raise ParamError(f"{name} is a {type(value).__name__} parameter, not {kind.__name__}")
    return value


def default_int(name: str) -> int:
    """The schema default of the int parameter ``name``: the one home of every default, so the
    core's configuration types take their defaults from here."""
    return int(_typed_default(name, int))


def default_float(name: str) -> float:
    """The schema default of the float parameter ``name`` (see :func:`default_int`)."""
    return float(_typed_default(name, float))


def default_str(name: str) -> str:
    """The schema default of the string parameter ``name`` (see :func:`default_int`)."""
    return str(_typed_default(name, str))


def default_bool(name: str) -> bool:
    """The schema default of the bool parameter ``name`` (see :func:`default_int`)."""
    return bool(_typed_default(name, bool))


#: The field metadata key that names a config field's parameter (:func:`bound`).
PARAM_KEY = "param"
#: The field metadata key of the conversion from the parameter's value to the field's.
_CONVERT_KEY = "convert"


def seconds_ns(seconds: ParamValue) -> int:
    """A parameter in seconds as a field in integer nanoseconds (``bound(name, seconds_ns)``)."""
    return round(float(seconds) * 1e9)


def binding(name: str, convert: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The field metadata that binds a config dataclass field to the parameter ``name``, for a
    field without a default (a config only ever built from a full parameter set):
    ``checkpoint: str = field(metadata=binding("model.checkpoint"))``.

    Args:
        name: the schema parameter (raises :class:`ParamError` for an unknown one).
        convert: the field's value of the parameter's value (e.g. :func:`seconds_ns`);
            None = the value itself.
    """
    return {PARAM_KEY: spec(name).name, _CONVERT_KEY: convert}


def bound(name: str, convert: Callable[[Any], Any] | None = None) -> Any:
    """A config dataclass field bound to the parameter ``name`` (:func:`binding`) whose default
    is the schema's (converted): the config is built from parameter values by
    :func:`bound_values`, the one place a field meets its parameter's name."""
    default = spec(name).default
    return field(default=convert(default) if convert else default,
                 metadata=binding(name, convert))


def bound_params(cls: type) -> dict[str, str]:
    """Field name -> parameter name of the fields of dataclass ``cls`` made with :func:`bound`."""
    return {f.name: f.metadata[PARAM_KEY] for f in fields(cls) if PARAM_KEY in f.metadata}


def bound_values(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of dataclass ``cls`` from parameter ``values``: each bound field
    gets its parameter's value, as the parameter's type, converted as the field says."""
    out: dict[str, Any] = {}
    for f in fields(cls):
        if PARAM_KEY in f.metadata:
            value = spec(f.metadata[PARAM_KEY]).type(values[f.metadata[PARAM_KEY]])
            convert = f.metadata.get(_CONVERT_KEY)
            out[f.name] = convert(value) if convert else value
    return out


def validate(values: Mapping[str, Any], *, partial: bool = False) -> dict[str, ParamValue]:
    """Check a dict of dotted-name parameters against the schema.

    Unknown names, wrong types and out-of-range values raise :class:`ParamError` (all problems
    listed in one line); a full set is then checked against the cross-field :data:`RULES`.
    Returns the full parameter set (defaults filled in), or only the given names when
    ``partial``. The camera entries (``cameras``, ``camera.<name>.<field>``; not in
    :data:`SCHEMA`, since their names depend on ``cameras``) are checked by
    :func:`spatial_mllm_ros.camera_params.check` (each problem names its camera) and returned
    only when given, typed as it types them (``cameras`` and ``.extrinsic`` as tuples).
    """
    out: dict[str, ParamValue] = {} if partial else defaults()
    cameras, problems = camera_params.check(
        {k: v for k, v in values.items() if camera_params.is_camera_param(k)})
    out.update(cameras)
    for name, value in values.items():
        if camera_params.is_camera_param(name):
            continue
        try:
            out[name] = spec(name).check(value)
        except ParamError as err:
            problems.append(str(err))
    if not problems and not partial:
        problems = [rule.problem(out) for rule in RULES if not rule.holds(out)]
    if len(problems) == 1:
        raise ParamError(problems[0])
    if problems:
        raise ParamError("invalid parameters: " + "; ".join(problems))
    return out


@dataclass(frozen=True)
class CrossRule:
    """A rule between two parameters of one parameter set: ``low`` <= ``high``.

    Attributes:
        low, high: the dotted names.
        why: what breaks when the rule does not hold.
    """

    low: str
    high: str
    why: str

    def holds(self, values: Mapping[str, ParamValue]) -> bool:
        """Whether the full parameter set ``values`` keeps the rule."""
        return float(values[self.low]) <= float(values[self.high])

    def problem(self, values: Mapping[str, ParamValue]) -> str:
        """One line: the values that break the rule and why it matters."""
        return (f"{self.low} {values[self.low]!r} is above {self.high} "
                f"{values[self.high]!r} ({self.why})")


#: The cross-field rules of a full parameter set, checked by :func:`validate` (and so by
#: ``Settings.from_values``): at start-up of the node and of every command, and on every
#: run-time parameter change of the node (the change is refused with the rule's line).
RULES: tuple[CrossRule, ...] = (
    CrossRule("sampling.frame_budget", "sampling.max_frame_budget",
              "every question without its own budget would be INVALID_QUESTION; raise "
              "sampling.max_frame_budget first"),
)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def load_yaml(path: str | Path, node_name: str = NODE_NAME) -> dict[str, ParamValue]:
    """Load and validate a ROS params file (``<node>: ros__parameters: {...}``).

    The node key may be ``node_name``, ``/node_name`` or the wildcard ``/**``; nested mappings
    and dotted keys are both accepted.  Returns the full, validated parameter set.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ParamError(f"{path}: cannot read parameters: {err}") from err
    if not isinstance(doc, Mapping):
        raise ParamError(f"{path}: expected a mapping at the top level")
    section = None
    for key in (node_name, "/" + node_name, "/**"):
        if key in doc:
            section = doc[key]
            break
    if not isinstance(section, Mapping) or not isinstance(
        section.get("ros__parameters"), Mapping
    ):
        raise ParamError(f"{path}: no '{node_name}: ros__parameters:' mapping")
    try:
        return validate(_flatten(section["ros__parameters"]))
    except ParamError as err:
        raise ParamError(f"{path}: {err}") from err


def config_dir() -> Path:
    """The ``config/`` directory: the source checkout's, else the installed share directory."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "config"]
    if len(here.parents) > 3:  # <prefix>/lib/pythonX.Y/site-packages/spatial_mllm_ros
        candidates.append(here.parents[3] / "share" / "spatial_mllm_ros" / "config")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return here.parent / "config"


def load_profile(profile: str) -> dict[str, ParamValue]:
    """Load ``config/<profile>.yaml`` (or a path to a YAML file)."""
    path = Path(profile)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir() / f"{profile}.yaml"
    return load_yaml(path)
