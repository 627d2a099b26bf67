"""``key_block`` (verify's keying of whole blocks) must give every line exactly the key ``key_line``
gives it one at a time, which is the importer's key: any difference would make verify call a stored
line missing or, worse, a missing line stored."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mnemo_otel.model import BadLine
from mnemo_otel.transcripts import reader
from mnemo_otel.transcripts.parse import key_block, key_line
from mnemo_otel.transcripts.reader import LineBlock, OversizeLine, ReadResult, read_blocks, read_lines

USUAL = [
    b'{"type":"user","uuid":"u-%d","sessionId":"s","message":{"role":"user","content":"hi"}}',
    b'{"type":"assistant","message":{"content":[{"type":"tool_use","input":{"uuid":"nested-%d"}}]},"uuid":"a-%d"}',
]
ODD = [
    b"",
    b"   ",
    b"\r",
    b'{"type":"summary","summary":"s","leafUuid":"x-%d"}',
    b'{"type":"summary","summary":"s","leafUuid":"x-%d"}\r',
    b'{"uuid":"u-%d"}\r',
    b'  {"uuid":"lead-%d"}',
    b'{"uuid":""}',
    b'{"uuid":7}',
    b'{"uuid":null,"n":%d}',
    b'{"a":{"uuid":"only-nested-%d"}}',
    b'{"uuid":"first-%d","uuid":"second"}',
    b'{"uuid":"nul-\\u0000-%d"}',
    b'{"uuid":"surrogate-\\ud800-%d"}',
    b'{"t":"\\u0000","uuid":"clean-uuid-dirty-line-%d"}',
    b'{"a":1}{"uuid":"glued-%d"}',
    b'{"type":"user","uuid":"cut-%d',
    b"[1,2,%d]",
    b'"string %d"',
    b"%d",
    b'{"a":"\xff\xfe-%d"}',
    b'\x00\x00{"uuid":"z-%d"}',
    b'{"x":0},{"a":"},{","uuid":"spliced-%d"}',
    b'{"v":NaN,"uuid":"nan-%d"}',
]


def _lines(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    lines = []
    for n in range(count):
        template = rng.choice(USUAL) if rng.random() < 0.7 else rng.choice(ODD)
        lines.append(template.replace(b"%d", str(n).encode()))
    return lines


def _one_at_a_time(path: Path, max_line_bytes: int) -> list[tuple[int, str | BadLine]]:
    keys = []
    for raw in read_lines(path, 0, max_line_bytes=max_line_bytes, result=ReadResult(0)):
        key = key_line(raw)
        if key is not None:
            keys.append((raw.offset, key))
    return keys


def _by_blocks(path: Path, max_line_bytes: int) -> list[tuple[int, str | BadLine]]:
    keys: list[tuple[int, str | BadLine]] = []
    for item in read_blocks(path, 0, max_line_bytes=max_line_bytes, result=ReadResult(0)):
        if isinstance(item, OversizeLine):
            oversize = key_line(item)
            assert isinstance(oversize, BadLine)
            keys.append((item.offset, oversize))
            continue
        keyed = key_block(item)
        keys.extend(zip(keyed.offsets(range(len(keyed.keys))), keyed.keys, strict=True))
        keys.extend((bad.offset, bad) for bad in keyed.bad)
    return sorted(keys, key=lambda pair: pair[0])


@pytest.mark.parametrize("seed", range(8))
def test_key_block__keys_every_line_as_key_line_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(reader, "CHUNK_BYTES", 512)  # many blocks, lines across chunk boundaries
    path = tmp_path / "t.jsonl"
    lines = _lines(seed, 400)
    lines.insert(seed * 7, b'{"uuid":"huge","pad":"' + b"x" * 3000 + b'"}')  # over the cap below
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected = _one_at_a_time(path, max_line_bytes=2048)
    assert any(isinstance(key, BadLine) for _, key in expected)
    assert any(isinstance(key, str) and key.startswith("sha256:") for _, key in expected)
    assert _by_blocks(path, max_line_bytes=2048) == expected


def test_key_block__a_block_of_usual_lines_is_keyed_by_uuid() -> None:
    lines = [USUAL[0].replace(b"%d", str(n).encode()) for n in range(3)]
    keyed = key_block(LineBlock(10, 10 + sum(len(x) + 1 for x in lines), lines))
    assert keyed.keys == ["u-0", "u-1", "u-2"]
    assert keyed.offsets([0, 2]) == [10, 10 + 2 * (len(lines[0]) + 1)]
    assert keyed.bad == []


def test_line_block__before_keeps_the_lines_starting_before_the_stop() -> None:
    block = LineBlock(100, 112, [b"ab", b"cde", b"f", b"gh"])  # lines at 100, 103, 107, 109
    assert block.starts() == [100, 103, 107, 109]
    assert block.before(107) == LineBlock(100, 107, [b"ab", b"cde"])
    assert block.before(108) == LineBlock(100, 109, [b"ab", b"cde", b"f"])
    assert block.before(112) is block
    assert block.before(100).lines == []
