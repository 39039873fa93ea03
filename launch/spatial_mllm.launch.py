"""Start the spatial_mllm node with a config profile.

    ros2 launch spatial_mllm_ros spatial_mllm.launch.py profile:=cpu_tiny \
        colour_topic:=/my_cam/color/image_raw

Arguments: ``profile`` (config/<profile>.yaml: cpu_tiny, ...), ``params_file`` (overrides the
profile with any ROS params file), ``namespace``, and remappings of the camera topics
(``colour_topic``, ``depth_topic``, ``camera_info_topic``, ``pose_topic``; empty = as in the
profile).
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

REMAPS = {
    "colour_topic": "/camera/camera/color/image_raw",
    "depth_topic": "/camera/camera/aligned_depth_to_color/image_raw",
    "camera_info_topic": "/camera/camera/color/camera_info",
    "pose_topic": "~/camera_pose",
}


def _node(context, *args, **kwargs):
    profile = LaunchConfiguration("profile").perform(context)
    params_file = LaunchConfiguration("params_file").perform(context)
    if not params_file:
        share = get_package_share_directory("spatial_mllm_ros")
        params_file = os.path.join(share, "config", f"{profile}.yaml")
    remappings = []
    for arg, default_topic in REMAPS.items():
        target = LaunchConfiguration(arg).perform(context)
        if target:
            remappings.append((default_topic, target))
    return [
        Node(
            package="spatial_mllm_ros",
            executable="spatial_mllm_node",
            name="spatial_mllm",
            namespace=LaunchConfiguration("namespace"),
            parameters=[params_file],
            remappings=remappings,
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument("profile", default_value="cpu_tiny",
                                  description="config/<profile>.yaml"),
            DeclareLaunchArgument("params_file", default_value="",
                                  description="ROS params file overriding the profile"),
            DeclareLaunchArgument("namespace", default_value=""),
            *[DeclareLaunchArgument(a, default_value="", description=f"remap {t}")
              for a, t in REMAPS.items()],
            OpaqueFunction(function=_node),
        ]
    )
