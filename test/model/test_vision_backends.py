"""Accelerated vision encoders in the engine: onnxruntime (CPU provider) end to end on the tiny
checkpoint and the shelf frames, the parity check and its fallback, torch while an input size is
prepared, a damaged ONNX cache, and TensorRT where tensorrt and a GPU are present.

Tolerances: the encoders' outputs within the fp32 parity tolerance (1e-3 relative RMS; observed
~1e-6); greedy token ids and text identical. The checkpoint's repetition penalty is raised to
5.0 so that the tiny model's ids depend on the frames (without it it repeats one token).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from testkit.tiny import SMALL_PIXELS, real_frames, real_images, require_data, tiny_checkpoint

from spatial_mllm_ros.model.backends.config import DEFAULT_TOLERANCE, VisionSpec
from spatial_mllm_ros.model.decoding import DecodingSpec
from spatial_mllm_ros.model.engine import SpatialMLLMEngine
from spatial_mllm_ros.model.processing import build_inputs

PROMPT = (
    "These are frames of a video.\nHow many boxes are there?\n"
    "Please answer the question using a single word or phrase."
)
PENALTY = DecodingSpec(mode="checkpoint", repetition_penalty=5.0)
SIZE = (252, 364)  # the shelf's 640x480 frames at SMALL_PIXELS (H, W)


def _spec(cache: Path, **changes: Any) -> VisionSpec:
    base = VisionSpec("onnxruntime", "fp32", str(cache), (), 2, 4, 8, 0.0, 600.0)
    return dataclasses.replace(base, **changes)


def _engine(vision: VisionSpec | None = None) -> SpatialMLLMEngine:
    return SpatialMLLMEngine.from_pretrained(
        tiny_checkpoint("v1.1"), max_pixels=SMALL_PIXELS, decoding=PENALTY, vision=vision
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="module")
def torch_engine() -> SpatialMLLMEngine:
    return _engine()


@pytest.fixture(scope="module")
def ort_engine(cache_dir: Path) -> SpatialMLLMEngine:
    engine = _engine(_spec(cache_dir, sizes=(SIZE,)))
    status = engine.prepare_vision(*SIZE, wait_s=None)
    assert status is not None and status.state == "active", status
    return engine


def test_onnxruntime_gives_torchs_answer_on_the_shelf_frames(
    torch_engine: SpatialMLLMEngine, ort_engine: SpatialMLLMEngine
) -> None:
    before = ort_engine.vision_backend_status.sizes[0].accelerated_calls
    answers = []
    for count in (4, 6):
        images = real_images(count)
        want = torch_engine.answer_images(images, PROMPT, max_new_tokens=10)
        got = ort_engine.answer_images(images, PROMPT, max_new_tokens=10)
        assert got.token_ids == want.token_ids and got.text == want.text
        assert got.resized_size == (SIZE[1], SIZE[0])
        answers.append(want.token_ids)
    assert answers[0] != answers[1]  # the ids depend on the frames, so equal ids mean something
    (size,) = ort_engine.vision_backend_status.sizes
    assert size.size == "252x364" and size.state == "active"
    assert size.accelerated_calls == before + 4  # both encoders, both clips
    assert ort_engine.vision_backend_status.level == "ok"


def test_onnxruntime_encoders_and_logits_agree_with_torch(
    torch_engine: SpatialMLLMEngine, ort_engine: SpatialMLLMEngine
) -> None:
    clip = ort_engine.prepare(real_images(4))
    inputs = build_inputs(ort_engine.processor, clip, PROMPT)
    model, ref = ort_engine.model, torch_engine.model
    args = (inputs["pixel_values_videos"], inputs["video_grid_thw"])
    with torch.no_grad():
        got_2d = model.vision_backend.run_2d(*args)
        want_2d = ref.torch_vision_2d(*args)
        got_sp = model.vision_backend.run_spatial(inputs["video_tchw"])
        want_sp = ref.torch_spatial_tokens(inputs["video_tchw"])
        got_logits = model(**inputs).logits
        want_logits = ref(**inputs).logits
        darker = build_inputs(ort_engine.processor, ort_engine.prepare(
            [im // 2 for im in real_images(4)]), PROMPT)
        other_logits = ref(**darker).logits
    tol = DEFAULT_TOLERANCE["fp32"]
    for got, want in ((got_2d, want_2d), (got_sp, want_sp)):
        assert float((got - want).norm() / want.norm()) < tol
    gap = float((got_logits - want_logits).abs().max())
    assert gap < 1e-4
    assert float((other_logits - want_logits).abs().max()) > 100 * gap  # frames matter


def test_parity_failure_falls_back_to_torch_with_a_warning(
    torch_engine: SpatialMLLMEngine, cache_dir: Path
) -> None:
    engine = _engine(_spec(cache_dir, parity_tolerance=1e-12))
    status = engine.prepare_vision(*SIZE, wait_s=None)
    assert status is not None and status.state == "fallback"
    assert "parity" in status.message and set(status.parity) == {"vision_2d", "spatial"}
    images = real_images(4)
    got = engine.answer_images(images, PROMPT, max_new_tokens=6)
    assert got.token_ids == torch_engine.answer_images(images, PROMPT, max_new_tokens=6).token_ids
    vision = engine.vision_backend_status
    assert vision.level == "warn" and "fallback" in vision.message
    assert vision.sizes[0].accelerated_calls == 0 and vision.sizes[0].torch_calls == 2
    assert vision.to_values()["vision.252x364.state"] == "fallback"


def test_torch_answers_while_a_size_is_prepared(
    torch_engine: SpatialMLLMEngine, cache_dir: Path
) -> None:
    """build_wait_s = 0: the first clip of a new size runs torch and queues its preparation;
    once it is active the same clip runs onnxruntime, with the same answer."""
    engine = _engine(_spec(cache_dir, build_wait_s=0.0))
    images = real_images(2)
    first = engine.answer_images(images, PROMPT, max_new_tokens=6)
    (size,) = engine.vision_backend_status.sizes
    assert size.torch_calls == 2 and size.accelerated_calls == 0
    assert engine.prepare_vision(*SIZE, wait_s=None).state == "active"  # type: ignore[union-attr]
    second = engine.answer_images(images, PROMPT, max_new_tokens=6)
    assert second.token_ids == first.token_ids
    assert engine.vision_backend_status.sizes[0].accelerated_calls == 2


def test_warm_up_prepares_nothing(cache_dir: Path) -> None:
    engine = _engine(_spec(cache_dir))
    engine.warm_up()
    assert engine.vision_backend_status.sizes == ()


def test_a_damaged_cached_graph_is_exported_again(ort_engine: SpatialMLLMEngine,
                                                   cache_dir: Path) -> None:
    graphs = sorted(cache_dir.glob("onnx/*/252x364/vision_encoder.onnx"))
    assert len(graphs) == 1  # exported once, by the first engine; reused since
    graphs[0].write_bytes(b"not onnx")
    engine = _engine(_spec(cache_dir))
    status = engine.prepare_vision(*SIZE, wait_s=None)
    assert status is not None and status.state == "active", status.message
    assert graphs[0].stat().st_size > 1000


def test_tensorrt_without_a_gpu_runs_torch_and_says_why(
    torch_engine: SpatialMLLMEngine, cache_dir: Path
) -> None:
    engine = _engine(_spec(cache_dir, backend="tensorrt", precision="fp16"))
    images = real_images(2)
    got = engine.answer_images(images, PROMPT, max_new_tokens=6)
    assert got.token_ids == torch_engine.answer_images(images, PROMPT, max_new_tokens=6).token_ids
    vision = engine.vision_backend_status
    assert vision.level == "warn" and "CUDA device" in vision.note
    assert vision.sizes[0].state == "failed"


def _tensorrt_missing() -> str:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return ""


@pytest.mark.skipif(bool(_tensorrt_missing()), reason=_tensorrt_missing() or "n/a")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engines_build_check_and_heal(precision: str, tmp_path: Path) -> None:
    """Real TensorRT on the GPU: engines built, parity-checked, reused, and a corrupt engine
    file rebuilt."""
    spec = _spec(tmp_path, backend="tensorrt", precision=precision)
    engine = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), device="cuda",
                                               max_pixels=SMALL_PIXELS, vision=spec)
    status = engine.prepare_vision(*SIZE, wait_s=None)
    assert status is not None and status.state == "active", status.message
    plans = sorted(tmp_path.glob("trt/*/*/engine.plan"))
    assert len(plans) == 2
    result = engine.answer_images(real_images(4), PROMPT, max_new_tokens=4)
    assert result.num_new_tokens >= 1
    assert engine.vision_backend_status.sizes[0].accelerated_calls == 2
    plans[0].write_bytes(plans[0].read_bytes()[:100])
    again = SpatialMLLMEngine.from_pretrained(tiny_checkpoint("v1.1"), device="cuda",
                                              max_pixels=SMALL_PIXELS, vision=spec)
    healed = again.prepare_vision(*SIZE, wait_s=None)
    assert healed is not None and healed.state == "active", healed.message
    assert plans[0].stat().st_size > 100


def test_infer_cli_with_onnxruntime_answers_as_with_torch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``spatial-mllm-infer --vision-backend onnxruntime`` (waiting for its engines) prints
    torch's answer for the shelf frames."""
    from spatial_mllm_ros.cli.infer import infer_main

    common = ["--checkpoint", str(tiny_checkpoint("v1.1")), "--frames", str(require_data()),
              "--question", "How many boxes are on the shelf?", "--frame-budget", "4",
              "--max-new-tokens", "8", "--max-pixels", str(SMALL_PIXELS), "--no-grounding",
              "--no-progress", "-p", "answer.repetition_penalty:=5.0"]
    answers = {}
    for backend in ("torch", "onnxruntime"):
        extra = ["--vision-backend", backend, "-p", f"model.vision_cache_dir:={tmp_path}",
                 "-p", "model.vision_build_wait_s:=600"]
        assert infer_main(common + extra) == 0
        answers[backend] = json.loads(capsys.readouterr().out)
    want, got = answers["torch"], answers["onnxruntime"]
    for key in ("status", "answer", "numeric_value", "option", "frame_stamps_ns"):
        assert got[key] == want[key], key
    assert len(want["answer"]) > 1
    (manifest,) = tmp_path.glob("onnx/*/252x364/export.json")  # its graphs were made and used
    assert set(json.loads(manifest.read_text())) == {"vision_encoder", "spatial_encoder"}


