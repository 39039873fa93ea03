"""Deterministic synthetic indoor RGB-D scenes with ground truth, a cheap procedural stream and
malformed messages for fault injection.

Pure numpy/OpenCV; never imports rclpy.  Reading and writing RGB-D directories is
:mod:`spatial_mllm_ros.core.rgbd_dir`.
"""

from __future__ import annotations

from spatial_mllm_ros.synthetic.errors import SyntheticError, UnknownInjectKindError
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
from spatial_mllm_ros.synthetic.trajectory import look_pose, walkthrough_poses
from spatial_mllm_ros.synthetic.walkthrough import (
    SyntheticScene,
    default_intrinsics,
    make_walkthrough,
    write_scene_dir,
)

__all__ = [
    "INJECT_KINDS",
    "LABELS",
    "RenderResult",
    "Room",
    "SceneLayout",
    "SceneObject",
    "SyntheticError",
    "SyntheticScene",
    "UnknownInjectKindError",
    "default_intrinsics",
    "faulty_message",
    "generate_layout",
    "inject_schedule",
    "look_pose",
    "make_walkthrough",
    "ping_pong",
    "procedural_frames",
    "render_view",
    "walkthrough_poses",
    "write_scene_dir",
]
