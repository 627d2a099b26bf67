"""Claude Code's telemetry through the shipped collector config, run by the real built collector.

Its log events reach the witness (an OTLP sink at MNEMO_WITNESS_ENDPOINT) stripped to an allow-list
of ids and timestamps, with the bearer token; nothing Claude Code sends reaches the importer's Loki,
Tempo or Prometheus; a witness answering 503 gets every event once it is back. A canary planted in
every content field (and in fields no client sends yet) is searched in the raw bytes each backend
received and in the collector's own log. The last tests run the pinned Claude Code CLI itself with
prompt and tool logging on, over OTLP/HTTP protobuf and over gRPC.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from testkit import http_get, wait_for
from testkit.claude_api import BashCall, FakeMessagesApi, Text, running_fake_api
from testkit.claude_code import ClaudeHome, claude_binary
from testkit.collector import Collector, running_collector
from testkit.otlp_sink import OtlpSink, ReceivedLog, running_sink
from testkit.prometheus import Prometheus, running_prometheus

pytestmark = pytest.mark.e2e

CANARY = "canary-7f3e9a1c-never-leaves"
TOKEN = "witness-test-token-0d4c"
CLAUDE_SCOPE = "com.anthropic.claude_code.events"
# What the witness may receive, and nothing else (collector/config.yaml, transform/witness_allow_list).
ALLOWED_LOG_ATTRIBUTES = {
    "event.name",
    "session.id",
    "prompt.id",
    "event.sequence",
    "event.timestamp",
    "message.uuid",
    "query_source",
}
ALLOWED_RESOURCE_ATTRIBUTES = {
    "service.name",
    "service.version",
    "host.name",
    "mnemo.host.id",
    "os.type",
    "host.arch",
}
CLAUDE_RESOURCE = {
    "service.name": "claude-code",
    "service.version": "2.1.328",
    "host.name": "dev-laptop",
    "mnemo.host.id": "dev-laptop-id",
    "os.type": "linux",
    "host.arch": "amd64",
    "os.version": "6.1.0",
    # Content a future client might put on the resource: not on the allow-list, so dropped.
    "process.command_args": f"claude -p {CANARY}",
}


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=_kvs(value)))
    return AnyValue(string_value=str(value))


def _kvs(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any(value)) for key, value in attributes.items()]


def _post(url: str, body: bytes) -> None:
    """One OTLP/HTTP protobuf export, as an SDK sends it; the collector must accept it."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-protobuf"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200


@dataclass(frozen=True)
class Events:
    """Claude Code's three kinds of event for one session, with the ids the witness must keep."""

    session_id: str
    prompt_id: str
    message_uuid: str
    timestamp_ns: int

    def user_prompt_attributes(self) -> dict[str, Any]:
        """What the witness must receive for the user_prompt event, exactly."""
        return {
            "event.name": "user_prompt",
            "session.id": self.session_id,
            "prompt.id": self.prompt_id,
            "event.sequence": 4,
            "event.timestamp": "2026-12-04T10:00:00.000Z",
            "message.uuid": self.message_uuid,
        }

    def records(self) -> list[LogRecord]:
        common = {
            "session.id": self.session_id,
            "prompt.id": self.prompt_id,
            "user.id": "a" * 64,
            "user.email": "dev@example.com",
            "user.account_uuid": "4a2c5d0e-0000-4000-8000-000000000001",
            "organization.id": "4a2c5d0e-0000-4000-8000-000000000002",
            "terminal.type": "xterm-256color",
        }
        user_prompt = {
            **self.user_prompt_attributes(),
            **common,
            "prompt": f"please say {CANARY}",  # what OTEL_LOG_USER_PROMPTS=1 adds
            "prompt_length": "42",
            "future.content": CANARY,  # a content attribute a future client adds
            "future.nested": {"text": CANARY},
        }
        api_request = {
            "event.name": "api_request",
            "event.sequence": 5,
            "event.timestamp": "2026-12-04T10:00:01.000Z",
            "query_source": "repl_main_thread",
            "model": "claude-sonnet-4-5",
            "cost_usd": 0.0123,
            "input_tokens": "1200",
            "request_id": "req_011",
            **common,
        }
        tool_result = {
            "event.name": "tool_result",
            "event.sequence": 6,
            "event.timestamp": "2026-12-04T10:00:02.000Z",
            "tool_name": "Bash",
            "success": "true",
            "tool_parameters": json.dumps({"bash_command": f"echo {CANARY}"}),  # OTEL_LOG_TOOL_DETAILS=1
            "tool_input": json.dumps({"command": f"echo {CANARY}"}),
            "tool_result": CANARY,
            **common,
        }
        bodies: list[Any] = [
            "claude_code.user_prompt",
            "claude_code.api_request",
            {"output": CANARY},  # a body with content: cleared like any other
        ]
        return [
            LogRecord(
                time_unix_nano=self.timestamp_ns + i,
                observed_time_unix_nano=self.timestamp_ns + i + 1000,
                severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
                body=_any(body),
                attributes=_kvs(attributes),
            )
            for i, (body, attributes) in enumerate(
                zip(bodies, (user_prompt, api_request, tool_result), strict=True)
            )
        ]