def test_evaluator_with_onnxruntime_answers_as_with_torch(tmp_path: Path) -> None:
    """``spatial-mllm-eval --vision-backend onnxruntime`` on the shelf recording gives torch's
    answers for every strategy."""
    from spatial_mllm_ros.evaluation.cli import bag_from_rgbd_main, eval_main
    from spatial_mllm_ros.evaluation.results import RESULTS_FILE, load_results

    bag = tmp_path / "shelf_bag"
    assert bag_from_rgbd_main([str(require_data()), str(bag)]) == 0
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({
        "id": "shelf-count", "question": "How many boxes are in the shelf bin?",
        "question_type": "object_counting", "ground_truth": 1}) + "\n", encoding="utf-8")
    records = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        assert eval_main([
            str(bag), "--questions", str(questions), "--out", str(out),
            "--checkpoint", str(tiny_checkpoint("v1.1")), "--frame-budget", "4",
            "--max-new-tokens", "8", "--no-grounding", "--no-progress", "--no-thumbnails",
            "--vision-backend", backend, "-p", f"model.max_pixels:={SMALL_PIXELS}",
            "-p", "answer.repetition_penalty:=5.0", "-p", f"model.vision_cache_dir:={tmp_path}",
            "-p", "model.vision_build_wait_s:=600",
        ]) == 0
        records[backend] = {r["strategy"]: r["record"] for r in load_results(out / RESULTS_FILE)}
    assert set(records["torch"]) == {"coverage", "uniform"}
    for strategy, want in records["torch"].items():
        got = records["onnxruntime"][strategy]
        assert want["status"] == "OK" and len(want["answer"]) > 1
        for key in ("answer", "numeric_value", "frame_stamps_ns"):
            assert got[key] == want[key], (strategy, key)
    assert list(tmp_path.glob("onnx/*/*/export.json"))


