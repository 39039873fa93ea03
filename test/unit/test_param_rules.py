"""The cross-field rules (``params.RULES``) and the one-line messages of parameter mistakes:
the same for the node's start-up, its run-time parameter changes and the commands, since all
of them validate through ``params.validate`` (``Settings.from_values``)."""

from __future__ import annotations

import pytest

from spatial_mllm_ros import params as P
from spatial_mllm_ros.settings import Settings, parse_overrides


def test_a_frame_budget_above_the_largest_is_refused_with_the_rule() -> None:
    with pytest.raises(P.ParamError) as err:
        Settings.from_values({"sampling.frame_budget": 64, "sampling.max_frame_budget": 16})
    line = str(err.value)
    assert "\n" not in line
    assert "sampling.frame_budget 64" in line and "sampling.max_frame_budget 16" in line
    # equal is fine, and so is a partial check (one parameter at a time: no full set)
    Settings.from_values({"sampling.frame_budget": 16, "sampling.max_frame_budget": 16})
    P.validate({"sampling.frame_budget": 64}, partial=True)


def test_every_rule_holds_for_the_defaults_and_the_shipped_profiles() -> None:
    for values in (P.defaults(), *(P.load_profile(p) for p in ("cpu_tiny", "desktop_gpu",
                                                               "jetson_orin"))):
        assert all(rule.holds(values) for rule in P.RULES)


def test_a_typo_names_the_parameter_it_resembles() -> None:
    with pytest.raises(P.ParamError, match=r"did you mean 'sampling.frame_budget'"):
        parse_overrides(["sampling.frame_budgt:=8"])


def test_several_problems_are_one_line() -> None:
    with pytest.raises(P.ParamError) as err:
        P.validate({"qos.depth": 0, "qos.reliability": "besteffort"})
    assert "\n" not in str(err.value)
    assert "qos.depth" in str(err.value) and "qos.reliability" in str(err.value)
