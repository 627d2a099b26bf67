"""The announcement spool: one JSON line per hook call, appended under a lock, fsynced, bounded.

Written by ``mnemo-otel hook`` (many short-lived processes), read by the daemon (one). Standard
library only, so the hook starts in milliseconds.

- Each spool file starts with a header naming it (a random id): the daemon's read position is kept
  as (id, offset) in ``spool.offset``, so a spool replaced after compaction (even on a reused inode)
  is read from its start, never from a stale offset.
- Appends hold an exclusive ``flock`` and check, once it is held, that the file is still the one at
  the path: a hook that opened the spool just before the daemon removed it appends to the new one.
- A write that fails half-way is cut back to where it started (under the lock), so a full disk
  leaves no torn line; a spool at its size bound refuses new records (``SpoolFull``) rather than
  grow without limit while no daemon reads it.
- The daemon compacts only a spool it has consumed to the end (same id, same size, under the
  lock): nothing appended since can be lost. One daemon reads a data dir's spool (as one owns its
  embedded database): a second one on the same data dir would consume announcements meant for it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = (
    "COMPACT_BYTES",
    "SPOOL_MAX_BYTES",
    "Announcement",
    "Position",
    "Spool",
    "SpoolFull",
    "spool_directory",
)

SPOOL_MAX_BYTES = 16 * 1024 * 1024  # ~50,000 announcements: weeks of sessions with no daemon reading
COMPACT_BYTES = 64 * 1024  # a consumed spool this big is removed (a new one starts with the next hook)
READ_MAX_BYTES = 4 * 1024 * 1024  # per read: the daemon takes a large backlog in several passes
LOCK_TIMEOUT_SECONDS = 2.0
FIELD_MAX_CHARS = 4096  # a path; ids and event names are far shorter
_HEADER_KEY = "mnemo_spool"
_SPOOL = "spool.jsonl"
_POSITION = "spool.offset"


def spool_directory(data_dir: Path) -> Path:
    """Where the hook and the daemon meet: ``MNEMO_DATA_DIR/announcements``."""
    return data_dir / "announcements"


class SpoolFull(OSError):
    """The spool reached its bound: the record is refused, the spool stays as it was."""


@dataclass(frozen=True, slots=True)
class Announcement:
    """One hook call: which session said what about which transcript, when (the hook's clock)."""

    host: str
    session_id: str
    path: str
    event: str
    at: float

    def to_line(self) -> bytes:
        record: dict[str, str | float] = {"host": self.host, "session_id": self.session_id}
        record |= {"path": self.path, "event": self.event, "at": self.at}
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Announcement | None:
        """A record read back, or ``None`` for anything else (never raises on bad input)."""
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        fields = [obj.get(name) for name in ("host", "session_id", "path", "event")]
        at = obj.get("at")
        if not all(isinstance(f, str) and f and len(f) <= FIELD_MAX_CHARS for f in fields):
            return None
        if isinstance(at, bool) or not isinstance(at, int | float):
            return None
        host, session_id, path, event = (str(f) for f in fields)
        return cls(host, session_id, path, event, float(at))


@dataclass(frozen=True, slots=True)
class Position:
    """How far the daemon has consumed the spool named ``spool_id``."""

    spool_id: str
    offset: int


@dataclass(frozen=True, slots=True)
class ReadResult:
    records: list[Announcement]
    position: Position
    unreadable: int  # lines that were no record (none are written so; counted, skipped)


class Spool:
    """The spool in ``directory`` (created by the first append, mode 0700/0600)."""

    def __init__(self, directory: Path, *, max_bytes: int = SPOOL_MAX_BYTES) -> None:
        self.directory = directory
        self.path = directory / _SPOOL
        self.position_path = directory / _POSITION
        self.max_bytes = max_bytes

    # -- the hook's side ----------------------------------------------------------------------------

    def append(self, record: Announcement) -> None:
        """Add one record durably, or raise (``SpoolFull``, ``OSError``) leaving the spool intact."""
        line = record.to_line()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(5):  # the spool is replaced only by a compaction: at most once in a while
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o600)
            try:
                _lock(fd)
                held = os.fstat(fd)
                if not _is_current(self.path, held):
                    continue  # compacted away while we waited for the lock: append to the new one
                header = b"" if held.st_size else _header()
                data = header + line
                if held.st_size + len(data) > self.max_bytes:
                    raise SpoolFull(errno.ENOSPC, f"spool full ({held.st_size} bytes)")
                _write_all(fd, data, held.st_size)
                if header:
                    _fsync_directory(self.directory)
                return
            finally:
                os.close(fd)  # releases the lock
        raise OSError(errno.EAGAIN, "the spool kept being replaced")

    # -- the daemon's side --------------------------------------------------------------------------

    def read(self, after: Position | None) -> ReadResult | None:
        """Complete records past ``after`` (all of a spool with another id); ``None``: no spool yet
        (or one whose first write is still in progress)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            header = _read_header(f)
            if header is None:
                return None
            spool_id, body_start = header
            start = after.offset if after is not None and after.spool_id == spool_id else body_start
            f.seek(start)
            chunk = f.read(READ_MAX_BYTES)
        complete = chunk[: chunk.rfind(b"\n") + 1]
        records: list[Announcement] = []
        unreadable = 0
        for data in complete.splitlines():
            record = Announcement.from_json(data) if data.strip() else None
            if record is not None:
                records.append(record)
            elif data.strip():
                unreadable += 1
        return ReadResult(records, Position(spool_id, start + len(complete)), unreadable)

    def load_position(self) -> Position | None:
        try:
            obj = json.loads(self.position_path.read_bytes())
            return Position(str(obj["spool_id"]), int(obj["offset"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: read the spool again from its start; recording is idempotent

    def save_position(self, position: Position) -> None:
        """Atomically (temp file, fsync, rename): a crash leaves the old position or the new one."""
        temporary = self.position_path.with_suffix(".tmp")
        body = json.dumps({"spool_id": position.spool_id, "offset": position.offset}).encode()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(self.position_path)
        _fsync_directory(self.directory)

    def compact(self, consumed: Position, *, min_bytes: int = COMPACT_BYTES) -> bool:
        """Remove the spool if it is ``consumed`` to its end and at least ``min_bytes``: under the
        lock, so no hook is half-way through an append; ``False`` when anything says otherwise."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a hook is appending: next time
            held = os.fstat(fd)
            if (
                held.st_size < min_bytes
                or held.st_size != consumed.offset
                or not _is_current(self.path, held)
            ):
                return False
            with os.fdopen(os.dup(fd), "rb") as f:
                header = _read_header(f)
            if header is None or header[0] != consumed.spool_id:
                return False
            self.path.unlink()
            _fsync_directory(self.directory)
            return True
        finally:
            os.close(fd)


def _header() -> bytes:
    return json.dumps({_HEADER_KEY: os.urandom(16).hex(), "version": 1}).encode() + b"\n"


def _read_header(f: Any) -> tuple[str, int] | None:
    """The spool's id and where its records start. ``None`` while the first line is incomplete: the
    hook writes the header and its first record at once, and a reader may see that write half-way.
    A spool whose first line is no header (not one of ours) is read whole."""
    f.seek(0)
    first = f.readline(1024)
    if not first.endswith(b"\n"):
        return None if len(first) < 1024 else ("", 0)
    try:
        obj = json.loads(first)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get(_HEADER_KEY), str):
        return str(obj[_HEADER_KEY]), len(first)
    return "", 0


def _lock(fd: int) -> None:
    """An exclusive lock, waiting a little: the other holders keep it for microseconds."""
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _is_current(path: Path, held: os.stat_result) -> bool:
    try:
        now = path.lstat()
    except FileNotFoundError:
        return False
    return held.st_nlink > 0 and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _write_all(fd: int, data: bytes, size_before: int) -> None:
    """Write and fsync, or cut the file back to ``size_before``: never a torn record."""
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "short write")
            view = view[written:]
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size_before)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make a created, renamed or removed entry durable."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
