"""Deterministic synthetic indoor RGB-D scenes with ground truth, and RGB-D directory I/O.

Pure numpy/OpenCV; never imports rclpy.
"""

from __future__ import annotations

from spatial_mllm_ros.synthetic.errors import SceneFormatError, SyntheticError
from spatial_mllm_ros.synthetic.render import RenderResult, render_view
from spatial_mllm_ros.synthetic.rgbd_dir import (
    load_ground_truth,
    load_rgbd_dir,
    scene_from_dir,
    write_rgbd_dir,
)
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
    depth_from_mm,
    depth_to_mm,
    make_walkthrough,
)

__all__ = [
    "LABELS",
    "RenderResult",
    "Room",
    "SceneFormatError",
    "SceneLayout",
    "SceneObject",
    "SyntheticError",
    "SyntheticScene",
    "default_intrinsics",
    "depth_from_mm",
    "depth_to_mm",
    "generate_layout",
    "load_ground_truth",
    "load_rgbd_dir",
    "look_pose",
    "make_walkthrough",
    "render_view",
    "scene_from_dir",
    "walkthrough_poses",
    "write_rgbd_dir",
]
