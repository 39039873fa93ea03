"""Parity with the authors' code: the same tiny v1.1 checkpoint, frames and question, run by
Spatial-MLLM's own evaluation path under transformers 4.51 and by this project.

Runs only where both are given (skipped with the reason elsewhere):

``SPATIAL_MLLM_REFERENCE_DIR``
    a checkout of github.com/diankun-wu/Spatial-MLLM (branch ``master``, the v1.1 code) whose
    ``src/`` package is importable from its root;
``SPATIAL_MLLM_REFERENCE_PYTHON``
    a Python interpreter with transformers==4.51.3, torch, qwen_vl_utils and the reference's
    other requirements (``pip install`` line of its README: deepspeed, datasets, pandas, ...).

The reference side (``reference_side.py`` beside this file, run by that interpreter in the
checkout) builds the batch with ``eval_vsibench.prepare_chat_batch`` -- VSI-Bench chat text,
``qwen_vl_utils.process_vision_info`` over a folder of PNG frames, the processor,
``prepare_spatial_mllm_inputs`` -- and decodes with ``generate`` as ``inference_batch`` does;
its VGGT is built at the checkpoint's tiny sizes from the reference's own classes (see that
script). This side builds the same question with :func:`build_prompt` and answers through
:class:`SpatialMLLMEngine`. Compared: (1) the chat text of a numeric and a multiple-choice
question; (2) input_ids, attention mask, video grid, ``second_per_grid_ts`` and the pixels both
encoders get; (3) the M-RoPE position ids (temporal, height and width rows); (4) the logits of
every generated step (max abs difference, float32); (5) the generated token ids with the
checkpoint's ``generation_config.json``.

Two frame sets: ``model_size`` (frames already at a model input size, 392 x 280 px: no resize
on either side, so the model is compared alone) and ``camera_size`` (640 x 480 px frames as
captured: the resize to the model size is compared too). The second depends on the
reference's qwen_vl_utils: 0.0.11 returns a frame list resized once at 28 px multiples (what
the project reproduces); 0.0.14, the current release, resizes it to 56 px multiples and then
again (QwenLM/Qwen3-VL#1833), so ``camera_size`` differs there by the environment, not the model.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from PIL import Image
from testkit.paths import SHELF

from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir
from spatial_mllm_ros.model.engine import SpatialMLLMEngine
from spatial_mllm_ros.model.processing import chat_text
from spatial_mllm_ros.model.spec import load_engine
from spatial_mllm_ros.model.tiny import write_checkpoint
from spatial_mllm_ros.settings import Settings
from spatial_mllm_ros.synthetic.walkthrough import make_walkthrough
from spatial_mllm_ros.vsibench.prompts import build_prompt
from spatial_mllm_ros.vsibench.templates import template_for_layout

REFERENCE_DIR_ENV = "SPATIAL_MLLM_REFERENCE_DIR"
REFERENCE_PYTHON_ENV = "SPATIAL_MLLM_REFERENCE_PYTHON"
HELPER = Path(__file__).with_name("reference_side.py")

N_FRAMES = 8  # even: no padding frame on either side
NEW_TOKENS = 8
REPETITION_PENALTY = 5.0
THREADS = 1
LOGIT_ATOL = 1e-4  # float32, both sides on CPU
PIXEL_ATOL = 1e-5  # normalised pixel units (about 1/255 = 0.0078 per grey level before /std)
MODEL_SIZE = (392, 280)  # (W, H): multiples of 28, within Qwen2.5-VL's video pixel bounds
CAMERA_SIZE = (640, 480)
DATASET, SCENE = "arkitscenes", "parity_scene"
HEADS = tuple(f"spatial_encoder.vggt_model.{h}_head." for h in ("camera", "depth", "point",
                                                                  "track"))
"""Checkpoint tensors of the VGGT heads, which question answering does not run."""

ITEMS: tuple[dict[str, Any], ...] = (
    {"question": "How many chair(s) are in this room?", "question_type": "object_counting",
     "options": None},
    {"question": "If I am standing by the shelf and facing the door, is the table to my left, "
                 "right, or back?", "question_type": "object_rel_direction_easy",
     "options": ["A. left", "B. right", "C. back"]},
)
"""VSI-Bench samples; the first one is answered by both models."""


def _reference() -> tuple[Path, Path]:
    """(checkout, interpreter) from the environment; skips, naming what is missing."""
    missing = []
    ref_dir = os.environ.get(REFERENCE_DIR_ENV, "")
    ref_python = os.environ.get(REFERENCE_PYTHON_ENV, "")
    if not ref_dir:
        missing.append(f"{REFERENCE_DIR_ENV} is not set: it must point to a checkout of "
                       "github.com/diankun-wu/Spatial-MLLM (master = v1.1) whose src/ is "
                       "importable from its root")
    if not ref_python:
        missing.append(f"{REFERENCE_PYTHON_ENV} is not set: it must point to a python "
                       "interpreter with transformers==4.51.3, torch, qwen_vl_utils and the "
                       "reference's other requirements (deepspeed, datasets, pandas, ...)")
    if missing:
        pytest.skip("reference parity check: " + "; ".join(missing))
    checkout, python = Path(ref_dir), Path(ref_python)
    if not (checkout / "src" / "qwenvl" / "model" / "spatial_mllm.py").is_file():
        pytest.fail(f"{REFERENCE_DIR_ENV}={checkout} is not a Spatial-MLLM v1.1 checkout "
                    "(no src/qwenvl/model/spatial_mllm.py)")
    if not os.access(python, os.X_OK):
        pytest.fail(f"{REFERENCE_PYTHON_ENV}={python} is not an executable interpreter")
    return checkout, python


def _source_frames() -> list[npt.NDArray[np.uint8]]:
    """N_FRAMES (480, 640, 3) uint8 RGB frames: real_rgbd_shelf if present, else synthetic."""
    if (SHELF / "frame-000000.color.png").is_file():
        return [f.rgb for f in load_rgbd_dir(SHELF, max_frames=N_FRAMES)]
    w, h = CAMERA_SIZE
    return [f.rgb for f in make_walkthrough(3, n_frames=N_FRAMES, width=w, height=h).frames]


def _frames_at(case: str) -> list[npt.NDArray[np.uint8]]:
    frames = _source_frames()
    if case == "camera_size":
        return frames
    return [np.asarray(Image.fromarray(f).resize(MODEL_SIZE, Image.Resampling.BICUBIC))
            for f in frames]


@dataclass
class Side:
    """One side's results for the first question.

    Attributes:
        prompts: chat text of every item of :data:`ITEMS`.
        arrays: input_ids (1, L), attention_mask (1, L), video_grid_thw (1, 3),
            second_per_grid_ts (1,) s, pixel_values_videos (patches, 1176) normalised,
            video_tchw (S, 3, H, W) in [0, 1], position_ids (3, 1, L), rope_deltas (1, 1),
            step_logits (steps, vocab) raw logits of each generated step, new_ids (steps,).
        info: anything else (versions, load report, public-path token ids).
    """

    prompts: list[str]
    arrays: dict[str, npt.NDArray[Any]]
    info: dict[str, Any]


@dataclass
class Parity:
    case: str
    reference: Side
    project: Side


def _run_reference(checkout: Path, python: Path, checkpoint: Path, frames: list[
        npt.NDArray[np.uint8]], work: Path) -> Side:
    scene = work / "videos" / DATASET / SCENE
    scene.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(scene / f"frame_{i:03d}.png")
    items = [{**item, "dataset": DATASET, "scene_name": SCENE} for item in ITEMS]
    request = {"checkpoint": str(checkpoint), "video_dir": str(work / "videos"),
               "nframes": N_FRAMES, "items": items, "max_new_tokens": NEW_TOKENS,
               "threads": THREADS, "attn_implementation": "sdpa"}
    (work / "request.json").write_text(json.dumps(request))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS),
               TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [str(python), str(HELPER), str(work / "request.json"), str(work / "out")],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"reference side failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads((work / "out" / "result.json").read_text())
    with np.load(work / "out" / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return Side(result.pop("prompts"), arrays, result)


def _run_project(engine: SpatialMLLMEngine, frames: list[npt.NDArray[np.uint8]]) -> Side:
    template = template_for_layout(engine.checkpoint_layout)
    texts = [build_prompt(i["question"], i["question_type"], i["options"], template)
             for i in ITEMS]
    prompts = [chat_text(engine.processor, t) for t in texts]
    clip = engine.prepare(frames)
    inputs = engine.model_inputs(clip, texts[0])
    with torch.no_grad():
        positions, deltas = engine.model.model.get_rope_index(
            inputs["input_ids"], inputs["mm_token_type_ids"], None, inputs["video_grid_thw"],
            inputs["second_per_grid_ts"], inputs["attention_mask"],
        )
        generation = copy.deepcopy(engine.generation_config)
        generation.max_new_tokens = NEW_TOKENS
        torch.manual_seed(0)
        out = engine.model.generate(**inputs, generation_config=generation, output_logits=True,
                                    return_dict_in_generate=True)
    prompt_len = int(inputs["input_ids"].shape[1])
    new_ids = out.sequences[0, prompt_len:].tolist()
    public = engine.answer_images(frames, texts[0], NEW_TOKENS)
    arrays = {
        "input_ids": inputs["input_ids"].numpy(),
        "attention_mask": inputs["attention_mask"].numpy(),
        "video_grid_thw": inputs["video_grid_thw"].numpy(),
        "second_per_grid_ts": inputs["second_per_grid_ts"].double().numpy(),
        "pixel_values_videos": inputs["pixel_values_videos"].float().numpy(),
        "video_tchw": inputs["video_tchw"][0].float().numpy(),
        "position_ids": positions.numpy(),
        "rope_deltas": deltas.numpy(),
        "step_logits": torch.stack([s[0] for s in out.logits]).float().numpy(),
        "new_ids": np.asarray(new_ids, dtype=np.int64),
    }
    info = {"public_ids": list(public.token_ids), "resized_size": clip.resized_size}
    return Side(prompts, arrays, info)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny v1.1 checkpoint, its ``generation_config.json`` with a strong repetition
    penalty: with Qwen2.5-VL's 1.05 the random tiny model repeats one token, which would make
    the token comparison weak; both sides read the penalty from the file."""
    _reference()
    ckpt = write_checkpoint(tmp_path_factory.mktemp("parity") / "tiny-v1.1", "v1.1")
    path = ckpt / "generation_config.json"
    generation = json.loads(path.read_text())
    generation["repetition_penalty"] = REPETITION_PENALTY
    path.write_text(json.dumps(generation))
    return ckpt


