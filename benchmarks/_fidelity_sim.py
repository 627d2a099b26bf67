"""Thirty simulated days of one importer's series, as Prometheus would hold them, with incidents.

The model follows the importer's cadences (``mnemo_otel.grafana.spec``): a sample every 15 s export;
the heartbeat value is the last beat (5 s before the export while idle or importing, 20 s while the
database is down); imports only on weekdays 09:00-18:00 (nights and weekends idle); failures only
when data waits. Time zero is 1970-01-01, a Thursday (day 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mnemo_otel.telemetry import names

__all__ = ("DAY", "HOUR", "MINUTE", "Incident", "Series", "incidents", "simulate")

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
EXPORT = 15 * SECOND
HOST = "bench-host"
_LABELS = {"job": "mnemo/mnemo-importer", "instance": HOST, "service_instance_id": HOST}

Series = tuple[dict[str, str], list[tuple[int, float]]]


@dataclass(frozen=True, slots=True)
class Incident:
    """One injected event. ``detectors``: rule -> longest acceptable delay from ``start`` (ms); empty
    for a benign event, which must notify nobody."""

    kind: str
    start: int
    duration: int
    detectors: dict[str, int]

    @property
    def end(self) -> int:
        return self.start + self.duration

    @property
    def benign(self) -> bool:
        return not self.detectors


def _at(day: int, hour: float) -> int:
    return day * DAY + round(hour * HOUR)


_STALE = {"MnemoHeartbeatStale": 150 * SECOND}
_DOWN = {**_STALE, "MnemoAvailabilityBudgetBurn": 15 * MINUTE}
_DB5 = {"MnemoDatabaseDown": 3 * MINUTE}
_DB60 = {
    **_DB5,
    "MnemoImportGap": 17 * MINUTE,
    "MnemoImportFailing": 13 * MINUTE,
    "MnemoImportSuccessBudgetBurn": 45 * MINUTE,
}


def incidents() -> list[Incident]:
    """The thirty days' events, benign ones included (they must stay quiet)."""
    s, m, h = SECOND, MINUTE, HOUR
    return [
        Incident("planned restart", _at(1, 10), 10 * s, {}),
        Incident("database outage 30 s", _at(4, 11), 30 * s, {}),
        Incident("database outage 5 min", _at(5, 14), 5 * m, _DB5),
        Incident("crash, restarted in 20 s", _at(6, 10.5), 20 * s, {}),
        Incident("hang, watchdog restart", _at(7, 15), 125 * s, _STALE),
        Incident("upgrade at night", _at(8, 2), 60 * s, {}),
        Incident("database outage 1 h", _at(11, 10), 1 * h, _DB60),
        Incident("collector outage 20 min", _at(12, 13), 20 * m, _DOWN),
        Incident("crash, down 30 min", _at(13, 9.5), 30 * m, _DOWN),
        # Past 90 % after 24 minutes, then 10 minutes pending; PostgreSQL stops at 30 minutes.
        Incident(
            "disk full 2 h", _at(14, 16), 2 * h, {"MnemoDiskNearlyFull": 36 * m, "MnemoDatabaseDown": 33 * m}
        ),
        Incident("database outage 5 min", _at(18, 11), 5 * m, _DB5),
        Incident("crash at night, down 45 min", _at(19, 22), 45 * m, _DOWN),
        Incident("hang, watchdog restart", _at(20, 10), 125 * s, _STALE),
        Incident("database outage 30 s", _at(21, 16), 30 * s, {}),
        Incident("upgrade", _at(22, 12), 90 * s, {}),
        Incident("planned restart", _at(25, 9), 10 * s, {}),
        Incident("database outage 1 h", _at(26, 14), 1 * h, _DB60),
        Incident("collector outage 5 min", _at(27, 15), 5 * m, _STALE),
        Incident("crash, restarted in 20 s", _at(28, 11), 20 * s, {}),
    ]