def new_events() -> Events:
    return Events(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), time.time_ns())


def claude_code_logs(events: Events, *, service_name: str = "claude-code") -> ResourceLogs:
    return ResourceLogs(
        resource=Resource(attributes=_kvs({**CLAUDE_RESOURCE, "service.name": service_name})),
        scope_logs=[
            ScopeLogs(
                scope=InstrumentationScope(
                    name=CLAUDE_SCOPE, version="2.1.328", attributes=_kvs({"scope.note": CANARY})
                ),
                log_records=events.records(),
            )
        ],
    )


def importer_logs(marker: str) -> ResourceLogs:
    return ResourceLogs(
        resource=Resource(attributes=_kvs({"service.name": "mnemo-importer", "service.namespace": "mnemo"})),
        scope_logs=[
            ScopeLogs(
                scope=InstrumentationScope(name="mnemo_otel.importer"),
                log_records=[
                    LogRecord(
                        time_unix_nano=time.time_ns(),
                        body=_any("import committed"),
                        attributes=_kvs({"mnemo.session.id": marker}),
                    )
                ],
            )
        ],
    )


def send_logs(collector: Collector, *resource_logs: ResourceLogs) -> None:
    request = ExportLogsServiceRequest(resource_logs=resource_logs)
    _post(f"{collector.otlp_http_url}/v1/logs", request.SerializeToString())


def records_of(sink: OtlpSink, session_id: str) -> list[ReceivedLog]:
    return [r for r in sink.log_records() if r.attributes.get("session.id") == session_id]


def wait_for_session(
    sink: OtlpSink, session_id: str, count: int, *, timeout: float = 30.0
) -> list[ReceivedLog]:
    """The records of one session once at least ``count`` arrived (a retry may deliver one twice)."""
    return wait_for(
        lambda: found if len(found := records_of(sink, session_id)) >= count else None,
        timeout=timeout,
        what=f"{count} witness records of session {session_id}",
    )


def assert_no_canary(*sinks: OtlpSink) -> None:
    for sink in sinks:
        for body in sink.bodies:
            assert CANARY.encode() not in body, f"the canary reached {sink.url}"


def assert_only_allowed(records: Sequence[ReceivedLog]) -> None:
    for record in records:
        assert set(record.attributes) <= ALLOWED_LOG_ATTRIBUTES, record.attributes
        assert set(record.resource) <= ALLOWED_RESOURCE_ATTRIBUTES, record.resource
        assert record.resource["service.name"] == "claude-code"
        assert record.body is None, record.body


