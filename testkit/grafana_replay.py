"""Replay promtool scenarios on the provisioned Grafana rules: real Prometheus, Grafana's reading.

Each scenario case gets a fresh Prometheus holding exactly its input series (remote-written, so
staleness markers survive). Every rule the case checks is then evaluated as Grafana's scheduler
would: at each multiple of the group's ``interval`` from the scenario's time zero, its queries run
against Prometheus at ``now - relativeTimeRange.to`` (instant) or over the relative range, the
expressions run in Python (:mod:`testkit.grafana_sse`), and the instance state machine advances
(:mod:`testkit.grafana_state`). An instant query at every tick is fetched as one ``query_range``
whose step is the interval: Prometheus evaluates each step exactly as an instant query at that time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testkit.grafana_rules import DataQuery, Rule
from testkit.grafana_sse import EvaluationError, evaluate_condition
from testkit.grafana_state import RuleState
from testkit.grafana_values import Labels, Number, SeriesValue, Value
from testkit.prometheus import Prometheus, running_prometheus
from testkit.recording_replay import recording_rules_of, replay_forward, scenario_rule_files
from testkit.rule_scenarios import Case, parse_duration

__all__ = (
    "IGNORED_LABELS",
    "Mismatch",
    "instant_values",
    "instant_values_one_by_one",
    "replay_case",
    "replay_rule",
)

IGNORED_LABELS = frozenset(("__name__",))
"""Compared label sets leave these out: promtool's alerts never carry the series name."""

_MAX_STEPS = 10_000  # Prometheus refuses a range query of more than 11 000 points per series
_DEFAULT_SCRAPE_INTERVAL_MS = 15_000

