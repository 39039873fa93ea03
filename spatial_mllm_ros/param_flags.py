"""A command's parameter flags, built from the schema (:data:`spatial_mllm_ros.params.SCHEMA`).

A flag such as ``--frame-budget N`` is a shorthand for ``-p sampling.frame_budget:=N``: its type,
its choices (in the schema's order) and its bounds are the parameter's, so every command's
flags agree with each other and with the node. A command lists its flags as :class:`ParamFlag`
records, adds them with :func:`add_param_flags` and reads the given ones back as parameter
overrides with :func:`param_overrides`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spatial_mllm_ros import params as P

__all__ = ["ParamFlag", "add_param_flags", "flag_choices", "param_overrides"]


@dataclass(frozen=True)
class ParamFlag:
    """One command flag standing for one schema parameter.

    Attributes:
        flag: the option, e.g. ``--frame-budget``; for a bool parameter ``--no-NAME`` sets it
            false, any other name is ``--NAME`` / ``--no-NAME``.
        param: the schema parameter it sets.
        help: what the flag does for this command ("" = the parameter's description).
        metavar: the value's name in the usage line (None = argparse's).
        choices: the values this command accepts, a subset of the parameter's choices in
            their order (``spatial-mllm-checkpoint build-vision --backend`` has no ``torch``);
            () = all of them.
        bounded: the value must lie within the parameter's range; False for a command that
            plans beyond it (``spatial-mllm-checkpoint plan --frame-budget``).
    """

    flag: str
    param: str
    help: str = ""
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    bounded: bool = True

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments (``--frame-budget`` -> ``frame_budget``)."""
        return self.flag.lstrip("-").replace("-", "_")


def _value_type(spec: P.ParamSpec, bounded: bool = True) -> Callable[[str], P.ParamValue]:
    """argparse's ``type=`` for ``spec``: the text as the parameter's type, within its bounds
    unless not ``bounded``."""

    def convert(text: str) -> P.ParamValue:
        try:
            value: P.ParamValue = spec.type(text)
            return spec.check(value) if bounded else value
        except (P.ParamError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    return convert


def flag_choices(flag: ParamFlag) -> tuple[str, ...]:
    """The values ``flag`` accepts: its own subset of the parameter's choices, else all of them
    (() = free text or a number)."""
    spec = P.spec(flag.param)
    if not set(flag.choices) <= set(spec.choices):
        raise P.ParamError(f"{flag.flag}: {list(flag.choices)} are not all choices of "
                           f"{flag.param} {list(spec.choices)}")
    return tuple(c for c in spec.choices if c in flag.choices) or spec.choices


def add_param_flags(parser: argparse.ArgumentParser, flags: Sequence[ParamFlag]) -> None:
    """Add ``flags`` to ``parser``; each defaults to None (= the profile's value)."""
    for f in flags:
        spec = P.spec(f.param)
        text = f"{f.help or spec.description} (= -p {f.param}:=...)"
        if spec.type is bool and f.flag.startswith("--no-"):
            parser.add_argument(f.flag, dest=f.dest, action="store_const", const=False,
                                default=None, help=text)
        elif spec.type is bool:
            parser.add_argument(f.flag, dest=f.dest, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
        else:
            parser.add_argument(f.flag, dest=f.dest, type=_value_type(spec, f.bounded),
                                default=None, choices=flag_choices(f) or None,
                                metavar=f.metavar, help=text)


def param_overrides(args: argparse.Namespace, flags: Sequence[ParamFlag]
                    ) -> dict[str, P.ParamValue]:
    """The parameters the given flags set (flags not given set nothing)."""
    given = vars(args)
    return {f.param: given[f.dest] for f in flags if given.get(f.dest) is not None}
