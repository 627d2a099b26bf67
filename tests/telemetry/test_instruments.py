"""The instruments against the SDK's in-memory reader and exporter, driven by a real import."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mnemo_otel.importer import Importer
from mnemo_otel.settings import ImportSettings
from mnemo_otel.state import LoopState
from mnemo_otel.store.postgres import PostgresSink
from mnemo_otel.telemetry import names
from mnemo_otel.telemetry.instruments import ImportTelemetry
from testkit.importing import FAST_RETRY, entry

pytestmark = pytest.mark.anyio


class Harness:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.spans = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.spans))
        self.state = LoopState()

    def telemetry(self, volumes: dict[str, Path]) -> ImportTelemetry:
        return ImportTelemetry(
            self.state, volumes=volumes, meter_provider=self.meters, tracer_provider=self.tracers
        )

    def points(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        assert isinstance(data, MetricsData)
        found: dict[str, list[Any]] = {}
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
                    found.setdefault(f"{metric.name}#unit", []).append(metric.unit)
                    found.setdefault(f"{metric.name}#kind", []).append(type(metric.data).__name__)
        return found


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.meters.shutdown()
    h.tracers.shutdown()


async def test_instruments__export_every_contract_metric_with_its_unit_and_kind(
    harness: Harness, sink: PostgresSink, transcripts: Path, tmp_path: Path
) -> None:
    (transcripts / "s.jsonl").write_bytes(
        entry("p", text="q") + entry("a", kind="assistant") + b"{bad\n" + entry("p")
    )
    telemetry = harness.telemetry({"watched": transcripts, "data": tmp_path})
    importer = Importer(sink, roots=[transcripts], retry=FAST_RETRY, observer=telemetry, state=harness.state)
    await importer.import_once()
    harness.state.fleet_members = ("desk", "laptop")  # what the daemon last read from mnemo.hosts
    # what the daemon's maintenance task writes (tested on the daemon in tests/verify)
    harness.state.scrubbed(at=1234.0, missing=3, repaired=3)
    harness.state.verify_interval = 60.0
    harness.state.retention_days = 30.0
    harness.state.source_lost(100)
    harness.state.drilled({names.RESTORE_DAMAGED: 2})  # a kind the drill did not find is exported as 0
    points = harness.points()
    kinds = {
        names.MetricKind.GAUGE: "Gauge",
        names.MetricKind.COUNTER: "Sum",
        names.MetricKind.HISTOGRAM: "Histogram",
    }
    for metric in names.METRICS:
        if metric is names.IMPORT_FAILURES:
            assert points[metric.name][0].value == 0  # present as a zero before the first failure
        assert metric.name in points, metric.name
        assert points[f"{metric.name}#unit"] == [metric.unit], metric.name
        assert points[f"{metric.name}#kind"] == [kinds[metric.kind]], metric.name
    by_type = {p.attributes[names.ATTR_ENTRY_TYPE]: p.value for p in points[names.ENTRIES_IMPORTED.name]}
    assert by_type == {"user": 1, "assistant": 1, "system": 0, "summary": 0, "other": 0}
    assert [p.value for p in points[names.DUPLICATES.name]] == [1]
    quarantined = {p.attributes[names.ATTR_ERROR_TYPE]: p.value for p in points[names.QUARANTINED.name]}
    assert quarantined["invalid_json"] == 1
    assert [p.value for p in points[names.EXCHANGES_IMPORTED.name]] == [1]
    assert points[names.IMPORT_DURATION.name][0].count == 1
    archive = (names.VERIFY_MISSING, names.VERIFY_REPAIRED, names.VERIFY_LAST_RUN, names.VERIFY_INTERVAL)
    assert [points[m.name][0].value for m in archive] == [3, 3, 1234.0, 60.0]
    assert points[names.SOURCE_LOST.name][0].value == 100
    assert points[names.SOURCE_RETENTION.name][0].value == 30 * 86400
    inexact = {p.attributes[names.ATTR_RESTORE_KIND]: p.value for p in points[names.RESTORE_INEXACT.name]}
    assert inexact == {names.RESTORE_DAMAGED: 2, names.RESTORE_BEFORE_EXACT_LINES: 0}
    volumes = {p.attributes[names.ATTR_VOLUME] for p in points[names.FILESYSTEM_FREE.name]}
    assert volumes == {"watched", "data"}
    members = {p.attributes[names.ATTR_FLEET_HOST]: p.value for p in points[names.FLEET_MEMBER.name]}
    assert members == {"desk": 1, "laptop": 1}


async def test_instruments__restore_drill_gauge_is_absent_until_the_first_drill(harness: Harness) -> None:
    harness.telemetry({})
    assert names.RESTORE_INEXACT.name not in harness.points()  # no drill yet: no claim either way
    harness.state.drilled({names.RESTORE_DAMAGED: 0, names.RESTORE_BEFORE_EXACT_LINES: 4})
    inexact = {
        p.attributes[names.ATTR_RESTORE_KIND]: p.value for p in harness.points()[names.RESTORE_INEXACT.name]
    }
    assert inexact == {names.RESTORE_DAMAGED: 0, names.RESTORE_BEFORE_EXACT_LINES: 4}


async def test_instruments__heartbeat_reads_the_loop_state_and_freezes_when_the_loop_stops(
    harness: Harness, tmp_path: Path
) -> None:
    harness.telemetry({})
    harness.state.heartbeat = 1000.0
    assert harness.points()[names.HEARTBEAT.name][0].value == 1000.0
    harness.state.beat()
    assert harness.points()[names.HEARTBEAT.name][0].value > 1000.0
    frozen = harness.points()[names.HEARTBEAT.name][0].value
    assert harness.points()[names.HEARTBEAT.name][0].value == frozen  # exports go on, the value does not move


async def test_instruments__one_trace_per_file_delta_with_session_and_trace_id_on_rows(
    harness: Harness, database_url: str, db: asyncpg.Connection, transcripts: Path, tmp_path: Path
) -> None:
    sink = await PostgresSink.open(database_url)
    path = transcripts / "s.jsonl"
    path.write_bytes(entry("a", session="sess-42") + entry("b", session="sess-42"))
    telemetry = harness.telemetry({})
    importer = Importer(
        sink,
        roots=[transcripts],
        settings=ImportSettings(batch_max_lines=1),
        retry=FAST_RETRY,
        observer=telemetry,
        state=harness.state,
    )
    await importer.import_once()
    await importer.import_once()  # idle pass: no new trace
    spans = harness.spans.get_finished_spans()
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(entry("c", session="sess-42"))
    await importer.import_once()  # a delta of one batch: its timings on the span, no event
    await sink.aclose()

    single = [s for s in harness.spans.get_finished_spans() if s not in spans]
    assert len(single) == 1 and single[0].attributes is not None
    assert not single[0].events
    assert isinstance(single[0].attributes["mnemo.write.seconds"], float)
    roots = [s for s in spans if s.name == names.SPAN_IMPORT]
    assert len(roots) == 1
    root = roots[0]
    assert root.attributes is not None
    assert root.attributes[names.ATTR_SESSION_ID] == "sess-42"
    assert root.attributes[names.ATTR_TRANSCRIPT_PATH] == "s.jsonl"
    assert root.attributes["mnemo.offset.end"] == size
    assert root.attributes["mnemo.batches"] == 2
    trace_id = format(root.context.trace_id, "032x")
    # One span per delta: the batches are its events, with their byte ranges and step timings.
    assert [s for s in spans if s.context.trace_id == root.context.trace_id] == [root]
    events = [e for e in root.events if e.name == names.EVENT_BATCH]
    assert [(e.attributes or {}).get("mnemo.entries.stored") for e in events] == [1, 1]
    assert (events[0].attributes or {})["mnemo.offset.start"] == 0
    assert (events[1].attributes or {})["mnemo.offset.end"] == size
    for event in events:
        timings = dict(event.attributes or {})
        assert isinstance(timings["mnemo.read.seconds"], float) and timings["mnemo.read.seconds"] > 0
        assert isinstance(timings["mnemo.write.seconds"], float) and timings["mnemo.write.seconds"] > 0
    stored = {r["import_trace_id"] for r in await db.fetch("SELECT import_trace_id FROM mnemo.entries")}
    assert stored == {trace_id, format(single[0].context.trace_id, "032x")}


def test_sampler__drops_transaction_noise_and_keeps_the_rest() -> None:
    from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision

    from mnemo_otel.telemetry.setup import WithoutTransactionNoise

    sampler = WithoutTransactionNoise(DEFAULT_ON)
    assert sampler.should_sample(None, 1, "COMMIT").decision is Decision.DROP
    assert sampler.should_sample(None, 1, "BEGIN").decision is Decision.DROP
    assert sampler.should_sample(None, 1, "INSERT").decision is Decision.RECORD_AND_SAMPLE
    assert sampler.should_sample(None, 1, names.SPAN_IMPORT).decision is Decision.RECORD_AND_SAMPLE


async def test_instruments__files_committed_together_keep_a_trace_and_a_log_line_each(
    harness: Harness, database_url: str, db: asyncpg.Connection, transcripts: Path
) -> None:
    from opentelemetry import trace

    class TraceOfEachRecord(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.seen: dict[str, str] = {}

        def emit(self, record: logging.LogRecord) -> None:
            path = getattr(record, "mnemo.transcript.path", None)
            if path is not None:
                self.seen[path] = format(trace.get_current_span().get_span_context().trace_id, "032x")

    traces = TraceOfEachRecord()
    logger = logging.getLogger("mnemo_otel.importer")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(traces)
    sink = await PostgresSink.open(database_url)
    try:
        for i in range(4):
            (transcripts / f"s{i}.jsonl").write_bytes(
                entry(f"a{i}", session=f"s{i}") + entry(f"b{i}", session=f"s{i}")
            )
        importer = Importer(
            sink, roots=[transcripts], retry=FAST_RETRY, observer=harness.telemetry({}), state=harness.state
        )
        await importer.import_once()
    finally:
        logger.removeHandler(traces)
        logger.setLevel(level)
        await sink.aclose()

    commits = await db.fetchval("SELECT count(DISTINCT xmin::text) FROM mnemo.files")
    assert commits == 1  # the four files went in one transaction
    spans = [s for s in harness.spans.get_finished_spans() if s.name == names.SPAN_IMPORT]
    by_path = {str((s.attributes or {})[names.ATTR_TRANSCRIPT_PATH]): s for s in spans}
    assert sorted(by_path) == [f"s{i}.jsonl" for i in range(4)]
    assert all(s.parent is None for s in spans)  # four traces, not one nested in another
    ids = {path: format(s.context.trace_id, "032x") for path, s in by_path.items()}
    assert len(set(ids.values())) == 4
    for span in spans:
        attributes = span.attributes or {}
        assert isinstance(attributes["mnemo.write.seconds"], float) and attributes["mnemo.write.seconds"] > 0
        assert isinstance(attributes["mnemo.read.seconds"], float) and attributes["mnemo.read.seconds"] > 0
    rows = await db.fetch("SELECT source_path, import_trace_id FROM mnemo.entries")
    assert {(Path(r["source_path"]).name, r["import_trace_id"]) for r in rows} == set(ids.items())
    assert traces.seen == ids  # each file's log line inside its own trace
