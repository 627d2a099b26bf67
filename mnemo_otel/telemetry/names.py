"""The telemetry contract's names, declared once.

Instruments, the alert spec, the dashboards and the tests all import these constants, so renaming a
metric breaks the drift tests instead of silently emptying a dashboard. Each metric carries its
Prometheus name as produced by the collector's default OTLP -> Prometheus translation (dots become
underscores, the unit becomes a suffix, counters get ``_total``, unit ``1`` on a gauge gets ``_ratio``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = (
    "ATTR_ENTRY_TYPE",
    "ATTR_ERROR_TYPE",
    "ATTR_EVENT_NAME",
    "ATTR_FLEET_HOST",
    "ATTR_RESTORE_KIND",
    "ATTR_SESSION_ID",
    "ATTR_TRANSCRIPT_PATH",
    "ATTR_VOLUME",
    "ATTR_WITNESS_HOST",
    "ENTRY_METRIC_TYPES",
    "EVENT_BATCH",
    "METRICS",
    "RESTORE_BEFORE_EXACT_LINES",
    "RESTORE_DAMAGED",
    "RESTORE_KINDS",
    "SERVICE_NAMESPACE",
    "SERVICE_NAME_DEFAULT",
    "SPAN_IMPORT",
    "WITNESS_METRICS",
    "WITNESS_UNKNOWN_HOST",
    "MetricKind",
    "MetricName",
    "entry_metric_type",
)

SERVICE_NAME_DEFAULT: Final = "mnemo-importer"
SERVICE_NAMESPACE: Final = "mnemo"
SPAN_IMPORT: Final = "mnemo.import"
# One event per committed batch on the ``mnemo.import`` span (no span per batch: see instruments.py).
EVENT_BATCH: Final = "mnemo.batch"

ATTR_ENTRY_TYPE: Final = "entry.type"
# The bounded values of ``entry.type`` (a line's own ``type`` field is unbounded).
ENTRY_METRIC_TYPES: Final = ("user", "assistant", "system", "summary", "other")


def entry_metric_type(entry_type: str) -> str:
    """A line's ``type`` mapped onto :data:`ENTRY_METRIC_TYPES`."""
    return entry_type if entry_type in ENTRY_METRIC_TYPES else "other"


ATTR_ERROR_TYPE: Final = "error.type"
ATTR_SESSION_ID: Final = "mnemo.session.id"
ATTR_TRANSCRIPT_PATH: Final = "mnemo.transcript.path"
ATTR_VOLUME: Final = "mnemo.volume"
ATTR_FLEET_HOST: Final = "mnemo.fleet.host"
# The witness: Claude Code's event name (bounded: the client's own set), and the host an event named
# (its mnemo.host.id or host.name resource attribute; WITNESS_UNKNOWN_HOST when it named none).
ATTR_EVENT_NAME: Final = "event.name"
ATTR_WITNESS_HOST: Final = "mnemo.witness.host"
WITNESS_UNKNOWN_HOST: Final = "unknown"
"""The member a fleet-membership point is about (``service.instance.id`` is the host reporting it)."""
ATTR_RESTORE_KIND: Final = "mnemo.restore.kind"
"""Why files cannot be restored exactly, bounded: :data:`RESTORE_KINDS`."""
RESTORE_DAMAGED: Final = "damaged"
"""Lines missing or not what was read at import: the archive lost something (an alert)."""
RESTORE_BEFORE_EXACT_LINES: Final = "before_exact_lines"
"""Imported before exact lines were kept (an archive upgraded past migration 0006): a known,
permanent fact of that archive, not an incident."""
RESTORE_KINDS: Final = (RESTORE_DAMAGED, RESTORE_BEFORE_EXACT_LINES)


