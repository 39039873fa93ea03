"""Errors of the model subpackage (configuration, checkpoint loading, inference)."""

from __future__ import annotations

from pathlib import Path


class ModelError(Exception):
    """Base class of model errors."""


class ConfigError(ModelError):
    """A configuration (config.json) cannot be read or is inconsistent."""


class CheckpointError(ModelError):
    """Base class of checkpoint loading errors."""


class UnsafeCheckpointError(CheckpointError):
    """Pickle weights (*.bin, *.pt, *.pth, *.pkl, *.ckpt) were found; only safetensors load."""


class MissingShardError(CheckpointError):
    """A shard listed in ``model.safetensors.index.json`` is absent, or no weights file exists."""


class CheckpointNotFoundError(MissingShardError):
    """The checkpoint directory (or file) named does not exist."""


def require_checkpoint(path: str | Path, what: str = "checkpoint directory") -> Path:
    """``path`` as a Path, checked to exist (a directory, or a weights file) before anything
    is loaded from it; ``what`` names it in the error (e.g. "VGGT checkpoint").

    Raises:
        CheckpointNotFoundError: "<what> <path> does not exist".
    """
    found = Path(path)
    if not found.exists():
        raise CheckpointNotFoundError(f"{what} {found} does not exist")
    return found


class ShapeMismatchError(CheckpointError):
    """A tensor in the checkpoint has another shape than the model parameter it maps onto."""


class MissingTensorError(CheckpointError):
    """Tensors that the configured model uses are absent from the checkpoint."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class UnexpectedTensorError(CheckpointError):
    """The checkpoint holds tensors that map onto no model parameter (strict loading)."""

    def __init__(self, message: str, unexpected: list[str]) -> None:
        super().__init__(message)
        self.unexpected = unexpected


class GeometryUnavailableError(ModelError):
    """VGGT heads (camera/depth/point) were not loaded, so geometry cannot be predicted."""


class InputError(ModelError):
    """Frames or prompt given to the model are unusable (e.g. no frames)."""

class ExportError(ModelError):
    """An encoder could not be exported to ONNX, or the exported graph does not match."""
