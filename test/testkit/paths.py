"""Where the tests find the repository and the shared data beside it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository root."""
SHARED = REPO.parent / "shared"
"""``shared/`` beside the checkout (CI lays a copy there)."""
SHELF = SHARED / "data" / "real_rgbd_shelf"
"""15 real RGB-D frames with intrinsics and poses."""
LAYOUTS = SHARED / "reference" / "checkpoint_layouts"
"""Parameter names and shapes of the released checkpoints."""
