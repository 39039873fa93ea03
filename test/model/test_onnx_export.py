"""ONNX export of the vision encoders: onnxruntime (CPU) reproduces PyTorch on a tiny checkpoint.

Tolerance: float32 on both sides, atol 1e-4 / rtol 1e-4 (observed max |diff| ~1e-6 on the
tiny model).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

import onnx
from testkit.tiny import tiny_checkpoint

from spatial_mllm_ros.model import export as onnx_export
from spatial_mllm_ros.model.cli import checkpoint_main
from spatial_mllm_ros.model.engine import load_model

FRAMES, HEIGHT, WIDTH = 2, 112, 140
ATOL = RTOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, dict]:
    model, _ = load_model(tiny_checkpoint("v1.1"))
    out = tmp_path_factory.mktemp("onnx")
    graphs = {
        "vision": onnx_export.export_vision_encoder(
            model, out / "vision.onnx", FRAMES, HEIGHT, WIDTH
        ),
        "spatial": onnx_export.export_spatial_encoder(
            model, out / "spatial.onnx", FRAMES, HEIGHT, WIDTH
        ),
    }
    return model, out, graphs


def _inputs(model: object, seed: int) -> dict[str, torch.Tensor]:
    shape = onnx_export.clip_shape(model, FRAMES, HEIGHT, WIDTH)  # type: ignore[arg-type]
    return onnx_export.example_inputs(shape, seed=seed)


def test_graphs_are_valid_onnx_with_documented_io(exported: tuple) -> None:
    _, _, graphs = exported
    for graph, (inp, out) in (
        (graphs["vision"], ("pixel_values", "video_embeds")),
        (graphs["spatial"], ("video_tchw", "spatial_embeds")),
    ):
        proto = onnx.load(graph.path)
        onnx.checker.check_model(proto)
        assert [i.name for i in proto.graph.input] == [inp]
        assert [o.name for o in proto.graph.output] == [out]
        assert proto.opset_import[0].version >= 17
    # N = T * gh/2 * gw/2 = 1 * 4 * 5 tokens of the LLM width
    assert graphs["vision"].inputs == {"pixel_values": [80, 1176]}
    assert graphs["vision"].outputs["video_embeds"][0] == 20
    assert graphs["spatial"].outputs["spatial_embeds"] == graphs["vision"].outputs["video_embeds"]


def test_onnxruntime_matches_encode_video(exported: tuple) -> None:
    """ORT(vision) + ORT(spatial) on fresh inputs (not the tracing inputs) == encode_video."""
    model, _, graphs = exported
    inputs = _inputs(model, seed=123)
    vision = onnx_export.run_onnx(graphs["vision"].path, {"pixel_values": inputs["pixel_values"]})
    spatial = onnx_export.run_onnx(graphs["spatial"].path, {"video_tchw": inputs["video_tchw"]})
    grid = torch.tensor([[1, HEIGHT // 14, WIDTH // 14]])
    with torch.no_grad():
        fused = model.encode_video(inputs["pixel_values"], grid, inputs["video_tchw"])
    torch.testing.assert_close(vision[0] + spatial[0], fused, atol=ATOL, rtol=RTOL)
    # each part is non-trivial, so a graph returning zeros cannot pass
    assert float(vision[0].abs().max()) > 1e-3
    assert float(spatial[0].abs().max()) > 1e-3


def test_spatial_graph_is_fixed_shape(exported: tuple) -> None:
    import onnxruntime as ort

    _, _, graphs = exported
    session = ort.InferenceSession(graphs["spatial"].path, providers=["CPUExecutionProvider"])
    wrong = torch.rand(FRAMES, 3, HEIGHT, WIDTH + 28).numpy()
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime's error types are not public
        session.run(None, {"video_tchw": wrong})


def test_cli_writes_graphs_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["export-onnx", str(tiny_checkpoint("v1.1")), str(tmp_path)]
    argv += ["--frames", "2", "--height", "112", "--width", "140"]
    assert checkpoint_main(argv) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["grid_thw"] == [1, 8, 10]
    for name in ("vision_encoder", "spatial_encoder"):
        entry = manifest["graphs"][name]
        assert Path(entry["path"]).is_file()
        assert entry["trtexec"].startswith(f"trtexec --onnx={entry['path']}")
        assert "--fp16" in entry["trtexec"]
        assert entry["max_abs_diff_onnxruntime"] < ATOL


def test_rejects_clip_sizes_the_model_cannot_take(exported: tuple, tmp_path: Path) -> None:
    model = exported[0]
    with pytest.raises(onnx_export.ExportError):
        onnx_export.export_spatial_encoder(model, tmp_path / "x.onnx", 3, HEIGHT, WIDTH)
    with pytest.raises(onnx_export.ExportError):
        onnx_export.export_vision_encoder(model, tmp_path / "x.onnx", FRAMES, 100, WIDTH)
