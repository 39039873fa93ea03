"""The ``spatial_mllm`` lifecycle node: camera streams in, spatial answers and boxes out.

Lifecycle (rclpy.lifecycle; services under ``/spatial_mllm/``, e.g. ``change_state``):
    * configure: validates the parameters (``spatial_mllm_ros.params.SCHEMA``), creates the
      space-aware frame buffer and the ingestion pipeline, and loads the model (a load
      failure leaves the node up, answering MODEL_ERROR with the cause);
    * activate: creates the camera subscriptions, the pairing poll timer, the ``~/ask``
      service, the ``~/question`` subscription, ``~/answer`` and ``~/markers``, and starts
      the answering worker;
    * deactivate: destroys them (queued questions are answered MODEL_ERROR) and flushes
      frames waiting for partners into the buffer;
    * cleanup: frees the buffer, the ingestion pipeline and the model.
    Parameter ``autostart`` (default true) configures and activates at start-up, because the
    ``ros2 lifecycle`` CLI and nav2's lifecycle manager may be absent.

Threads: the node's executor (:mod:`.node_main`, parameter ``executor.threads``: 1 =
single-threaded, the default, which keeps up with 30 Hz RGB-D and 100 Hz poses where rclpy's
MultiThreadedExecutor fell seconds behind) runs the camera, pose, timer, lifecycle and
parameter callbacks; with more threads, camera callbacks run in one MutuallyExclusive callback
group per topic and timers in their own. Questions never run there: the answering worker,
``~/ask`` and ``~/ask_stream`` have threads and executors of their own, so answering never
blocks ingestion.  Callbacks only convert, pair and buffer; no exception escapes them:
rejections are counted by reason and logged through the node logger with
``throttle_duration_sec``.

Conversion: every incoming message goes through ``spatial_mllm_ros.core.convert`` (the same
code the offline bag evaluator uses); ``cv_bridge`` is not needed.  A tf2 lookup of the
camera pose is used where ``tf2_ros`` is importable and ``tf.enabled`` is set; otherwise
(stated in the log) poses come from the pose/odometry topics only.

Diagnostics: a DiagnosticArray on ``/diagnostics`` every ``diagnostics.period_s`` in every
state (see ``spatial_mllm_ros.ros.diagnostics``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import (
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import Image

from spatial_mllm_ros import params as P
from spatial_mllm_ros.answering.handle import ModelHandle
from spatial_mllm_ros.answering.pipeline import AnsweringPipeline
from spatial_mllm_ros.core.errors import FrameRejected, RejectReason
from spatial_mllm_ros.core.ingest import Ingestor, IngestResult, PoseLookup, StreamHealth
from spatial_mllm_ros.core.memory import LARGE_REJECTIONS, release_heap, release_model_memory
from spatial_mllm_ros.model.fit import check_configuration
from spatial_mllm_ros.model.spec import load_prompt_limits
from spatial_mllm_ros.ros.answer_server import AnswerServer
from spatial_mllm_ros.ros.conversions import message_class, serialized_image_size
from spatial_mllm_ros.ros.diagnostics import (
    RateTracker,
    answer_status,
    build_diagnostics,
    vision_status,
)
from spatial_mllm_ros.ros.parameters import current_values, declare_schema
from spatial_mllm_ros.ros.qos import camera_qos, reliable_qos
from spatial_mllm_ros.ros.startup import lifecycle_status
from spatial_mllm_ros.ros.tf_poses import TfPoses, tf2_available
from spatial_mllm_ros.sampling.online import SpatialFrameBuffer
from spatial_mllm_ros.settings import Settings, load_answerer

__all__ = ["NODE_NAME", "SpatialMllmNode"]

NODE_NAME = P.NODE_NAME

#: How long a model process may take to stop at cleanup before it is killed (seconds).
MODEL_CLOSE_TIMEOUT_S = 3.0

#: Poses (100 Hz and more) and camera info are small: their subscriptions keep at least this
#: many messages, so a busy interpreter that takes them late loses none (``qos.depth`` bounds
#: the image topics, whose messages are megabytes).
SMALL_MESSAGE_DEPTH = 1000
SMALL_MESSAGE_TOPICS = frozenset({"camera_info", "pose", "odometry"})

#: Image topics taken serialized (rclpy ``raw=True``): an oversized image is refused from the
#: size in its bytes, before rclpy copies its pixels into a Python message (which left about
#: 320 MB of node RSS behind per rejected 8192x8192 rgb8 + depth pair); the others are
#: deserialised in the callback.
RAW_IMAGE_TOPICS = frozenset({"colour", "depth"})

#: rmw_fastrtps keeps the Fast DDS XML profile's history memory policy only with this set
#: (else every reader gets PREALLOCATED_WITH_REALLOC, whose payload pool never shrinks): the
#: shipped profile's DYNAMIC reader policy returns a rejected huge image's memory.
XML_QOS_ENV = "RMW_FASTRTPS_USE_QOS_FROM_XML"


def use_xml_memory_policy() -> None:
    """Let the Fast DDS XML decide the readers' history memory policy (set ``XML_QOS_ENV`` to
    1 unless the environment sets it). Call before ``rclpy.init``."""
    os.environ.setdefault(XML_QOS_ENV, "1")

#: topic kind -> message class (the topic names are ``Settings.node.topics``)
CAMERA_TOPICS: dict[str, type] = {t.kind: message_class(t.msg_type) for t in P.TOPIC_KINDS}


class SpatialMllmNode(LifecycleNode):
    """Lifecycle node ``spatial_mllm``: ingests an RGB-D stream into a rolling buffer."""

    def __init__(self, *, stopping: threading.Event | None = None, **kwargs: Any) -> None:
        """``stopping``: set when the process is to end (SIGINT/SIGTERM); a model load in
        progress then stops at once. Raises ParamError for a start-up parameter value the
        schema refuses (:func:`.parameters.declare_schema`)."""
        super().__init__(NODE_NAME, **kwargs)
        declare_schema(self)
        self.stopping = stopping if stopping is not None else threading.Event()
        #: set by a lifecycle shutdown (from any participant): the process then ends
        self.finalized = threading.Event()
        self._lifecycle_error = ""  # why the last transition failed ("" = none)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._camera_groups = {k: MutuallyExclusiveCallbackGroup() for k in CAMERA_TOPICS}
        self._subs: list[Subscription[Any]] = []
        self._poll_timer: Timer | None = None
        self.store: SpatialFrameBuffer | None = None
        self.ingestor: Ingestor | None = None
        self.answers: AnswerServer | None = None
        self._engine: ModelHandle | None = None
        self.settings: Settings | None = None
        self._state_label = "unconfigured"
        self._callback_errors = 0
        self._rates = RateTracker()
        self._last_rejected = 0
        self._tf: TfPoses | None = None

        # Diagnostics are published in every state (a plain publisher, not a lifecycle one).
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", reliable_qos(10))
        period = float(self.get_parameter("diagnostics.period_s").value)
        self._diag_timer = self.create_timer(
            period, self._publish_diagnostics, callback_group=self._timer_group
        )

    # ------------------------------------------------------------ parameters
    def _on_set_parameters(self, parameters: list[Parameter[Any]]) -> SetParametersResult:
        """Accept a change only if the whole parameter set stays valid (read-only ones are
        refused by rclpy itself, from their descriptors)."""
        try:
            current = current_values(self)
            Settings.from_values({**current, **{p.name: p.value for p in parameters}})
        except P.ParamError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter[Any]]) -> None:
        """Apply accepted changes at once: every writable parameter configures answering
        (``sampling.*``, ``answer.*`` but decoding, ``queue.timeout_s``, ``question.max_chars``),
        so the next question uses them; the others are read-only."""
        if self.settings is None:
            return  # read at the next configure
        try:
            self.settings = Settings.from_values(self.read_parameters())
            if self.answers is not None:
                self.answers.reconfigure(self.settings.pipeline, self.settings.node.markers)
        except Exception as err:  # a parameter change never takes the node down
            self.get_logger().error(f"applying parameters failed: {err}")
            return
        names = ", ".join(p.name for p in parameters)
        self.get_logger().info(f"parameters applied: {names}")

    def read_parameters(self) -> dict[str, P.ParamValue]:
        """Every schema parameter's current value and the camera entries, validated."""
        return P.validate(current_values(self))

    def _pose_lookup(self, settings: Settings) -> PoseLookup | None:
        if not settings.node.tf_enabled:
            return None
        if not tf2_available():
            self.get_logger().warning(
                "tf.enabled is set but tf2_ros is not importable: tf pose lookup skipped; "
                "poses come from topics.pose / topics.odometry only"
            )
            return None
        self._tf = TfPoses(self, settings.node.tf_world_frame, settings.ingest.limits)
        self.get_logger().info(f"tf pose lookup enabled: {self._tf.world_frame} <- image frame")
        return self._tf.as_lookup()

    # ------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, create the space-aware buffer and ingestion, load the model.

        A model that fails to load does not fail the transition: the node ingests and
        answers MODEL_ERROR with the cause, so a robot never loses its camera buffer to a
        wrong checkpoint path.  A model that cannot fit ``model.memory_budget_gb``
        (:mod:`spatial_mllm_ros.model.fit`) fails it, with what to lower.
        """
        try:
            cfg = Settings.from_values(self.read_parameters())
            # a model that cannot fit is refused now, not out of memory at the first question
            problem = ("" if cfg.remote.endpoint
                       else check_configuration(cfg.engine, cfg.values).problem)
            if problem:
                raise ValueError(problem)
            self.settings = cfg
            self.store = SpatialFrameBuffer(cfg.buffer)
            self.ingestor = Ingestor(self.store, cfg.ingest, self._pose_lookup(cfg))
        except Exception as err:
            self._lifecycle_error = f"configure failed: {err}"
            self.get_logger().error(self._lifecycle_error)
            self.store = self.ingestor = None
            return TransitionCallbackReturn.FAILURE
        t0 = time.monotonic()
        self.get_logger().info(f"loading the model ({cfg.engine.description})")
        self._engine, model_error = load_answerer(cfg, abort=self.stopping,
                                                  client=self.get_fully_qualified_name())
        if self.stopping.is_set():  # SIGINT/SIGTERM during the load: not an error
            self.get_logger().info("model loading stopped: the node is shutting down")
            self.store = self.ingestor = None
            return TransitionCallbackReturn.FAILURE
        pipeline = None
        if self._engine is not None:
            limits, why = load_prompt_limits(cfg.engine)
            if limits is None:
                self.get_logger().warning(f"{why}; prompts are bounded by their UTF-8 bytes")
            pipeline = AnsweringPipeline(self._engine, cfg.pipeline, limits=limits)
            self.get_logger().info(
                f"model loaded in {time.monotonic() - t0:.1f} s "
                f"({cfg.engine.description}, {cfg.engine.device}, {cfg.engine.dtype}, "
                f"quantization {cfg.engine.quantization}"
                + (f", server {cfg.remote.endpoint})" if cfg.remote.endpoint else
                   f", model process pid {self._engine.status().pid})"
                   if cfg.node.model_process else ")")
            )
        else:
            self.get_logger().error(f"{model_error}; questions will be answered MODEL_ERROR")
        self.answers = AnswerServer(
            self, self.store, pipeline, model_error,
            queue_size=cfg.node.queue_size, markers=cfg.node.markers,
            request_depth=int(cfg.values["queue.request_depth"]),
        )
        self._state_label = "inactive"
        self._lifecycle_error = ""
        self.get_logger().info(
            f"configured: buffer {cfg.buffer.max_frames} frames / {cfg.buffer.max_bytes} B"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.settings is None:
            return TransitionCallbackReturn.FAILURE
        node = self.settings.node
        try:
            for kind, msg_type in CAMERA_TOPICS.items():
                topic = node.topics[kind]
                if not topic:
                    continue
                depth = node.qos_depth
                if kind in SMALL_MESSAGE_TOPICS:
                    depth = max(depth, SMALL_MESSAGE_DEPTH)
                self._subs.append(
                    self.create_subscription(
                        msg_type, topic, self._camera_callback(kind),
                        camera_qos(node.qos_reliability, depth),
                        callback_group=self._camera_groups[kind],
                        raw=kind in RAW_IMAGE_TOPICS,
                    )
                )
            self._poll_timer = self.create_timer(
                node.poll_period_s, self._poll, callback_group=self._timer_group
            )
            if self.answers is not None:
                self.answers.activate()
        except Exception as err:
            self._lifecycle_error = f"activate failed: {err}"
            self.get_logger().error(self._lifecycle_error)
            self._destroy_subscriptions()
            return TransitionCallbackReturn.FAILURE
        self._state_label = "active"
        names = ", ".join(s.topic_name for s in self._subs)
        self.get_logger().info(f"active: subscribed to {names}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_subscriptions()
        if self.answers is not None:
            self.answers.deactivate()
        if self.ingestor is not None:
            self.ingestor.flush()
        self._state_label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the buffer, ingestion and model, returning their memory."""
        self._destroy_subscriptions()
        if self.answers is not None:
            self.answers.deactivate()  # idempotent: every question has had its answer
        self.answers = None
        self.ingestor = None
        self.store = None
        if self._engine is not None:  # a model process: ending it returns all its memory
            self._engine.close(timeout_s=MODEL_CLOSE_TIMEOUT_S)
            self._engine = None
            release_model_memory()
        self._tf = None
        self._state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def stop_everything(self, reason: str) -> None:
        """At process exit (SIGINT/SIGTERM): every question still queued or being answered gets
        its one answer (MODEL_ERROR ``reason``) while the context is up, then the model
        process ends; bounded in time even when the model process is stopped."""
        self._destroy_subscriptions()
        if self.answers is not None:
            self.answers.deactivate()
        self.on_cleanup(None)  # type: ignore[arg-type]

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.answers is not None:
            self.answers.deactivate()
        self.on_cleanup(state)
        self._state_label = "finalized"
        self.get_logger().info("lifecycle shutdown: finalized; the process ends")
        self.finalized.set()  # node_main ends the process (exit 0)
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"lifecycle error in state {state.label}; cleaning up")
        return self.on_cleanup(state)

    def _destroy_subscriptions(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs.clear()
        if self._poll_timer is not None:
            self.destroy_timer(self._poll_timer)
            self._poll_timer = None

    def autostart(self) -> bool:
        """Configure and activate when the ``autostart`` parameter is true; True if active."""
        if not self.get_parameter("autostart").value:
            self.get_logger().info("autostart is false: waiting for lifecycle transitions")
            return False
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return bool(self.trigger_activate() == TransitionCallbackReturn.SUCCESS)

    # ------------------------------------------------------------- callbacks
    def _camera_callback(self, kind: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            try:
                ingestor = self.ingestor
                if ingestor is None:
                    return
                if isinstance(msg, bytes):  # an image of RAW_IMAGE_TOPICS, serialized
                    result = self._ingest_serialized(ingestor, kind, msg)
                else:
                    result = ingestor.ingest(kind, msg, time.monotonic_ns(), self._receive_ns())
                for event in ingestor.take_events():  # each new time base, logged once
                    self.get_logger().warning(event)
                if result.rejected is not None and result.rejected.reason in LARGE_REJECTIONS:
                    release_heap()  # a rejected multi-MB message leaves no memory behind
                if result.rejected is not None:
                    self.get_logger().warning(
                        f"{kind}: rejected {result.rejected}", throttle_duration_sec=2.0
                    )
                elif result.error is not None:
                    self.get_logger().error(
                        f"{kind}: unexpected message error: {result.error}",
                        throttle_duration_sec=2.0,
                    )
            except Exception as err:  # never let a message kill the node
                self._callback_errors += 1
                self.get_logger().error(
                    f"{kind}: callback error: {type(err).__name__}: {err}",
                    throttle_duration_sec=2.0,
                )

        return callback

    def _ingest_serialized(self, ingestor: Ingestor, kind: str, data: bytes) -> IngestResult:
        """A serialized ``sensor_msgs/Image``: refused as ``oversized_image`` from the size in
        its bytes (never deserialised), else deserialised and ingested."""
        size = serialized_image_size(data)
        limit = ingestor.config.limits.max_pixels
        if size is not None and size.height * size.width > limit:
            pixels = size.height * size.width
            return ingestor.reject(kind, FrameRejected(
                RejectReason.OVERSIZED_IMAGE,
                f"image is {size.width}x{size.height} = {pixels} px > max_pixels {limit} "
                "(refused from its serialized size)"), time.monotonic_ns())
        msg = deserialize_message(data, Image)
        return ingestor.ingest(kind, msg, time.monotonic_ns(), self._receive_ns())

    def _receive_ns(self) -> int | None:
        """ROS time now (sim time under ``use_sim_time``), for the future-stamp check; None
        before the sim clock has started (it reads 0 until the first ``/clock``)."""
        now = self.get_clock().now().nanoseconds
        return now if now > 0 else None

    def _poll(self) -> None:
        try:
            ingestor = self.ingestor
            if ingestor is not None:
                ingestor.poll(time.monotonic_ns())
        except Exception as err:
            self._callback_errors += 1
            self.get_logger().error(f"poll error: {err}", throttle_duration_sec=2.0)

    def _stream_health(self, ingestor: Ingestor | None) -> list[StreamHealth]:
        """Each configured camera topic's health while active: its publisher count (a fact
        of the ROS graph, passed into the pure core) and its silence."""
        settings = self.settings
        if ingestor is None or settings is None or self._state_label != "active":
            return []
        topics = {k: t for k, t in settings.node.topics.items() if t}
        publishers = {k: self.count_publishers(t) for k, t in topics.items()}
        period_s = float(settings.node.diagnostics_period_s)
        silent_ns = round(period_s * int(settings.values["diagnostics.silent_periods"]) * 1e9)
        return ingestor.stream_health(publishers, time.monotonic_ns(), silent_ns)

    def _publish_diagnostics(self) -> None:
        try:
            ingestor = self.ingestor
            counters = ingestor.counters() if ingestor is not None else {}
            received = {
                k[3:-9]: v for k, v in counters.items()
                if k.startswith("in.") and k.endswith(".received")
            }
            rates = self._rates.update(received, time.monotonic_ns())
            rejected = sum(v for k, v in counters.items() if ".rejected." in k)
            msg = build_diagnostics(
                counters, rates,
                stamp_ns=self.get_clock().now().nanoseconds,
                hardware_id=self.get_fully_qualified_name(),
                state=self._state_label,
                extra={"pid": os.getpid(), "callback_errors": self._callback_errors},
                rejected_last_period=max(rejected - self._last_rejected, 0),
                streams=self._stream_health(ingestor),
            )
            self._last_rejected = rejected
            answers = self.answers
            if answers is not None:
                msg.status.append(answer_status({**answers.stats(), "pid": os.getpid()},
                                                hardware_id=self.get_fully_qualified_name()))
            msg.status.append(lifecycle_status(self._state_label, self._lifecycle_error,
                                               self.get_fully_qualified_name()))
            engine = self._engine
            vision = engine.status().vision if engine is not None else None
            if vision is not None:  # the model process may not have reported it yet
                msg.status.append(vision_status(vision,
                                                hardware_id=self.get_fully_qualified_name()))
            self._diag_pub.publish(msg)
        except Exception as err:
            self.get_logger().error(f"diagnostics error: {err}", throttle_duration_sec=5.0)
