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

import dataclasses
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
from spatial_mllm_ros.camera_params import DEFAULT_CAMERA, CameraSettings
from spatial_mllm_ros.core.errors import FrameRejected, RejectReason
from spatial_mllm_ros.core.ingest import IngestResult, PoseLookup, StreamHealth
from spatial_mllm_ros.core.memory import LARGE_REJECTIONS, release_heap, release_model_memory
from spatial_mllm_ros.core.multi_ingest import CameraFeed, MultiIngestor
from spatial_mllm_ros.core.topic_kinds import BY_KIND
from spatial_mllm_ros.model.fit import check_configuration
from spatial_mllm_ros.model.spec import load_prompt_limits
from spatial_mllm_ros.ros.answer_server import AnswerServer
from spatial_mllm_ros.ros.conversions import (
    ImageSize,
    message_class,
    read_serialized_image,
    serialized_image_size,
)
from spatial_mllm_ros.ros.diagnostics import (
    RateTracker,
    answer_status,
    build_diagnostics,
    vision_status,
)
from spatial_mllm_ros.ros.parameters import current_values, declare_schema
from spatial_mllm_ros.ros.qos import camera_qos, reliable_qos
from spatial_mllm_ros.ros.startup import lifecycle_status
from spatial_mllm_ros.ros.tf_poses import TfPoses, fixed_frame, tf2_available
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

