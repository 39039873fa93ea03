"""ONNX export of the vision encoders: onnxruntime (CPU) reproduces PyTorch on a tiny checkpoint
for any number of frames at the exported size, with and without external data.

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

from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.model import export as onnx_export
from spatial_mllm_ros.model.cli import checkpoint_main
from spatial_mllm_ros.model.engine import load_model

HEIGHT, WIDTH = 112, 140
ATOL = RTOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, dict]:
    model, _ = load_model(tiny_checkpoint("v1.1"))
    out = tmp_path_factory.mktemp("onnx")
    graphs = onnx_export.export_encoders(model, out, HEIGHT, WIDTH)
    return model, out, graphs


def _size(model: object) -> onnx_export.GraphSize:
    return onnx_export.graph_size(model, HEIGHT, WIDTH)  # type: ignore[arg-type]


def test_graphs_are_valid_onnx_with_documented_io(exported: tuple) -> None:
    _, _, graphs = exported
    for graph, (inp, out, axis) in (
        (graphs["vision_encoder"], ("pixel_values", "video_embeds", "patches")),
        (graphs["spatial_encoder"], ("video_tchw", "layer_tokens", "frames")),
    ):
        onnx.checker.check_model(graph.path)
        proto = onnx.load(graph.path)
        assert [i.name for i in proto.graph.input] == [inp]
        assert [o.name for o in proto.graph.output] == [out]
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == axis
        assert proto.opset_import[0].version >= 17
        assert graph.external_data == ""  # the tiny graphs stay below the threshold
    assert graphs["vision_encoder"].inputs == {"pixel_values": ["patches", 1176]}
    assert graphs["spatial_encoder"].inputs == {"video_tchw": ["frames", 3, HEIGHT, WIDTH]}


@pytest.mark.parametrize("frames", [2, 4, 6])
def test_onnxruntime_matches_the_torch_encoders_for_any_frame_count(
    exported: tuple, frames: int
) -> None:
    """ORT on fresh inputs (not the tracing ones), at frame counts other than the traced 4,
    equals the model's own encoders -- and so the fused tokens of encode_video."""
    model, _, graphs = exported
    size = _size(model)
    inputs = onnx_export.example_inputs(size, frames, seed=123)
    (vision,) = onnx_export.run_onnx(graphs["vision_encoder"].path,
                                     {"pixel_values": inputs["pixel_values"]})
    (spatial,) = onnx_export.run_onnx(graphs["spatial_encoder"].path,
                                      {"video_tchw": inputs["video_tchw"]})
    grid = torch.tensor([[frames // 2, HEIGHT // 14, WIDTH // 14]])
    with torch.no_grad():
        want_2d = model.torch_vision_2d(inputs["pixel_values"], grid)
        want_spatial = model.torch_spatial_tokens(inputs["video_tchw"].unsqueeze(0))[0]
        fused = model.encode_video(inputs["pixel_values"], grid, inputs["video_tchw"])
        from_graphs = model.connector(vision, spatial.unsqueeze(0), 0, (8, 10))
    assert tuple(vision.shape) == size.output_shape("vision_encoder", frames)
    assert tuple(spatial.shape) == size.output_shape("spatial_encoder", frames)
    torch.testing.assert_close(vision, want_2d, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(spatial, want_spatial, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(from_graphs, fused, atol=ATOL, rtol=RTOL)
    # each part is non-trivial, so a graph returning zeros cannot pass
    assert float(vision.abs().max()) > 1e-3
    assert float(spatial.abs().max()) > 1e-3


def test_graphs_are_fixed_to_their_size(exported: tuple) -> None:
    import onnxruntime as ort

    _, _, graphs = exported
    session = ort.InferenceSession(graphs["spatial_encoder"].path,
                                   providers=["CPUExecutionProvider"])
    wrong = torch.rand(2, 3, HEIGHT, WIDTH + 28).numpy()
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime's error types are not public
        session.run(None, {"video_tchw": wrong})


def test_external_data_export_loads_and_matches(exported: tuple, tmp_path: Path) -> None:
    """With the threshold forced to 0, the weights go to ONE side file, and the graph still
    loads (from its path) and matches."""
    model, _, _ = exported
    graphs = onnx_export.export_encoders(model, tmp_path, HEIGHT, WIDTH,
                                         external_data_threshold=0)
    for graph in graphs.values():
        main, data = graph.files
        assert graph.external_data == f"{main.name}.data" and data.is_file()
        assert data.stat().st_size > main.stat().st_size  # the weights are outside
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(main.stem)) == [
            main.name, data.name]
        onnx.checker.check_model(graph.path)
    size = _size(model)
    inputs = onnx_export.example_inputs(size, 2, seed=7)
    (vision,) = onnx_export.run_onnx(graphs["vision_encoder"].path,
                                     {"pixel_values": inputs["pixel_values"]})
    grid = torch.tensor([[1, HEIGHT // 14, WIDTH // 14]])
    with torch.no_grad():
        want = model.torch_vision_2d(inputs["pixel_values"], grid)
    torch.testing.assert_close(vision, want, atol=ATOL, rtol=RTOL)


def test_export_leaves_the_model_as_it_was(exported: tuple, tmp_path: Path) -> None:
    """A bfloat16 model is exported in float32 and is bfloat16 again afterwards."""
    model, _ = load_model(tiny_checkpoint("v1.1"), dtype="bfloat16")
    graphs = onnx_export.export_encoders(model, tmp_path, HEIGHT, WIDTH)
    proto = onnx.load(graphs["spatial_encoder"].path)
    assert {t.data_type for t in proto.graph.initializer} <= {
        onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, onnx.TensorProto.BOOL}
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_cli_writes_graphs_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["export-onnx", str(tiny_checkpoint("v1.1")), str(tmp_path)]
    argv += ["--height", "112", "--width", "140"]
    assert checkpoint_main(argv) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["size"] == {"height": 112, "width": 140}
    for name in ("vision_encoder", "spatial_encoder"):
        entry = manifest["graphs"][name]
        assert Path(entry["path"]).is_file()
        assert entry["trtexec"].startswith(f"trtexec --onnx={entry['path']}")
        assert "--fp16" in entry["trtexec"] and "--maxShapes=" in entry["trtexec"]
        assert entry["max_abs_diff_onnxruntime"] < ATOL


def test_rejects_sizes_the_model_cannot_take(exported: tuple, tmp_path: Path) -> None:
    model = exported[0]
    with pytest.raises(onnx_export.ExportError):
        onnx_export.export_encoders(model, tmp_path, 100, WIDTH)
    with pytest.raises(onnx_export.ExportError):
        _size(model).input_shape("spatial_encoder", 3)


def test_build_engines_prepares_a_profile_ahead_of_time(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``build-engines`` fills the cache the node will use; a second run reuses the graphs."""
    argv = ["build-engines", str(tiny_checkpoint("v1.1")), "--config", "cpu_tiny",
            "--backend", "onnxruntime", "--size", "112x140", "--cache-dir", str(tmp_path),
            "--no-progress"]
    assert checkpoint_main(argv) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["requested"] == "onnxruntime"
    (size,) = status["sizes"]
    assert (size["size"], size["state"]) == ("112x140", "active")
    assert size["parity"]["spatial"] < size["tolerance"]
    (manifest,) = tmp_path.glob("onnx/*/112x140/export.json")
    stamp = manifest.stat().st_mtime_ns
    assert checkpoint_main(argv) == 0
    capsys.readouterr()
    assert manifest.stat().st_mtime_ns == stamp  # found in the cache, not exported again


def test_build_engines_needs_a_size_and_an_accelerated_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["build-engines", str(tiny_checkpoint("v1.1")), "--cache-dir", str(tmp_path),
            "--no-progress"]
    assert checkpoint_main(base) == ExitCode.MODEL  # cpu_tiny runs torch
    assert "model.vision_backend is torch" in capsys.readouterr().err
    assert checkpoint_main([*base, "--backend", "onnxruntime"]) == ExitCode.MODEL
    assert "--size" in capsys.readouterr().err