Snapshot = tuple[list[Labels], list[tuple[str, Labels]], str]
"""After one evaluation: firing label sets, (state, labels) of pending/NoData/Error instances, and
the evaluation's error ("" when it succeeded)."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    case: str
    eval_time_ms: int
    alertname: str
    expected: list[Labels]
    got: list[Labels]
    others: list[tuple[str, Labels]]
    error: str = ""
    """Set when the evaluation itself failed (a query or expression error): never expected here."""

    def __str__(self) -> str:
        when = f"{self.eval_time_ms / 1000:g}s"
        if self.error:
            return f"{self.case} @ {when} {self.alertname}: Grafana's evaluation fails: {self.error}"
        note = f"; other instances: {self.others}" if self.others else ""
        return (
            f"{self.case} @ {when} {self.alertname}: scenario expects {self.expected}, "
            f"Grafana's reading fires {self.got}{note}"
        )


def _float(text: str) -> float:
    return float(text) if text not in ("NaN", "nan") else math.nan


def instant_values(prom: Prometheus, query: DataQuery, ticks: Sequence[int]) -> dict[int, list[Value] | str]:
    """Per tick: the instant vector as Numbers, or the error Prometheus answered."""
    shift = query.to_s * 1000
    out: dict[int, list[Value] | str] = {t: [] for t in ticks}
    for first in range(0, len(ticks), _MAX_STEPS):
        chunk = ticks[first : first + _MAX_STEPS]
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1000
        params = {
            "query": query.expr,
            "start": f"{(chunk[0] - shift) / 1000:.3f}",
            "end": f"{(chunk[-1] - shift) / 1000:.3f}",
            "step": f"{step / 1000:.3f}",
        }
        try:
            matrix = prom.api("/api/v1/query_range", params)["result"]
        except RuntimeError:
            out.update(instant_values_one_by_one(prom, query, chunk))
            continue
        for series in matrix:
            for at, value in series["values"]:
                tick = round(float(at) * 1000) + shift
                bucket = out[tick]
                assert isinstance(bucket, list)
                bucket.append(Number(dict(series["metric"]), _float(value)))
    return out


def instant_values_one_by_one(
    prom: Prometheus, query: DataQuery, ticks: Sequence[int]
) -> dict[int, list[Value] | str]:
    out: dict[int, list[Value] | str] = {}
    for tick in ticks:
        try:
            samples = prom.query(query.expr, at=(tick - query.to_s * 1000) / 1000)
        except RuntimeError as exc:
            out[tick] = str(exc)
            continue
        out[tick] = [Number(dict(s["metric"]), _float(s["value"][1])) for s in samples]
    return out


def _range_step_ms(query: DataQuery, span_ms: int) -> int:
    """promlib's step, simplified: the query's or datasource's minimum interval, at most
    ``maxDataPoints`` (and 11 000) points, whole seconds."""
    minimum = parse_duration(query.min_interval) if query.min_interval else _DEFAULT_SCRAPE_INTERVAL_MS
    step = max(
        minimum, query.interval_ms, math.ceil(span_ms / query.max_data_points), math.ceil(span_ms / 11_000)
    )
    return math.ceil(step / 1000) * 1000


def _range_values(prom: Prometheus, query: DataQuery, ticks: Sequence[int]) -> dict[int, list[Value] | str]:
    out: dict[int, list[Value] | str] = {}
    for tick in ticks:
        start, end = tick - query.from_s * 1000, tick - query.to_s * 1000
        step = _range_step_ms(query, end - start)
        start, end = start // step * step, end // step * step
        params = {
            "query": query.expr,
            "start": f"{start / 1000:.3f}",
            "end": f"{end / 1000:.3f}",
            "step": f"{step / 1000:.3f}",
        }
        try:
            matrix = prom.api("/api/v1/query_range", params)["result"]
        except RuntimeError as exc:
            out[tick] = str(exc)
            continue
        out[tick] = [
            SeriesValue(dict(s["metric"]), tuple((round(float(t) * 1000), _float(v)) for t, v in s["values"]))
            for s in matrix
        ]
    return out


def replay_rule(prom: Prometheus, rule: Rule, until_ms: int) -> dict[int, Snapshot]:
    """Evaluate ``rule`` at every tick from 0 to ``until_ms``; the snapshot after each tick."""
    ticks = list(range(0, until_ms + 1, rule.interval_ms))
    if rule.paused:
        return {t: ([], [], "") for t in ticks}
    fetched = {
        q.ref_id: (instant_values if q.instant else _range_values)(prom, q, ticks) for q in rule.queries
    }
    state = RuleState(rule)
    snapshots: dict[int, Snapshot] = {}
    for tick in ticks:
        data = {ref: values[tick] for ref, values in fetched.items()}
        errors = [v for v in data.values() if isinstance(v, str)]
        outcome = None
        if not errors:
            values = {ref: v for ref, v in data.items() if not isinstance(v, str)}
            try:
                outcome = evaluate_condition(rule, values, state.loaded())
            except EvaluationError as exc:
                errors.append(str(exc))
        state.advance(tick, outcome)
        snapshots[tick] = (state.firing(), state.others(), "; ".join(errors))
    return snapshots


def _comparable(labels: Labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in IGNORED_LABELS))


def replay_case(workdir: Path, case: Case, rules: Sequence[Rule]) -> list[Mismatch]:
    """Every alert check of ``case`` compared with Grafana's reading of the provisioned rules."""
    by_title: dict[str, list[Rule]] = {}
    for rule in rules:
        by_title.setdefault(rule.title, []).append(rule)
    missing = sorted({c.alertname for c in case.checks} - by_title.keys())
    if missing:
        raise AssertionError(f"{case.ident}: no provisioned Grafana rule titled {missing}")
    until = {
        name: max(c.eval_time_ms for c in case.checks if c.alertname == name)
        for name in {c.alertname for c in case.checks}
    }
    with running_prometheus(workdir, load_rules=False) as prom:
        replay_forward(
            prom,
            [(s.labels, s.samples) for s in case.series if s.samples],
            recording_rules_of(scenario_rule_files(case.file)),
            until_ms=max(until.values()),
            evaluation_interval_ms=case.evaluation_interval_ms,
        )
        timelines = {
            rule.uid: replay_rule(prom, rule, until[rule.title]) for name in until for rule in by_title[name]
        }
    mismatches = [
        Mismatch(case.ident, tick, rule.title, [], [], [], error)
        for rule in (r for name in until for r in by_title[name])
        for tick, (_, _, error) in timelines[rule.uid].items()
        if error
    ][:3]
    for check in case.checks:
        got: list[Labels] = []
        others: list[tuple[str, Labels]] = []
        for rule in by_title[check.alertname]:
            tick = check.eval_time_ms // rule.interval_ms * rule.interval_ms
            firing, rest, _ = timelines[rule.uid][tick]
            got += [{**labels, "alertname": rule.title} for labels in firing]
            others += rest
        if sorted(map(_comparable, got)) != sorted(map(_comparable, check.expected)):
            mismatches.append(
                Mismatch(case.ident, check.eval_time_ms, check.alertname, list(check.expected), got, others)
            )
    return mismatches
