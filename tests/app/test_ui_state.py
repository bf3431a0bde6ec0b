"""What the Blender panel decides besides progress and results (ui_state, plain Python)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from shaman_addon.app import ui_state


def test_checkout_preview_resolves_the_template_live() -> None:
    now = datetime(2026, 11, 26, 10, 15, 0)
    assert ui_state.checkout_preview(
        "{blend_name}-{date}-{time}", "/p/shots/sc 01:a.blend", now=now
    ) == "sc 01_a-2026-11-26-101500"
    assert ui_state.checkout_preview("{user}/{blend_name}", "/p/x.blend", now=now, user="ann") == (
        "ann/x"
    )
    assert ui_state.checkout_preview("{nope}", "/p/x.blend", now=now).startswith(
        "(invalid template:"
    )
    assert ui_state.checkout_preview("{blend_name}", "") == "(save the file first)"


ROOTS = ["/tmp", "/home", "/Users", "/home/ann"]


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("//render/frame_", "relative to the .blend file"),
        ("//", "relative to the .blend file"),
        ("", "is empty"),
        ("render/frame_", "is relative"),
        ("/tmp/", "exists only on this computer"),
        ("/home/ann/renders/shot_", "exists only on this computer"),
        ("C:\\Users\\ann\\renders\\", "exists only on this computer"),
        ("c:/renders/", "exists only on this computer"),
    ],
)
def test_render_output_warnings(path: str, needle: str) -> None:
    warnings = ui_state.render_output_warnings(path, local_roots=ROOTS)
    assert len(warnings) == 1 and needle in warnings[0], warnings
    assert "Output Properties > Output" in warnings[0]


@pytest.mark.parametrize(
    "path", ["/mnt/farm/renders/shot_", "/srv/projects/x/", "\\\\nas\\renders\\x_", "R:\\renders\\"]
)
def test_shared_render_outputs_are_fine(path: str) -> None:
    assert ui_state.render_output_warnings(path, local_roots=ROOTS) == []


def test_default_local_roots_include_home_and_temp(tmp_path: Path) -> None:
    roots = ui_state.default_local_roots(home="/home/bob")
    assert "/home/bob" in roots and "/tmp" in roots
    assert ui_state.render_output_warnings("/home/bob/out/")  # the real defaults warn too


def test_unsaved_changes_decision() -> None:
    assert ui_state.wants_temp_copy("AUTO", is_dirty=True, background=False)
    assert not ui_state.wants_temp_copy("AUTO", is_dirty=False, background=False)
    # headless: Blender cannot tell, so what the script sees is sent
    assert ui_state.wants_temp_copy("AUTO", is_dirty=True, background=True)
    assert ui_state.wants_temp_copy("AUTO", is_dirty=False, background=True)
    assert not ui_state.wants_temp_copy("DISK", is_dirty=True, background=True)
    assert ui_state.wants_temp_copy("COPY", is_dirty=False, background=True)
    assert not ui_state.wants_temp_copy("DISK", is_dirty=True, background=False)
    with pytest.raises(ValueError, match="unknown unsaved-changes mode"):
        ui_state.wants_temp_copy("MAYBE", is_dirty=True, background=False)
