"""OTLP logs exports shaped as Claude Code sends its events, for the witness's tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

__all__ = ("claude_event", "export")


def _kvs(values: Mapping[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()]


def claude_event(
    name: str, session: str, *, sequence: int = 0, stamp: str = "2026-12-04T10:00:00.000Z", **attributes: str
) -> dict[str, str]:
    """One event's attributes, as the client sets them (``message_uuid`` becomes ``message.uuid``)."""
    return {
        "event.name": name,
        "session.id": session,
        "event.sequence": str(sequence),
        "event.timestamp": stamp,
        **{
            key.replace("_", ".") if key in ("message_uuid", "prompt_id") else key: value
            for key, value in attributes.items()
        },
    }


def export(
    events: Sequence[Mapping[str, str]],
    *,
    host: str | None = "laptop",
    service: str = "claude-code",
    version: str = "2.1.328",
) -> ExportLogsServiceRequest:
    resource = {"service.name": service, "service.version": version}
    if host is not None:
        resource["mnemo.host.id"] = host
    records = [LogRecord(attributes=_kvs(event)) for event in events]
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=_kvs(resource)), scope_logs=[ScopeLogs(log_records=records)]
            )
        ]
    )
