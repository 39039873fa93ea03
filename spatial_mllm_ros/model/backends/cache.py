"""The engine cache: serialised engines keyed by everything that makes them valid.

Layout under the cache root (``model.vision_cache_dir``; default :func:`default_cache_dir`)::

    onnx/<model fingerprint>/<HxW>/{vision_encoder,spatial_encoder}.onnx[.data], export.json
    trt/<graph>-<HxW>/<key digest>/engine.plan, key.json

An engine's key (:class:`EngineKey`) is the SHA-256 of its ONNX files' content, the precision,
the TensorRT version, the GPU's compute capability and the shape profile (min/opt/max input
shapes); the directory is named by the key's digest and ``key.json`` holds the key in clear.
``engine.plan``'s own SHA-256 is kept in ``key.json``: a truncated or corrupt plan, a key that
does not match, or a plan the runtime refuses to deserialise is deleted and rebuilt, with one
log line per key and reason. Engines of the same graph, precision and profile under another
key (an older ONNX, TensorRT or GPU) are stale and deleted when a new one is written. Writers
take a file lock per graph, so two processes never build the same engine at once.

Torch-free: the builder and loader are passed in (TensorRT's, or a fake in tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from spatial_mllm_ros.model.backends.errors import EngineBuildError, EngineCacheError

__all__ = [
    "EngineCache",
    "EngineKey",
    "checkpoint_fingerprint",
    "default_cache_dir",
    "file_digest",
    "file_lock",
]

LOG = logging.getLogger(__name__)
T = TypeVar("T")

#: Bumped when the exported graphs change form, so cached ONNX files of older code are unused.
EXPORT_FORMAT = 1
_CHUNK = 8 << 20
_REPORTED: set[tuple[str, str]] = set()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/spatial_mllm_ros/engines`` (``~/.cache`` by default)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "spatial_mllm_ros" / "engines"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digest(files: Sequence[Path]) -> str:
    """SHA-256 over the content of ``files`` (an ONNX graph and its external data), by name.

    Each file's hash is remembered in ``<file>.sha256.json`` beside it, valid while its size and
    modification time are unchanged (a 4 GB graph is hashed once, not at every start).
    """
    lines = []
    for path in files:
        stat = path.stat()
        memo = path.with_name(path.name + ".sha256.json")
        stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        sha = ""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(memo.read_text(encoding="utf-8"))
            if {k: saved[k] for k in stamp} == stamp:
                sha = str(saved["sha256"])
        if not sha:
            sha = _sha256_file(path)
            with contextlib.suppress(OSError):
                memo.write_text(json.dumps({**stamp, "sha256": sha}), encoding="utf-8")
        lines.append(f"{path.name} {sha}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def checkpoint_fingerprint(checkpoint_dir: str | Path, extra: str = "") -> str:
    """A short id of a checkpoint's weights (names, sizes and modification times of its
    safetensors and its ``config.json`` content) plus ``extra`` (e.g. the VGGT checkpoint's),
    naming its cached ONNX graphs. Cheap: the weights are not read."""
    root = Path(checkpoint_dir)
    digest = hashlib.sha256(f"export-format {EXPORT_FORMAT}\n{extra}\n".encode())
    for path in sorted(root.glob("*.safetensors")) + sorted(root.glob("*.json")):
        stat = path.stat()
        digest.update(f"{path.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
        if path.name == "config.json":
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class EngineKey:
    """What an engine is valid for.

    Attributes:
        graph: graph and size, e.g. ``vision_encoder-476x644``.
        onnx_sha256: :func:`file_digest` of the ONNX files.
        precision: ``fp32``, ``fp16`` or ``bf16``.
        trt_version: the TensorRT version that builds and runs it.
        compute_capability: the GPU's, e.g. ``8.7`` (Orin) or ``9.0`` (H100/H200).
        profile: the input's (min, opt, max) shapes.
    """

    graph: str
    onnx_sha256: str
    precision: str
    trt_version: str
    compute_capability: str
    profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["profile"] = [list(s) for s in self.profile]
        return out

    @property
    def digest(self) -> str:
        """16 hex digits naming the key's directory."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def same_slot(self, other: dict[str, Any]) -> bool:
        """True when ``other`` (a ``key.json``) is for the same graph, precision and profile:
        an engine that this key's engine replaces."""
        mine = self.to_dict()
        return all(other.get(k) == mine[k] for k in ("graph", "precision", "profile"))


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX ``flock``; a no-op elsewhere)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _report(key: EngineKey, reason: str) -> None:
    """Log a rebuild once per key and reason (per process)."""
    marker = (key.digest, reason)
    if marker not in _REPORTED:
        _REPORTED.add(marker)
        LOG.warning("engine %s [%s]: %s; rebuilding it", key.graph, key.digest, reason)


