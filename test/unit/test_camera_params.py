"""Several cameras per robot (issue 22 point 1): the ``cameras`` string array and each named
camera's ``camera.<name>.*`` entries, through the one schema -> Settings path; a bad camera
entry is refused with its name in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from spatial_mllm_ros import camera_params as C
from spatial_mllm_ros import params as P
from spatial_mllm_ros.core.poses import rigid_transform
from spatial_mllm_ros.core.topic_kinds import TOPIC_PARAMS
from spatial_mllm_ros.settings import Settings, parse_overrides

CONFIG = Path(__file__).resolve().parents[2] / "config"
SINGLE_PROFILES = sorted(p for p in CONFIG.glob("*.yaml") if p.stem != "multi_camera")

FRONT_LEFT = {
    "cameras": ["front", "left"],
    "camera.front.colour": "/front/color/image_raw",
    "camera.front.depth": "/front/aligned_depth_to_color/image_raw",
    "camera.front.camera_info": "/front/color/camera_info",
    "camera.front.odometry": "/odom",
    "camera.front.extrinsic": [0.1, 0.0, 0.2, 0.0, 0.0, 0.0, 1.0],
    "camera.left.colour_compressed": "/left/color/image_raw/compressed",
    "camera.left.tf_frame": "left_color_optical_frame",
}


def test_no_cameras_is_one_default_camera_of_the_topics_parameters() -> None:
    settings = Settings.defaults()
    (camera,) = settings.cameras
    assert camera.name == C.DEFAULT_CAMERA == "default"
    assert dict(camera.topics) == {k: settings.values[p] for k, p in TOPIC_PARAMS.items()}
    assert camera.extrinsic is None and not camera.tf_lookup
    assert Settings.from_values({"tf.enabled": True}).cameras[0].tf_lookup


@pytest.mark.parametrize("path", SINGLE_PROFILES, ids=[p.stem for p in SINGLE_PROFILES])
def test_every_single_camera_profile_keeps_its_topics(path: Path) -> None:
    settings = Settings.from_profile(path)
    assert [c.name for c in settings.cameras] == ["default"]
    assert settings.cameras[0].topics["colour"] == settings.values["topics.colour"]


def test_named_cameras_are_typed_in_their_order() -> None:
    front, left = Settings.from_values(FRONT_LEFT).cameras
    assert (front.name, left.name) == ("front", "left")
    assert front.topics["colour"] == "/front/color/image_raw" and front.topics["pose"] == ""
    assert front.extrinsic is not None and front.extrinsic.translation == (0.1, 0.0, 0.2)
    assert rigid_transform(front.extrinsic.translation, front.extrinsic.rotation_xyzw)[2, 3] \
        == pytest.approx(0.2)
    assert front.has_pose_source and not front.tf_lookup
    assert left.topics["colour"] == "" and left.topics["colour_compressed"].endswith("compressed")
    assert left.tf_lookup and left.tf_frame == "left_color_optical_frame"
    assert left.extrinsic is None


def test_camera_topic_fields_are_the_topic_kinds() -> None:
    assert C.TOPIC_FIELDS == tuple(TOPIC_PARAMS)
    assert set(C.TOPIC_FIELDS) < set(C.FIELDS)


def test_the_issue_example_parses_as_ros_args() -> None:
    items = ["cameras:=[front, left]", "camera.front.colour:=/front/color/image_raw",
             "camera.left.colour:=/left/color/image_raw",
             "camera.front.extrinsic:=[0.1, 0.0, 0.2, 0.0, 0.0, 0.0, 1.0]",
             "camera.front.pose:=/base_pose"]
    values = parse_overrides(items)
    assert values["cameras"] == ["front", "left"]
    cams = Settings.from_values(values).cameras
    assert [c.topics["colour"] for c in cams] == ["/front/color/image_raw",
                                                   "/left/color/image_raw"]


def _with(**changes: object) -> dict[str, object]:
    out: dict[str, object] = dict(FRONT_LEFT)
    for key, value in changes.items():
        name = key.replace("__", ".")
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (_with(camera__front__colour=None), "camera 'front': set exactly one of"),
        (_with(camera__left__colour="/left/raw"), "camera 'left': set exactly one of"),
        (_with(camera__front__pose="/p"), "camera 'front': more than one pose source"),
        (_with(camera__front__extrinsic=[0.1, 0.0, 0.2]), "camera 'front': camera.front.extrinsic"
         " needs 7 finite numbers"),
        (_with(camera__front__extrinsic=[0, 0, 0, 0, 0, 0, 2.0]), "camera 'front': camera.front."
         "extrinsic's quaternion is not of unit length"),
        (_with(camera__front__odometry=None), "camera 'front': camera.front.extrinsic needs the "
         "robot base's pose"),
        (_with(camera__rear__colour="/rear"), "camera.rear.colour: camera 'rear' is not in "
         "cameras [front, left]"),
        (_with(camera__front__colr="/x"), "camera 'front': unknown parameter 'camera.front.colr' "
         "(did you mean 'camera.front.colour'?)"),
        (_with(camera__left__depth=7), "camera 'left': camera.left.depth: expected str"),
        (_with(cameras=["front", "left", "front"]), "cameras: camera 'front' is listed twice"),
        (_with(cameras=["front", "left", "2nd"]), "cameras: camera name '2nd' is not a name"),
        (_with(cameras="front"), "cameras: expected a list of camera names"),
        (_with(camera__left__colour_compressed=None, camera__left__colour=
               "/front/color/image_raw"), "camera 'left': camera.left.colour "
         "'/front/color/image_raw' is camera 'front''s too"),
    ],
    ids=["no-colour", "two-colours", "two-pose-sources", "short-extrinsic", "bad-quaternion",
         "extrinsic-without-base-pose", "unlisted-camera", "typo", "wrong-type", "duplicate",
         "bad-name", "not-a-list", "shared-topic"],
)
def test_a_bad_camera_entry_is_refused_with_its_name(values: dict[str, object],
                                                     expected: str) -> None:
    with pytest.raises(P.ParamError) as err:
        Settings.from_values(values)
    assert expected in str(err.value)
    with pytest.raises(P.ParamError, match="camera"):  # the schema check alone, as at start-up
        P.validate(values)


def test_a_pose_topic_may_be_shared_by_cameras_on_one_base() -> None:
    values = _with(camera__left__tf_frame=None, camera__left__odometry="/odom",
                   camera__left__extrinsic=[0.0, 0.1, 0.0, 0.0, 0.0, 0.7071068, 0.7071068])
    cams = Settings.from_values(values).cameras
    assert [c.topics["odometry"] for c in cams] == ["/odom", "/odom"]


def test_camera_entries_survive_overrides_and_profiles(tmp_path: Path) -> None:
    settings = Settings.from_values(FRONT_LEFT).with_overrides({"sampling.frame_budget": 16})
    assert [c.name for c in settings.cameras] == ["front", "left"]
    profile = tmp_path / "rig.yaml"
    profile.write_text(
        "spatial_mllm:\n  ros__parameters:\n    cameras: [front]\n    camera:\n      front:\n"
        "        colour: /front/color/image_raw\n        pose: /front/pose\n")
    (front,) = Settings.from_profile(profile).cameras
    assert front.topics["pose"] == "/front/pose"
