"""Turning one raw line into an entry to store, or a bad line to quarantine.

A bad line is a value, not an exception: quarantine is normal flow, and one bad line must never stop
the rest of its file.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from typing import Any

import orjson

from ..model import BadLine, Entry, Quarantine
from .reader import OversizeLine, RawLine
from .turns import classify

__all__ = ("key_line", "parse_line")

_ASCII_SPACE = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() removes


def parse_line(raw: RawLine | OversizeLine) -> Entry | BadLine | None:
    """Classify one line; ``None`` for a blank line (skipped, not quarantined)."""
    decoded = _decode(raw)
    if decoded is None or isinstance(decoded, BadLine):
        return decoded
    data, obj, jsonb = decoded
    return _entry(raw, data, obj, jsonb)


def key_line(raw: RawLine | OversizeLine) -> str | BadLine | None:
    """The key ``parse_line`` would give the line (or its bad line), without building the entry.

    The same decoding and keying as the import, only cheaper: ``verify`` checks the archive with it.
    """
    decoded = _decode(raw)
    if decoded is None or isinstance(decoded, BadLine):
        return decoded
    data, obj, _ = decoded
    return _key(data, obj)


def _decode(raw: RawLine | OversizeLine) -> tuple[bytes, dict[str, Any], bytes | None] | BadLine | None:
    """``(line without CR, object as stored, sanitised jsonb or None)``, a bad line, or ``None`` (blank)."""
    if isinstance(raw, OversizeLine):
        return BadLine(
            raw.offset,
            raw.end,
            Quarantine.OVERSIZE,
            raw.sample,
            raw.length,
            raw.sha256,
            "line over the size cap",
        )
    data = raw.data[:-1] if raw.data.endswith(b"\r") else raw.data
    if not data or (data[0] in _ASCII_SPACE and not data.strip()):  # strip() copies: only when it may matter
        return None
    try:
        obj = orjson.loads(data)
        hostile = b"\\u0000" in data
    except orjson.JSONDecodeError:
        obj = _parse_leniently(raw, data)
        if isinstance(obj, BadLine):
            return obj
        hostile = True
    if not isinstance(obj, dict):
        return _bad(raw, data, Quarantine.NOT_OBJECT, f"JSON {type(obj).__name__}, not an object")
    jsonb = None
    if hostile:
        obj = _clean(obj)
        jsonb = orjson.dumps(obj)
    return data, obj, jsonb


def _key(data: bytes, obj: dict[str, Any]) -> str:
    """The line's ``uuid``, else the digest of its bytes: the one keying rule."""
    return _str(obj.get("uuid")) or "sha256:" + hashlib.sha256(data).hexdigest()


def _parse_leniently(raw: RawLine, data: bytes) -> Any | BadLine:
    """The slow path: tell the kinds of damage apart, and accept JSON that only jsonb would refuse."""
    if b"\x00" in data:
        return _bad(raw, data, Quarantine.NUL_BYTES, "NUL bytes in line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _bad(raw, data, Quarantine.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}")
    try:
        return json.loads(text)
    except RecursionError:
        return _bad(raw, data, Quarantine.INVALID_JSON, "nesting too deep")
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return _bad(raw, data, Quarantine.GLUED, f"extra data at column {exc.colno}")
        return _bad(raw, data, Quarantine.INVALID_JSON, f"{exc.msg} at column {exc.colno}")


def _bad(raw: RawLine, data: bytes, kind: Quarantine, detail: str) -> BadLine:
    return BadLine(
        raw.offset, raw.end, kind, raw.data, len(raw.data), hashlib.sha256(data).hexdigest(), detail
    )


def _entry(raw: RawLine | OversizeLine, data: bytes, obj: dict[str, Any], jsonb: bytes | None) -> Entry:
    role, text = classify(obj)
    return Entry(
        offset=raw.offset,
        end=raw.end,
        key=_key(data, obj),
        line=data,
        entry_type=_str(obj.get("type")) or "",
        uuid=_str(obj.get("uuid")),
        parent_uuid=_str(obj.get("parentUuid")),
        session_id=_str(obj.get("sessionId")),
        timestamp=_timestamp(obj.get("timestamp")),
        role=role,
        text=text,
        jsonb=jsonb,
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _clean(value: Any) -> Any:
    """A copy jsonb accepts: NUL and lone surrogates become U+FFFD, NaN/Infinity become null."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        return {_clean_str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean_str(value: str) -> str:
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value