class EngineCache:
    """Engines under ``root/trt`` (see the module docstring).

    Args:
        root: the cache root.
    """

    PLAN = "engine.plan"
    KEY = "key.json"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def directory(self, key: EngineKey) -> Path:
        """Where ``key``'s engine lives."""
        return self.root / "trt" / key.graph / key.digest

    def get_or_build(
        self, key: EngineKey, build: Callable[[], bytes], load: Callable[[bytes], T]
    ) -> T:
        """``load(plan)`` of the cached engine of ``key``; builds (``build()``), stores and
        loads it when it is missing, corrupt, mismatched or refused by ``load``.

        Raises:
            EngineBuildError: ``build`` failed, or ``load`` refused a freshly built plan.
        """
        folder = self.directory(key)
        with file_lock(folder.parent / ".lock"):
            if (folder / self.PLAN).exists() or (folder / self.KEY).exists():
                try:
                    return load(self._read(folder, key))
                except EngineCacheError as err:
                    _report(key, str(err))
                except Exception as err:  # the runtime refuses it: rebuild
                    _report(key, f"the runtime cannot load it ({type(err).__name__}: {err})")
                shutil.rmtree(folder, ignore_errors=True)
            try:
                plan = build()
            except EngineBuildError:
                raise
            except Exception as err:
                raise EngineBuildError(f"building {key.graph} failed: {err}") from err
            self._write(folder, key, plan)
            self._prune(key)
        try:
            return load(plan)
        except Exception as err:
            raise EngineBuildError(f"a freshly built {key.graph} does not load: {err}") from err

    def _read(self, folder: Path, key: EngineKey) -> bytes:
        try:
            meta = json.loads((folder / self.KEY).read_text(encoding="utf-8"))
            plan = (folder / self.PLAN).read_bytes()
        except (OSError, ValueError) as err:
            raise EngineCacheError(f"unreadable cache entry ({err})") from err
        if meta.get("key") != key.to_dict():
            raise EngineCacheError("its key.json is for another key")
        if hashlib.sha256(plan).hexdigest() != meta.get("plan_sha256"):
            raise EngineCacheError("engine.plan is corrupt or truncated (checksum mismatch)")
        return plan

    def _write(self, folder: Path, key: EngineKey, plan: bytes) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (self.PLAN + ".tmp")
        tmp.write_bytes(plan)
        os.replace(tmp, folder / self.PLAN)
        meta = {"key": key.to_dict(), "plan_sha256": hashlib.sha256(plan).hexdigest(),
                "plan_bytes": len(plan)}
        tmp_meta = folder / (self.KEY + ".tmp")
        tmp_meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp_meta, folder / self.KEY)

    def _prune(self, key: EngineKey) -> None:
        """Delete the engines this one replaces (same graph, precision and profile)."""
        for other in (self.root / "trt" / key.graph).iterdir():
            if not other.is_dir() or other.name == key.digest:
                continue
            try:
                meta = json.loads((other / self.KEY).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # not ours to judge (a half-written entry of another process)
            if key.same_slot(meta.get("key", {})):
                LOG.info("removing stale engine %s [%s]", key.graph, other.name)
                shutil.rmtree(other, ignore_errors=True)

    def entries(self) -> list[dict[str, Any]]:
        """Every cached engine's ``key.json`` content, with its ``directory``."""
        out = []
        for meta_file in sorted((self.root / "trt").glob(f"*/*/{self.KEY}")):
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads(meta_file.read_text(encoding="utf-8"))
                out.append({**meta, "directory": str(meta_file.parent)})
        return out
