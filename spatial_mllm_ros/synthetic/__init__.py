"""Deterministic synthetic indoor RGB-D scenes with ground truth, a cheap procedural stream,
realistic sensor timing (own-rate late poses, late camera info, depth lag, drops) and
malformed messages for fault injection.

Pure numpy/OpenCV; never imports rclpy.  Reading and writing RGB-D directories is
:mod:`spatial_mllm_ros.core.rgbd_dir`.
"""

from __future__ import annotations

from spatial_mllm_ros.synthetic.errors import (
    SensorTimingError,
    SyntheticError,
    UnknownInjectKindError,
)
from spatial_mllm_ros.synthetic.faults import INJECT_KINDS, faulty_message, inject_schedule
from spatial_mllm_ros.synthetic.procedural import ping_pong, procedural_frames
from spatial_mllm_ros.synthetic.render import RenderResult, render_view
from spatial_mllm_ros.synthetic.scene import (
    LABELS,
    Room,
    SceneLayout,
    SceneObject,
    generate_layout,
)
from spatial_mllm_ros.synthetic.sensor_messages import SensorMessages
from spatial_mllm_ros.synthetic.sensor_timing import (
    SENSOR_KINDS,
    SensorEvent,
    SensorSchedule,
    SensorTiming,
)
from spatial_mllm_ros.synthetic.trajectory import interpolate_pose, look_pose, walkthrough_poses
from spatial_mllm_ros.synthetic.walkthrough import (
    SyntheticScene,
    default_intrinsics,
    make_walkthrough,
    write_scene_dir,
)

__all__ = [
    "INJECT_KINDS",
    "LABELS",
    "SENSOR_KINDS",
    "RenderResult",
    "Room",
    "SceneLayout",
    "SceneObject",
    "SensorEvent",
    "SensorMessages",
    "SensorSchedule",
    "SensorTiming",
    "SensorTimingError",
    "SyntheticError",
    "SyntheticScene",
    "UnknownInjectKindError",
    "default_intrinsics",
    "faulty_message",
    "generate_layout",
    "inject_schedule",
    "interpolate_pose",
    "look_pose",
    "make_walkthrough",
    "ping_pong",
    "procedural_frames",
    "render_view",
    "walkthrough_poses",
    "write_scene_dir",
]
