"""``spatial-mllm-ask`` checks every flag before a message is built: the ranges of the message
fields and of the node's schema (usage error, exit status 2)."""

from __future__ import annotations

import math

import pytest

from spatial_mllm_ros import params as P
from spatial_mllm_ros.ros import ask_cli
from spatial_mllm_ros.ros.ask_cli import MAX_QUERY_ID, main, parse_args


def _usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        parse_args(["How many chairs?", *argv])
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_frames_bound_is_the_schema_bound_of_the_largest_budget() -> None:
    assert ask_cli.MAX_FRAMES == P.spec("sampling.max_frame_budget").max
    assert ask_cli.MAX_FRAMES < 2**16  # fits the uint16 field


@pytest.mark.parametrize("value", ["-1", "70000", "65536", "65535", str(ask_cli.MAX_FRAMES + 1),
                                   "2.5", "many"])
def test_frames_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                              value: str) -> None:
    err = _usage_error(capsys, "--frames", value)
    assert "--frames" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", [0, 1, ask_cli.MAX_FRAMES])
def test_frames_in_range_are_kept(value: int) -> None:
    assert parse_args(["q", "--frames", str(value)]).frames == value


@pytest.mark.parametrize("value", ["-1", "0.0001", "3601", "nan", "inf", "-inf", "soon"])
def test_timeout_outside_the_schema_range_is_a_usage_error(
        capsys: pytest.CaptureFixture[str], value: str) -> None:
    assert "--timeout" in _usage_error(capsys, "--timeout", value)


@pytest.mark.parametrize("value", ["0", "0.5", "3600"])
def test_timeout_zero_or_in_range_is_kept(value: str) -> None:
    assert parse_args(["q", "--timeout", value]).timeout == float(value)


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_wait_must_be_positive_and_finite(capsys: pytest.CaptureFixture[str],
                                          value: str) -> None:
    assert "--wait" in _usage_error(capsys, "--wait", value)


@pytest.mark.parametrize("value", ["-1", str(2**64), "1e3"])
def test_id_outside_uint64_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                            value: str) -> None:
    assert "--id" in _usage_error(capsys, "--via", "topic", "--id", value)


def test_id_at_the_uint64_ends_is_kept() -> None:
    for value in (0, MAX_QUERY_ID):
        assert parse_args(["q", "--via", "topic", "--id", str(value)]).query_id == value


@pytest.mark.parametrize("name", ["bad name", "/a//b", "/1robot", "a-b", "", "/a/~b"])
def test_node_must_be_a_ros_name(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert "--node" in _usage_error(capsys, "--node", name)


@pytest.mark.parametrize("name", ["/spatial_mllm", "/robot1/spatial_mllm", "spatial_mllm",
                                  "/spatial_mllm/", "~/x"])
def test_ros_names_are_kept(name: str) -> None:
    assert parse_args(["q", "--node", name]).node == name


def test_unknown_type_and_strategy_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert "object_counting" in _usage_error(capsys, "--type", "counting")
    assert "coverage" in _usage_error(capsys, "--strategy", "random")
    args = parse_args(["q", "--type", "object_counting", "--strategy", "uniform"])
    assert (args.question_type, args.strategy) == ("object_counting", "uniform")


@pytest.mark.parametrize("count", [1, 27])
def test_option_count_outside_2_to_26_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                                       count: int) -> None:
    options = [arg for i in range(count) for arg in ("--option", f"thing {i}")]
    assert "2 to 26" in _usage_error(capsys, *options)


def test_an_empty_option_or_question_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert "option is empty" in _usage_error(capsys, "--option", "a", "--option", " ")
    with pytest.raises(SystemExit) as exc:
        parse_args(["   "])
    assert exc.value.code == 2
    assert "empty" in capsys.readouterr().err


def test_main_refuses_bad_flags_before_any_ros_work(
        capsys: pytest.CaptureFixture[str]) -> None:
    """main parses first: a bad flag never reaches the client (no rclpy here)."""
    with pytest.raises(SystemExit) as exc:
        main(["q", "--frames", "65536"])
    assert exc.value.code == 2
    assert f"0..{ask_cli.MAX_FRAMES}" in capsys.readouterr().err


def test_defaults_are_the_node_defaults() -> None:
    args = parse_args(["q"])
    assert (args.frames, args.timeout, args.strategy, args.question_type) == (0, 0.0, "", "")
    assert math.isfinite(args.wait) and args.wait > 0
