"""Recording times: parsing ISO 8601 and the m:ss.s clock every rendering uses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vmgrade.timestamps import format_clock, format_span, parse_timestamp


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0:00.0"),
    (5.0, "0:05.0"),
    (12.34, "0:12.3"),
    (75.25, "1:15.2"),  # a tie on the binary value: as "%.1f" rounds it
    (125.0, "2:05.0"),
    (600.04, "10:00.0"),
    (59.94, "0:59.9"),
    (59.97, "1:00.0"),  # rounds up into the next minute, never "0:60.0"
    (119.96, "2:00.0"),
    (3599.99, "60:00.0"),
])
def test_format_clock(seconds, text):
    assert format_clock(seconds) == text


def test_format_clock_of_an_unknown_time():
    assert format_clock(None) == ""
    assert format_clock(None, missing="?") == "?"


def test_format_clock_matches_the_old_split_except_at_sixty():
    old = [f"{int(s // 60)}:{s % 60:04.1f}" for s in (i * 0.01 for i in range(0, 20000))]
    new = [format_clock(i * 0.01) for i in range(0, 20000)]
    differ = [(o, n) for o, n in zip(old, new) if o != n]
    assert differ and all(":60.0" in o for o, _ in differ)


def test_format_span():
    assert format_span(None, None) == "whole message"
    assert format_span(None, 3.0, point_below_s=0.05) == "whole message"
    assert format_span(1.0, 2.5) == "0:01.0–0:02.5"
    assert format_span(59.97, 61.0) == "1:00.0–1:01.0"
    assert format_span(3.0, None) == "0:03.0–0:03.0"  # the terminal always shows a range
    assert format_span(3.0, None, point_below_s=0.05) == "0:03.0"  # the HTML page shows a point
    assert format_span(3.0, 3.04, point_below_s=0.05) == "0:03.0"
    assert format_span(3.0, 3.5, point_below_s=0.05) == "0:03.0–0:03.5"


def test_parse_timestamp():
    assert parse_timestamp("2026-11-02T14:05Z").utcoffset() == timedelta(0)
    assert parse_timestamp("2026-11-02").utcoffset() == timedelta(0)
    assert parse_timestamp("2026-11-02T14:05+01:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")
