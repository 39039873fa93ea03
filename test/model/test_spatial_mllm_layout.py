"""`spatial-mllm-checkpoint layout` equals the released checkpoint layouts (as line sets)."""

from __future__ import annotations

import pytest
from testkit.tiny import LAYOUTS_DIR

from spatial_mllm_ros.model.cli import checkpoint_main
from spatial_mllm_ros.model.layout import HEAD_NAMES

REFERENCE = {
    "v1.0": "spatial_mllm_subset_sft.tsv",
    "v1.1": "spatial_mllm_v1_1_instruct.tsv",
    "vggt": "vggt_1b.tsv",
    "qwen2.5-vl": "qwen2_5_vl_3b_instruct.tsv",
}


@pytest.mark.parametrize("layout", sorted(REFERENCE))
def test_layout_matches_reference(layout: str, capsys: pytest.CaptureFixture[str]) -> None:
    ref_path = LAYOUTS_DIR / REFERENCE[layout]
    if not ref_path.is_file():
        pytest.skip(f"reference layout {ref_path} not found (shared/ must sit beside the repo)")
    assert checkpoint_main(["layout", "--layout", layout]) == 0
    got = set(capsys.readouterr().out.splitlines())
    ref = set(ref_path.read_text().splitlines())
    heads = tuple(
        f"{p}{h}." for h in HEAD_NAMES for p in ("vggt.", "spatial_encoder.vggt_model.", "")
    )
    # Heads are optional in the Spatial-MLLM layouts (README); everything else must match exactly.
    core_ref = {line for line in ref if not line.startswith(heads)}
    core_got = {line for line in got if not line.startswith(heads)}
    assert core_got == core_ref
    if layout in ("vggt", "qwen2.5-vl"):  # no optional heads: exactly the reference
        assert got == ref
    else:
        # The project's model carries the heads; when printed they must match the reference too.
        assert {line for line in got if line.startswith(heads)} <= {
            line for line in ref if line.startswith(heads)
        }
