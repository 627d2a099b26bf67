"""What an importer must end up storing, as declared by whoever wrote the transcripts.

The generator annotates every line it writes (its key, its session, whether a human typed it, the
quarantine reason it deserves) and :class:`Manifest` folds those annotations into the expected
database: keys, quarantine rows, exchanges, session counts and checkpoints. Nothing here parses a
transcript or calls the importer, so a bug the importer has cannot hide in its own reference.

The rules are the data contract, restated: key = ``uuid`` or ``sha256:`` + hex of the line without its
line ending; first seen wins; a bad line is quarantined once per (file, offset, content); an exchange
is a human-typed prompt plus every newly stored line of its session up to the next prompt in the same
file; a trailing line without ``\\n`` is pending (never stored, never checkpointed past).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

__all__ = ("Expected", "Line", "Manifest", "Part", "line_key")


class Part(Enum):
    """A line's part in an exchange, as the generator meant it (never re-derived from the text)."""

    PROMPT = "prompt"  # typed by a human: opens an exchange
    ASSISTANT = "assistant"  # contributes ``text`` to the open exchange
    OTHER = "other"  # counted in the open exchange, contributes no text


@dataclass(frozen=True, slots=True)
class Line:
    """One line as written (``data`` with its line ending, if any) and what it must become.

    Exactly one of: an entry (``key`` set), a bad line (``bad`` = quarantine kind), a blank line
    (neither), or a pending tail (``data`` without ``\\n``: neither, and nothing stored).
    """

    data: bytes
    key: str | None = None
    session: str | None = None
    part: Part = Part.OTHER
    text: str = ""
    bad: str | None = None

    @property
    def complete(self) -> bool:
        return self.data.endswith(b"\n")


def line_key(data: bytes, uuid: object) -> str:
    """The contract's key: the uuid when it is a non-empty string, else the digest of the line."""
    if isinstance(uuid, str) and uuid:
        return uuid
    body = data[:-1] if data.endswith(b"\n") else data
    body = body[:-1] if body.endswith(b"\r") else body
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Expected:
    """The expected database, in the shape :func:`testkit.chaos.harness.snapshot` reads one."""

    keys: frozenset[str]
    quarantine: Counter[tuple[str, int, str, bytes]]
    exchanges: dict[tuple[str, str], tuple[int, str]]
    sessions: dict[str, int]
    offsets: dict[str, int]  # every file's checkpoint once all its complete lines are imported


@dataclass
class _File:
    lines: list[tuple[int, Line]] = field(default_factory=list)
    size: int = 0
    pending: int = 0
    open_exchange: tuple[str, str] | None = None


@dataclass
class _Exchange:
    count: int = 0
    parts: list[str] = field(default_factory=list)


