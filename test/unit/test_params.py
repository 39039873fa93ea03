"""params: the schema, validation, and config/*.yaml profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from spatial_mllm_ros import params as P
from spatial_mllm_ros.camera_params import is_camera_param

CONFIG = Path(__file__).resolve().parents[2] / "config"
PROFILES = sorted(CONFIG.glob("*.yaml"))


def test_every_entry_is_described_typed_and_defaults_valid():
    names = [s.name for s in P.SCHEMA]
    assert len(names) == len(set(names))
    for s in P.SCHEMA:
        assert len(s.description) > 15, s.name
        assert s.type in (bool, int, float, str), s.name
        assert s.check(s.default) == s.default, s.name


def test_reserved_answering_parameters_present():
    for name in ("model.checkpoint", "model.vggt_checkpoint", "model.device", "model.dtype",
                 "sampling.strategy", "sampling.frame_budget", "queue.size", "queue.timeout_s",
                 "question.max_chars"):
        P.spec(name)


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_profiles_validate(path):
    values = P.load_yaml(path)  # and the camera entries of a multi-camera profile
    assert {n for n in values if not is_camera_param(n)} == {s.name for s in P.SCHEMA}


def test_cpu_tiny_profile_exists_and_loads_by_name():
    assert (CONFIG / "cpu_tiny.yaml").is_file()
    assert P.load_profile("cpu_tiny")["model.device"] == "cpu"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pairing.slop_s", -0.1), ("pairing.slop_s", 2.0), ("qos.depth", 0),
        ("buffer.max_frames", 10**9), ("qos.reliability", "sometimes"),
        ("model.dtype", "int4"), ("qos.depth", 2.5), ("autostart", "yes"),
        ("queue.size", True), ("nope.unknown", 1),
    ],
)
def test_invalid_values_rejected(name, value):
    with pytest.raises(P.ParamError, match=name.split(".")[0]):
        P.validate({name: value})


def test_int_accepted_for_float_and_errors_are_collected():
    assert P.validate({"pairing.wait_s": 1})["pairing.wait_s"] == 1.0
    with pytest.raises(P.ParamError) as exc:
        P.validate({"qos.depth": 0, "pairing.slop_s": 5.0})
    assert "qos.depth" in str(exc.value) and "pairing.slop_s" in str(exc.value)


def test_yaml_formats(tmp_path):
    nested = tmp_path / "a.yaml"
    nested.write_text("spatial_mllm:\n  ros__parameters:\n    pairing:\n      slop_s: 0.05\n")
    assert P.load_yaml(nested)["pairing.slop_s"] == 0.05
    dotted = tmp_path / "b.yaml"
    dotted.write_text("/**:\n  ros__parameters:\n    buffer.max_frames: 12\n")
    assert P.load_yaml(dotted)["buffer.max_frames"] == 12
    bad = tmp_path / "c.yaml"
    bad.write_text("other_node:\n  ros__parameters: {}\n")
    with pytest.raises(P.ParamError, match="ros__parameters"):
        P.load_yaml(bad)
    wrong = tmp_path / "d.yaml"
    wrong.write_text("spatial_mllm:\n  ros__parameters:\n    qos: {depth: -3}\n")
    with pytest.raises(P.ParamError, match=r"qos\.depth"):
        P.load_yaml(wrong)
