"""Sizes, rates, counts and durations: one unit system and one duration style (units)."""

from __future__ import annotations

import math

from shaman_addon.units import (
    format_bytes,
    format_bytes_of,
    format_count,
    format_duration,
    format_files,
    format_rate,
)


def test_formatting() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(999) == "999 B"
    assert format_bytes(1_234_567) == "1.2 MB"
    assert format_bytes(3_200_000_000_000) == "3.2 TB"
    assert format_duration(None) == ""
    assert format_duration(42.4) == "42 s"
    assert format_duration(3725) == "1 h 02 min"
    assert format_rate(0) == ""


def test_decimal_units_all_the_way_up() -> None:
    assert format_bytes(1_000) == "1.0 kB"
    assert format_bytes(999_949) == "999.9 kB"
    assert format_bytes(1_500_000_000) == "1.5 GB"
    assert format_bytes(2 << 30) == "2.1 GB"  # 2 GiB is 2.1 GB: decimal, as the README
    assert format_bytes(7_300_000_000_000_000) == "7,300.0 TB"  # no unit past TB


def test_progress_through_a_total_uses_the_totals_unit() -> None:
    assert format_bytes_of(212_400_000, 503_100_000) == "212.4/503.1 MB"
    assert format_bytes_of(4_999_500_000, 5_000_000_000) == "5.0/5.0 GB"
    assert format_bytes_of(12, 800) == "12/800 B"
    assert format_bytes_of(0, 0) == "0/0 B"


def test_rates_counts_and_files() -> None:
    assert format_rate(2_500_000) == "2.5 MB/s"
    assert format_rate(-1) == format_rate(math.nan) == format_rate(math.inf) == ""
    assert format_count(1204) == "1,204"
    assert format_files(1, 400) == "1 file, 400 B"
    assert format_files(3_000, 503_100_000) == "3,000 files, 503.1 MB"


def test_one_duration_style() -> None:
    assert format_duration(0) == "0 s"
    assert format_duration(59.4) == "59 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3599.6) == "1 h 00 min"
    assert format_duration(-1) == format_duration(math.nan) == format_duration(math.inf) == ""
