"""The README's command lines, run as processes with the README's arguments.

The environment is the one the README's "one line makes a shell ready" gives (``make test``
runs pytest inside it), plus a ROS_DOMAIN_ID of this session's own and localhost discovery,
so that concurrent test sessions never see each other's nodes.  Nothing else is set for the
commands: in particular not ``FASTDDS_DEFAULT_PROFILES_FILE``, which the shell-ready line
itself must provide.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from testkit.paths import SHELF
from testkit.processes import claim_domain_id

DOMAIN_ID = claim_domain_id()
os.environ["ROS_DOMAIN_ID"] = str(DOMAIN_ID)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


@pytest.fixture(scope="session")
def shelf() -> Path:
    """``../shared/data/real_rgbd_shelf`` (the README's real frames)."""
    if not SHELF.is_dir():
        pytest.skip(f"{SHELF} is not here (CI lays shared/ beside the checkout)")
    return SHELF
