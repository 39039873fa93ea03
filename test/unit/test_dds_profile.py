"""config/fastdds_large_data.xml: the Fast DDS profile that the demo, the launch file, the
tests and the benchmark give their processes. Checked as a file here;
test/ros/test_dds_transport.py checks that rmw_fastrtps really builds its transports from it."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET

from testkit.processes import DDS_PROFILE, REPO

NS = {"f": "http://www.eprosima.com"}
LAUNCH = REPO / "launch" / "spatial_mllm.launch.py"

#: The largest frame the profile is sized for: 1280x720 rgb8 colour + 16UC1 depth.
HD_FRAME_BYTES = 1280 * 720 * 3 + 1280 * 720 * 2
#: Fast DDS cuts samples into fragments of at most this size (its UDPv4 transport's limit).
FRAGMENT_BYTES = 65500


def _default_participant() -> ET.Element:
    root = ET.parse(DDS_PROFILE).getroot()
    defaults = [p for p in root.iterfind("f:profiles/f:participant", NS)
                if p.get("is_default_profile") == "true"]
    assert len(defaults) == 1, "rmw_fastrtps takes the one default participant profile"
    return defaults[0]


def _transports() -> dict[str, ET.Element]:
    root = ET.parse(DDS_PROFILE).getroot()
    return {d.findtext("f:transport_id", default="", namespaces=NS): d
            for d in root.iterfind("f:profiles/f:transport_descriptors/f:transport_descriptor",
                                   NS)}


def test_default_participant_uses_only_the_profiles_transports() -> None:
    rtps = _default_participant().find("f:rtps", NS)
    assert rtps is not None
    # with built-in transports on, Fast DDS adds its own 512 KiB segment next to ours
    assert rtps.findtext("f:useBuiltinTransports", namespaces=NS) == "false"
    used = [t.text or "" for t in rtps.iterfind("f:userTransports/f:transport_id", NS)]
    defined = _transports()
    assert used and set(used) <= set(defined), (used, sorted(defined))
    kinds = sorted(defined[t].findtext("f:type", namespaces=NS) or "" for t in used)
    assert kinds == ["SHM", "UDPv4"]  # shared memory on the host; UDP to discover, other hosts


def test_shared_memory_segment_holds_several_hd_frames() -> None:
    shm = next(d for d in _transports().values()
               if d.findtext("f:type", namespaces=NS) == "SHM")
    segment = int(shm.findtext("f:segment_size", namespaces=NS) or 0)
    queue = int(shm.findtext("f:port_queue_capacity", namespaces=NS) or 512)
    assert segment >= 3 * HD_FRAME_BYTES
    assert queue >= segment // FRAGMENT_BYTES  # a full segment of fragments fits the port


def test_launch_file_ships_this_profile() -> None:
    names = {}
    for node in ast.walk(ast.parse(LAUNCH.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node.value.value
    assert names.get("DDS_PROFILE") == DDS_PROFILE.name
    assert names.get("DDS_PROFILE_ENV") == "FASTDDS_DEFAULT_PROFILES_FILE"
    assert DDS_PROFILE.parent == REPO / "config"  # CMakeLists installs config/ to share/


def test_reliable_writers_repair_a_lost_sample_well_before_a_frame_stops_waiting() -> None:
    from spatial_mllm_ros.params import default_float

    root = ET.parse(DDS_PROFILE).getroot()
    writers = [w for w in root.iterfind("f:profiles/f:data_writer", NS)
               if w.get("is_default_profile") == "true"]
    assert len(writers) == 1, "rmw_fastrtps starts every writer from the default profile"
    period = writers[0].find("f:times/f:heartbeat_period", NS)
    assert period is not None
    seconds = int(period.findtext("f:sec", default="0", namespaces=NS)) + int(
        period.findtext("f:nanosec", default="0", namespaces=NS)) / 1e9
    # a lost pose is asked for again after the next heartbeat: several repairs fit the wait
    assert 0 < seconds <= default_float("pairing.wait_s") / 10
