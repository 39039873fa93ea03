"""Several cameras per robot: the ``cameras`` parameter and each camera's own parameters, nav2
style (``camera.<name>.<field>``), checked and typed. Pure; imports nothing of this package, so
that :mod:`spatial_mllm_ros.params` (which validates them with the rest of a parameter set) and
the core (:data:`DEFAULT_CAMERA`) may import it.

* ``cameras`` (string array, default ``[]``): the names of the robot's cameras. Empty = one
  camera named :data:`DEFAULT_CAMERA` made of ``topics.*`` and ``tf.enabled`` (every profile and
  launch file written for one camera keeps working unchanged). Listed names replace it: then
  ``topics.*`` are not used and every camera takes its own fields.
* ``camera.<name>.colour`` | ``.colour_compressed`` (exactly one), ``.depth``, ``.camera_info``
  (topics; ``''`` = off) and at most one pose source: ``.pose`` (``PoseStamped``), ``.odometry``
  (``Odometry``) or ``.tf_frame`` (the camera's optical frame in tf2, looked up in
  ``tf.world_frame``). ``.extrinsic`` ``[x, y, z, qx, qy, qz, qw]`` (metres, unit quaternion) is
  the camera's optical frame in the robot's base frame: with it, ``.pose`` / ``.odometry`` is the
  *base's* pose (several cameras may name the robot's one odometry topic) and the camera's pose
  is ``base_pose @ extrinsic``. No pose source = the camera's frames have no pose (colour-only
  in the buffer), which affects only that camera.

:func:`check` validates the entries of a parameter set (every problem names its camera);
:func:`build` makes the typed :class:`CameraSettings` of a validated set.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "CAMERAS_PARAM",
    "DEFAULT_CAMERA",
    "FIELDS",
    "TOPIC_FIELDS",
    "CameraSettings",
    "Extrinsic",
    "build",
    "camera_param_names",
    "check",
    "is_camera_param",
    "parse_text",
]

#: the string-array parameter naming the robot's cameras
CAMERAS_PARAM = "cameras"
#: name of the one camera of ``topics.*`` (``cameras`` empty) and of frames naming no camera
DEFAULT_CAMERA = "default"
_PREFIX = "camera."
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: the topic fields of a camera: the kinds of ``core.topic_kinds.TOPIC_KINDS``, in its order
#: (spelled here because this module is below the core; test_camera_params checks them)
TOPIC_FIELDS: tuple[str, ...] = (
    "colour", "colour_compressed", "depth", "camera_info", "pose", "odometry",
)
#: every field of ``camera.<name>.<field>`` and what it does
FIELDS: Mapping[str, str] = MappingProxyType({
    "colour": "Colour sensor_msgs/Image topic of this camera; '' = off (then colour_compressed).",
    "colour_compressed": "Colour sensor_msgs/CompressedImage topic of this camera; '' = off.",
    "depth": "Depth sensor_msgs/Image registered to this camera's colour; '' = off.",
    "camera_info": "sensor_msgs/CameraInfo of this camera's colour image; '' = off.",
    "pose": "geometry_msgs/PoseStamped of the camera optical frame in the world frame (with "
            "extrinsic: of the robot's base); '' = off.",
    "odometry": "nav_msgs/Odometry of the camera optical frame (with extrinsic: of the robot's "
                "base) in the world frame; '' = off.",
    "tf_frame": "tf2 frame of this camera's optical frame, looked up in tf.world_frame at each "
                "image stamp; '' = off.",
    "extrinsic": "[x, y, z, qx, qy, qz, qw]: the camera optical frame in the robot's base frame "
                 "(metres, unit quaternion); the pose/odometry topic is then the base's. "
                 "[] = none.",
})
_POSE_FIELDS = ("pose", "odometry", "tf_frame")


def is_camera_param(name: str) -> bool:
    """Whether ``name`` is ``cameras`` or a ``camera.<name>.<field>`` parameter."""
    return name == CAMERAS_PARAM or name.startswith(_PREFIX)


def camera_param_names(cameras: tuple[str, ...]) -> list[str]:
    """Every ``camera.<name>.<field>`` of the named cameras (what the node declares)."""
    return [f"{_PREFIX}{cam}.{f}" for cam in cameras for f in FIELDS]


def parse_text(name: str, text: str) -> Any:
    """The value of a ``-p NAME:=TEXT`` item for a camera parameter: arrays as ROS writes them
    (``[front, left]``, ``[0.1, 0, 0.2, 0, 0, 0, 1]``), other fields as the text."""
    if name == CAMERAS_PARAM or name.endswith(".extrinsic"):
        inner = text.strip()
        if not (inner.startswith("[") and inner.endswith("]")):
            raise ValueError(f"{name}: expected a list like [a, b], got {text!r}")
        items = [s.strip().strip("'\"") for s in inner[1:-1].split(",") if s.strip()]
        if name == CAMERAS_PARAM:
            return items
        try:
            return [float(s) for s in items]
        except ValueError as err:
            raise ValueError(f"{name}: expected numbers, got {text!r}") from err
    return text


def _names(value: Any) -> tuple[tuple[str, ...], list[str]]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return (), [f"{CAMERAS_PARAM}: expected a list of camera names, got {value!r}"]
    problems = [f"{CAMERAS_PARAM}: camera name {v!r} is not a name (letters, digits, _; "
                f"a letter first)" for v in value if not _NAME.match(v)]
    dupes = sorted({v for v in value if list(value).count(v) > 1})
    problems += [f"{CAMERAS_PARAM}: camera {d!r} is listed twice" for d in dupes]
    return tuple(value), problems


def _field_value(name: str, field: str, value: Any) -> tuple[Any, str]:
    if field == "extrinsic":
        if not isinstance(value, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) for v in value
        ):
            return None, f"{name}: expected [x, y, z, qx, qy, qz, qw] numbers, got {value!r}"
        return tuple(float(v) for v in value), ""
    if not isinstance(value, str):
        return None, f"{name}: expected str, got {type(value).__name__} {value!r}"
    return value, ""


def check(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Type and check the camera entries of ``values`` (other names are ignored).

    Returns:
        the typed entries (``cameras`` a tuple of names, ``extrinsic`` a tuple of floats,
        other fields strings) and the problems, each naming its camera (empty = valid).
    """
    typed: dict[str, Any] = {}
    problems: list[str] = []
    cameras: tuple[str, ...] = ()
    if CAMERAS_PARAM in values:
        cameras, problems = _names(values[CAMERAS_PARAM])
        typed[CAMERAS_PARAM] = cameras
    for name, value in values.items():
        if not name.startswith(_PREFIX):
            continue
        cam, _, field = name[len(_PREFIX):].partition(".")
        if cam not in cameras:
            listed = ", ".join(cameras) or "none"
            problems.append(f"{name}: camera {cam!r} is not in {CAMERAS_PARAM} [{listed}]")
            continue
        if field not in FIELDS:
            close = difflib.get_close_matches(field, list(FIELDS), n=1)
            hint = f" (did you mean '{_PREFIX}{cam}.{close[0]}'?)" if close else ""
            problems.append(f"camera {cam!r}: unknown parameter {name!r}{hint}")
            continue
        typed[name], problem = _field_value(name, field, value)
        if problem:
            problems.append(f"camera {cam!r}: {problem}")
    if not problems:
        problems = [p for cam in cameras for p in _camera_problems(cam, typed)]
        problems += _shared_topic_problems(cameras, typed)
    return typed, problems


