"""VSI-Bench as published: the dataset card, the parquet of one config and split, the scenes.

Layout of ``DIR`` (the Hugging Face dataset ``nyu-visionx/VSI-Bench`` downloaded as is):

- ``README.md``: the dataset card; its YAML front matter lists ``configs``, each with a
  ``config_name`` and ``data_files`` (a path or glob, a list of them, or a list of
  ``{split, path}``).  The runner reads config ``full`` (the one the authors' evaluation
  loads), split ``test``.  Without a card, Hugging Face's own convention applies: the
  ``test*.parquet`` files at the top of ``DIR``.
- the parquet: one row per question, columns ``id, dataset, scene_name, question_type,
  question, options, ground_truth`` (other columns are kept in :attr:`BenchQuestion.row`).
- the scenes, as the authors' ``eval_vsibench.py`` finds them under its ``video_dir``: a video
  ``<dataset>/<scene_name>.mp4``, or else a folder of pre-sampled frames
  ``<dataset>/<scene_name>/*.png`` (what the reference's ``sa_sampling.py`` writes).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spatial_mllm_ros.benchmark.errors import DatasetError
from spatial_mllm_ros.vsibench.prompts import MULTIPLE_CHOICE_TYPES as PROJECT_CHOICE_TYPES
from spatial_mllm_ros.vsibench.prompts import NUMERIC_TYPES as PROJECT_NUMERIC_TYPES
from spatial_mllm_ros.vsibench.prompts import REL_DIRECTION_DIFFICULTIES

__all__ = [
    "ALL_TYPES",
    "MULTIPLE_CHOICE_TYPES",
    "NUMERIC_TYPES",
    "REL_DIRECTION_TYPES",
    "REQUIRED_COLUMNS",
    "BenchQuestion",
    "SceneKind",
    "SceneSource",
    "load_questions",
    "parquet_files",
    "scene_source",
    "select_types",
]

#: The three difficulties of the relative-direction type, averaged into one score.
REL_DIRECTION_TYPES: tuple[str, ...] = REL_DIRECTION_DIFFICULTIES
#: Types answered with an option letter (accuracy): the authors' ``MCA_QUESTION_TYPES``
#: (the project's plain ``object_rel_direction`` is no VSI-Bench type).
MULTIPLE_CHOICE_TYPES: tuple[str, ...] = tuple(
    t for t in PROJECT_CHOICE_TYPES if t != "object_rel_direction")
#: Types answered with a number (mean relative accuracy): the authors' ``NA_QUESTION_TYPES``.
NUMERIC_TYPES: tuple[str, ...] = PROJECT_NUMERIC_TYPES
ALL_TYPES: tuple[str, ...] = (*MULTIPLE_CHOICE_TYPES, *NUMERIC_TYPES)
REQUIRED_COLUMNS: tuple[str, ...] = (
    "id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth",
)
CONFIG, SPLIT = "full", "test"


@dataclass(frozen=True)
class BenchQuestion:
    """One row of the benchmark.

    Attributes:
        id: the benchmark's question id.
        dataset: source dataset of the scene (``arkitscenes``, ``scannet``, ``scannetpp``).
        scene_name: the scene (video) name.
        question_type: one of :data:`ALL_TYPES` (anything else is reported, not asked).
        question: the question text.
        options: lettered options (``"A. chair"``), empty for numeric types.
        ground_truth: the option letter or the number, as text.
        row: the whole parquet row, JSON-safe (the reference's results keep it as ``sample``).
    """

    id: int | str
    dataset: str
    scene_name: str
    question_type: str
    question: str
    options: tuple[str, ...]
    ground_truth: str
    row: Mapping[str, Any] = field(hash=False, compare=False)

    @property
    def scene_key(self) -> str:
        """``<dataset>/<scene_name>``: the unit of work."""
        return f"{self.dataset}/{self.scene_name}"


class SceneKind(enum.Enum):
    """How a scene's frames are stored."""

    VIDEO = "mp4"
    FRAMES = "png"
    MISSING = "missing"


@dataclass(frozen=True)
class SceneSource:
    """Where a scene's frames are: ``path`` is the mp4, the PNG folder, or the mp4 expected."""

    kind: SceneKind
    path: Path


# -- the dataset card ------------------------------------------------------------------------

def _front_matter(card: Path) -> dict[str, Any]:
    """The YAML between the first two ``---`` lines of ``card`` ({} when there is none)."""
    try:
        text = card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read the dataset card {card}: {err}") from err
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise DatasetError(f"{card}: YAML front matter has no closing '---'") from None
    try:
        data = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as err:
        raise DatasetError(f"{card}: YAML front matter is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise DatasetError(f"{card}: YAML front matter is not a mapping")
    return data


def _split_patterns(data_files: object, split: str) -> list[str]:
    """The path globs of ``split`` in a card's ``data_files`` (any of Hugging Face's forms)."""
    if isinstance(data_files, str):
        return [data_files] if split == SPLIT else []
    if isinstance(data_files, Mapping):
        value = data_files.get(split)
        return [value] if isinstance(value, str) else [str(v) for v in value or []]
    patterns: list[str] = []
    for entry in data_files if isinstance(data_files, list) else []:
        if isinstance(entry, str):
            patterns.append(entry)
        elif isinstance(entry, Mapping) and entry.get("split", SPLIT) == split:
            path = entry.get("path", [])
            patterns.extend([path] if isinstance(path, str) else [str(p) for p in path])
    return patterns


def _glob(root: Path, patterns: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        found.extend(p for p in sorted(root.glob(pattern)) if p.is_file() and p not in found)
    return found


def parquet_files(root: Path, config: str = CONFIG, split: str = SPLIT) -> list[Path]:
    """The parquet files of ``config``/``split`` under ``root``, as the card names them.

    Raises:
        DatasetError: ``root`` is not a directory, the card is unreadable, names no such
            config or no existing file for the split; or, without a card, no ``test*.parquet``.
    """
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory (give the VSI-Bench dataset folder)")
    card = root / "README.md"
    configs = _front_matter(card).get("configs") if card.is_file() else None
    if not configs:
        files = _glob(root, [f"{split}*.parquet", f"{split}/*.parquet", f"data/{split}*.parquet"])
        if not files:
            raise DatasetError(
                f"{root} has neither a dataset card (README.md with YAML 'configs') nor "
                f"{split}*.parquet files: download the dataset folder as published")
        return files
    by_name = {str(c.get("config_name", "default")): c for c in configs if isinstance(c, dict)}
    chosen = by_name.get(config) or (next(iter(by_name.values())) if len(by_name) == 1 else None)
    if chosen is None:
        raise DatasetError(
            f"{card}: no config {config!r} among {sorted(by_name)} in its YAML 'configs'")
    patterns = _split_patterns(chosen.get("data_files", []), split)
    files = _glob(root, patterns)
    if not files:
        raise DatasetError(
            f"{card}: config {config!r} split {split!r} names {patterns or 'no files'}, "
            f"and none exists under {root}")
    return files


# -- the parquet -----------------------------------------------------------------------------

def _json_safe(value: object) -> object:
    """A parquet cell as plain JSON data (NaN -> None, numpy scalars and arrays unwrapped)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _question(row: Mapping[str, Any]) -> BenchQuestion:
    options = row.get("options") or []
    raw_id = row["id"]
    return BenchQuestion(
        id=raw_id if isinstance(raw_id, (int, str)) else str(raw_id),
        dataset=str(row["dataset"]),
        scene_name=str(row["scene_name"]),
        question_type=str(row["question_type"]),
        question=str(row["question"]),
        options=tuple(str(o) for o in options),
        ground_truth=str(row["ground_truth"]),
        row={str(k): _json_safe(v) for k, v in row.items()},
    )


def load_questions(files: Sequence[Path]) -> list[BenchQuestion]:
    """Every row of ``files`` (in order) as a :class:`BenchQuestion`.

    Raises:
        DatasetError: a file is not a readable parquet, lacks a required column, or two rows
            share an id.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    questions: list[BenchQuestion] = []
    for path in files:
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            raise DatasetError(f"cannot read the parquet {path}: {err}") from err
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            raise DatasetError(
                f"{path} lacks the column(s) {', '.join(missing)} of VSI-Bench "
                f"({', '.join(REQUIRED_COLUMNS)})")
        questions.extend(_question(row) for row in table.to_pylist())
    seen: set[str] = set()
    for q in questions:
        if str(q.id) in seen:
            raise DatasetError(f"question id {q.id!r} appears twice in "
                               f"{', '.join(map(str, files))}")
        seen.add(str(q.id))
    return questions


def select_types(questions: Sequence[BenchQuestion], types: Sequence[str]) -> list[BenchQuestion]:
    """The questions of ``types`` (``object_rel_direction`` names its three difficulties);
    all of them when ``types`` is empty.

    Raises:
        DatasetError: a name that is no VSI-Bench type.
    """
    if not types:
        return list(questions)
    wanted: set[str] = set()
    for name in types:
        if name == "object_rel_direction":
            wanted.update(REL_DIRECTION_TYPES)
        elif name in ALL_TYPES:
            wanted.add(name)
        else:
            raise DatasetError(
                f"--types: {name!r} is no VSI-Bench question type; known: "
                + ", ".join(("object_rel_direction", *ALL_TYPES)))
    return [q for q in questions if q.question_type in wanted]


def scene_source(video_dir: Path, dataset: str, scene_name: str) -> SceneSource:
    """The scene's mp4 if there is one, else its folder of frames (the reference's order)."""
    video = video_dir / dataset / f"{scene_name}.mp4"
    if video.is_file():
        return SceneSource(SceneKind.VIDEO, video)
    folder = video_dir / dataset / scene_name
    if folder.is_dir():
        return SceneSource(SceneKind.FRAMES, folder)
    return SceneSource(SceneKind.MISSING, video)
