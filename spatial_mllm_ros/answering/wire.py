"""What crosses the network between a robot and the model server (``spatial-mllm-serve``):
the request and reply formats, their bounds, the shared token, and the frames at the model's
input size. Pure (numpy and PIL); the client (:mod:`.remote`) and the server
(:mod:`spatial_mllm_ros.serving`) both use it, so the two sides cannot drift apart.

**A framed message** (the body of ``POST /v1/answer`` and ``/v1/geometry``, and the geometry
reply): ``b"SML1"``, a 4-byte big-endian header length, the header as UTF-8 JSON, then the
blobs back to back; ``header["blob_bytes"]`` lists their lengths. :func:`unpack` checks every
length against :class:`WireLimits` before it reads a byte of pixels.

**Frames** travel at the model's input size: the robot resizes them with the engine's own
function (:func:`spatial_mllm_ros.sampling.resize.resize_rgb` to ``smart_resize`` of the first
frame under the server's pixel bounds; :func:`~spatial_mllm_ros.sampling.resize.vggt_image` for
geometry), so the server's resize is the identity and, with a lossless encoding (``png``,
default, or ``raw`` RGB bytes), the model sees exactly the pixels the local model process
would. ``jpeg`` is smaller and lossy. A request's frame count, each frame's declared size and
the size its encoded header (PNG IHDR, JPEG SOF) really states are checked before decoding.

**The answer stream** (reply of ``/v1/answer``): newline-delimited JSON events --
``{"event": "accepted"}`` when a replica takes it, ``{"event": "token", "ids": [new ids],
"text": text so far}`` per token, ``{"event": "alive"}`` at least every :data:`HEARTBEAT_S`
while nothing else comes, then exactly one ``{"event": "result", "result": {...}}`` or
``{"event": "error", "error": "..."}``.

**The token** (:func:`load_token`): ``$SPATIAL_MLLM_TOKEN``, or the first line of a file named
by a parameter; sent as ``Authorization: Bearer <token>``, compared in constant time
(:func:`token_matches`), never logged.
"""

from __future__ import annotations

import dataclasses
import hmac
import io
import json
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from spatial_mllm_ros.model.result import GenerationResult
from spatial_mllm_ros.sampling.predicted import PredictedGeometry
from spatial_mllm_ros.sampling.qwen_grid import FACTOR, smart_resize
from spatial_mllm_ros.sampling.resize import VGGT_WIDTH, resize_rgb, vggt_image

__all__ = [
    "CLIENT_HEADER",
    "ENCODINGS",
    "HEARTBEAT_S",
    "TOKEN_ENV",
    "FrameInfo",
    "ModelRequest",
    "WireError",
    "WireLimits",
    "decode_frames",
    "decode_geometry",
    "decode_request",
    "encode_geometry",
    "encode_request",
    "event_line",
    "geometry_images",
    "load_token",
    "model_images",
    "model_size",
    "pack",
    "result_from_json",
    "result_to_json",
    "token_matches",
    "unpack",
]

MAGIC = b"SML1"
#: Frame encodings: lossless ``png`` (default) and ``raw`` (H*W*3 RGB bytes), lossy ``jpeg``.
ENCODINGS = ("png", "raw", "jpeg")
#: Environment variable holding the shared bearer token (server and every client).
TOKEN_ENV = "SPATIAL_MLLM_TOKEN"
#: Request header naming the robot (its node's fully qualified name) for per-client limits.
CLIENT_HEADER = "X-Spatial-MLLM-Client"
#: Longest silence of the answer stream while the server works (seconds): it sends
#: ``alive`` events at this period through an encoder pass or a prefill.
HEARTBEAT_S = 1.0
_METHODS = ("answer", "predict_geometry")


