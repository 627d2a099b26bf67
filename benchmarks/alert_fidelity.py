"""Alert fidelity: 30 simulated days with injected incidents, replayed through the rules Grafana loads.

One importer's series (``benchmarks._fidelity_sim``: idle nights and weekends, crashes, hangs, database
outages of 30 s, 5 min and 1 h, collector outages, a full disk, restarts and upgrades) are written
into a real Prometheus forward in time, with the SLI recording rules recorded as Prometheus would
(``testkit.recording_replay``); then every provisioned Grafana rule is evaluated every 30 s over the
whole period as Grafana reads it (``testkit.grafana_replay``). Reported: each incident's detection
delay by the rules expected to catch it, against the window each promises; and every notification
(a firing that starts), false when no real incident explains it (it starts neither during one nor
within 35 minutes after it: the burn-rate pairs may hold that long). Goal: every incident detected
within its window, false notifications < 5 %. MnemoWatchdog is not a notification to people; it is
reported as the share of evaluations it fired.

Usage: ``python -m benchmarks.alert_fidelity [--days N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from testkit.grafana_replay import replay_rule
from testkit.grafana_rules import load_rules
from testkit.prometheus import running_prometheus
from testkit.recording_replay import recording_rules_of, replay_forward

from ._fidelity_sim import DAY, MINUTE, Incident, incidents, simulate
from ._report import REPO, environment, format_table

__all__ = ("Firing", "Outcome", "main", "measure")

PROVISIONING = REPO / "grafana" / "provisioning"
MIRROR = REPO / "grafana" / "promtool" / "rules.yaml"
EVALUATION_MS = 30_000
EXPLAINED_AFTER = 35 * MINUTE
WATCHDOG = "MnemoWatchdog"


@dataclass(frozen=True, slots=True)
class Firing:
    rule: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Outcome:
    days: int
    events: list[Incident]
    firings: list[Firing]
    watchdog_share: float
    seconds: float


def _firings(title: str, snapshots: Mapping[int, tuple[list[dict[str, str]], object, str]]) -> list[Firing]:
    """Intervals during which each label set fired, from Grafana's per-evaluation snapshots."""
    open_since: dict[tuple[tuple[str, str], ...], int] = {}
    out: list[Firing] = []
    last = 0
    for tick in sorted(snapshots):
        now = {tuple(sorted(labels.items())) for labels in snapshots[tick][0]}
        for key in now - open_since.keys():
            open_since[key] = tick
        for key in set(open_since) - now:
            out.append(Firing(title, open_since.pop(key), tick))
        last = tick
    out += [Firing(title, start, last) for start in open_since.values()]
    return out


def measure(days: int, workdir: Path, events: Sequence[Incident] | None = None) -> Outcome:
    """Replay ``days`` with ``events`` (default: the thirty days' incidents that fit)."""
    span = days * DAY
    events = [event for event in (incidents() if events is None else events) if event.end < span]
    series = simulate(days, events)
    recording = [rule for rule in recording_rules_of([MIRROR]) if not rule.record.endswith("_30d")]
    rules = load_rules(PROVISIONING)
    started = time.monotonic()
    firings: list[Firing] = []
    with running_prometheus(workdir, load_rules=False, retention=f"{10 * days}d") as prom:
        replay_forward(prom, series, recording, until_ms=span, evaluation_interval_ms=EVALUATION_MS)
        watchdog_share = 0.0
        for rule in rules:
            snapshots = replay_rule(prom, rule, span - rule.interval_ms)
            if rule.title == WATCHDOG:
                watchdog_share = sum(bool(s[0]) for s in snapshots.values()) / len(snapshots)
            else:
                firings += _firings(rule.title, snapshots)
    return Outcome(days, events, firings, watchdog_share, time.monotonic() - started)


def _explains(event: Incident, firing: Firing) -> bool:
    return not event.benign and event.start <= firing.start <= event.end + EXPLAINED_AFTER


def _when(ms: int) -> str:
    day, rest = divmod(ms, DAY)
    return f"day {day} {rest // 3_600_000:02d}:{rest // 60_000 % 60:02d}"


def _delay(ms: int) -> str:
    return f"{ms / 1000:.0f} s" if ms < 10 * MINUTE else f"{ms / MINUTE:.1f} min"


def incident_table(outcome: Outcome) -> tuple[str, int]:
    rows, missed = [], 0
    for event in outcome.events:
        if event.benign:
            noisy = sorted(
                {f.rule for f in outcome.firings if event.start <= f.start <= event.end + 10 * MINUTE}
            )
            rows.append([event.kind, _when(event.start), "(none expected)", ", ".join(noisy) or "quiet"])
            missed += bool(noisy)
            continue
        cells = []
        for rule, window in event.detectors.items():
            starts = [f.start for f in outcome.firings if f.rule == rule and event.start <= f.start]
            delay = min(starts) - event.start if starts else None
            ok = delay is not None and delay <= window
            missed += not ok
            shown = _delay(delay) if delay is not None else "never"
            cells.append(
                f"{rule.removeprefix('Mnemo')} {shown} (<= {_delay(window)}){'' if ok else ' MISSED'}"
            )
        rows.append(
            [event.kind, _when(event.start), "; ".join(cells), "ok" if "MISSED" not in str(cells) else "late"]
        )
    return format_table(["incident", "at", "detected by: delay (window)", "verdict"], rows), missed


def notification_table(outcome: Outcome) -> tuple[str, int, int]:
    by_rule: dict[str, list[bool]] = {}
    for firing in outcome.firings:
        explained = any(_explains(event, firing) for event in outcome.events)
        by_rule.setdefault(firing.rule, []).append(explained)
    rows = [[rule, len(marks), marks.count(False)] for rule, marks in sorted(by_rule.items())]
    total = sum(len(m) for m in by_rule.values())
    false = sum(m.count(False) for m in by_rule.values())
    rows.append(["all rules", total, false])
    unexplained = [
        f"{f.rule} at {_when(f.start)} for {_delay(f.end - f.start)}"
        for f in outcome.firings
        if not any(_explains(event, f) for event in outcome.events)
    ]
    text = format_table(["rule", "notifications", "false"], rows)
    return text + "".join(f"\nfalse: {line}" for line in unexplained), total, false


def report(outcome: Outcome) -> str:
    incidents_text, missed = incident_table(outcome)
    notes_text, total, false = notification_table(outcome)
    share = false / total if total else 0.0
    summary = [
        ("simulated", f"{outcome.days} days, {len(outcome.events)} events, replay {outcome.seconds:.0f} s"),
        ("incidents detected within their window", f"{'all' if not missed else f'{missed} missed or noisy'}"),
        ("false notifications", f"{false} of {total} ({share:.1%}; goal < 5 %)"),
        (f"{WATCHDOG} firing", f"{outcome.watchdog_share:.1%} of evaluations"),
    ]
    return "\n\n".join([incidents_text, notes_text, format_table(["", ""], summary)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alert_fidelity", description=__doc__)
    parser.add_argument("--days", type=int, default=30, help="simulated days (default 30)")
    args = parser.parse_args(argv)
    print(format_table(["", ""], environment()))
    print()
    with tempfile.TemporaryDirectory(prefix="mnemo-fidelity-") as tmp:
        print(report(measure(args.days, Path(tmp))))


if __name__ == "__main__":
    main()
