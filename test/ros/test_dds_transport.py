"""The shipped Fast DDS profile is what rmw_fastrtps builds a ROS process's transports from:
with it, the process's shared-memory segment is the profile's (16 MiB) and Fast DDS's default
512 KiB segment is not created; without it, the default one is.

Each case is a fresh process (Fast DDS reads the profile once per process) with discovery
OFF (no traffic, and rmw_fastrtps leaves the transports to the profile; LOCALHOST would add
its own default segment), on a domain of its own. The process reports the sizes of the
/dev/shm/fastdds_* segments it has mapped (/proc/self/maps).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from testkit.processes import DDS_PROFILE, REPO, claim_domain_id

FAST_DDS_DEFAULT_SEGMENT = 512 * 1024

CHILD = r"""
import json, os, rclpy
rclpy.init()
node = rclpy.create_node("dds_profile_check")
paths = set()
with open("/proc/self/maps") as fh:
    for line in fh:
        path = line.split()[-1]
        name = os.path.basename(path)
        if path.startswith("/dev/shm/fastdds_") and "port" not in name and not name.endswith("_el"):
            paths.add(path)
print(json.dumps(sorted(os.path.getsize(p) for p in paths)))
node.destroy_node()
rclpy.shutdown()
"""

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(),
                                reason="needs Linux /proc/self/maps and /dev/shm")


def _segments(profile: Path | None, domain: int) -> list[int]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "OFF"
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile is not None:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Error" not in res.stdout + res.stderr, res.stdout + res.stderr  # XML parse errors
    sizes: list[int] = json.loads(res.stdout.strip().splitlines()[-1])
    return sizes


def _profile_segment_size() -> int:
    ns = {"f": "http://www.eprosima.com"}
    root = ET.parse(DDS_PROFILE).getroot()
    return max(int(e.text or 0) for e in root.iterfind(".//f:segment_size", ns))


def test_process_with_the_profile_has_only_its_large_segment() -> None:
    domain = claim_domain_id()
    with_profile = _segments(DDS_PROFILE, domain)
    without = _segments(None, domain)
    size = _profile_segment_size()
    # a segment file is its size plus Fast DDS's bookkeeping (a few per cent)
    assert len(with_profile) == 1 and size <= with_profile[0] < 1.2 * size, with_profile
    assert len(without) == 1 and FAST_DDS_DEFAULT_SEGMENT <= without[0] < size, without
