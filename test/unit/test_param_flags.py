"""Every command's parameter flags come from the schema: each names a schema parameter, takes
the parameter's type, bounds and choices (in the schema's order), and sets exactly that
parameter."""

from __future__ import annotations

import argparse

import pytest

from spatial_mllm_ros import params as P
from spatial_mllm_ros.cli.infer import INFER_FLAGS, infer_parser, settings_from_args
from spatial_mllm_ros.evaluation.cli import EVAL_FLAGS, eval_parser, eval_settings
from spatial_mllm_ros.param_flags import ParamFlag

COMMANDS = {"spatial-mllm-infer": (INFER_FLAGS, infer_parser),
            "spatial-mllm-eval": (EVAL_FLAGS, eval_parser)}


def _action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_maps_to_a_schema_parameter_with_its_choices(command: str) -> None:
    flags, make = COMMANDS[command]
    parser = make()
    assert len({f.param for f in flags}) == len(flags)  # one flag per parameter
    for f in flags:
        spec = P.spec(f.param)  # raises for a name the schema does not know
        action = _action(parser, f.flag)
        assert action.default is None  # unset = the profile's value
        if spec.choices:
            assert tuple(action.choices or ()) == spec.choices


def test_the_two_commands_agree_on_the_flags_they_share() -> None:
    infer = {f.flag: f.param for f in INFER_FLAGS}
    shared = [f for f in EVAL_FLAGS if f.flag in infer]
    assert {f.flag for f in shared} >= {"--checkpoint", "--dtype", "--vision-backend",
                                        "--frame-budget", "--max-new-tokens", "--endpoint"}
    for f in shared:
        assert infer[f.flag] == f.param
        assert _action(infer_parser(), f.flag).choices == _action(eval_parser(), f.flag).choices


def test_flags_become_parameter_overrides() -> None:
    args = infer_parser().parse_args(["--frames", "d", "--question", "q", "--dtype", "bfloat16",
                                      "--frame-budget", "5", "--no-grounding"])
    values = settings_from_args(args).values
    assert (values["model.dtype"], values["sampling.frame_budget"],
            values["answer.grounding"]) == ("bfloat16", 5, False)
    args = eval_parser().parse_args(["bag", "--questions", "q", "--out", "o", "--grounding",
                                     "--max-new-tokens", "7"])
    values = eval_settings(args).values
    assert (values["answer.grounding"], values["answer.max_new_tokens"]) == (True, 7)


def test_a_value_outside_the_parameters_bounds_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        infer_parser().parse_args(["--frames", "d", "--question", "q", "--frame-budget", "0"])
    assert exit_.value.code == 2
    assert ParamFlag("--frame-budget", "sampling.frame_budget").dest == "frame_budget"
