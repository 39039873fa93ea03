"""Space-aware selections on disk: one VGGT pass per video, reused by all its questions.

``OUT/geometry/<key>.json`` holds a video's chosen frame indices.  The key is the SHA-256 of
the video's bytes and of everything that changes the choice: frames asked, candidates, the
checkpoints whose VGGT predicts (paths), dtype and device, and the rule's version.  Written
atomically (temporary file + rename), so a killed run leaves no half entry; an unreadable
entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["RULE_VERSION", "GeometryCache", "SceneSelection", "file_digest", "selection_key"]

#: Bump when the selection rule changes, so old entries are not reused.
RULE_VERSION = "sa_sampling/1"


@dataclass(frozen=True)
class SceneSelection:
    """A video's space-aware choice.

    Attributes:
        frame_indices: the chosen frames' indices in the video, ascending.
        candidates: the indices whose geometry was predicted.
        total_frames: frames in the video.
        strategy: the selection's strategy name (``coverage(predicted)``).
        coverage: covered share of the candidates' predicted voxels.
    """

    frame_indices: tuple[int, ...]
    candidates: tuple[int, ...]
    total_frames: int
    strategy: str
    coverage: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SceneSelection:
        return cls(tuple(int(i) for i in data["frame_indices"]),
                   tuple(int(i) for i in data["candidates"]), int(data["total_frames"]),
                   str(data["strategy"]), float(data["coverage"]))


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    return h.hexdigest()


def selection_key(video_digest: str, settings: Mapping[str, Any]) -> str:
    """Cache key of a video under ``settings`` (JSON-able values)."""
    text = json.dumps({"video": video_digest, "rule": RULE_VERSION, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class GeometryCache:
    """Selections under ``root`` (``OUT/geometry``), by key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> SceneSelection | None:
        """The stored selection of ``key``; None when absent or unreadable."""
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            return SceneSelection.from_json(data["selection"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, selection: SceneSelection, inputs: Mapping[str, Any]) -> None:
        """Store ``selection`` under ``key`` with its key ``inputs`` in clear."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key_inputs": dict(inputs), "selection": asdict(selection)},
                                  indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