def test_model_process_answers_with_onnxruntime_and_reports_it(
    torch_engine: SpatialMLLMEngine, tmp_path: Path
) -> None:
    """The node's model process: torch's token ids, and its vision status (active, no size
    queued by its warm-up) readable from the node's side."""
    from spatial_mllm_ros.answering.process import ProcessAnswerer
    from spatial_mllm_ros.settings import Settings

    settings = Settings.from_profile("cpu_tiny", {
        "model.checkpoint": str(tiny_checkpoint("v1.1")), "model.max_pixels": SMALL_PIXELS,
        "answer.repetition_penalty": 5.0, "model.vision_backend": "onnxruntime",
        "model.vision_cache_dir": str(tmp_path), "model.vision_sizes": "252x364",
        "model.vision_build_wait_s": 600.0})
    answerer = ProcessAnswerer(settings.engine)
    try:
        frames = real_frames(4)
        got = answerer.answer(frames, PROMPT, 10)
        assert got.token_ids == torch_engine.answer(frames, PROMPT, 10).token_ids
        status = answerer.status().vision
        assert status is not None and status.requested == "onnxruntime"
        (size,) = status.sizes
        assert (size.size, size.state, size.accelerated_calls) == ("252x364", "active", 2)
    finally:
        answerer.close()
