"""promtool's series notation and durations, read as Prometheus 2.42's grammar reads them."""

from __future__ import annotations

import math

import pytest

from testkit.rule_scenarios import is_stale, parse_duration, parse_series_labels, parse_series_values


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("-2+4x3", [-2.0, 2.0, 6.0, 10.0]),
        ("1-2x4", [1.0, -1.0, -3.0, -5.0, -7.0]),
        ("0 _ 3", [0.0, None, 3.0]),
        ("_x3 7", [None, None, None, 7.0]),
        ("5x2", [5.0, 5.0, 5.0]),
        ("0.95+0x1 1e9", [0.95, 0.95, 1e9]),
    ],
)
def test_values__expand_like_promtool(text: str, values: list[float | None]) -> None:
    assert parse_series_values(text) == values


def test_values__stale_is_prometheus_staleness_marker() -> None:
    (marker,) = parse_series_values("stale")
    assert marker is not None and math.isnan(marker) and is_stale(marker)
    assert not is_stale(math.nan)


@pytest.mark.parametrize("bad", ["1+", "x3", "1+2y3", "abc"])
def test_values__reject_what_promtool_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_series_values(bad)


def test_labels__name_and_escaped_values() -> None:
    assert parse_series_labels('up{job="a\\"b", instance="x:1"}') == {
        "__name__": "up",
        "job": 'a"b',
        "instance": "x:1",
    }
    assert parse_series_labels('{__name__="up"}') == {"__name__": "up"}


def test_durations() -> None:
    assert parse_duration("5h59m30s") == (5 * 3600 + 59 * 60 + 30) * 1000
    assert parse_duration("0s") == 0
    with pytest.raises(ValueError):
        parse_duration("5 minutes")
