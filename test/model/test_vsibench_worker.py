"""The VSI-Bench worker on the tiny model: frames chosen as the reference chooses them, one
VGGT pass per video for space-aware sampling (counted at the engine), the cache reused."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from testkit.tiny import tiny_checkpoint
from testkit.vsibench_data import write_dataset

from spatial_mllm_ros.benchmark.dataset import load_questions, parquet_files
from spatial_mllm_ros.benchmark.frames import uniform_video_indices
from spatial_mllm_ros.benchmark.runner import scene_tasks
from spatial_mllm_ros.benchmark.video import count_frames
from spatial_mllm_ros.benchmark.worker import RunConfig, SceneTask, SceneWorker

FRAMES, NFRAMES, CANDIDATES = 12, 4, 6
SMALL = {"model.max_pixels": 15680, "answer.max_new_tokens": 2, "answer.grounding": False}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vsibench")
    write_dataset(root, frames=FRAMES, width=112, height=84)
    return root


def _tasks(root: Path) -> list[SceneTask]:
    return scene_tasks(load_questions(parquet_files(root)))


def _config(root: Path, out: Path, sampling: str) -> RunConfig:
    overrides: dict[str, Any] = {**SMALL, "model.checkpoint": str(tiny_checkpoint("v1.1"))}
    return RunConfig("cpu_tiny", overrides, str(root), str(out), NFRAMES, sampling, CANDIDATES)


class CountingWorker(SceneWorker):
    """A worker whose engine counts its geometry passes."""

    passes = 0

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        predict = self.engine.predict_geometry

        def counted(frames: Sequence[Any]) -> Any:
            CountingWorker.passes += 1
            return predict(frames)

        self.engine.predict_geometry = counted  # type: ignore[method-assign]


def test_space_aware_geometry_runs_once_per_scene(dataset: Path, tmp_path: Path) -> None:
    tasks = _tasks(dataset)[:2]
    assert all(len(t.questions) > 1 for t in tasks)
    CountingWorker.passes = 0
    worker = CountingWorker(_config(dataset, tmp_path, "space_aware"))
    outcomes = [o for t in tasks for o in worker.answer_scene(t)]
    assert [o.error for o in outcomes] == [""] * len(outcomes)
    assert CountingWorker.passes == len(tasks)  # scenes, not questions
    assert sum(o.geometry_passes for o in outcomes) == len(tasks)
    first = [o.result for o in outcomes if o.result is not None]
    assert all(0 < len(r["frames"]) <= NFRAMES for r in first)
    assert all(r["sampling"] == "coverage(predicted)" for r in first)

    # a second worker on the same OUT (a re-run) takes the choices from the cache
    CountingWorker.passes = 0
    again = CountingWorker(_config(dataset, tmp_path, "space_aware"))
    second = [o for t in tasks for o in again.answer_scene(t)]
    assert CountingWorker.passes == 0
    assert [o.result["frames"] for o in second if o.result] == [r["frames"] for r in first]


def test_uniform_frames_are_qwen_vl_utils_indices(dataset: Path, tmp_path: Path) -> None:
    task = _tasks(dataset)[0]
    worker = SceneWorker(_config(dataset, tmp_path, "uniform"))
    outcomes = list(worker.answer_scene(task))
    video = dataset / task.dataset / f"{task.scene_name}.mp4"
    assert count_frames(video) == FRAMES
    expected = uniform_video_indices(FRAMES, NFRAMES)
    assert expected == [0, 4, 7, 11]  # torch.linspace(0, 11, 4).round(): 3.67 -> 4, 7.33 -> 7
    assert [o.result["frames"] for o in outcomes if o.result] == [expected] * len(outcomes)
    first = outcomes[0].result
    assert first is not None
    # the prompt is the v1.1 evaluation's, in the chat template
    assert first["prompt"].endswith(
        "Please answer the question using a single word or phrase.<|im_end|>\n"
        "<|im_start|>assistant\n")


def test_a_folder_of_png_frames_is_the_frame_list_path(dataset: Path, tmp_path: Path) -> None:
    """The reference's second form: ``<dataset>/<scene>/*.png`` (what sa_sampling.py writes),
    all of its frames, PIL-resized; a count other than --nframes is that scene's error."""
    import shutil

    from PIL import Image

    from spatial_mllm_ros.benchmark.video import read_frames

    root = tmp_path / "frames"
    shutil.copytree(dataset, root)
    task = _tasks(root)[0]
    video = root / task.dataset / f"{task.scene_name}.mp4"
    folder = video.with_suffix("")
    folder.mkdir()
    for i, rgb in zip([0, 3, 8, 11], read_frames(video, [0, 3, 8, 11]), strict=True):
        Image.fromarray(rgb).save(folder / f"frame_{i:04d}.png")
    video.unlink()
    worker = SceneWorker(_config(root, tmp_path / "out", "space_aware"))
    outcomes = list(worker.answer_scene(task))
    assert all(o.error == "" and o.geometry_passes == 0 for o in outcomes)
    result = outcomes[0].result
    assert result is not None and result["frames_source"] == "png"
    assert result["frames"] == [f"frame_{i:04d}.png" for i in (0, 3, 8, 11)]

    (folder / "frame_0011.png").unlink()
    outcomes = list(worker.answer_scene(task))
    assert {o.error for o in outcomes} == {f"{folder} holds 3 frames, not --nframes 4 "
                                           "(the reference requires them equal)"}
