"""From an OTLP logs export to the transcript lines Claude Code says it wrote, content left behind.

Which events promise a line was learned from the real client (pinned by the interop tests):
``user_prompt`` and ``assistant_response`` carry ``message.uuid``, the ``uuid`` of the line written,
except an ``assistant_response`` of a compaction (``query_source=compact``), whose text lands in a
summary line under another uuid. A slash command's ``user_prompt`` has no uuid: it promises no
prompt line. Clients before ``message.uuid`` existed: a ``user_prompt`` promises the user line whose
``promptId`` is its ``prompt.id``. Every other event promises nothing, and is only counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ("BadExport", "Heard", "WitnessedLine", "decode_export", "heard")

CLAUDE_CODE = "claude-code"
_PROMISING = {"user_prompt", "assistant_response"}
_NO_LINE_SOURCES = {"compact"}


class BadExport(ValueError):
    """The request body is not an OTLP logs export: answered with 400."""


@dataclass(frozen=True, slots=True)
class WitnessedLine:
    event_id: bytes
    host: str | None
    session_id: str
    event_name: str
    message_uuid: str | None
    prompt_id: str | None
    event_time: datetime
    client_version: str | None


@dataclass(slots=True)
class Heard:
    """What one export said: the lines promised, every Claude Code event by name, the hosts heard."""

    lines: list[WitnessedLine]
    events: dict[str, int]
    hosts: dict[str, str | None]  # host ('' when none named) -> client version


def decode_export(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    """Protobuf or OTLP/JSON; anything else raises ``BadExport``."""
    request = ExportLogsServiceRequest()
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise BadExport("an OTLP/JSON export is an object")
            json_format.ParseDict(_without_ids(document), request, ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError) as exc:
            raise BadExport(f"not OTLP/JSON logs: {type(exc).__name__}") from exc
        return request
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadExport("not an OTLP protobuf logs export") from exc
    return request


def heard(request: ExportLogsServiceRequest) -> Heard:
    result = Heard([], {}, {})
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        if resource.get("service.name") != CLAUDE_CODE:
            continue
        host = _text(resource.get("mnemo.host.id")) or _text(resource.get("host.name"))
        version = _text(resource.get("service.version"))
        result.hosts[host or ""] = version
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attributes = _attributes(record.attributes)
                name = _event_name(attributes, record)
                if name is None:
                    continue
                result.events[name] = result.events.get(name, 0) + 1
                line = _promised(name, attributes, host, version)
                if line is not None:
                    result.lines.append(line)
    return result


def _promised(
    name: str, attributes: dict[str, Any], host: str | None, version: str | None
) -> WitnessedLine | None:
    session_id = _text(attributes.get("session.id"))
    stamp = _timestamp(attributes.get("event.timestamp"))
    if name not in _PROMISING or session_id is None or stamp is None:
        return None
    uuid = _text(attributes.get("message.uuid"))
    prompt_id = _text(attributes.get("prompt.id"))
    if name == "assistant_response" and (uuid is None or attributes.get("query_source") in _NO_LINE_SOURCES):
        return None
    if name == "user_prompt" and uuid is None and (prompt_id is None or attributes.get("command_name")):
        return None
    identity = "\x1f".join(
        [
            session_id,
            name,
            str(attributes.get("event.sequence", "")),
            stamp.isoformat(),
            uuid or "",
            prompt_id or "",
        ]
    )
    event_id = hashlib.sha256(identity.encode()).digest()
    return WitnessedLine(event_id, host, session_id, name, uuid, None if uuid else prompt_id, stamp, version)


def _event_name(attributes: dict[str, Any], record: Any) -> str | None:
    """``user_prompt`` whether the client names it so or ``claude_code.user_prompt`` (attribute or body)."""
    name = _text(attributes.get("event.name")) or _text(_any(record.body))
    if name is None:
        return None
    return name.removeprefix("claude_code.")


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _any(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


def _any(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    return None  # arrays, maps, bytes: nothing the witness reads


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _without_ids(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids in hex, which the protobuf JSON mapping reads as base64:
    the witness needs neither, so they are dropped before parsing."""
    if isinstance(node, dict):
        return {k: _without_ids(v) for k, v in node.items() if k not in ("traceId", "spanId")}
    if isinstance(node, list):
        return [_without_ids(v) for v in node]
    return node
