"""``untrusted.shown``: the one helper for outside text in messages (issue 13, item 7)."""

from __future__ import annotations

from shaman_addon.untrusted import quoted, shown


def test_control_characters_are_escaped_not_passed_to_the_terminal() -> None:
    text = "tex/\x1b[2J\x1b]0;owned\x07\r\nfake line\x7f\x9b\u202eevil\u2028\udcff.png"
    out = shown(text)
    assert out == ("tex/\\x1b[2J\\x1b]0;owned\\x07\\x0d\\x0afake line\\x7f\\x9b\\u202eevil"
                   "\\u2028\\udcff.png")
    assert all(c.isprintable() for c in out)
    out.encode("utf-8")  # a lone surrogate would make printing raise


def test_printable_text_is_left_as_it_is() -> None:
    for text in ("", "textures/wood.png", "Ünïcode 文字 ok", "C:\\path\\x"):
        assert shown(text) == text
        assert shown(shown(text)) == text


def test_long_text_is_capped_and_says_how_much_was_left_out() -> None:
    out = shown("a" * 2_000_000, 100)
    assert out == "a" * 100 + "... (1,999,900 more characters)"
    assert quoted("x" * 5, 3) == "'xxx... (2 more characters)'"
    assert shown(12345) == "12345"
