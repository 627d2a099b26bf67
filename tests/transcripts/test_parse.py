from __future__ import annotations

import hashlib
import json

import orjson
import pytest

from mnemo_otel.model import BadLine, Entry, Quarantine, Role
from mnemo_otel.transcripts.parse import parse_line
from mnemo_otel.transcripts.reader import RawLine


def _parse(data: bytes) -> Entry | BadLine | None:
    return parse_line(RawLine(100, 100 + len(data) + 1, data))


class TestParseLine:
    def test_parse_line__keys_by_uuid_and_reads_the_envelope(self) -> None:
        entry = _parse(
            b'{"type":"user","uuid":"u1","sessionId":"s1","parentUuid":null,"timestamp":"2025-07-01T10:00:00.000Z","message":{"role":"user","content":"hi"}}'
        )
        assert isinstance(entry, Entry)
        assert (entry.key, entry.entry_type, entry.session_id, entry.role, entry.text) == (
            "u1",
            "user",
            "s1",
            Role.PROMPT,
            "hi",
        )
        assert entry.timestamp is not None and entry.timestamp.year == 2025
        assert entry.jsonb is None

    def test_parse_line__keys_a_line_without_uuid_by_the_digest_of_its_bytes_without_crlf(self) -> None:
        data = b'{"type":"summary","summary":"s","leafUuid":"x"}'
        entry = _parse(data + b"\r")
        assert isinstance(entry, Entry)
        assert entry.key == "sha256:" + hashlib.sha256(data).hexdigest()
        assert entry.line == data

    def test_parse_line__skips_blank_lines(self) -> None:
        assert _parse(b"") is None
        assert _parse(b"   \r") is None

    @pytest.mark.parametrize(
        ("data", "kind"),
        [
            (b'{"type":"user","uuid":"a', Quarantine.INVALID_JSON),
            (b'{"type":"pr-link","prNu{"parentUuid":"x"}', Quarantine.INVALID_JSON),
            (b'{"a":1}{"b":2}', Quarantine.GLUED),
            (b"[1,2,3]", Quarantine.NOT_OBJECT),
            (b'"just a string"', Quarantine.NOT_OBJECT),
            (b'{"a":"\xff\xfe"}', Quarantine.INVALID_UTF8),
            (b"\x00\x00\x00\x00", Quarantine.NUL_BYTES),
            (b'\x00\x00{"uuid":"z"}', Quarantine.NUL_BYTES),
        ],
    )
    def test_parse_line__quarantines_what_is_not_a_json_object(self, data: bytes, kind: Quarantine) -> None:
        bad = _parse(data)
        assert isinstance(bad, BadLine)
        assert bad.kind is kind
        assert bad.raw == data and bad.offset == 100 and bad.length == len(data)
        assert bad.sha256 == hashlib.sha256(data).hexdigest()

    @pytest.mark.parametrize(
        "data",
        [
            b'{"uuid":"n1","text":"a\\u0000b"}',
            b'{"uuid":"n2","text":"lone \\ud800 surrogate"}',
            b'{"uuid":"n3","value":NaN}',
            b'{"uuid":"n4","\\u0000key":"v"}',
        ],
    )
    def test_parse_line__keeps_json_that_jsonb_refuses_with_a_sanitised_copy(self, data: bytes) -> None:
        entry = _parse(data)
        assert isinstance(entry, Entry)
        assert entry.line == data  # the original, byte for byte
        assert entry.jsonb is not None
        sanitised = orjson.loads(entry.jsonb)
        assert "\x00" not in json.dumps(sanitised, ensure_ascii=False)
        entry.jsonb.decode("utf-8")  # strictly valid UTF-8

    def test_parse_line__keeps_valid_surrogate_pairs_as_is(self) -> None:
        entry = _parse(b'{"uuid":"p","text":"\\ud83d\\ude00"}')
        assert isinstance(entry, Entry) and entry.jsonb is None


def test_parse_line__quarantines_json_nested_too_deep_instead_of_crashing() -> None:
    bad = _parse(b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert isinstance(bad, BadLine) and bad.kind is Quarantine.INVALID_JSON
