"""The vision backend's status on /diagnostics: WARN when the node fell back to torch."""

from __future__ import annotations

from spatial_mllm_ros.model.backends.status import SizeStatus, VisionStatus


def test_a_parity_fallback_is_a_warning_with_the_figures() -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    from spatial_mllm_ros.ros.diagnostics import vision_status

    ok = VisionStatus("onnxruntime", "fp32", (SizeStatus("476x644", "active"),))
    fell_back = VisionStatus("tensorrt", "fp16", (SizeStatus(
        "476x644", "fallback", "parity 0.31 > 0.02", {"vision_2d": 0.31}),))
    good = vision_status(ok, hardware_id="n")
    bad = vision_status(fell_back, hardware_id="n")
    assert good.level == DiagnosticStatus.OK
    assert bad.level == DiagnosticStatus.WARN and "fallback" in bad.message
    values = {kv.key: kv.value for kv in bad.values}
    assert values["vision.476x644.state"] == "fallback"
    assert values["vision.476x644.parity.vision_2d"] == "0.31"