class WireError(ValueError):
    """A message that breaks the format or its bounds (the server answers 400 or 413)."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class WireLimits:
    """Bounds of one request, checked before anything is decoded.

    Attributes:
        max_bytes: largest body, bytes (64 MiB: 64 frames of 640x480 PNG are ~40 MB).
        max_header_bytes: largest JSON header, bytes.
        max_frames: most frames of one request.
        max_frame_pixels: largest frame, pixels (the server sets its model's input size).
    """

    max_bytes: int = 64 << 20
    max_header_bytes: int = 1 << 20
    max_frames: int = 64
    max_frame_pixels: int = 1024 * 1024


# ------------------------------------------------------------------------------ framing
def pack(header: Mapping[str, Any], blobs: Sequence[bytes]) -> bytes:
    """A framed message of ``header`` (JSON-safe) and ``blobs``."""
    head = json.dumps({**header, "blob_bytes": [len(b) for b in blobs]}).encode("utf-8")
    return b"".join([MAGIC, struct.pack(">I", len(head)), head, *blobs])


def unpack(body: bytes, limits: WireLimits) -> tuple[dict[str, Any], list[bytes]]:
    """(header, blobs) of a framed message, every length checked against ``limits`` and the
    body's own length first.

    Raises:
        WireError: not a framed message, or a length out of bounds or inconsistent.
    """
    if len(body) > limits.max_bytes:
        raise WireError(f"request of {len(body)} bytes, more than {limits.max_bytes}", True)
    if len(body) < 8 or body[:4] != MAGIC:
        raise WireError("not a spatial-mllm request (bad magic)")
    (head_len,) = struct.unpack(">I", body[4:8])
    if head_len > limits.max_header_bytes or 8 + head_len > len(body):
        raise WireError(f"header length {head_len} out of bounds")
    try:
        header = json.loads(body[8:8 + head_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise WireError(f"header is not JSON: {err}") from err
    sizes = header.get("blob_bytes") if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(isinstance(n, int) and n >= 0 for n in sizes):
        raise WireError("header without a valid blob_bytes list")
    if len(sizes) > limits.max_frames:
        raise WireError(f"{len(sizes)} blobs, more than {limits.max_frames}", True)
    if 8 + head_len + sum(sizes) != len(body):
        raise WireError("blob lengths do not add up to the body's length")
    blobs, offset = [], 8 + head_len
    for n in sizes:
        blobs.append(body[offset:offset + n])
        offset += n
    return header, blobs


# ------------------------------------------------------------------------------ requests
@dataclass(frozen=True)
class FrameInfo:
    """One frame of a request: its encoding and the (width, height) it claims, pixels."""

    encoding: str
    width: int
    height: int


@dataclass(frozen=True)
class ModelRequest:
    """One call of the model: ``answer`` (``prompt``, ``max_new_tokens``; ``camera_size``:
    the (W, H) of the robot's first frame before it was resized to the model size, which the
    server checks the frames' size against) or ``predict_geometry``."""

    method: str
    frames: tuple[FrameInfo, ...]
    prompt: str = ""
    max_new_tokens: int = 0
    camera_size: tuple[int, int] = (0, 0)


def encode_request(method: str, images: Sequence[npt.NDArray[np.uint8]], *, prompt: str = "",
                   max_new_tokens: int = 0, camera_size: tuple[int, int] = (0, 0),
                   encoding: str = "png", jpeg_quality: int = 90) -> bytes:
    """The framed request of ``method`` over (H, W, 3) uint8 RGB ``images``."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown frame encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
    blobs = [_encode_image(im, encoding, jpeg_quality) for im in images]
    frames = [{"encoding": encoding, "width": int(im.shape[1]), "height": int(im.shape[0])}
              for im in images]
    header = {"method": method, "prompt": prompt, "max_new_tokens": max_new_tokens,
              "camera_size": list(camera_size), "frames": frames}
    return pack(header, blobs)


def decode_request(body: bytes, limits: WireLimits) -> tuple[ModelRequest, list[bytes]]:
    """The request in ``body`` and its still-encoded frames; every frame's claimed size and
    the size its encoded header states are checked, no pixel is decoded.

    Raises:
        WireError: malformed, or out of ``limits``.
    """
    header, blobs = unpack(body, limits)
    method = header.get("method")
    if method not in _METHODS:
        raise WireError(f"unknown method {method!r}")
    raw_frames = header.get("frames")
    if not isinstance(raw_frames, list) or len(raw_frames) != len(blobs) or not raw_frames:
        raise WireError("the header's frames do not match its blobs")
    frames = tuple(_frame_info(f, blob, limits) for f, blob in zip(raw_frames, blobs, strict=True))
    try:
        camera = header.get("camera_size") or [0, 0]
        request = ModelRequest(method, frames, str(header.get("prompt", "")),
                               int(header.get("max_new_tokens", 0)),
                               (int(camera[0]), int(camera[1])))
    except (TypeError, ValueError, IndexError) as err:
        raise WireError(f"bad request field: {err}") from err
    if method == "answer" and not 1 <= request.max_new_tokens <= 1 << 16:
        raise WireError(f"max_new_tokens {request.max_new_tokens} outside 1..65536")
    return request, blobs


def _frame_info(raw: Any, blob: bytes, limits: WireLimits) -> FrameInfo:
    if not isinstance(raw, dict) or raw.get("encoding") not in ENCODINGS:
        raise WireError(f"bad frame entry {raw!r:.80}")
    width, height = raw.get("width"), raw.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
        raise WireError("a frame without a positive integer width and height")
    if width * height > limits.max_frame_pixels:
        raise WireError(f"frame {width}x{height} above {limits.max_frame_pixels} pixels", True)
    info = FrameInfo(raw["encoding"], width, height)
    if info.encoding == "raw":
        if len(blob) != width * height * 3:
            raise WireError(f"raw frame of {len(blob)} bytes, not {width}x{height}x3")
        return info
    try:  # reads the PNG/JPEG header only
        with Image.open(io.BytesIO(blob)) as image:
            stated = image.size
            kind = (image.format or "").lower()
    except Exception as err:  # PIL raises many types for a damaged header
        raise WireError(f"a {info.encoding} frame that cannot be read: {err}") from err
    if kind != info.encoding or stated != (width, height):
        raise WireError(f"frame claims {info.encoding} {width}x{height}, holds {kind} "
                        f"{stated[0]}x{stated[1]}")
    return info


def decode_frames(request: ModelRequest, blobs: Sequence[bytes]) -> list[npt.NDArray[np.uint8]]:
    """The (H, W, 3) uint8 RGB frames of a request checked by :func:`decode_request`."""
    out = []
    for info, blob in zip(request.frames, blobs, strict=True):
        if info.encoding == "raw":
            out.append(np.frombuffer(blob, np.uint8).reshape(info.height, info.width, 3).copy())
            continue
        with Image.open(io.BytesIO(blob)) as image:
            out.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return out


def _encode_image(image: npt.NDArray[np.uint8], encoding: str, quality: int) -> bytes:
    rgb = np.ascontiguousarray(image)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
    if encoding == "raw":
        return rgb.tobytes()
    out = io.BytesIO()
    if encoding == "png":
        Image.fromarray(rgb).save(out, format="PNG", compress_level=1)
    else:
        Image.fromarray(rgb).save(out, format="JPEG", quality=quality)
    return out.getvalue()


# ------------------------------------------------------------------------------ frames
def model_size(camera_size: tuple[int, int], min_pixels: int, max_pixels: int
               ) -> tuple[int, int]:
    """The model input size (W, H) of a ``camera_size`` (W, H) frame: ``smart_resize`` within
    [``min_pixels``, ``max_pixels``], as the engine chooses it."""
    height, width = smart_resize(camera_size[1], camera_size[0], FACTOR, min_pixels, max_pixels)
    return int(width), int(height)


def model_images(rgbs: Sequence[npt.NDArray[np.uint8]], min_pixels: int, max_pixels: int
                 ) -> list[npt.NDArray[np.uint8]]:
    """(H, W, 3) uint8 frames at the model's input size, as the engine makes them: all to
    :func:`model_size` of the first frame."""
    size = model_size((int(rgbs[0].shape[1]), int(rgbs[0].shape[0])), min_pixels, max_pixels)
    return [resize_rgb(np.ascontiguousarray(f), size) for f in rgbs]


def geometry_images(rgbs: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.uint8]]:
    """(H, 518, 3) uint8 frames as VGGT's geometry prediction takes them (before its crop)."""
    return [vggt_image(np.ascontiguousarray(f), VGGT_WIDTH) for f in rgbs]


# ------------------------------------------------------------------------------ replies
def event_line(event: str, **fields: Any) -> bytes:
    """One newline-terminated JSON event of the answer stream."""
    return (json.dumps({"event": event, **fields}) + "\n").encode("utf-8")


def result_to_json(result: GenerationResult) -> dict[str, Any]:
    """A :class:`GenerationResult` as plain JSON."""
    return dataclasses.asdict(result)


def result_from_json(data: Mapping[str, Any]) -> GenerationResult:
    """The :class:`GenerationResult` of :func:`result_to_json`'s form.

    Raises:
        WireError: a field is missing or of the wrong type.
    """
    try:
        return GenerationResult(
            text=str(data["text"]),
            timings_s={str(k): float(v) for k, v in data["timings_s"].items()},
            num_new_tokens=int(data["num_new_tokens"]),
            resized_size=(int(data["resized_size"][0]), int(data["resized_size"][1])),
            raw_text=str(data.get("raw_text", "")),
            original_size=(int(data["original_size"][0]), int(data["original_size"][1])),
            token_ids=[int(t) for t in data.get("token_ids", [])],
            num_video_tokens=int(data.get("num_video_tokens", 0)),
            stopped=bool(data.get("stopped", False)),
        )
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise WireError(f"malformed result from the server: {err}") from err


def encode_geometry(geometry: Sequence[PredictedGeometry]) -> bytes:
    """The framed reply of ``/v1/geometry``: per frame its points (H, W, 3) and confidence
    (H, W), float32 little-endian."""
    shapes, blobs = [], []
    for g in geometry:
        points = np.ascontiguousarray(g.world_points, dtype="<f4")
        conf = np.ascontiguousarray(g.confidence, dtype="<f4")
        shapes.append({"points": list(points.shape), "confidence": list(conf.shape)})
        blobs += [points.tobytes(), conf.tobytes()]
    return pack({"geometry": shapes}, blobs)


def decode_geometry(body: bytes, limits: WireLimits) -> list[PredictedGeometry]:
    """The per-frame geometry of an :func:`encode_geometry` reply.

    Raises:
        WireError: malformed.
    """
    header, blobs = unpack(body, limits)
    out = []
    try:
        for i, shape in enumerate(header["geometry"]):
            points = np.frombuffer(blobs[2 * i], "<f4").reshape(shape["points"])
            conf = np.frombuffer(blobs[2 * i + 1], "<f4").reshape(shape["confidence"])
            out.append(PredictedGeometry(points.astype(np.float32), conf.astype(np.float32)))
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise WireError(f"malformed geometry reply: {err}") from err
    return out


# ------------------------------------------------------------------------------ the token
def load_token(token_file: str = "") -> str:
    """The shared token: the first line of ``token_file`` when given, else
    ``$SPATIAL_MLLM_TOKEN``, else "" (no token).

    Raises:
        OSError: ``token_file`` cannot be read.
    """
    if token_file:
        lines = Path(token_file).read_text(encoding="utf-8").splitlines()
        return lines[0].strip() if lines else ""
    return os.environ.get(TOKEN_ENV, "").strip()


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the bearer token ``expected`` (constant
    time in the header's content); an empty ``expected`` matches nothing."""
    if not expected:
        return False
    given = (authorization or "").encode("utf-8")
    return hmac.compare_digest(given, f"Bearer {expected}".encode())
