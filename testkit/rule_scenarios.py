"""``promtool test rules`` scenario files, read the way promtool reads them.

A scenario names input series in promtool's expanding notation (``0+15x240``, ``_x3``, ``stale``)
and the alerts expected at given evaluation times. This module turns a file into plain samples and
expectations so that a second reader (the Grafana evaluator) can replay the very same scenarios.
Notation follows Prometheus 2.42's series grammar: ``a+bxN`` and ``axN`` give N+1 values, ``_xN``
gives N omitted samples, ``stale`` is a staleness marker.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = (
    "STALE_NAN",
    "AlertCheck",
    "Case",
    "Series",
    "load_cases",
    "parse_duration",
    "parse_series_labels",
    "parse_series_values",
)

STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus's staleness marker: a NaN with a fixed bit pattern (``value.StaleNaN``)."""

_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_UNIT_MS["y"] = 365 * _UNIT_MS["d"]

_UNSIGNED = r"(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN|nan)"
_ITEM = re.compile(
    rf"^(?:(?P<blank>_)(?:x(?P<blanks>\d+))?|(?P<stale>stale)"
    rf"|(?P<start>[+-]?{_UNSIGNED})(?:(?P<step>[+-]{_UNSIGNED})?x(?P<times>\d+))?)$"
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def parse_duration(text: str | int) -> int:
    """A Prometheus duration (``1h30m``, ``30s``) in milliseconds; bare integers are seconds."""
    if isinstance(text, int):
        return text * 1000
    text = text.strip()
    if text in ("0", ""):
        return 0
    total, pos = 0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_MS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return total


def parse_series_values(text: str) -> list[float | None]:
    """Expand promtool's value notation; ``None`` is an omitted sample, STALE_NAN a stale marker."""
    values: list[float | None] = []
    for item in str(text).split():
        match = _ITEM.match(item)
        if match is None:
            raise ValueError(f"cannot read series value {item!r} in {text!r}")
        if match["blank"]:
            values.extend([None] * int(match["blanks"] or 1))
        elif match["stale"]:
            values.append(STALE_NAN)
        else:
            current = float(match["start"])
            values.append(current)
            step = float(match["step"]) if match["step"] else 0.0
            for _ in range(int(match["times"] or 0)):
                current += step
                values.append(current)
    return values


def parse_series_labels(text: str) -> dict[str, str]:
    """``name{a="b"}`` or ``{__name__="name", a="b"}`` as a label dict (``__name__`` included)."""
    text = text.strip()
    brace = text.find("{")
    name = text if brace < 0 else text[:brace].strip()
    labels: dict[str, str] = {"__name__": name} if name else {}
    if brace >= 0:
        if not text.endswith("}"):
            raise ValueError(f"unterminated label set in series {text!r}")
        body, pos = text[brace + 1 : -1], 0
        while pos < len(body) and body[pos:].strip():
            match = _LABEL.match(body, pos)
            if match is None:
                raise ValueError(f"cannot read labels of series {text!r} at {body[pos:]!r}")
            labels[match.group(1)] = re.sub(
                r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), match.group(2)
            )
            pos = match.end()
    if not labels.get("__name__"):
        raise ValueError(f"series {text!r} has no metric name")
    return labels


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    samples: tuple[tuple[int, float], ...]
    """(timestamp in ms from the scenario's zero, value) in time order; omitted samples left out."""


@dataclass(frozen=True, slots=True)
class AlertCheck:
    eval_time_ms: int
    alertname: str
    expected: tuple[dict[str, str], ...]
    """Label sets of the alerts expected firing, each including ``alertname``."""


@dataclass(frozen=True, slots=True)
class Case:
    """One ``tests:`` entry of a scenario file: its input series and its alert expectations."""

    file: Path
    name: str
    evaluation_interval_ms: int
    series: tuple[Series, ...]
    checks: tuple[AlertCheck, ...]

    @property
    def ident(self) -> str:
        return f"{self.file.stem}: {self.name}"


def _series(entry: dict[str, Any], interval_ms: int) -> Series:
    values = parse_series_values(entry["values"])
    samples = tuple((i * interval_ms, v) for i, v in enumerate(values) if v is not None)
    return Series(labels=parse_series_labels(entry["series"]), samples=samples)


def _check(entry: dict[str, Any]) -> AlertCheck:
    name = str(entry["alertname"])
    expected = tuple(
        {**{str(k): str(v) for k, v in (alert.get("exp_labels") or {}).items()}, "alertname": name}
        for alert in entry.get("exp_alerts") or []
    )
    return AlertCheck(parse_duration(entry["eval_time"]), name, expected)


def load_cases(path: Path) -> list[Case]:
    """Every test of a scenario file (those without alert checks too; callers filter)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    evaluation_ms = parse_duration(document.get("evaluation_interval", "1m"))
    cases = []
    for test in document.get("tests") or []:
        interval_ms = parse_duration(test.get("interval", document.get("evaluation_interval", "1m")))
        cases.append(
            Case(
                file=path,
                name=str(test.get("name", "")),
                evaluation_interval_ms=evaluation_ms,
                series=tuple(_series(s, interval_ms) for s in test.get("input_series") or []),
                checks=tuple(_check(c) for c in test.get("alert_rule_test") or []),
            )
        )
    return cases


def is_stale(value: float) -> bool:
    return math.isnan(value) and struct.pack("<d", value) == struct.pack("<d", STALE_NAN)
