"""What an answer says about its frames (``AnswerRecord.notes``): fewer frames than asked and
why, and what the frames lacked for the coverage figure.

Issue 16 (a user asked for 16 frames, had 15, got 3 with no word why) and issue 17 point 8 (a
colour-only answer carried coverage 0.000/0.000 with an empty ``error``).  The sentences are
for people and logs; the figures they quote are the answer's own (``frame_stamps_ns``,
``coverage``).  Pure: frames and a selection in, strings out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from spatial_mllm_ros.core.frame import Frame
from spatial_mllm_ros.sampling.predicted import FALLBACK_STRATEGY, PREDICTED_STRATEGY
from spatial_mllm_ros.sampling.selection import BufferSnapshot, Selection

__all__ = ["frame_count_note", "geometry_note", "selection_notes"]


def selection_notes(asked: int, snapshot: BufferSnapshot, selection: Selection) -> list[str]:
    """The notes of one selection: :func:`frame_count_note` and :func:`geometry_note`, those
    that apply, in that order.

    Args:
        asked: the question's frame budget (frames).
        snapshot: what the selection chose from (the buffer's frames).
        selection: the chosen frames.
    """
    notes = [frame_count_note(asked, len(snapshot), selection),
             geometry_note(snapshot, selection)]
    return [n for n in notes if n]


def frame_count_note(asked: int, held: int, selection: Selection) -> str:
    """"" when ``asked`` frames were used, else e.g. ``16 frames asked, 15 used: the buffer
    holds 15 frames`` or ``8 frames asked, 5 used: greedy coverage stopped: no other frame
    adds voxels`` (selection on predicted geometry does not fill, as the reference).

    Args:
        asked: the frame budget.
        held: frames the selection chose from.
        selection: the chosen frames.
    """
    used = len(selection.frames)
    if used >= asked:
        return ""
    reasons = []
    if held < asked:
        reasons.append(f"the buffer holds {held} frame{'s' * (held != 1)}")
    if used < min(asked, held):
        if selection.strategy.startswith("coverage"):
            reasons.append("greedy coverage stopped: no other frame adds voxels")
        else:
            reasons.append(f"the {selection.strategy} strategy chose {used}")
    return f"{asked} frames asked, {used} used: " + " and ".join(reasons)


def _lacks(frames: Sequence[Frame]) -> str:
    """What the frames lack of the sensor geometry (depth, pose, intrinsics), e.g. ``no depth``
    or ``no depth, no pose and no camera intrinsics``; "" when none lacks anything."""
    missing = [name for name, absent in (
        ("depth", any(f.depth_m is None for f in frames)),
        ("pose", any(f.pose is None for f in frames)),
        ("camera intrinsics", any(f.intrinsics is None for f in frames)),
    ) if absent]
    words = [f"no {m}" for m in missing]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" and {words[-1]}"


def geometry_note(snapshot: BufferSnapshot, selection: Selection) -> str:
    """"" when every chosen frame had sensor geometry and coverage was measured; else what
    the frames lacked and what that did to ``coverage``: ``the frames had no depth: coverage
    not measured`` (coverage NaN), ``...: coverage is of the geometry the model predicted``,
    or ``3 of 8 frames had no depth: they add nothing to the coverage``."""
    bare = [snapshot.frames[i] for i in selection.indices if snapshot.voxel_sets[i] is None]
    lacks = _lacks(bare)
    measured = not math.isnan(selection.coverage)
    if selection.strategy == PREDICTED_STRATEGY and lacks:
        return f"the frames had {lacks}: coverage is of the geometry the model predicted"
    fallback = (" (the model's geometry prediction failed: frames chosen by the scored rule)"
                if selection.strategy == FALLBACK_STRATEGY else "")
    if not measured:
        if lacks and len(bare) == len(selection.frames):
            return f"the frames had {lacks}: coverage not measured{fallback}"
        return "the frames' depth gave no voxel within buffer.max_depth_m: coverage not measured"
    if bare:
        return (f"{len(bare)} of {len(selection.frames)} frames had {lacks}: they add nothing "
                "to the coverage")
    return ""
