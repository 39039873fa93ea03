"""JSON has no NaN or infinity: the project's one place that turns them into ``null``.

Use :func:`finite_or_none` for a single number (a coverage, a score, a share that is NaN
when undefined) and :func:`json_safe` for a whole structure about to be written with
``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["finite_or_none", "json_safe"]


def finite_or_none(x: float | None) -> float | None:
    """``x`` as a float, or None when it is None, NaN or +-infinity."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` with every non-finite float (NaN, +-inf) replaced by None.

    Mappings become dicts (keys kept), lists and tuples become lists; other values are
    returned as they are (so ``json.dumps`` still rejects what it cannot write).
    """
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
