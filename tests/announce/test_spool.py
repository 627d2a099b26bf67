"""The spool between hooks and the daemon: read once, resumed by (spool id, offset), compacted only
when consumed, and an append racing a compaction lands in the new spool."""

from __future__ import annotations

import threading
from pathlib import Path

from mnemo_otel.announce.spool import Announcement, Position, Spool


def announce(spool: Spool, n: int) -> None:
    for i in range(n):
        spool.append(Announcement("host-a", f"s{i}", f"/x/s{i}.jsonl", "Stop", float(i)))


def test_spool__reads_from_the_saved_position_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "announcements")
    assert spool.read(None) is None
    announce(spool, 3)
    first = spool.read(None)
    assert first is not None and [r.session_id for r in first.records] == ["s0", "s1", "s2"]
    spool.save_position(first.position)
    assert spool.load_position() == first.position
    announce(spool, 1)
    second = spool.read(spool.load_position())
    assert second is not None and [r.session_id for r in second.records] == ["s0"]
    assert second.position.offset == spool.path.stat().st_size


def test_spool__a_torn_or_foreign_line_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    announce(spool, 1)
    with spool.path.open("ab") as f:
        f.write(b'{"broken": \n{"host": "h"}\n')
    announce(spool, 1)
    with spool.path.open("ab") as f:
        f.write(b'{"host": "h", "session_id": "unterminated"')
    read = spool.read(None)
    assert read is not None
    assert [r.session_id for r in read.records] == ["s0", "s0"] and read.unreadable == 2
    assert read.position.offset < spool.path.stat().st_size  # the unterminated tail waits


def test_spool__compaction_only_when_consumed_and_a_new_spool_is_read_from_its_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    announce(spool, 3)
    read = spool.read(None)
    assert read is not None
    assert not spool.compact(Position(read.position.spool_id, read.position.offset - 1), min_bytes=0)
    assert not spool.compact(Position("another-spool", read.position.offset), min_bytes=0)
    assert not spool.compact(read.position, min_bytes=10**9)
    assert spool.compact(read.position, min_bytes=0)
    assert not spool.path.exists()
    spool.save_position(read.position)
    announce(spool, 1)  # a new spool: new id, so the old offset does not apply even on a reused inode
    again = spool.read(spool.load_position())
    assert again is not None and [r.session_id for r in again.records] == ["s0"]


def test_spool__appends_racing_compactions_lose_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    total = 200
    seen: list[str] = []
    done = threading.Event()

    def writer() -> None:
        for i in range(total):
            spool.append(Announcement("h", f"s{i}", f"/x/{i}.jsonl", "Stop", float(i)))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    position = spool.load_position()
    while True:
        finished = done.is_set()
        read = spool.read(position)
        if read is not None:
            seen += [r.session_id for r in read.records]
            position = read.position
            spool.compact(position, min_bytes=0)
        if finished and (read is None or not read.records):
            break
    thread.join()
    assert seen == [f"s{i}" for i in range(total)]