@dataclass
class Stack:
    prometheus: Prometheus
    tempo: OtlpSink
    loki: OtlpSink
    witness: OtlpSink
    collector: Collector


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prometheus, sinks for Tempo, Loki and the witness, and the collector on the shipped config."""
    workdir = tmp_path_factory.mktemp("witness-stack")
    with (
        running_sink() as tempo,
        running_sink() as loki,
        running_sink() as witness,
        running_prometheus(workdir / "prometheus", load_rules=False) as prometheus,
        running_collector(
            workdir,
            remote_write_url=prometheus.remote_write_url,
            tempo_url=tempo.url,
            loki_url=f"{loki.url}/otlp",
            extra_env={"MNEMO_WITNESS_ENDPOINT": witness.url, "MNEMO_WITNESS_TOKEN": TOKEN},
        ) as collector,
    ):
        yield Stack(prometheus, tempo, loki, witness, collector)


def test_the_witness_gets_claude_codes_events_with_only_the_allowed_fields(stack: Stack) -> None:
    events = new_events()
    send_logs(stack.collector, claude_code_logs(events))

    records = wait_for_session(stack.witness, events.session_id, 3)
    assert len(records) == 3
    assert_only_allowed(records)
    by_name = {r.attributes["event.name"]: r for r in records}
    assert set(by_name) == {"user_prompt", "api_request", "tool_result"}
    assert by_name["user_prompt"].attributes == events.user_prompt_attributes()
    assert by_name["api_request"].attributes == {
        "event.name": "api_request",
        "session.id": events.session_id,
        "prompt.id": events.prompt_id,
        "event.sequence": 5,
        "event.timestamp": "2026-12-04T10:00:01.000Z",
        "query_source": "repl_main_thread",
    }
    expected_resource = {k: v for k, v in CLAUDE_RESOURCE.items() if k in ALLOWED_RESOURCE_ATTRIBUTES}
    for record in records:
        assert record.resource == expected_resource
        assert record.scope == CLAUDE_SCOPE
    # The record's own timestamps survive: the witness's lag is measured on the producer's clock.
    prompt = by_name["user_prompt"].record
    assert (prompt.time_unix_nano, prompt.observed_time_unix_nano) == (
        events.timestamp_ns,
        events.timestamp_ns + 1000,
    )
    # Delivered to <MNEMO_WITNESS_ENDPOINT>/v1/logs with the token, and no content anywhere in the bytes.
    assert set(stack.witness.paths) == {"/v1/logs"}
    assert {h.get("Authorization") for h in stack.witness.headers} == {f"Bearer {TOKEN}"}
    assert_no_canary(stack.witness, stack.loki, stack.tempo)
    assert CANARY not in stack.collector.log()


def test_the_importers_pipelines_carry_nothing_from_claude_code(stack: Stack) -> None:
    events = new_events()
    renamed = new_events()
    marker = f"importer-{uuid.uuid4()}"
    # One export holding both producers: the split is per resource, not per request. A client whose
    # user renamed the service (OTEL_SERVICE_NAME) is still known by its instrumentation scope.
    send_logs(
        stack.collector,
        claude_code_logs(events),
        claude_code_logs(renamed, service_name="my-claude"),
        importer_logs(marker),
    )

    claude_resource = Resource(attributes=_kvs(CLAUDE_RESOURCE))
    importer_resource = Resource(attributes=_kvs({"service.name": "mnemo-importer"}))
    spans = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=resource,
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            Span(
                                trace_id=uuid.uuid4().bytes,
                                span_id=uuid.uuid4().bytes[:8],
                                name=name,
                                start_time_unix_nano=time.time_ns(),
                                end_time_unix_nano=time.time_ns() + 1000,
                                attributes=_kvs({"marker": marker, "content": content}),
                            )
                        ]
                    )
                ],
            )
            for resource, name, content in (
                (claude_resource, "claude_code.interaction", CANARY),
                (importer_resource, "mnemo.import", "none"),
            )
        ]
    )
    _post(f"{stack.collector.otlp_http_url}/v1/traces", spans.SerializeToString())

    now = time.time_ns()

    def point(value: float) -> NumberDataPoint:
        return NumberDataPoint(time_unix_nano=now, start_time_unix_nano=now - 10**9, as_double=value)

    def sum_(temporality: AggregationTemporality.ValueType) -> Sum:
        return Sum(data_points=[point(3)], aggregation_temporality=temporality, is_monotonic=True)

    claude_metrics = [
        # Claude Code's default (delta) and what a user forcing cumulative would send: both dropped.
        Metric(
            name="claude_code.token.usage",
            unit="tokens",
            sum=sum_(AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA),
        ),
        Metric(
            name="claude_code.session.count",
            sum=sum_(AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE),
        ),
        Metric(name="claude_code.canary_gauge", gauge=Gauge(data_points=[point(1)])),
    ]
    importer_gauge = Metric(name="mnemo.test.witness_split", gauge=Gauge(data_points=[point(7)]))
    metrics = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(resource=claude_resource, scope_metrics=[ScopeMetrics(metrics=claude_metrics)]),
            ResourceMetrics(
                resource=importer_resource, scope_metrics=[ScopeMetrics(metrics=[importer_gauge])]
            ),
        ]
    )
    _post(f"{stack.collector.otlp_http_url}/v1/metrics", metrics.SerializeToString())

    # Each importer item arrives: its Claude Code neighbour in the same export would have too.
    stack.loki.wait_for_logs(
        lambda r: r.attributes.get("mnemo.session.id") == marker, what="the importer's log"
    )
    stack.tempo.wait_for_spans(lambda s: s.attributes.get("marker") == marker, what="the importer's span")
    stack.prometheus.wait_for_query("mnemo_test_witness_split == 7", what="the importer's gauge")
    wait_for_session(stack.witness, events.session_id, 3)

    assert [r for r in stack.loki.log_records() if r.scope == CLAUDE_SCOPE] == []
    assert {r.resource.get("service.name") for r in stack.loki.log_records()} == {"mnemo-importer"}
    assert [s for s in stack.tempo.spans() if s.resource.get("service.name") == "claude-code"] == []
    assert stack.prometheus.query('{__name__=~"claude_code.*"}') == []
    assert stack.prometheus.query('{service_name="claude-code"}') == []
    # ... and the witness gets Claude Code's events only (the renamed one goes nowhere).
    assert [r for r in stack.witness.log_records() if r.resource.get("service.name") != "claude-code"] == []
    assert records_of(stack.witness, renamed.session_id) == []
    assert_no_canary(stack.witness, stack.loki, stack.tempo)
    assert CANARY not in stack.collector.log()


def test_a_witness_answering_503_gets_every_event_once_it_is_back(stack: Stack) -> None:
    events = new_events()
    stack.witness.fail_with = 503
    try:
        rejected_before = stack.witness.rejected
        send_logs(stack.collector, claude_code_logs(events))
        # Refused, then retried from the queue at least once.
        wait_for(
            lambda: stack.witness.rejected >= rejected_before + 2,
            timeout=30,
            what="the collector retrying the witness",
        )
        assert records_of(stack.witness, events.session_id) == []
    finally:
        stack.witness.fail_with = None

    records = wait_for_session(stack.witness, events.session_id, 3, timeout=60)
    assert {r.attributes["event.name"] for r in records} == {"user_prompt", "api_request", "tool_result"}
    assert_only_allowed(records)


def test_without_a_token_the_header_names_no_token(tmp_path: Path) -> None:
    """A loopback witness needs no token; the exporter still sends the header, with "Bearer" alone."""
    with (
        running_sink() as sink,
        running_sink() as witness,
        running_collector(
            tmp_path,
            remote_write_url=f"{sink.url}/api/v1/write",
            tempo_url=sink.url,
            loki_url=f"{sink.url}/otlp",
            extra_env={"MNEMO_WITNESS_ENDPOINT": witness.url},
        ) as collector,
    ):
        events = new_events()
        send_logs(collector, claude_code_logs(events))
        wait_for_session(witness, events.session_id, 3)
        assert {h.get("Authorization") for h in witness.headers} == {"Bearer"}


# --- the real client ----------------------------------------------------------------------------


def claude_env(endpoint: str, protocol: str) -> dict[str, str]:
    """The lines collector/README.md tells users to set, plus every content switch turned on."""
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "otlp",
        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",  # its spans carry the prompt too
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_RESOURCE_ATTRIBUTES": "mnemo.host.id=real-client-host",
        "OTEL_LOG_USER_PROMPTS": "1",
        "OTEL_LOG_TOOL_DETAILS": "1",
        "OTEL_LOG_ASSISTANT_RESPONSES": "1",
        "OTEL_LOGS_EXPORT_INTERVAL": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
    }


@pytest.fixture
def api() -> Iterator[FakeMessagesApi]:
    claude_binary()
    with running_fake_api() as fake:
        yield fake


def run_claude(home: ClaudeHome, api: FakeMessagesApi) -> tuple[str, str]:
    """One prompt with a tool call, canary everywhere; returns the session id and the prompt line's uuid."""
    api.push(BashCall(f"echo {CANARY}"), Text(f"done: {CANARY}"))
    run = home.run("-p", f"please run echo {CANARY}")
    prompt_lines = [
        obj
        for path in home.transcripts()
        for line in path.read_text().splitlines()
        if (obj := json.loads(line)).get("type") == "user"
        and CANARY in json.dumps(obj.get("message"))
        and obj.get("promptId")
    ]
    assert prompt_lines, "the client wrote no user line with the prompt"
    return run.session_id, str(prompt_lines[0]["uuid"])