def working(t: int) -> bool:
    """Weekdays 09:00-18:00: the user writes transcripts, so imports happen and data can wait."""
    weekday = (3 + t // DAY) % 7  # day 0 is a Thursday
    return weekday < 5 and 9 * HOUR <= t % DAY < 18 * HOUR


@dataclass
class _Tick:
    """What one export shows; ``None`` values mean the sample is not written."""

    reporting: bool = True
    beat: float | None = None
    db_up: float = 1
    backlog_age: float = 0
    imports: float = 0
    failures: float = 0
    disk: float = 0.55
    restarted: bool = False


def _effect(incident: Incident, t: int, tick: _Tick) -> None:
    """Change ``tick`` (at ``t``, inside ``incident``) as that kind of incident does."""
    into = t - incident.start
    kind = incident.kind
    if kind.startswith(("crash", "planned restart", "upgrade", "collector outage")):
        tick.reporting = False  # no process, or nothing reaches Prometheus
    elif kind.startswith("hang"):
        tick.beat = incident.start / 1000  # frozen; the exporter thread keeps sending it
        tick.imports = 0
    elif kind.startswith("database outage") or (kind.startswith("disk full") and into >= 30 * MINUTE):
        tick.db_up = 0
        tick.beat = (t - 20 * SECOND) / 1000
        tick.imports = 0
        if working(t):
            tick.backlog_age = into / 1000
            tick.failures = EXPORT / (20 * SECOND)  # one failed attempt every 20 s
    if kind.startswith("disk full"):
        tick.disk = min(0.99, 0.55 + 0.44 * into / (30 * MINUTE))


def _ticks(span: int, events: list[Incident]) -> list[tuple[int, _Tick]]:
    out = []
    active = iter(sorted(events, key=lambda i: i.start))
    current = next(active, None)
    for t in range(0, span, EXPORT):
        while current is not None and t >= current.end:
            if current.kind.startswith(("crash", "planned restart", "upgrade", "hang")):
                out.append((current.end, _Tick(restarted=True)))  # marks the restart below
            current = next(active, None)
        tick = _Tick(beat=(t - 5 * SECOND) / 1000, imports=2 * EXPORT / MINUTE if working(t) else 0)
        if current is not None and current.start <= t < current.end:
            _effect(current, t, tick)
        out.append((t, tick))
    return out


def simulate(days: int, events: list[Incident]) -> list[Series]:
    """Every series the rules read, sample by sample."""
    metric: dict[str, list[tuple[int, float]]] = {
        key: []
        for key in ("hb", "db", "age", "count", "fail", "disk", "uptime", "mem", "quarantined", "entries")
    }
    totals = {"count": 0.0, "fail": 0.0}
    started = 0
    for t, tick in _ticks(days * DAY, events):
        if tick.restarted:
            started, totals = t, {"count": 0.0, "fail": 0.0}  # counters restart with the process
            continue
        if not tick.reporting:
            continue
        totals["count"] += tick.imports
        totals["fail"] += tick.failures
        row: dict[str, float] = {
            "hb": tick.beat if tick.beat is not None else t / 1000,
            "db": tick.db_up,
            "age": tick.backlog_age,
            "count": math.floor(totals["count"]),
            "fail": math.floor(totals["fail"]),
            "disk": tick.disk,
            "uptime": (t - started) / 1000,
            "mem": 70e6 + (t % 7919) * 10,
            "quarantined": 0,
            "entries": math.floor(totals["count"]) * 3,
        }
        for key, value in row.items():
            metric[key].append((t, value))
    return [(labels, metric[key]) for key, labels in _names().items()]


def _names() -> dict[str, dict[str, str]]:
    def series(name: str, **extra: str) -> dict[str, str]:
        return {"__name__": name, **_LABELS, **extra}

    error = names.ATTR_ERROR_TYPE.replace(".", "_")
    return {
        "hb": series(names.HEARTBEAT.prometheus),
        "db": series(names.DB_UP.prometheus),
        "age": series(names.BACKLOG_OLDEST_AGE.prometheus),
        "count": series(f"{names.IMPORT_DURATION.prometheus}_count"),
        "fail": series(names.IMPORT_FAILURES.prometheus, **{error: "db_unavailable"}),
        "disk": series(names.FILESYSTEM_UTILIZATION.prometheus, mnemo_volume="data"),
        "uptime": series(names.PROCESS_UPTIME.prometheus),
        "mem": series(names.PROCESS_MEMORY.prometheus),
        "quarantined": series(names.QUARANTINED.prometheus, **{error: "invalid_json"}),
        "entries": series(names.ENTRIES_IMPORTED.prometheus, entry_type="user"),
    }
