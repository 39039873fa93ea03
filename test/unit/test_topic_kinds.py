"""The camera streams are one table (params.TOPIC_KINDS): the parameters, the bags' expected
message types, the colour kinds and the synthetic streams all come from it."""

from __future__ import annotations

from spatial_mllm_ros import params as P
from spatial_mllm_ros.bags.topics import COLOUR_KINDS, EXPECTED_TYPES
from spatial_mllm_ros.sampling.online import AdmitReason
from spatial_mllm_ros.synthetic.sensor_messages import TOPIC_KINDS as SYNTHETIC_KINDS


def test_every_stream_has_a_schema_parameter_of_its_topic() -> None:
    for t in P.TOPIC_KINDS:
        assert P.spec(t.param).type is str, t
        assert t.msg_type.count("/msg/") == 1, t
    assert len({t.kind for t in P.TOPIC_KINDS}) == len(P.TOPIC_KINDS)


def test_the_derived_tables_agree_with_the_one_table() -> None:
    kinds = [t.kind for t in P.TOPIC_KINDS]
    assert list(P.TOPIC_PARAMS) == kinds == list(EXPECTED_TYPES) == list(SYNTHETIC_KINDS)
    assert COLOUR_KINDS == ("colour", "colour_compressed")
    assert EXPECTED_TYPES["odometry"] == "nav_msgs/msg/Odometry"


def test_admission_reasons_are_the_diagnostics_keys() -> None:
    assert f"buffer.admit.{AdmitReason.NEW_COVERAGE}" == "buffer.admit.new_coverage"
    assert len({r.value for r in AdmitReason}) == len(AdmitReason)
