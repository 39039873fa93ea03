"""The ROS edge of answering: messages <-> answering types, converted once here.

Incoming: ``AskSpatial.Request`` and ``SpatialQuestion`` -> :class:`QuestionRequest`.
Outgoing: :class:`AnswerRecord` -> ``SpatialAnswer`` and a ``MarkerArray`` of the answer's 3D
boxes for RViz (one CUBE per box with a position, sized by its approximate metric extent, and
a TEXT label above it).
Received (clients): ``SpatialAnswer`` -> :class:`AnswerRecord` (:func:`record_from_msg`), so
that an answer printed by a client has the same JSON form (``AnswerRecord.to_json``) as one
printed offline.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from spatial_mllm_ros.answering.types import (
    STAGES,
    AnswerRecord,
    AnswerStatus,
    PlacedBox,
    QuestionRequest,
)
from spatial_mllm_ros.msg import ObjectBox, SpatialAnswer, StageTimings
from spatial_mllm_ros.ros.conversions import header, ns_to_time
from spatial_mllm_ros.vsibench.boxes import Box2D

MARKER_NAMESPACE = "spatial_mllm_boxes"


def request_from_msg(msg: Any, query_id: int, received_s: float) -> QuestionRequest:
    """A :class:`QuestionRequest` from an ``AskSpatial.Request`` or a ``SpatialQuestion``
    (both carry question, question_type, options, frame_budget, sampling_strategy, timeout_s).

    A NaN or negative timeout means "use the default" (0)."""
    timeout = float(msg.timeout_s)
    return QuestionRequest(
        query_id=query_id,
        question=str(msg.question),
        question_type=str(msg.question_type),
        options=tuple(str(o) for o in msg.options),
        frame_budget=int(msg.frame_budget),
        strategy=str(msg.sampling_strategy),
        timeout_s=timeout if math.isfinite(timeout) and timeout > 0 else 0.0,
        received_s=received_s,
    )


def answer_msg(record: AnswerRecord, now_ns: int) -> SpatialAnswer:
    """``SpatialAnswer`` for ``record``, stamped ``now_ns``."""
    msg = SpatialAnswer()
    msg.header = header(now_ns, record.world_frame_id)
    msg.query_id = record.query_id
    msg.question = record.question
    msg.question_type = record.question_type
    msg.answer = record.answer
    msg.numeric_value = float(record.numeric_value)
    msg.option = record.option
    msg.boxes = [_object_box(b) for b in record.boxes]
    msg.frame_stamps = [ns_to_time(s) for s in record.frame_stamps_ns]
    msg.frame_cameras = list(record.frame_cameras)
    msg.sampling_strategy = record.strategy
    msg.coverage = float(record.coverage)
    msg.uniform_coverage = float(record.uniform_coverage)
    timings = StageTimings()
    for name in STAGES:  # StageTimings has one field per stage, in this order
        setattr(timings, name, float(record.timings_s.get(name, 0.0)))
    msg.timings = timings
    msg.status = int(record.status)
    msg.error = record.error
    msg.notes = list(record.notes)
    return msg


def _object_box(placed: PlacedBox) -> ObjectBox:
    box = placed.box
    out = ObjectBox()
    out.header = header(placed.stamp_ns, placed.frame_id)
    out.label = box.label
    out.score = float(box.score)
    out.x_min, out.y_min = float(box.x_min), float(box.y_min)
    out.x_max, out.y_max = float(box.x_max), float(box.y_max)
    out.has_position = box.position is not None
    if box.position is not None:
        out.position = Point(
            x=float(box.position[0]), y=float(box.position[1]), z=float(box.position[2])
        )
        out.position_frame_id = placed.position_frame_id
    return out


def record_from_msg(msg: SpatialAnswer) -> AnswerRecord:
    """The :class:`AnswerRecord` of a received ``SpatialAnswer`` (inverse of
    :func:`answer_msg`): every field the message carries.  Box extents are not in the message
    (None); float32 fields (coverage, box corners and score) keep their float32 values.

    Raises:
        ValueError: ``msg.status`` is not one of the ``STATUS_*`` codes.
    """
    return AnswerRecord(
        query_id=int(msg.query_id),
        question=str(msg.question),
        status=AnswerStatus(int(msg.status)),
        question_type=str(msg.question_type),
        answer=str(msg.answer),
        numeric_value=float(msg.numeric_value),
        option=str(msg.option),
        boxes=[_placed_box(b) for b in msg.boxes],
        frame_stamps_ns=[_time_ns(t) for t in msg.frame_stamps],
        frame_cameras=[str(c) for c in msg.frame_cameras],
        strategy=str(msg.sampling_strategy),
        coverage=float(msg.coverage),
        uniform_coverage=float(msg.uniform_coverage),
        timings_s={name: float(getattr(msg.timings, name)) for name in STAGES},
        error=str(msg.error),
        world_frame_id=str(msg.header.frame_id),
        notes=[str(n) for n in msg.notes],
    )


def _time_ns(t: Any) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (inverse of ``ns_to_time``)."""
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def _placed_box(msg: ObjectBox) -> PlacedBox:
    position = (
        np.array([msg.position.x, msg.position.y, msg.position.z], dtype=np.float64)
        if msg.has_position else None
    )
    box = Box2D(
        label=str(msg.label),
        score=float(msg.score),
        x_min=float(msg.x_min),
        y_min=float(msg.y_min),
        x_max=float(msg.x_max),
        y_max=float(msg.y_max),
        position=position,
    )
    return PlacedBox(
        box=box,
        stamp_ns=_time_ns(msg.header.stamp),
        frame_id=str(msg.header.frame_id),
        position_frame_id=str(msg.position_frame_id) if msg.has_position else "",
    )


def markers_msg(record: AnswerRecord, now_ns: int, lifetime_s: float = 0.0) -> MarkerArray:
    """RViz markers of the answer's positioned boxes; starts with a DELETEALL so that markers
    of the previous answer disappear."""
    clear = Marker()
    clear.header = header(now_ns, record.world_frame_id)
    clear.ns = MARKER_NAMESPACE
    clear.action = Marker.DELETEALL
    markers = [clear]
    for i, placed in enumerate(record.boxes):
        pos = placed.box.position
        if pos is None or placed.extent_m is None:
            continue
        for kind in ("cube", "text"):
            m = Marker()
            m.header = header(now_ns, placed.position_frame_id)
            m.ns = MARKER_NAMESPACE
            m.id = 2 * i + (kind == "text")
            m.action = Marker.ADD
            m.pose.position = Point(x=float(pos[0]), y=float(pos[1]), z=float(pos[2]))
            m.pose.orientation.w = 1.0
            sx, sy, sz = (max(0.02, float(v)) for v in placed.extent_m)
            m.lifetime.sec = int(lifetime_s)
            if kind == "cube":
                m.type = Marker.CUBE
                m.scale.x, m.scale.y, m.scale.z = sx, sy, sz
                m.color = ColorRGBA(r=0.1, g=0.8, b=0.2, a=0.5)
            else:
                m.type = Marker.TEXT_VIEW_FACING
                m.text = placed.box.label or "object"
                m.pose.position.z += max(sx, sy, sz)
                m.scale.z = 0.15
                m.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
            markers.append(m)
    return MarkerArray(markers=markers)
