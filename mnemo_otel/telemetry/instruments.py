"""The importer's instruments, on the OpenTelemetry API only (no SDK: a no-op until an app installs one).

``ImportTelemetry`` is the import loop's observer: it counts what the loop reports, times imports,
opens the ``mnemo.import`` trace per file delta, and exposes the loop state through observable gauges.
Gauge callbacks run on the SDK's reader thread and only read memory (the loop state) plus cheap
process/volume figures, so a hung loop shows as a frozen heartbeat while exports keep flowing.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span, Status, StatusCode

from .._version import __version__
from ..state import LoopState
from . import names

if TYPE_CHECKING:
    from ..model import BatchOutcome, FileRead, TranscriptFile

__all__ = ("SCOPE", "ImportTelemetry")

SCOPE = "mnemo_otel"
# Import durations run from milliseconds (a few lines) to minutes (a catch-up of a huge file); lag from
# sub-second (live) to days (importing history).
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_READ = "mnemo.read"
_READ_SECONDS = "mnemo.read.seconds"
_WRITE_SECONDS = "mnemo.write.seconds"
_LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800)


class ImportTelemetry:
    """Implements :class:`mnemo_otel.model.ImportObserver` with OpenTelemetry instruments.

    :param volumes: named paths whose filesystem free space is reported (``watched``, ``data``).
    """

    def __init__(
        self,
        state: LoopState,
        *,
        volumes: Mapping[str, Path] | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._state = state
        self._volumes = dict(volumes or {})
        self._process = psutil.Process()
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        self._observe_vital_signs(meter)
        counter = meter.create_counter
        self._entries = counter(*_args(names.ENTRIES_IMPORTED))
        self._exchanges = counter(*_args(names.EXCHANGES_IMPORTED))
        self._duplicates = counter(*_args(names.DUPLICATES))
        self._key_conflicts = counter(*_args(names.KEY_CONFLICTS))
        self._quarantined = counter(*_args(names.QUARANTINED))
        self._failures = counter(*_args(names.IMPORT_FAILURES))
        self._duration = meter.create_histogram(
            *_args(names.IMPORT_DURATION), explicit_bucket_boundaries_advisory=_DURATION_BUCKETS
        )
        self._lag = meter.create_histogram(
            *_args(names.LAG), explicit_bucket_boundaries_advisory=_LAG_BUCKETS
        )
        # Zero-valued series from the start: "no failures yet" must be a 0, not an absent series.
        self._failures.add(0, {names.ATTR_ERROR_TYPE: "db_unavailable"})
        self._quarantined.add(0, {names.ATTR_ERROR_TYPE: "invalid_json"})
        self._duplicates.add(0)
        self._key_conflicts.add(0)
        self._exchanges.add(0)
        for entry_type in names.ENTRY_METRIC_TYPES:
            self._entries.add(0, {names.ATTR_ENTRY_TYPE: entry_type})

    def _observe_vital_signs(self, meter: metrics.Meter) -> None:
        """Observable instruments: read at export time from the loop state and the process."""
        gauges = (
            (names.HEARTBEAT, self._heartbeat),
            (names.LAST_SUCCESS, self._last_success),
            (names.BACKLOG, self._backlog),
            (names.BACKLOG_OLDEST_AGE, self._backlog_age),
            (names.DB_UP, self._db_up),
            (names.PROCESS_MEMORY, self._memory),
            (names.PROCESS_OPEN_FDS, self._fds),
            (names.PROCESS_UPTIME, self._uptime),
            (names.FILESYSTEM_UTILIZATION, self._fs_utilization),
            (names.FILESYSTEM_FREE, self._fs_free),
            (names.FLEET_MEMBER, self._fleet_members),
        )
        for metric, callback in gauges:
            meter.create_observable_gauge(metric.name, [callback], metric.unit, metric.description)
        cpu = names.PROCESS_CPU_TIME
        meter.create_observable_counter(cpu.name, [self._cpu], cpu.unit, cpu.description)
        self._observe_archive(meter)

    def _observe_archive(self, meter: metrics.Meter) -> None:
        """Zero loss, observed: the scrub's and the restore drill's findings, recorded losses and the
        source's retention."""
        for metric, callback in (
            (names.VERIFY_MISSING, self._verify_missing),
            (names.VERIFY_LAST_RUN, self._verify_last_run),
            (names.VERIFY_INTERVAL, self._verify_interval),
            (names.SOURCE_RETENTION, self._retention),
            (names.RESTORE_INEXACT, self._restore_inexact),
        ):
            meter.create_observable_gauge(metric.name, [callback], metric.unit, metric.description)
        for metric, callback in (
            (names.VERIFY_REPAIRED, self._verify_repaired),
            (names.SOURCE_LOST, self._source_lost),
            (names.ANNOUNCED, self._announced),
        ):
            meter.create_observable_counter(metric.name, [callback], metric.unit, metric.description)

    # -- the observer hooks ----------------------------------------------------------------------

    @contextmanager
    def file_import(self, transcript: TranscriptFile) -> Iterator[_ImportSpan]:
        """One trace per file delta: the root ``mnemo.import`` span; never content in attributes.

        A root even when another file's span is current: files committed together keep a trace each."""
        attributes = {names.ATTR_TRANSCRIPT_PATH: transcript.relative_path}
        with self._tracer.start_as_current_span(
            names.SPAN_IMPORT,
            context=Context(),
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            wrapper = _ImportSpan(span, transcript)
            try:
                yield wrapper
            except BaseException as exc:
                error_type = getattr(exc, "error_type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, error_type))
                span.set_attribute(names.ATTR_ERROR_TYPE, error_type)
                raise
            finally:
                wrapper.close()
                if wrapper.batches:  # recorded inside the span, so the histogram carries an exemplar
                    self._duration.record(time.perf_counter() - wrapper.started)

    def committed(
        self, transcript: TranscriptFile, read: FileRead, outcome: BatchOutcome, seconds: float
    ) -> None:
        for entry_type, count in outcome.stored.items():
            self._entries.add(count, {names.ATTR_ENTRY_TYPE: names.entry_metric_type(entry_type)})
        if outcome.exchanges_created:
            self._exchanges.add(outcome.exchanges_created)
        if outcome.duplicates:
            self._duplicates.add(outcome.duplicates)
        if outcome.key_conflicts:
            self._key_conflicts.add(outcome.key_conflicts)
        for kind, count in outcome.quarantined.items():
            self._quarantined.add(count, {names.ATTR_ERROR_TYPE: kind})
        written = _newest_timestamp(read)
        if written is not None and outcome.stored:
            self._lag.record(max(0.0, time.time() - written))

    def quarantined(self, kind: str) -> None:
        self._quarantined.add(1, {names.ATTR_ERROR_TYPE: kind})

    def failure(self, error_type: str) -> None:
        self._failures.add(1, {names.ATTR_ERROR_TYPE: error_type})

    # -- gauge callbacks: memory reads and cheap syscalls only ---------------------------------------

    def _heartbeat(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._state.heartbeat)

    def _last_success(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._state.last_success is not None:
            yield Observation(self._state.last_success)

    def _backlog(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._state.backlog_bytes)

    def _backlog_age(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._state.backlog_oldest_age())

    def _db_up(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(1 if self._state.db_up else 0)

    def _fleet_members(self, options: CallbackOptions) -> Iterable[Observation]:
        for host in self._state.fleet_members:
            yield Observation(1, {names.ATTR_FLEET_HOST: host})

    def _memory(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._process.memory_info().rss)

    def _fds(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._process.num_fds())

    def _uptime(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(time.time() - self._state.started_at)

    def _cpu(self, options: CallbackOptions) -> Iterable[Observation]:
        times = self._process.cpu_times()
        yield Observation(times.user, {"cpu.mode": "user"})
        yield Observation(times.system, {"cpu.mode": "system"})

    def _verify_missing(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._state.verify_missing is not None:
            yield Observation(self._state.verify_missing)

    def _verify_last_run(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._state.verify_last_run is not None:
            yield Observation(self._state.verify_last_run)

    def _verify_interval(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._state.verify_interval > 0:
            yield Observation(self._state.verify_interval)

    def _verify_repaired(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._state.verify_repaired)

    def _source_lost(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._state.source_lost_bytes)

    def _announced(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._state.announced_files)

    def _retention(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._state.retention_days is not None:
            yield Observation(self._state.retention_days * 86400)

    def _restore_inexact(self, options: CallbackOptions) -> Iterable[Observation]:
        inexact = self._state.restore_inexact
        if inexact is not None:  # every kind, zeros included: "none damaged" is a 0, not an absence
            for kind in names.RESTORE_KINDS:
                yield Observation(inexact.get(kind, 0), {names.ATTR_RESTORE_KIND: kind})

    def _fs_utilization(self, options: CallbackOptions) -> Iterable[Observation]:
        for volume, path, total, free in self._volume_usage():
            used = (total - free) / total if total else 0.0
            yield Observation(used, {names.ATTR_VOLUME: volume, "system.filesystem.mountpoint": str(path)})

    def _fs_free(self, options: CallbackOptions) -> Iterable[Observation]:
        for volume, _path, _total, free in self._volume_usage():
            yield Observation(free, {names.ATTR_VOLUME: volume})

    def _volume_usage(self) -> Iterator[tuple[str, Path, int, int]]:
        for volume, path in self._volumes.items():
            try:
                stats = os.statvfs(path)
            except OSError:
                continue
            yield volume, path, stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize


class _ImportSpan:
    """The live root span of one file delta: the only span it makes. Each committed batch is an event
    on it (``mnemo.batch``: byte range, counts, read and write seconds), because a span per batch step
    cost more to build and export than the step itself on a catch-up; a delta of a single batch has
    its read and write seconds as span attributes instead, and no event."""

    def __init__(self, span: Span, transcript: TranscriptFile) -> None:
        self.span = span
        self.started = time.perf_counter()
        self.batches = 0
        self._recording = span.is_recording()
        self._session: str | None = None
        self._stem = transcript.path.stem
        self._first: int | None = None
        self._last = 0
        self._stored = 0
        self._duplicates = 0
        self._quarantined = 0
        # Reads run one batch ahead of writes: durations queue up until their batch is committed.
        self._reads: deque[float] = deque()
        self._write = 0.0
        self._only_batch: dict[str, int | float] | None = None
        context = span.get_span_context()
        self.trace_id: str | None = format(context.trace_id, "032x") if context.is_valid else None

    @contextmanager
    def child(self, name: str) -> Iterator[None]:
        """Time one step of the current batch (``mnemo.read`` or ``mnemo.write``) for its event."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timed(name, time.perf_counter() - started)

    def timed(self, name: str, seconds: float) -> None:
        if name == _READ:
            self._reads.append(seconds)
        else:
            self._write = seconds

    def add_batch(self, read: FileRead, outcome: BatchOutcome) -> None:
        self.batches += 1
        if self._session is None:
            self._session = next((e.session_id for e in read.entries if e.session_id), None)
        self._first = read.start if self._first is None else self._first
        self._last = read.end
        stored = sum(outcome.stored.values())
        quarantined = sum(outcome.quarantined.values())
        self._stored += stored
        self._duplicates += outcome.duplicates
        self._quarantined += quarantined
        if not self._recording:
            return
        batch: dict[str, int | float] = {
            "mnemo.offset.start": read.start,
            "mnemo.offset.end": read.end,
            "mnemo.entries.stored": stored,
            "mnemo.entries.duplicates": outcome.duplicates,
            "mnemo.lines.quarantined": quarantined,
            _READ_SECONDS: self._reads.popleft() if self._reads else 0.0,
            _WRITE_SECONDS: self._write,
        }
        # Most deltas (a live session's few new lines) are one batch: the span's own attributes say it
        # all, so its event is added only once a second batch shows the delta has several.
        if self._only_batch is not None:
            self.span.add_event(names.EVENT_BATCH, self._only_batch)
            self._only_batch = None
        if self.batches == 1:
            self._only_batch = batch
        else:
            self.span.add_event(names.EVENT_BATCH, batch)

    def close(self) -> None:
        attributes: dict[str, str | int | float] = {
            names.ATTR_SESSION_ID: self._session or self._stem,
            "mnemo.offset.start": self._first if self._first is not None else -1,
            "mnemo.offset.end": self._last,
            "mnemo.batches": self.batches,
            "mnemo.entries.stored": self._stored,
            "mnemo.entries.duplicates": self._duplicates,
            "mnemo.lines.quarantined": self._quarantined,
        }
        if self._only_batch is not None:
            attributes[_READ_SECONDS] = self._only_batch[_READ_SECONDS]
            attributes[_WRITE_SECONDS] = self._only_batch[_WRITE_SECONDS]
        self.span.set_attributes(attributes)


def _newest_timestamp(read: FileRead) -> float | None:
    for entry in reversed(read.entries):
        if entry.timestamp is not None:
            return entry.timestamp.timestamp()
    return None


def _args(metric: names.MetricName) -> tuple[str, str, str]:
    """Name, unit and description, in the order the API's ``create_*`` methods take them."""
    return metric.name, metric.unit, metric.description