def _get(typed: Mapping[str, Any], cam: str, field: str) -> Any:
    return typed.get(f"{_PREFIX}{cam}.{field}", () if field == "extrinsic" else "")


def _camera_problems(cam: str, typed: Mapping[str, Any]) -> list[str]:
    """What makes one camera's entry unusable, each line naming it."""
    out: list[str] = []
    colour = [f for f in ("colour", "colour_compressed") if _get(typed, cam, f)]
    if len(colour) != 1:
        out.append(f"camera {cam!r}: set exactly one of camera.{cam}.colour and "
                   f"camera.{cam}.colour_compressed (got {len(colour)})")
    sources = [f for f in _POSE_FIELDS if _get(typed, cam, f)]
    if len(sources) > 1:
        out.append(f"camera {cam!r}: more than one pose source ({', '.join(sources)}); "
                   f"set one of camera.{cam}.pose, .odometry or .tf_frame")
    extrinsic = _get(typed, cam, "extrinsic")
    if extrinsic:
        if len(extrinsic) != 7 or not all(math.isfinite(v) for v in extrinsic):
            out.append(f"camera {cam!r}: camera.{cam}.extrinsic needs 7 finite numbers "
                       f"[x, y, z, qx, qy, qz, qw], got {list(extrinsic)}")
        elif abs(math.sqrt(sum(v * v for v in extrinsic[3:])) - 1.0) > 1e-3:
            out.append(f"camera {cam!r}: camera.{cam}.extrinsic's quaternion is not of unit "
                       f"length ({list(extrinsic[3:])})")
        if not any(_get(typed, cam, f) for f in ("pose", "odometry")):
            out.append(f"camera {cam!r}: camera.{cam}.extrinsic needs the robot base's pose: "
                       f"set camera.{cam}.pose or camera.{cam}.odometry (tf_frame gives the "
                       f"camera's own pose)")
    return out