@pytest.fixture(scope="module")
def engine(checkpoint: Path) -> SpatialMLLMEngine:
    settings = Settings.from_profile("cpu_tiny", {
        "model.checkpoint": str(checkpoint), "model.max_pixels": 0,  # Qwen2.5-VL's bounds
        "model.num_threads": THREADS, "answer.decoding": "checkpoint"})
    loaded, error = load_engine(settings.engine)
    assert loaded is not None, error
    return loaded


@pytest.fixture(scope="module", params=["model_size", "camera_size"])
def parity(request: pytest.FixtureRequest, checkpoint: Path, engine: SpatialMLLMEngine,
           tmp_path_factory: pytest.TempPathFactory) -> Parity:
    checkout, python = _reference()
    case = str(request.param)
    frames = _frames_at(case)
    work = tmp_path_factory.mktemp(f"reference-{case}")
    reference = _run_reference(checkout, python, checkpoint, frames, work)
    project = _run_project(engine, frames)
    _print_summary(case, reference, project)
    return Parity(case, reference, project)


def _max_abs(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def _print_summary(case: str, ref: Side, own: Side) -> None:
    """One line per compared quantity (shown with ``pytest -s``, and on failure)."""
    r, p = ref.arrays, own.arrays
    lines = [f"[{case}] reference {ref.info.get('versions')}"]
    for key in ("input_ids", "video_grid_thw", "position_ids", "video_tchw",
                "pixel_values_videos", "step_logits"):
        same_shape = r[key].shape == p[key].shape
        diff = _max_abs(r[key], p[key]) if same_shape else float("nan")
        lines.append(f"  {key}: ref {r[key].shape} own {p[key].shape} max|diff| {diff:.3g}")
    lines.append(f"  second_per_grid_ts: ref {r['second_per_grid_ts'].tolist()} "
                 f"own {p['second_per_grid_ts'].tolist()}")
    lines.append(f"  new_ids: ref {r['new_ids'].tolist()} own {p['new_ids'].tolist()} "
                 f"public {own.info['public_ids']}")
    print("\n".join(lines))


def test_reference_loaded_every_tensor_it_runs(parity: Parity) -> None:
    loading = parity.reference.info["loading"]
    assert loading["missing_keys"] == [], loading["missing_keys"][:10]
    assert loading["mismatched_keys"] == [], loading["mismatched_keys"][:10]
    unused = [k for k in loading["unexpected_keys"] if not k.startswith(HEADS)]
    assert unused == [], f"checkpoint tensors the reference did not use: {unused[:10]}"
    assert parity.reference.info["versions"]["transformers"] == "4.51.3"


def test_chat_text_matches(parity: Parity) -> None:
    for item, ref, own in zip(ITEMS, parity.reference.prompts, parity.project.prompts,
                              strict=True):
        assert own == ref, f"{item['question_type']}: chat text differs"


def test_model_inputs_match(parity: Parity) -> None:
    r, p = parity.reference.arrays, parity.project.arrays
    utils = parity.reference.info["versions"]["qwen_vl_utils"]
    assert p["video_grid_thw"].tolist() == r["video_grid_thw"].tolist(), (
        f"video grids (t, h, w patches) differ; reference qwen_vl_utils {utils} (0.0.14 "
        "resizes a list of frames to multiples of 56 px, then again: QwenLM/Qwen3-VL#1833)")
    assert p["second_per_grid_ts"].tolist() == pytest.approx(r["second_per_grid_ts"].tolist())
    assert p["input_ids"].tolist() == r["input_ids"].tolist()
    assert p["attention_mask"].tolist() == r["attention_mask"].tolist()
    assert p["video_tchw"].shape == r["video_tchw"].shape
    diff = _max_abs(p["video_tchw"], r["video_tchw"])
    assert diff <= PIXEL_ATOL, f"spatial encoder frames differ by {diff:.3g} (in [0, 1])"
    assert p["pixel_values_videos"].shape == r["pixel_values_videos"].shape
    diff = _max_abs(p["pixel_values_videos"], r["pixel_values_videos"])
    assert diff <= PIXEL_ATOL, f"pixel_values_videos differ by {diff:.3g} (normalised)"


def test_mrope_positions_match(parity: Parity) -> None:
    r, p = parity.reference.arrays, parity.project.arrays
    assert p["position_ids"].shape == r["position_ids"].shape
    for row, name in enumerate(("temporal", "height", "width")):
        own, ref = p["position_ids"][row, 0], r["position_ids"][row, 0]
        bad = np.flatnonzero(own != ref)
        assert bad.size == 0, (f"{name} positions differ at {bad.size} tokens, first at "
                               f"{bad[0]}: own {own[bad[0]]} vs reference {ref[bad[0]]}")
    assert p["rope_deltas"].tolist() == r["rope_deltas"].tolist()


def test_step_logits_match(parity: Parity) -> None:
    r, p = parity.reference.arrays, parity.project.arrays
    ref_ids, own_ids = r["new_ids"].tolist(), p["new_ids"].tolist()
    same = 0  # steps whose prefixes agree: logits comparable
    while same < min(len(ref_ids), len(own_ids)) and ref_ids[same] == own_ids[same]:
        same += 1
    steps = min(same + 1, len(r["step_logits"]), len(p["step_logits"]))
    assert steps >= 1
    first = _max_abs(p["step_logits"][0], r["step_logits"][0])
    scale = float(np.max(np.abs(r["step_logits"][0])))
    assert first <= LOGIT_ATOL, f"first-step logits differ by {first:.3g} (|logit| <= {scale:.3g})"
    worst = _max_abs(p["step_logits"][:steps], r["step_logits"][:steps])
    assert worst <= LOGIT_ATOL, f"logits of the first {steps} steps differ by {worst:.3g}"


def test_generated_tokens_match(parity: Parity) -> None:
    ref_ids = parity.reference.arrays["new_ids"].tolist()
    assert parity.project.arrays["new_ids"].tolist() == ref_ids
    assert parity.project.info["public_ids"] == ref_ids  # SpatialMLLMEngine.answer_images


if __name__ == "__main__":  # pragma: no cover - convenience: run this file alone
    sys.exit(pytest.main([__file__, "-s", "-q"]))
