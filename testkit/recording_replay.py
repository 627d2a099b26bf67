"""Feed a test Prometheus a scenario's past as it would have lived it: raw samples and recorded series.

Rules whose queries read recorded series (the SLO burn rates) need what Prometheus's recording rules
would have written at every evaluation. A live Prometheus only records from now on, so time is
replayed forward in slices: a slice of raw samples, then each recording rule in file order evaluated
at every tick of the slice (one ``query_range``, whose steps are exactly instant evaluations) and
written back, with a staleness marker where a recorded series ends, as Prometheus writes one. Slices
stay inside the TSDB's out-of-order window, so every remote-written sample is accepted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from testkit.prometheus import Prometheus
from testkit.remote_write import push
from testkit.rule_scenarios import STALE_NAN, parse_duration

__all__ = ("SLICE_MS", "RecordingRule", "recording_rules_of", "replay_forward", "scenario_rule_files")

SLICE_MS = 20 * 60_000
"""Under the shipped out_of_order_time_window (30m): a slice's oldest sample is never too old."""
_MAX_STEPS = 10_000

SeriesData = tuple[Mapping[str, str], Sequence[tuple[int, float]]]
Key = tuple[tuple[str, str], ...]


class RecordingRule:
    """One ``record:`` rule with the interval of its group (``None``: the evaluation interval)."""

    def __init__(self, record: str, expr: str, labels: Mapping[str, str], interval_ms: int | None) -> None:
        self.record, self.expr, self.labels, self.interval_ms = record, expr, dict(labels), interval_ms
        self._last: set[Key] = set()

    def samples(self, prom: Prometheus, ticks: Sequence[int]) -> list[SeriesData]:
        """The rule evaluated at ``ticks`` (evenly spaced), with staleness markers where series end."""
        present: dict[Key, list[tuple[int, float]]] = {}
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1000
        for first in range(0, len(ticks), _MAX_STEPS):
            chunk = ticks[first : first + _MAX_STEPS]
            params = {
                "query": self.expr,
                "start": f"{chunk[0] / 1000:.3f}",
                "end": f"{chunk[-1] / 1000:.3f}",
                "step": f"{step / 1000:.3f}",
            }
            for series in prom.api("/api/v1/query_range", params)["result"]:
                labels = {**series["metric"], **self.labels, "__name__": self.record}
                values = present.setdefault(tuple(sorted(labels.items())), [])
                values += [(round(float(t) * 1000), float(v)) for t, v in series["values"]]
        out: list[SeriesData] = []
        for key in present.keys() | self._last:
            by_tick = dict(present.get(key, []))
            samples: list[tuple[int, float]] = []
            was = key in self._last
            for tick in ticks:
                if tick in by_tick:
                    samples.append((tick, by_tick[tick]))
                elif was:
                    samples.append((tick, STALE_NAN))
                was = tick in by_tick
            if samples:
                out.append((dict(key), samples))
        self._last = {key for key, values in present.items() if values and values[-1][0] == ticks[-1]}
        return out


def recording_rules_of(rule_files: Sequence[Path]) -> list[RecordingRule]:
    """The recording rules of ``rule_files``, groups and rules in file order."""
    rules = []
    for path in rule_files:
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document.get("groups") or []:
            interval = parse_duration(group["interval"]) if "interval" in group else None
            for rule in group["rules"]:
                if "record" in rule:
                    rules.append(
                        RecordingRule(rule["record"], rule["expr"], rule.get("labels", {}), interval)
                    )
    return rules


def scenario_rule_files(scenario: Path) -> list[Path]:
    """The ``rule_files`` a promtool scenario file loads, resolved against its folder."""
    document: dict[str, Any] = yaml.safe_load(scenario.read_text(encoding="utf-8"))
    return [(scenario.parent / name).resolve() for name in document.get("rule_files") or []]


def _window(series: Sequence[SeriesData], start: int, end: int) -> list[SeriesData]:
    cut = [(labels, [(t, v) for t, v in samples if start <= t < end]) for labels, samples in series]
    return [(labels, samples) for labels, samples in cut if samples]


def _ticks(start: int, end: int, interval: int) -> list[int]:
    first = -(-start // interval) * interval
    return list(range(first, end, interval))


def _slices(until_ms: int) -> Iterator[tuple[int, int]]:
    for start in range(0, until_ms + 1, SLICE_MS):
        yield start, min(start + SLICE_MS, until_ms + 1)


def replay_forward(
    prom: Prometheus,
    series: Sequence[SeriesData],
    rules: Sequence[RecordingRule],
    *,
    until_ms: int,
    evaluation_interval_ms: int,
) -> None:
    """Write ``series`` and what ``rules`` record from them, from time 0 up to ``until_ms``."""
    for start, end in _slices(until_ms):
        raw = _window(series, start, end)
        if raw:
            push(prom.remote_write_url, raw)
        for rule in rules:
            ticks = _ticks(start, end, rule.interval_ms or evaluation_interval_ms)
            recorded = rule.samples(prom, ticks) if ticks else []
            if recorded:
                push(prom.remote_write_url, recorded)
    rest = _window(series, until_ms + 1, 2**62)
    for start in range(until_ms + 1, max((s[-1][0] for _, s in rest), default=0) + 1, SLICE_MS):
        chunk = _window(rest, start, start + SLICE_MS)
        if chunk:
            push(prom.remote_write_url, chunk)
