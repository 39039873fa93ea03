"""Start the spatial_mllm node with a config profile.

    ros2 launch spatial_mllm_ros spatial_mllm.launch.py profile:=cpu_tiny \
        colour_topic:=/my_cam/color/image_raw

Arguments: ``profile`` (config/<profile>.yaml: cpu_tiny, ...), ``params_file`` (overrides the
profile with any ROS params file), ``namespace``, remappings of the camera topics
(``colour_topic``, ``depth_topic``, ``camera_info_topic``, ``pose_topic``; empty = as in the
profile), ``remap``: any other remappings as comma-separated ``FROM=TO`` pairs (a
multi-camera profile's topics, e.g. ``profile:=multi_camera
remap:=/front/color/image_raw=/cam_front/color/image_raw``; README, "Several cameras"), and
``dds_profile``: the Fast DDS XML profile the node runs with, through
``FASTDDS_DEFAULT_PROFILES_FILE``. Empty (the default) = the caller's
``FASTDDS_DEFAULT_PROFILES_FILE`` when it is set (a user's own DDS setup wins), else the
shipped ``config/fastdds_large_data.xml`` (a shared-memory segment that holds several 1-2 MB
images; README, "Camera transport"); ``none`` = Fast DDS's defaults. ``endpoint``: the model
server (``spatial-mllm-serve``) as ``http://HOST:PORT`` (parameter ``model.endpoint``; empty =
the profile's, by default the model runs on the robot; README, "Fleet").
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

REMAPS = {
    "colour_topic": "/camera/camera/color/image_raw",
    "depth_topic": "/camera/camera/aligned_depth_to_color/image_raw",
    "camera_info_topic": "/camera/camera/color/camera_info",
    "pose_topic": "~/camera_pose",
}

#: The shipped Fast DDS profile for large images on one host (config/ of the package share).
DDS_PROFILE = "fastdds_large_data.xml"
DDS_PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"


def _dds_profile(context, share: str) -> list[SetEnvironmentVariable]:
    """Sets FASTDDS_DEFAULT_PROFILES_FILE for the processes launched after it (the node)."""
    choice = LaunchConfiguration("dds_profile").perform(context)
    if choice == "none":
        return []
    if not choice:
        if getattr(context, "environment", os.environ).get(DDS_PROFILE_ENV):
            return []  # the caller's own profile is already in the environment
        choice = os.path.join(share, "config", DDS_PROFILE)
    return [SetEnvironmentVariable(DDS_PROFILE_ENV, choice)]


def _endpoint(context) -> list[dict[str, str]]:
    """``model.endpoint`` over the profile when the ``endpoint`` argument is given."""
    endpoint = LaunchConfiguration("endpoint").perform(context)
    return [{"model.endpoint": endpoint}] if endpoint else []


def parse_remaps(text: str) -> list[tuple[str, str]]:
    """``FROM=TO,FROM=TO`` (the ``remap`` argument) as remapping pairs; '' = none."""
    pairs = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"remap: expected FROM=TO, got {item!r}")
        pairs.append((source.strip(), target.strip()))
    return pairs


def _node(context, *args, **kwargs):
    profile = LaunchConfiguration("profile").perform(context)
    params_file = LaunchConfiguration("params_file").perform(context)
    share = get_package_share_directory("spatial_mllm_ros")
    if not params_file:
        params_file = os.path.join(share, "config", f"{profile}.yaml")
    remappings = []
    for arg, default_topic in REMAPS.items():
        target = LaunchConfiguration(arg).perform(context)
        if target:
            remappings.append((default_topic, target))
    remappings += parse_remaps(LaunchConfiguration("remap").perform(context))
    return [
        *_dds_profile(context, share),
        Node(
            package="spatial_mllm_ros",
            executable="spatial_mllm_node",
            name="spatial_mllm",
            namespace=LaunchConfiguration("namespace"),
            parameters=[params_file, *_endpoint(context)],
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
            DeclareLaunchArgument(
                "endpoint", default_value="",
                description="model server http(s)://HOST:PORT (model.endpoint); empty = the "
                            "profile's (the model on the robot)"),
            DeclareLaunchArgument(
                "dds_profile", default_value="",
                description=f"Fast DDS XML profile ({DDS_PROFILE_ENV}): empty = the caller's "
                            f"{DDS_PROFILE_ENV}, else config/{DDS_PROFILE}; 'none' = defaults"),
            *[DeclareLaunchArgument(a, default_value="", description=f"remap {t}")
              for a, t in REMAPS.items()],
            DeclareLaunchArgument(
                "remap", default_value="",
                description="more remappings, FROM=TO,FROM=TO (e.g. a multi-camera profile's "
                            "camera topics)"),
            OpaqueFunction(function=_node),
        ]
    )
