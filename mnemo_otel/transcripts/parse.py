"""Turning one raw line into an entry to store, or a bad line to quarantine.

A bad line is a value, not an exception: quarantine is normal flow, and one bad line must never stop
the rest of its file.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import methodcaller
from typing import Any

import orjson

from ..model import BadLine, Entry, Quarantine
from .reader import LineBlock, OversizeLine, RawLine
from .turns import classify

__all__ = ("KeyedLines", "key_block", "key_line", "parse_line")

_GET_UUID = methodcaller("get", "uuid")
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


@dataclass(slots=True)
class KeyedLines:
    """The keys of a block's entries and its bad lines. Key ``i`` is the key of line ``lines[i]`` of
    the block, or of line ``i`` when ``lines`` is ``None`` (every line an entry, the usual case)."""

    block: LineBlock
    keys: list[str] = field(default_factory=list)
    lines: list[int] | None = None
    bad: list[BadLine] = field(default_factory=list)

    def offsets(self, indexes: Iterable[int]) -> list[int]:
        """The byte offsets of the lines of keys ``indexes``."""
        starts = self.block.starts()
        lines = self.lines
        return [starts[i] for i in indexes] if lines is None else [starts[lines[i]] for i in indexes]


def key_block(block: LineBlock) -> KeyedLines:
    """``key_line`` for every line of ``block``, at a fraction of the cost per line.

    The usual block (every line a JSON object with a ``uuid``, no escaped NUL) is decoded in one pass
    and keyed by its uuids; any other line goes through ``key_line`` itself, so the rule for odd lines
    is never restated here.
    """
    lines = block.lines
    if b"\\u0000" in b"\n".join(lines):  # sanitised before keying: the careful path
        return _key_each(block)
    try:  # one C-level pass; each object is dropped as soon as its uuid is read
        uuids: list[Any] = list(map(_GET_UUID, map(orjson.loads, lines)))
    except (orjson.JSONDecodeError, AttributeError):  # a bad line, or JSON that is not an object
        return _key_each(block)
    odd = [i for i, uuid in enumerate(uuids) if type(uuid) is not str or not uuid]
    if not odd:
        return KeyedLines(block, uuids)
    skipped = set(odd)
    usual = [i for i in range(len(uuids)) if i not in skipped]
    keyed = KeyedLines(block, [uuids[i] for i in usual], usual)
    starts = block.starts()
    for i in odd:
        _add(keyed, i, key_line(RawLine(starts[i], starts[i] + len(lines[i]) + 1, lines[i])))
    return keyed


def _key_each(block: LineBlock) -> KeyedLines:
    keyed = KeyedLines(block, lines=[])
    for i, (start, line) in enumerate(zip(block.starts(), block.lines, strict=True)):
        _add(keyed, i, key_line(RawLine(start, start + len(line) + 1, line)))
    return keyed


def _add(keyed: KeyedLines, index: int, key: str | BadLine | None) -> None:
    if isinstance(key, BadLine):
        keyed.bad.append(key)
    elif key is not None:
        assert keyed.lines is not None
        keyed.keys.append(key)
        keyed.lines.append(index)


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
