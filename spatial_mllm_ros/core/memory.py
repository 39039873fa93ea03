"""Returning memory to the system after a large message or a model is dropped.

Python frees objects, but glibc's allocator keeps the pages of a large freed block in the
process (a rejected 8192x8192 image, deserialised by rclpy before it could be judged, is
192 MiB); ``malloc_trim`` gives them back. Pure: no rclpy, torch imported only if loaded.
"""

from __future__ import annotations

import gc
import sys

from spatial_mllm_ros.core.errors import RejectReason

__all__ = ["LARGE_REJECTIONS", "bound_heap", "release_heap", "release_model_memory"]

#: glibc ``mallopt`` parameters (malloc.h) and the node's values for them.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Blocks from this size up get their own mapping, returned to the system when freed (glibc's
#: default starts at 128 KiB but rises to the largest block freed, up to 32 MiB: after the
#: first image, images then come from the heap arenas, which keep their pages).
MMAP_THRESHOLD_BYTES = 256 * 1024
#: Heap arenas (glibc's default: 8 per core, one per thread that allocates, each keeping what
#: its thread freed).
ARENA_MAX = 2

#: Rejections of messages that may be large: the heap is trimmed after them.
LARGE_REJECTIONS = frozenset({RejectReason.OVERSIZED_IMAGE, RejectReason.BAD_SIZE,
                              RejectReason.BAD_STEP, RejectReason.DECODE_FAILED})


def bound_heap() -> bool:
    """Keep the process's heap close to what it uses while megabyte messages come and go at
    30 Hz on many threads: a fixed mmap threshold (:data:`MMAP_THRESHOLD_BYTES`) and at most
    :data:`ARENA_MAX` arenas. Call it first thing in a process (before threads start).
    ``benchmarks/bench_soak.py`` measures the difference. False without glibc."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
            libc.mallopt(M_ARENA_MAX, ARENA_MAX))
    except (OSError, AttributeError):  # not glibc
        return False


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
