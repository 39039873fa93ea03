"""The one NaN/infinity -> null conversion (core.jsonsafe)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spatial_mllm_ros.core.jsonsafe import finite_or_none, json_safe


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf, None, np.float64("nan")])
def test_non_finite_and_none_become_none(x) -> None:
    assert finite_or_none(x) is None


def test_finite_numbers_stay_as_floats() -> None:
    assert finite_or_none(0.0) == 0.0 and finite_or_none(-2.5) == -2.5
    assert type(finite_or_none(np.float32(1.5))) is float and finite_or_none(3) == 3.0


def test_json_safe_replaces_deep_non_finite_values_and_keeps_the_rest() -> None:
    doc = {"a": math.nan, "b": [1, 2.5, (math.inf, "x")], "c": {"d": -math.inf, "e": True},
           "f": None, 7: "seven"}
    safe = json_safe(doc)
    assert safe == {"a": None, "b": [1, 2.5, [None, "x"]], "c": {"d": None, "e": True},
                    "f": None, 7: "seven"}
    json.dumps(safe, allow_nan=False)  # writable as strict JSON
    assert math.isnan(doc["a"])  # the input is not modified


def test_json_safe_leaves_unknown_objects_for_json_to_reject() -> None:
    marker = object()
    assert json_safe([marker])[0] is marker
