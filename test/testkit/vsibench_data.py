"""A small dataset in VSI-Bench's published form, generated: rendered rooms as mp4 (PyAV,
H.264 yuv420p), a parquet with the benchmark's columns, a dataset card with YAML configs.

``write_dataset(root)`` lays out ``root/README.md``, ``root/test-00000-of-00001.parquet`` and
``root/<dataset>/<scene>.mp4``; the questions are of several VSI-Bench types with ground truth
from the rendered scene (their values do not matter to the tiny model, only their form).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from spatial_mllm_ros.synthetic import make_walkthrough

CARD = """---
license: apache-2.0
configs:
- config_name: full
  data_files:
  - split: test
    path: test-*.parquet
- config_name: debiased
  data_files:
  - split: test
    path: test_debiased-*.parquet
---
# VSI-Bench (generated for tests)
"""

PARQUET = "test-00000-of-00001.parquet"


@dataclass(frozen=True)
class SceneSpec:
    dataset: str
    name: str
    seed: int


SCENES = (SceneSpec("scannet", "scene0001_00", 1), SceneSpec("arkitscenes", "41069025", 2),
          SceneSpec("scannetpp", "0a5c013435", 3))


def write_mp4(path: Path, frames: list[npt.NDArray[np.uint8]], fps: int = 10) -> None:
    """``frames`` (H, W, 3) uint8 RGB as an H.264 mp4 (yuv420p)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _rows(scene: SceneSpec, first_id: int) -> list[dict[str, object]]:
    q = [
        ("object_counting", "How many chair(s) are in this room?", None, "3"),
        ("object_abs_distance", "Measuring from the closest point of each object, what is the "
         "direct distance between the table and the sofa (in meters)?", None, "1.7"),
        ("room_size_estimation", "What is the size of this room (in square meters)? If "
         "multiple rooms are shown, estimate the size of the combined space.", None, "18.4"),
        ("object_rel_direction_easy", "If I am standing by the sofa and facing the table, is "
         "the chair to my left or right?", ["A. left", "B. right"], "B"),
        ("route_planning", "You are a robot beginning at the door facing the table. Which "
         "turn takes you to the sofa?", ["A. Turn Left", "B. Turn Right", "C. Turn Back"], "A"),
    ]
    return [{"id": first_id + i, "dataset": scene.dataset, "scene_name": scene.name,
             "question_type": t, "question": text, "options": opts, "ground_truth": gt}
            for i, (t, text, opts, gt) in enumerate(q)]


def write_parquet(path: Path, rows: list[dict[str, object]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64()), ("dataset", pa.string()),
                        ("scene_name", pa.string()), ("question_type", pa.string()),
                        ("question", pa.string()), ("options", pa.list_(pa.string())),
                        ("ground_truth", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_dataset(root: Path, frames: int = 20, width: int = 160, height: int = 120,
                  scenes: tuple[SceneSpec, ...] = SCENES) -> list[dict[str, object]]:
    """Write the dataset under ``root``; return its rows."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text(CARD, encoding="utf-8")
    rows: list[dict[str, object]] = []
    for scene in scenes:
        walk = make_walkthrough(scene.seed, n_frames=frames, width=width, height=height)
        write_mp4(root / scene.dataset / f"{scene.name}.mp4", [f.rgb for f in walk.frames])
        rows.extend(_rows(scene, len(rows)))
    write_parquet(root / PARQUET, rows)
    return rows
