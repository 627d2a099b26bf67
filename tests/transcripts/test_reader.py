from __future__ import annotations

from pathlib import Path

from mnemo_otel.transcripts import reader
from mnemo_otel.transcripts.reader import OversizeLine, RawLine, ReadResult, read_lines


def _read(path: Path, offset: int = 0, cap: int = 1 << 20) -> tuple[list[RawLine | OversizeLine], ReadResult]:
    result = ReadResult(end=offset)
    lines = list(read_lines(path, offset, max_line_bytes=cap, result=result))
    return lines, result


class TestReadLines:
    def test_read_lines__yields_complete_lines_with_offsets_and_leaves_the_tail_pending(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "t.jsonl"
        path.write_bytes(b'{"a":1}\n{"b":2}\r\n\n{"partial"')
        lines, result = _read(path)
        assert [(line.offset, line.end) for line in lines] == [(0, 8), (8, 17), (17, 18)]
        assert [line.data for line in lines if isinstance(line, RawLine)] == [b'{"a":1}', b'{"b":2}\r', b""]
        assert result.end == 18
        assert result.pending == len(b'{"partial"')

    def test_read_lines__resumes_from_an_offset(self, tmp_path: Path) -> None:
        path = tmp_path / "t.jsonl"
        path.write_bytes(b"one\ntwo\nthree\n")
        lines, result = _read(path, offset=4)
        assert [line.data for line in lines if isinstance(line, RawLine)] == [b"two", b"three"]
        assert result.end == 14 and result.pending == 0

    def test_read_lines__joins_lines_across_chunk_boundaries(
        self, tmp_path: Path, monkeypatch: object
    ) -> None:
        import pytest

        assert isinstance(monkeypatch, pytest.MonkeyPatch)
        monkeypatch.setattr(reader, "CHUNK_BYTES", 7)
        path = tmp_path / "t.jsonl"
        payload = [b"x" * n for n in (1, 6, 7, 8, 20, 3)]
        path.write_bytes(b"".join(p + b"\n" for p in payload))
        lines, _ = _read(path)
        assert [line.data for line in lines if isinstance(line, RawLine)] == payload

    def test_read_lines__reports_an_oversize_line_and_continues_after_it(self, tmp_path: Path) -> None:
        path = tmp_path / "t.jsonl"
        big = b"y" * (3 * reader.CHUNK_BYTES + 5)
        path.write_bytes(b"small\n" + big + b"\nafter\n")
        lines, result = _read(path, cap=1000)
        assert isinstance(lines[0], RawLine) and lines[0].data == b"small"
        oversize = lines[1]
        assert isinstance(oversize, OversizeLine)
        assert oversize.offset == 6 and oversize.length == len(big) and oversize.end == 6 + len(big) + 1
        assert len(oversize.sample) == reader.OVERSIZE_SAMPLE_BYTES
        assert isinstance(lines[2], RawLine) and lines[2].data == b"after"
        assert result.end == path.stat().st_size

    def test_read_lines__streams_a_line_of_more_than_ten_megabytes(self, tmp_path: Path) -> None:
        path = tmp_path / "t.jsonl"
        big = b'{"data":"' + b"A" * (11 * 1024 * 1024) + b'"}'
        path.write_bytes(big + b"\n")
        lines, _ = _read(path, cap=64 * 1024 * 1024)
        assert len(lines) == 1 and isinstance(lines[0], RawLine) and lines[0].data == big


def test_read_lines__an_unterminated_oversize_tail_stays_pending(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"one\n" + b"z" * (2 * reader.CHUNK_BYTES + 3))
    lines, result = _read(path, cap=1000)
    assert [line.data for line in lines if isinstance(line, RawLine)] == [b"one"]
    assert result.end == 4
    assert result.pending == 2 * reader.CHUNK_BYTES + 3