def filtered_total(collector: Collector, signal: str) -> float:
    """The collector's own count of Claude Code items dropped from the importer's pipelines."""
    status, raw = http_get(f"http://{collector.metrics_target}/metrics", timeout=5)
    assert status == 200
    total = 0.0
    for line in raw.decode().splitlines():
        if line.startswith(f"otelcol_processor_filter_{signal}_filtered_total{{") and (
            'filter="filter/not_claude_code"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def assert_witnessed(stack: Stack, session_id: str, prompt_uuid: str) -> None:
    records = wait_for(
        lambda: (
            [
                r
                for r in records_of(stack.witness, session_id)
                if r.attributes.get("message.uuid") == prompt_uuid
            ]
            and records_of(stack.witness, session_id)
        ),
        timeout=30,
        what="the real client's user_prompt event at the witness",
    )
    assert_only_allowed(records)
    prompt = next(r for r in records if r.attributes.get("message.uuid") == prompt_uuid)
    assert prompt.attributes["event.name"] == "user_prompt"
    assert prompt.resource["mnemo.host.id"] == "real-client-host"
    assert prompt.resource["service.version"]
    assert_no_canary(stack.witness, stack.loki, stack.tempo)
    assert [r for r in stack.loki.log_records() if r.resource.get("service.name") == "claude-code"] == []
    assert CANARY not in stack.collector.log()


def test_the_real_client_over_http_is_witnessed_without_its_content(
    stack: Stack, api: FakeMessagesApi, tmp_path: Path
) -> None:
    # A tap in front of the collector proves the content really left the client.
    with running_sink() as tap:
        tap.forward_to = stack.collector.otlp_http_url
        home = ClaudeHome(tmp_path / "home", api.url, **claude_env(tap.url, "http/protobuf"))
        session_id, prompt_uuid = run_claude(home, api)

        assert_witnessed(stack, session_id, prompt_uuid)
        sent = [r for r in tap.log_records() if r.attributes.get("session.id") == session_id]
        prompts = [r for r in sent if r.attributes.get("event.name") == "user_prompt"]
        assert prompts and CANARY in str(prompts[0].attributes.get("prompt")), (
            "the client sent no prompt text"
        )
        assert any(CANARY.encode() in body for body in tap.bodies if b"tool_result" in body)
    # Claude Code's metrics (exported at the latest when the client exits) reached the collector
    # and were dropped by the importer's metrics pipeline.
    assert tap.metrics, "the client exported no metrics"
    wait_for(lambda: filtered_total(stack.collector, "datapoints") > 0, timeout=15, what="dropped metrics")
    assert stack.prometheus.query('{__name__=~"claude_code.*"}') == []
    # Its spans (with the prompt in them) likewise never reach Tempo.
    assert tap.traces, "the client exported no spans"
    assert any(CANARY in str(span.attributes) for span in tap.spans()), "no span held the prompt"
    wait_for(lambda: filtered_total(stack.collector, "spans") > 0, timeout=15, what="dropped spans")
    assert [s for s in stack.tempo.spans() if s.resource.get("service.name") == "claude-code"] == []


def test_the_real_client_over_grpc_is_witnessed_without_its_content(
    stack: Stack, api: FakeMessagesApi, tmp_path: Path
) -> None:
    home = ClaudeHome(
        tmp_path / "home", api.url, **claude_env(f"http://{stack.collector.otlp_grpc_endpoint}", "grpc")
    )
    session_id, prompt_uuid = run_claude(home, api)
    assert_witnessed(stack, session_id, prompt_uuid)