class Manifest:
    """Record writes (or let it write), then ask :meth:`expected`.

    Safe to share with writer threads; one file's lines must be recorded in the order they reach it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._files: dict[str, _File] = {}
        self._keys: set[str] = set()
        self._quarantine: dict[tuple[str, int, bytes], str] = {}
        self._exchanges: dict[tuple[str, str], _Exchange] = {}
        self._sessions: Counter[str] = Counter()
        self.lines_by_outcome: Counter[str] = Counter()

    # -- writing -----------------------------------------------------------------------------------

    def write(self, path: Path, lines: Iterable[Line]) -> None:
        """Append ``lines`` to ``path`` (created with its directories) and record them."""
        batch = list(lines)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as f:
            f.write(b"".join(x.data for x in batch))
        self.record(path, batch)

    def touch(self, path: Path) -> None:
        """An empty transcript: a file with a checkpoint of 0 and nothing to store."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        self._files.setdefault(str(path), _File())

    def record(self, path: Path, lines: Iterable[Line]) -> None:
        """Record lines the caller appended to ``path`` itself."""
        with self._lock:
            self._record(path, lines)

    def _record(self, path: Path, lines: Iterable[Line]) -> None:
        state = self._files.setdefault(str(path), _File())
        for item in lines:
            if state.pending:
                raise ValueError(f"{path}: appending after a pending tail makes a line nobody declared")
            offset = state.size
            state.size += len(item.data)
            if not item.complete:
                state.pending = len(item.data)
                self.lines_by_outcome["pending"] += 1
                continue
            state.lines.append((offset, item))
            self._apply(str(path), state, offset, item)

    def truncate(self, path: Path, size: int) -> None:
        """Cut ``path`` to ``size`` (a line boundary) on disk; the importer re-reads it from byte 0."""
        with self._lock:
            self._truncate(path, size)

    def _truncate(self, path: Path, size: int) -> None:
        state = self._files[str(path)]
        kept = [(offset, x) for offset, x in state.lines if offset + len(x.data) <= size]
        if (kept[-1][0] + len(kept[-1][1].data) if kept else 0) != size:
            raise ValueError(f"{path}: {size} is not a line boundary")
        with path.open("r+b") as f:
            f.truncate(size)
        self._replay(str(path), kept, size)

    def replace(self, path: Path, lines: Iterable[Line]) -> None:
        """Swap in a new file (new inode) at ``path``; what the old one held stays stored."""
        staging = path.with_name(path.name + ".replacing")
        batch = list(lines)
        staging.write_bytes(b"".join(x.data for x in batch))
        with self._lock:
            staging.replace(path)
            self._files[str(path)] = _File()
            self._record(path, batch)

    def rename(self, old: Path, new: Path) -> None:
        """Move a transcript no importer has seen yet (e.g. from a staging directory into a root)."""
        with self._lock:
            new.parent.mkdir(parents=True, exist_ok=True)
            old.rename(new)
            self._files[str(new)] = self._files.pop(str(old))
            for (path, offset, body), kind in list(self._quarantine.items()):
                if path == str(old):
                    del self._quarantine[(path, offset, body)]
                    self._quarantine[(str(new), offset, body)] = kind

    def lines_of(self, path: Path) -> list[Line]:
        """The complete lines ``path`` holds now, as recorded."""
        with self._lock:
            return [x for _, x in self._files[str(path)].lines]

    def _replay(self, path: str, lines: list[tuple[int, Line]], size: int) -> None:
        state = self._files[path] = _File(lines=lines, size=size)
        for offset, item in lines:
            self._apply(path, state, offset, item)

    # -- the contract ------------------------------------------------------------------------------

    def _apply(self, path: str, state: _File, offset: int, item: Line) -> None:
        if item.bad is not None:
            body = item.data[:-1]
            if (path, offset, body) not in self._quarantine:
                self._quarantine[(path, offset, body)] = item.bad
                self.lines_by_outcome[f"quarantined:{item.bad}"] += 1
            return
        if item.key is None:
            self.lines_by_outcome["blank"] += 1
            return
        new = item.key not in self._keys
        self._keys.add(item.key)
        self.lines_by_outcome["stored" if new else "duplicate"] += 1
        if item.part is Part.PROMPT and item.session:
            state.open_exchange = (item.session, item.key)
            if new:
                self._exchanges.setdefault(state.open_exchange, _Exchange()).count += 1
        elif new and state.open_exchange is not None and item.session == state.open_exchange[0]:
            exchange = self._exchanges.setdefault(state.open_exchange, _Exchange())
            exchange.count += 1
            if item.part is Part.ASSISTANT and item.text:
                exchange.parts.append(item.text)
        if new and item.session:
            self._sessions[item.session] += 1

    def expected(self) -> Expected:
        with self._lock:
            return self._expected()

    def _expected(self) -> Expected:
        return Expected(
            keys=frozenset(self._keys),
            quarantine=Counter({(p, o, kind, raw): 1 for (p, o, raw), kind in self._quarantine.items()}),
            exchanges={k: (x.count, "\n".join(x.parts)) for k, x in self._exchanges.items()},
            sessions=dict(self._sessions),
            offsets={path: state.size - state.pending for path, state in self._files.items()},
        )

    @property
    def paths(self) -> list[Path]:
        with self._lock:
            return [Path(p) for p in self._files]