def _shared_topic_problems(cameras: tuple[str, ...], typed: Mapping[str, Any]) -> list[str]:
    """Image topics named by two cameras (a pose topic may be shared: the robot's base)."""
    seen: dict[str, str] = {}
    out: list[str] = []
    for cam in cameras:
        for field in ("colour", "colour_compressed", "depth", "camera_info"):
            topic = _get(typed, cam, field)
            if topic and topic in seen and seen[topic] != cam:
                out.append(f"camera {cam!r}: camera.{cam}.{field} {topic!r} is camera "
                           f"{seen[topic]!r}'s too")
            elif topic:
                seen[topic] = cam
    return out


@dataclass(frozen=True)
class Extrinsic:
    """The camera's optical frame in the robot's base frame (its 4x4 camera-to-base matrix:
    :func:`spatial_mllm_ros.core.poses.rigid_transform` of the two).

    Attributes:
        translation: (x, y, z) metres.
        rotation_xyzw: unit quaternion (x, y, z, w).
    """

    translation: tuple[float, float, float]
    rotation_xyzw: tuple[float, float, float, float]


@dataclass(frozen=True)
class CameraSettings:
    """One camera of the robot, typed.

    Attributes:
        name: its ``cameras`` entry (:data:`DEFAULT_CAMERA` for ``topics.*``).
        topics: topic kind (:data:`TOPIC_FIELDS`) -> topic name; "" = off.
        tf_lookup: look the camera's pose up in tf2.
        tf_frame: the tf2 frame to look up; "" = the image's ``header.frame_id``.
        extrinsic: the camera in the base frame, when the pose topic is the base's.
    """

    name: str
    topics: Mapping[str, str]
    tf_lookup: bool = False
    tf_frame: str = ""
    extrinsic: Extrinsic | None = None

    @property
    def has_pose_source(self) -> bool:
        """Whether its frames can get a pose (a pose or odometry topic, or tf2)."""
        return bool(self.topics.get("pose") or self.topics.get("odometry") or self.tf_lookup)


def build(values: Mapping[str, Any], legacy_topics: Mapping[str, str],
          legacy_tf: bool) -> tuple[CameraSettings, ...]:
    """The cameras of a validated parameter set (:func:`check` passed): the named ones in
    ``cameras`` order, or the one :data:`DEFAULT_CAMERA` of ``legacy_topics`` (``topics.*``,
    with tf2 lookups of the image's frame when ``legacy_tf``) when none is named."""
    names: tuple[str, ...] = tuple(values.get(CAMERAS_PARAM, ()))
    if not names:
        return (CameraSettings(DEFAULT_CAMERA, MappingProxyType(dict(legacy_topics)),
                               tf_lookup=legacy_tf),)
    out: list[CameraSettings] = []
    for cam in names:
        topics = {f: str(_get(values, cam, f)) for f in TOPIC_FIELDS}
        ext = tuple(_get(values, cam, "extrinsic"))
        extrinsic = Extrinsic((ext[0], ext[1], ext[2]), (ext[3], ext[4], ext[5], ext[6])
                              ) if ext else None
        tf_frame = str(_get(values, cam, "tf_frame"))
        out.append(CameraSettings(cam, MappingProxyType(topics), tf_lookup=bool(tf_frame),
                                  tf_frame=tf_frame, extrinsic=extrinsic))
    return tuple(out)
