"""A small OTLP/HTTP server standing in for Tempo, Loki and the witness (which cannot run here).

It speaks what the shipped collector config sends them: OTLP/HTTP protobuf POSTs to
``<base>/v1/traces`` (Tempo exporter), ``<base>/otlp/v1/logs`` (Loki exporter) and ``<base>/v1/logs``
(witness exporter), gzip or not. Requests are decoded with ``opentelemetry-proto`` and kept for
assertions. ``fail_with`` makes it answer an error status instead, to drive the collector's
exporter-failure telemetry and retries. ``forward_to`` makes it a tap in front of a collector: it
records what a producer sends, then relays the request unchanged and answers with the collector's reply.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testkit import wait_for

__all__ = ("OtlpSink", "ReceivedLog", "ReceivedSpan", "attributes", "running_sink")


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(kvs: Sequence[KeyValue]) -> dict[str, Any]:
    """OTLP key/values as a plain dict (arrays -> lists, kvlists -> dicts)."""
    return {kv.key: _any_value(kv.value) for kv in kvs}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span with the resource attributes and scope it arrived under."""

    resource: dict[str, Any]
    scope: str
    span: Span

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.span.attributes)

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()


@dataclass(frozen=True)
class ReceivedLog:
    """One log record with its resource attributes and scope."""

    resource: dict[str, Any]
    scope: str
    record: LogRecord

    @property
    def body(self) -> Any:
        return _any_value(self.record.body)

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.record.attributes)

    @property
    def trace_id(self) -> str:
        return self.record.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.record.span_id.hex()


class OtlpSink:
    """Threaded OTLP/HTTP receiver on 127.0.0.1 that records what it is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.traces: list[ExportTraceServiceRequest] = []
        self.logs: list[ExportLogsServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.paths: list[str] = []
        # Every request body (decompressed) and its headers, rejected ones too: privacy tests search
        # the bytes themselves, not only what decodes.
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.rejected = 0
        # When set, every request is answered with this status and not decoded.
        self.fail_with: int | None = None
        # When set (a collector's OTLP/HTTP base URL), every request is relayed there after recording.
        self.forward_to: str | None = None
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                sink._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the collector retries, and a test log full of access lines helps nobody."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-sink", daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """Base URL: give ``url`` to a Tempo-style exporter, ``url + "/otlp"`` to a Loki one."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length)
        sent = raw
        encoding = (req.headers.get("Content-Encoding") or "identity").lower()
        try:
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            elif encoding == "deflate":
                raw = zlib.decompress(raw)
            elif encoding != "identity":
                self._reply(req, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"")
                return
        except (OSError, zlib.error):
            self._reply(req, HTTPStatus.BAD_REQUEST, b"")
            return
        with self._lock:
            self.bodies.append(raw)
            self.headers.append(dict(req.headers.items()))
        status = self.fail_with
        if status is not None:
            with self._lock:
                self.rejected += 1
            self._reply(req, status, b"")
            return
        path = req.path.split("?", 1)[0]
        response: bytes
        forward_to = self.forward_to
        if path.endswith("/v1/traces"):
            trace_req = ExportTraceServiceRequest.FromString(raw)
            with self._lock:
                self.traces.append(trace_req)
                self.paths.append(path)
            response = ExportTraceServiceResponse().SerializeToString()
        elif path.endswith("/v1/logs"):
            logs_req = ExportLogsServiceRequest.FromString(raw)
            with self._lock:
                self.logs.append(logs_req)
                self.paths.append(path)
            response = ExportLogsServiceResponse().SerializeToString()
        elif path.endswith("/v1/metrics"):
            metrics_req = ExportMetricsServiceRequest.FromString(raw)
            with self._lock:
                self.metrics.append(metrics_req)
                self.paths.append(path)
            response = ExportMetricsServiceResponse().SerializeToString()
        else:
            self._reply(req, HTTPStatus.NOT_FOUND, b"")
            return
        if forward_to is not None:
            self._relay(req, f"{forward_to}{path}", sent)
            return
        self._reply(req, HTTPStatus.OK, response)

    def _relay(self, req: BaseHTTPRequestHandler, url: str, body: bytes) -> None:
        """POST the request's original bytes to ``url``; answer with the upstream status and body."""
        headers = {
            name: value
            for name in ("Content-Type", "Content-Encoding")
            if (value := req.headers.get(name)) is not None
        }
        upstream = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(upstream, timeout=10) as reply:
                status, answer = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, exc.read()
        except OSError:
            status, answer = HTTPStatus.BAD_GATEWAY, b""
        self._reply(req, status, answer)

    @staticmethod
    def _reply(req: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        req.send_response(status)
        req.send_header("Content-Type", "application/x-protobuf")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, flattened."""
        with self._lock:
            requests = list(self.traces)
        return [
            ReceivedSpan(attributes(rs.resource.attributes), ss.scope.name, span)
            for request in requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def log_records(self) -> list[ReceivedLog]:
        """Every log record received so far, flattened."""
        with self._lock:
            requests = list(self.logs)
        return [
            ReceivedLog(attributes(rl.resource.attributes), sl.scope.name, record)
            for request in requests
            for rl in request.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]

    def wait_for_spans(
        self, predicate: Callable[[ReceivedSpan], bool], *, timeout: float = 30.0, what: str = "spans"
    ) -> list[ReceivedSpan]:
        """Poll until at least one received span satisfies ``predicate``; return all that do."""
        return wait_for(lambda: [s for s in self.spans() if predicate(s)] or None, timeout=timeout, what=what)

    def wait_for_logs(
        self, predicate: Callable[[ReceivedLog], bool], *, timeout: float = 30.0, what: str = "logs"
    ) -> list[ReceivedLog]:
        """Poll until at least one received log record satisfies ``predicate``; return all that do."""
        return wait_for(
            lambda: [r for r in self.log_records() if predicate(r)] or None, timeout=timeout, what=what
        )


@contextlib.contextmanager
def running_sink() -> Iterator[OtlpSink]:
    """A started sink, shut down on exit."""
    sink = OtlpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
