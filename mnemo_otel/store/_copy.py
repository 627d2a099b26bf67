"""Encoding staged rows in PostgreSQL's COPY text format straight from the line bytes.

The lines are already valid UTF-8 without NUL (the parser guarantees it), so they go to the server as
bytes with only COPY's escapes applied: no per-row Python encoding, which is where binary COPY of many
large text values spends its time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

__all__ = ("encode_rows",)

_NULL = b"\\N"


def _escape(value: bytes) -> bytes:
    if b"\\" in value:
        value = value.replace(b"\\", b"\\\\")
    if b"\t" in value:
        value = value.replace(b"\t", b"\\t")
    if b"\n" in value:
        value = value.replace(b"\n", b"\\n")
    if b"\r" in value:
        value = value.replace(b"\r", b"\\r")
    return value


def _field(value: bytes | str | int | datetime | None) -> bytes:
    if value is None:
        return _NULL
    if isinstance(value, bytes):
        return _escape(value)
    if isinstance(value, datetime):
        return value.isoformat().encode()
    if isinstance(value, int):
        return str(value).encode()
    return _escape(value.encode("utf-8"))


def encode_rows(rows: Iterable[tuple[bytes | str | int | datetime | None, ...]]) -> bytes:
    return b"".join(b"\t".join(_field(v) for v in row) + b"\n" for row in rows)