class MetricKind(Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


_UNIT_SUFFIX: Final = {"s": "seconds", "By": "bytes"}


@dataclass(frozen=True, slots=True)
class MetricName:
    """One contract metric: OTel name, unit, kind, meaning."""

    name: str
    unit: str
    kind: MetricKind
    description: str

    @property
    def prometheus(self) -> str:
        """The series name after the collector's default translation (histograms: the base name)."""
        base = self.name.replace(".", "_")
        suffix = _UNIT_SUFFIX.get(self.unit, "")
        if suffix and not base.endswith(f"_{suffix}"):
            base = f"{base}_{suffix}"
        if self.unit == "1" and self.kind is MetricKind.GAUGE:
            base = f"{base}_ratio"
        if self.kind is MetricKind.COUNTER:
            base = f"{base}_total"
        return base


def _metric(name: str, unit: str, kind: MetricKind, description: str) -> MetricName:
    return MetricName(name=name, unit=unit, kind=kind, description=description)


HEARTBEAT: Final = _metric(
    "mnemo.importer.heartbeat.timestamp",
    "s",
    MetricKind.GAUGE,
    "Unix time the work loop last made progress (beaten by the loop itself).",
)
LAST_SUCCESS: Final = _metric(
    "mnemo.importer.import.last_success.timestamp",
    "s",
    MetricKind.GAUGE,
    "Unix time of the last committed import.",
)
BACKLOG: Final = _metric(
    "mnemo.importer.backlog",
    "By",
    MetricKind.GAUGE,
    "Bytes of complete lines present in watched files and not yet committed.",
)
BACKLOG_OLDEST_AGE: Final = _metric(
    "mnemo.importer.backlog.oldest_age",
    "s",
    MetricKind.GAUGE,
    "Age of the oldest uncommitted complete data; 0 when nothing waits. The import-gap signal.",
)
ENTRIES_IMPORTED: Final = _metric(
    "mnemo.importer.entries.imported",
    "{entry}",
    MetricKind.COUNTER,
    "Transcript lines stored, by entry.type.",
)
EXCHANGES_IMPORTED: Final = _metric(
    "mnemo.importer.exchanges.imported",
    "{exchange}",
    MetricKind.COUNTER,
    "Exchanges (prompt + assistant turn) created.",
)
DUPLICATES: Final = _metric(
    "mnemo.importer.duplicates",
    "{entry}",
    MetricKind.COUNTER,
    "Lines skipped because their key was stored already.",
)
KEY_CONFLICTS: Final = _metric(
    "mnemo.importer.key_conflicts",
    "{entry}",
    MetricKind.COUNTER,
    "Lines whose key was stored before with other bytes (a forked session's copies, an edited line): "
    "kept as lines of their own file, never skipped silently.",
)
QUARANTINED: Final = _metric(
    "mnemo.importer.quarantined",
    "{line}",
    MetricKind.COUNTER,
    "Lines quarantined, by error.type.",
)
IMPORT_FAILURES: Final = _metric(
    "mnemo.importer.import.failures",
    "{failure}",
    MetricKind.COUNTER,
    "Failed import attempts, by error.type.",
)
IMPORT_DURATION: Final = _metric(
    "mnemo.importer.import.duration",
    "s",
    MetricKind.HISTOGRAM,
    "Duration of one import (one file delta).",
)
LAG: Final = _metric(
    "mnemo.importer.lag",
    "s",
    MetricKind.HISTOGRAM,
    "Time from a line being written to its row being committed.",
)
DB_UP: Final = _metric(
    "mnemo.importer.db.up",
    "1",
    MetricKind.GAUGE,
    "1 if the last database operation succeeded, else 0.",
)

PROCESS_MEMORY: Final = _metric(
    "process.memory.usage",
    "By",
    MetricKind.GAUGE,
    "Resident memory of the importer process (semantic-conventions name).",
)
PROCESS_CPU_TIME: Final = _metric(
    "process.cpu.time",
    "s",
    MetricKind.COUNTER,
    "CPU seconds used by the importer process, by cpu.mode (user, system).",
)
PROCESS_OPEN_FDS: Final = _metric(
    "process.open_file_descriptor.count",
    "{file_descriptor}",
    MetricKind.GAUGE,
    "Open file descriptors of the importer process.",
)
PROCESS_UPTIME: Final = _metric(
    "process.uptime",
    "s",
    MetricKind.GAUGE,
    "Seconds since the importer process started (semantic-conventions name).",
)
FILESYSTEM_UTILIZATION: Final = _metric(
    "system.filesystem.utilization",
    "1",
    MetricKind.GAUGE,
    "Fraction (0..1) of a volume in use, by mnemo.volume (watched, data) and system.filesystem.mountpoint.",
)
FILESYSTEM_FREE: Final = _metric(
    "mnemo.importer.filesystem.free",
    "By",
    MetricKind.GAUGE,
    "Bytes free on a volume the importer depends on, by mnemo.volume (watched, data).",
)
FLEET_MEMBER: Final = _metric(
    "mnemo.importer.fleet.member",
    "{host}",
    MetricKind.GAUGE,
    "1 per host of the fleet (mnemo.fleet.host) that runs the daemon and was not retired, as this "
    "importer last read it from the database: the heartbeat alert's list of hosts that must beat.",
)

VERIFY_MISSING: Final = _metric(
    "mnemo.importer.verify.missing",
    "{entry}",
    MetricKind.GAUGE,
    "Lines on disk the archive did not hold at the last scrub (before its repair).",
)
VERIFY_REPAIRED: Final = _metric(
    "mnemo.importer.verify.repaired",
    "{entry}",
    MetricKind.COUNTER,
    "Lines a scrub found missing and stored from the source.",
)
VERIFY_LAST_RUN: Final = _metric(
    "mnemo.importer.verify.last_run.timestamp",
    "s",
    MetricKind.GAUGE,
    "Unix time the last scrub completed (kept across restarts).",
)
VERIFY_INTERVAL: Final = _metric(
    "mnemo.importer.verify.interval",
    "s",
    MetricKind.GAUGE,
    "Configured period between scrubs (absent when scrubbing is off).",
)
SOURCE_LOST: Final = _metric(
    "mnemo.importer.source.lost",
    "By",
    MetricKind.COUNTER,
    "Bytes of complete lines seen on disk that vanished before they were committed (all recorded).",
)
SOURCE_RETENTION: Final = _metric(
    "mnemo.importer.source.retention",
    "s",
    MetricKind.GAUGE,
    "How long Claude Code keeps transcripts before deleting them (its cleanupPeriodDays).",
)
RESTORE_INEXACT: Final = _metric(
    "mnemo.importer.restore.inexact",
    "{file}",
    MetricKind.GAUGE,
    "Files of this host the archive cannot give back exactly, by mnemo.restore.kind, as the last "
    "restore drill found (absent until the first drill of this process).",
)

ANNOUNCED: Final = _metric(
    "mnemo.importer.announced",
    "{file}",
    MetricKind.COUNTER,
    "Transcripts Claude Code's hooks announced for the first time (mnemo-otel hook), wherever they are.",
)

WITNESS_EVENTS: Final = _metric(
    "mnemo.witness.events",
    "{event}",
    MetricKind.COUNTER,
    "Claude Code events the witness received, by event.name (content never kept).",
)
WITNESS_UNARCHIVED: Final = _metric(
    "mnemo.witness.unarchived",
    "{line}",
    MetricKind.GAUGE,
    "Lines Claude Code said it wrote, older than the grace period, that the archive lacks, by host.",
)
WITNESS_LAG: Final = _metric(
    "mnemo.witness.lag",
    "s",
    MetricKind.HISTOGRAM,
    "A witnessed line's commit to the archive minus Claude Code's event.timestamp (its own clock).",
)
WITNESS_LAST_HEARD: Final = _metric(
    "mnemo.witness.last_heard.timestamp",
    "s",
    MetricKind.GAUGE,
    "Unix time the witness last heard from each host (kept in the database): a silent witness proves nothing.",
)

METRICS: Final[tuple[MetricName, ...]] = (
    HEARTBEAT,
    LAST_SUCCESS,
    BACKLOG,
    BACKLOG_OLDEST_AGE,
    ENTRIES_IMPORTED,
    EXCHANGES_IMPORTED,
    DUPLICATES,
    KEY_CONFLICTS,
    QUARANTINED,
    IMPORT_FAILURES,
    IMPORT_DURATION,
    LAG,
    DB_UP,
    PROCESS_MEMORY,
    PROCESS_CPU_TIME,
    PROCESS_OPEN_FDS,
    PROCESS_UPTIME,
    FILESYSTEM_UTILIZATION,
    FILESYSTEM_FREE,
    FLEET_MEMBER,
    VERIFY_MISSING,
    VERIFY_REPAIRED,
    VERIFY_LAST_RUN,
    VERIFY_INTERVAL,
    SOURCE_LOST,
    SOURCE_RETENTION,
    RESTORE_INEXACT,
    ANNOUNCED,
)
# The witness's own (a separate process, `mnemo-otel witness`): not exported by the importer.
WITNESS_METRICS: Final[tuple[MetricName, ...]] = (
    WITNESS_EVENTS,
    WITNESS_UNARCHIVED,
    WITNESS_LAG,
    WITNESS_LAST_HEARD,
)
