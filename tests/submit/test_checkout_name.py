"""Checkout path templates and sanitising to a real Manager's rules."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shaman_addon.errors import ConfigError
from shaman_addon.submit.checkout_name import (
    DEFAULT_TEMPLATE,
    render_checkout_name,
    sanitize_checkout_path,
)

NOW = datetime(2026, 3, 4, 5, 6, 7)


def manager_accepts(path: str) -> bool:
    """The real Manager's checkout-path rule, as the protocol page states it."""
    return not (
        path.startswith("/")
        or re.search(r"[?*:;{}\\]", path)
        or "../" in path
        or "/.." in path
    )


def test_default_template() -> None:
    assert DEFAULT_TEMPLATE == "{blend_name}-{date}-{time}"
    assert render_checkout_name(DEFAULT_TEMPLATE, blend_name="shot_010.blend", now=NOW) == (
        "shot_010-2026-03-04-050607"
    )


def test_every_placeholder() -> None:
    out = render_checkout_name(
        "{user}/{year}/{month}/{day}/{blend_name}_{datetime}",
        blend_name="sc01",
        now=NOW,
        user="ana",
    )
    assert out == "ana/2026/03/04/sc01_20260304-050607"


def test_values_do_not_make_folders_or_escape() -> None:
    out = render_checkout_name("{user}-{blend_name}", blend_name="x", now=NOW, user="../../etc")
    assert "/" not in out and manager_accepts(out)


def test_unknown_placeholder_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"\{shot\}"):
        render_checkout_name("{shot}-{date}", blend_name="a", now=NOW)
    with pytest.raises(ConfigError, match="malformed"):
        render_checkout_name("{blend_name", blend_name="a", now=NOW)


def test_empty_result_falls_back_to_the_default() -> None:
    assert render_checkout_name("///..", blend_name="a.blend", now=NOW) == "a-2026-03-04-050607"
    assert render_checkout_name("", blend_name="", now=NOW) == "submission-2026-03-04-050607"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("/abs/path", "abs/path"),
        ("a:b;c?d*e{f}g\\h", "a_b_c_d_e_f_g_h"),
        ("../../up", "up"),
        ("a/../b", "a/b"),
        ("a/..b/c../d", "a/b/c/d"),
        ("a..b", "a..b"),
        ("  spaced  / name ", "spaced/name"),
        ("tab\tnew\nline", "tab_new_line"),
        ("ünïcödé/名前", "ünïcödé/名前"),
        ("a//b///c/", "a/b/c"),
    ],
)
def test_sanitize_examples(raw: str, clean: str) -> None:
    assert sanitize_checkout_path(raw) == clean


def test_long_parts_are_cut_at_a_character_boundary() -> None:
    out = sanitize_checkout_path("é" * 300)
    assert len(out.encode("utf-8")) <= 200
    out.encode("utf-8").decode("utf-8")


@given(st.text(max_size=80))
def test_sanitized_paths_are_always_accepted_and_stable(raw: str) -> None:
    clean = sanitize_checkout_path(raw)
    assert manager_accepts(clean)
    assert ".." not in clean.split("/")
    assert sanitize_checkout_path(clean) == clean


@given(st.text(max_size=40), st.text(max_size=20))
def test_rendered_names_are_never_empty_and_always_accepted(template: str, blend: str) -> None:
    try:
        out = render_checkout_name(template, blend_name=blend, now=NOW, user="u")
    except ConfigError:
        return
    assert out and manager_accepts(out)