#: the per-camera diagnostics statuses are named this and the camera's name
CAMERA_STATUS_PREFIX = "spatial_mllm: camera "


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
        #: topic -> its callback group (one per topic, for executor.threads > 1)
        self._camera_groups: dict[str, MutuallyExclusiveCallbackGroup] = {}
        self._subs: list[Subscription[Any]] = []
        self._poll_timer: Timer | None = None
        self.store: SpatialFrameBuffer | None = None
        #: each camera's ingestion (one camera of topics.*, or the named ``cameras``)
        self.ingestor: MultiIngestor | None = None
        self.answers: AnswerServer | None = None
        self._engine: ModelHandle | None = None
        self.settings: Settings | None = None
        self._state_label = "unconfigured"
        self._callback_errors = 0
        self._rates = RateTracker()
        self._camera_rates: dict[str, RateTracker] = {}  # camera -> its topics' rates
        self._last_rejected = 0
        self._tf: TfPoses | None = None
        #: the answer server last deactivated (and not activated since): deactivated once
        self._deactivated: AnswerServer | None = None

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
        if not any(c.tf_lookup for c in settings.cameras):
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

    def _feeds(self, cfg: Settings) -> list[CameraFeed]:
        """Each camera's ingestion: the one camera of ``topics.*`` as before, or each named
        camera paired on its own (its own partners, latched info, clock rules, counters)."""
        lookup = self._pose_lookup(cfg)
        if [c.name for c in cfg.cameras] in ([DEFAULT_CAMERA], []):
            cam = cfg.cameras[0] if cfg.cameras else CameraSettings(DEFAULT_CAMERA,
                                                                     cfg.node.topics)
            return [CameraFeed(cam, cfg.ingest, cfg.node.topics, lookup)]
        return [CameraFeed(c, cfg.camera_ingest(c), c.topics,
                           fixed_frame(lookup, c.tf_frame) if c.tf_lookup else None)
                for c in cfg.cameras]

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
            self.ingestor = MultiIngestor(self.store, self._feeds(cfg))
            self._camera_rates = {}
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
            request_depth=int(cfg.values["queue.request_depth"]), model=self._engine,
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
        routes = self.ingestor.routes.values() if self.ingestor is not None else ()
        try:
            for route in routes:  # one subscription per topic, for every camera reading it
                kind = route.kind
                depth = node.qos_depth
                if kind in SMALL_MESSAGE_TOPICS:
                    depth = max(depth, SMALL_MESSAGE_DEPTH)
                self._subs.append(
                    self.create_subscription(
                        message_class(BY_KIND[kind].msg_type), route.topic,
                        self._camera_callback(route.topic),
                        camera_qos(node.qos_reliability, depth),
                        callback_group=self._camera_groups.setdefault(
                            route.topic, MutuallyExclusiveCallbackGroup()),
                        raw=kind in RAW_IMAGE_TOPICS,
                    )
                )
            self._poll_timer = self.create_timer(
                node.poll_period_s, self._poll, callback_group=self._timer_group
            )
            if self.answers is not None:
                self.answers.activate()
                self._deactivated = None
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
        self._stop_answering()
        if self.ingestor is not None:
            self.ingestor.flush()
        self._state_label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the buffer, ingestion and model, returning their memory."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def stop_everything(self, reason: str) -> None:
        """At process exit (SIGINT/SIGTERM): every question still queued or being answered gets
        its one answer (MODEL_ERROR ``reason``) while the context is up, then the model
        process ends; bounded in time even when the model process is stopped."""
        self._release()

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state_label = "finalized"
        self.get_logger().info("lifecycle shutdown: finalized; the process ends")
        self.finalized.set()  # node_main ends the process (exit 0)
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"lifecycle error in state {state.label}; cleaning up")
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_answering(self) -> None:
        """No more frames or questions: the subscriptions and the poll timer go, and every
        question still queued or being answered gets its one answer (the answer server is
        deactivated once per activation)."""
        self._destroy_subscriptions()
        answers = self.answers
        if answers is not None and answers is not self._deactivated:
            answers.deactivate()
            self._deactivated = answers

    def _release(self) -> None:
        """The one release path of cleanup, shutdown, error and the signal path: stop
        answering, then drop the buffer, ingestion and model, returning their memory."""
        self._stop_answering()
        self.answers = None
        self.ingestor = None
        self.store = None
        if self._engine is not None:  # a model process: ending it returns all its memory
            self._engine.close(timeout_s=MODEL_CLOSE_TIMEOUT_S)
            self._engine = None
            release_model_memory()
        self._tf = None
        self._state_label = "unconfigured"

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
    def _camera_callback(self, topic: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            what = topic
            try:
                ingestor = self.ingestor
                if ingestor is None:
                    return
                kind = ingestor.routes[topic].kind
                if isinstance(msg, bytes):  # an image of RAW_IMAGE_TOPICS, serialized
                    results = self._ingest_serialized(ingestor, topic, msg)
                else:
                    results = ingestor.ingest(topic, msg, time.monotonic_ns(),
                                              self._receive_ns())
                for event in ingestor.take_events():  # each new time base, logged once
                    self.get_logger().warning(event)
                for camera, result in results:
                    what = f"{camera} {kind}" if ingestor.several else kind
                    self._log_result(what, result)
            except Exception as err:  # never let a message kill the node
                self._callback_errors += 1
                self.get_logger().error(
                    f"{what}: callback error: {type(err).__name__}: {err}",
                    throttle_duration_sec=2.0,
                )

        return callback

    def _log_result(self, what: str, result: IngestResult) -> None:
        """A message's rejection or unexpected error, logged (rate-limited)."""
        if result.rejected is not None and result.rejected.reason in LARGE_REJECTIONS:
            release_heap()  # a rejected multi-MB message leaves no memory behind
        if result.rejected is not None:
            self.get_logger().warning(
                f"{what}: rejected {result.rejected}", throttle_duration_sec=2.0
            )
        elif result.error is not None:
            self.get_logger().error(
                f"{what}: unexpected message error: {result.error}",
                throttle_duration_sec=2.0,
            )

    def _ingest_serialized(self, ingestor: MultiIngestor, topic: str, data: bytes
                           ) -> list[tuple[str, IngestResult]]:
        """A serialized ``sensor_msgs/Image``: refused as ``oversized_image`` from the size in
        its bytes, else ingested as read from its bytes (:func:`read_serialized_image`, the
        pixels a view of them); bytes that do not read as an image are deserialised by rclpy
        and judged by the conversion."""
        image = read_serialized_image(data)  # read once: its size, then its pixels
        size = (ImageSize(image.height, image.width) if image is not None
                else serialized_image_size(data))
        limit = ingestor.config_of(topic).limits.max_pixels
        if size is not None and size.height * size.width > limit:
            pixels = size.height * size.width
            return ingestor.reject(topic, FrameRejected(
                RejectReason.OVERSIZED_IMAGE,
                f"image is {size.width}x{size.height} = {pixels} px > max_pixels {limit} "
                "(refused from its serialized size)"), time.monotonic_ns())
        msg = image if image is not None else deserialize_message(data, Image)
        return ingestor.ingest(topic, msg, time.monotonic_ns(), self._receive_ns())

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

    def _stream_health(self, ingestor: MultiIngestor | None) -> dict[str, list[StreamHealth]]:
        """Each camera's configured topics' health while active: its publisher count (a fact
        of the ROS graph, passed into the pure core) and its silence."""
        settings = self.settings
        if ingestor is None or settings is None or self._state_label != "active":
            return {}
        publishers = {t: self.count_publishers(t) for t in ingestor.routes}
        period_s = float(settings.node.diagnostics_period_s)
        silent_ns = round(period_s * int(settings.values["diagnostics.silent_periods"]) * 1e9)
        return ingestor.stream_health(publishers, time.monotonic_ns(), silent_ns)

    def _camera_statuses(self, ingestor: MultiIngestor,
                         health: dict[str, list[StreamHealth]], now_ns: int) -> list[Any]:
        """One status per named camera, ``spatial_mllm: camera <name>``: its own counters
        (received, rejected by reason, frames and what they lacked), rates and topics'
        health, as the ingest status reports the node's, and its latest frame's pose in the
        world (``pose.*``: a mounted camera's is base pose x extrinsic)."""
        out = []
        poses = ingestor.last_poses()
        for cam, counts in ingestor.camera_counts().items():
            last = poses.get(cam)
            rates = self._camera_rates.setdefault(cam, RateTracker()).update(
                counts.received(), now_ns)
            status = build_diagnostics(
                counts, rates, stamp_ns=0, hardware_id=self.get_fully_qualified_name(),
                state=self._state_label, streams=health.get(cam, []),
                rejected_last_period=0, extra=None if last is None else last.values()).status[0]
            status.name = f"{CAMERA_STATUS_PREFIX}{cam}"
            status.message = f"camera {cam}: {status.message}"  # a WARN names its camera
            out.append(status)
        return out

    def _publish_diagnostics(self) -> None:
        try:
            ingestor = self.ingestor
            counters = ingestor.counts() if ingestor is not None else None
            now_ns = time.monotonic_ns()
            rates = self._rates.update(counters.received() if counters is not None else {}, now_ns)
            rejected = counters.rejected() if counters is not None else 0
            health = self._stream_health(ingestor)
            several = ingestor is not None and ingestor.several
            streams = [dataclasses.replace(h, kind=f"{cam}.{h.kind}") if several else h
                       for cam, hs in health.items() for h in hs]
            msg = build_diagnostics(
                counters, rates,
                stamp_ns=self.get_clock().now().nanoseconds,
                hardware_id=self.get_fully_qualified_name(),
                state=self._state_label,
                extra={"pid": os.getpid(), "callback_errors": self._callback_errors},
                rejected_last_period=max(rejected - self._last_rejected, 0),
                streams=streams,
            )
            self._last_rejected = rejected
            if ingestor is not None and several:
                msg.status += self._camera_statuses(ingestor, health, now_ns)
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
