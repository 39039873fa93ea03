"""Every command's parameter flags come from the schema: each names a schema parameter, takes
the parameter's type, bounds and choices (in the schema's order), and sets exactly that
parameter."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from spatial_mllm_ros import params as P
from spatial_mllm_ros.benchmark.cli import VSIBENCH_FLAGS, vsibench_parser
from spatial_mllm_ros.cli.infer import INFER_FLAGS, infer_parser, settings_from_args
from spatial_mllm_ros.evaluation.cli import EVAL_FLAGS, eval_parser, eval_settings
from spatial_mllm_ros.model.plan_command import PLAN_FLAGS, add_plan_arguments
from spatial_mllm_ros.model.vision_commands import BUILD_FLAGS, add_build_arguments
from spatial_mllm_ros.param_flags import ParamFlag, add_param_flags, flag_choices
from spatial_mllm_ros.serving.cli import SERVE_FLAGS, serve_parser


def _sub(add: Callable[[argparse.ArgumentParser], None]) -> Callable[[], argparse.ArgumentParser]:
    def make() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        add(parser)
        return parser

    return make


#: Every command that takes a parameter profile: its parameter flags and its parser.
COMMANDS = {"spatial-mllm-infer": (INFER_FLAGS, infer_parser),
            "spatial-mllm-eval": (EVAL_FLAGS, eval_parser),
            "spatial-mllm-vsibench": (VSIBENCH_FLAGS, vsibench_parser),
            "spatial-mllm-serve": (SERVE_FLAGS, serve_parser),
            "spatial-mllm-checkpoint plan": (PLAN_FLAGS, _sub(add_plan_arguments)),
            "spatial-mllm-checkpoint build-vision": (BUILD_FLAGS, _sub(add_build_arguments))}
#: The short names a parameter flag could take: the last part of every parameter's name
#: (``model.vision_backend`` -> ``vision_backend``, ``backend``).
SHORT_NAMES = {n for p in P.SCHEMA for n in (p.name.rsplit(".", 1)[-1],
                                             p.name.rsplit(".", 1)[-1].removeprefix("vision_"))}
#: Options of those commands named like a parameter that are the command's own, not one.
OWN = {("spatial-mllm-vsibench", "--sampling"),  # uniform / the authors' frame choice
       ("spatial-mllm-serve", "--token-file"),  # the server's token, not a robot's
       # repeatable, one size each, instead of model.vision_sizes' comma-separated list
       ("spatial-mllm-checkpoint build-vision", "--size")}


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
        if spec.choices:  # the parameter's, or the flag's subset of them, in their order
            assert tuple(action.choices or ()) == flag_choices(f)
            assert [c for c in spec.choices if c in flag_choices(f)] == list(flag_choices(f))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_named_like_a_parameter_is_a_parameter_flag(command: str) -> None:
    flags, make = COMMANDS[command]
    ours = {f.dest for f in flags}
    named = {a.dest for a in make()._actions if a.option_strings and a.dest in SHORT_NAMES
             and (command, a.option_strings[-1]) not in OWN}
    assert named <= ours


def test_a_flags_own_choices_are_the_parameters_in_their_order() -> None:
    backend = _action(_sub(add_build_arguments)(), "--backend")
    assert tuple(backend.choices or ()) == ("onnxruntime", "tensorrt")
    with pytest.raises(P.ParamError):  # a choice the parameter does not have
        add_param_flags(argparse.ArgumentParser(),
                        [ParamFlag("--backend", "model.vision_backend", choices=("x",))])


def test_plan_keeps_planning_beyond_the_parameters_range() -> None:
    args = _sub(add_plan_arguments)().parse_args(["--layout", "v1.1", "--memory-gb", "8",
                                                  "--frame-budget", "128", "--dtype", "float16"])
    assert (args.frame_budget, args.dtype) == (128, "float16")


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
