"""Test tiers: every test gets the marker of the folder it lives in.

    test/unit   -> ``unit``   pure code, no model, no ROS processes (seconds)
    test/model  -> ``model``  the tiny generated checkpoint (minutes on a CPU)
    test/cli    -> ``cli``    the README's command lines run as processes, as a user types them
    test/ros    -> ``ros``    real node and publisher processes over DDS (minutes)

so that ``pytest -m unit``, ``pytest -m "not ros"`` and the like select by tier as well as by
path.  A test in any other folder under test/ is an error (it would belong to no tier).
"""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "model", "cli", "ros")
HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = Path(item.path).resolve().relative_to(HERE).parts[0]
        except ValueError:  # not under test/
            continue
        if folder not in TIERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live in one of test/{{{','.join(TIERS)}}} (the tiers)")
        item.add_marker(getattr(pytest.mark, folder))
