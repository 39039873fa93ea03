"""Returning memory to the system after a large message or a model is dropped.

Python frees objects, but glibc's allocator keeps the pages of a large freed block in the
process (a rejected 8192x8192 image, deserialised by rclpy before it could be judged, is
192 MiB); ``malloc_trim`` gives them back. Pure: no rclpy, torch imported only if loaded.
"""

from __future__ import annotations

import gc
import sys

from spatial_mllm_ros.core.errors import RejectReason

__all__ = ["LARGE_REJECTIONS", "release_heap", "release_model_memory"]

#: Rejections of messages that may be large: the heap is trimmed after them.
LARGE_REJECTIONS = frozenset({RejectReason.OVERSIZED_IMAGE, RejectReason.BAD_SIZE,
                              RejectReason.BAD_STEP, RejectReason.DECODE_FAILED})


def release_heap() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``); without glibc,
    nothing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        return


def release_model_memory() -> None:
    """After a model is dropped: collect it, trim the heap, and return the accelerator
    memory torch caches (when torch was loaded at all)."""
    gc.collect()
    release_heap()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
