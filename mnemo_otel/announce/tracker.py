"""The daemon's side of the hooks: announced transcripts joined to the import, each file once.

Each pass the importer asks for ``refresh`` (new spool records are recorded in the archive, then
the spool position moves: a crash in between reads them again, and recording them again changes
nothing), then for ``files`` (the announced transcripts outside the roots, and the subagent
transcripts beside each, ``<dir>/<session>/subagents/*.jsonl``). Paths are normalised as
discovery's are (the folder resolved, the file itself not), and an announced path under a watched
root is left to discovery: one checkpoint per file, whichever way it was found. A file stays
watched until its session ended (or went quiet for a day), stayed idle, and was imported to its
end; the scheduler polls the watched files every second meanwhile.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread

from ..errors import StoreError
from ..model import TranscriptFile
from ..state import LoopState
from ..transcripts.discovery import NotRegular, subagent_transcripts
from ..transcripts.reader import file_kind
from .spool import Announcement, Position, Spool
from .store import AnnouncementStore, Observed

__all__ = ("ABANDONED_SECONDS", "Announcements", "normalise", "refusal")

logger = logging.getLogger("mnemo_otel.importer")

ABANDONED_SECONDS = 86400.0  # a session that never said SessionEnd (killed) stops being watched
SESSION_END = "SessionEnd"


def normalise(path: str) -> Path:
    """The key discovery would give the file: its folder resolved (symlinks, ``..``), its name kept."""
    plain = Path(os.path.normpath(path))
    return Path(os.path.realpath(plain.parent)) / plain.name


def refusal(path: Path) -> str | None:
    """Why an announced path is not imported: ``not_jsonl``, ``symlink``, or a special file's kind."""
    if path.suffix != ".jsonl":
        return "not_jsonl"
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None  # not written yet: looked at again each pass
    if stat.S_ISLNK(mode):
        return "symlink"
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else file_kind(mode)


@dataclass(slots=True)
class _Watched:
    session_id: str
    last_at: float
    ended: bool
    files: list[Path] = field(default_factory=list)  # as of the last pass: the session's and its subagents'


class Announcements:
    """Announced transcripts for one importer: the spool in, ``mnemo.announcements`` and files out."""

    def __init__(
        self,
        spool: Spool,
        store: AnnouncementStore,
        *,
        roots: Sequence[Path],
        state: LoopState,
        idle_seconds: float,
    ) -> None:
        self.spool = spool
        self.store = store
        self.state = state
        self.idle_seconds = idle_seconds
        self._roots = [Path(os.path.realpath(root)) for root in roots]
        self._watched: dict[Path, _Watched] = {}
        self._loaded = False
        self._position: Position | None = None  # consumed and recorded
        self._unrecorded: list[Observed] = []
        self._read_to: Position | None = None  # read into memory (maybe not recorded yet)
        self._refused: set[tuple[Path, str]] = set()
        self._signatures: dict[Path, tuple[int, int, int]] = {}
        self._spool_broken = False

    # -- the spool --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Take new announcements; record them (and those a failed pass left) in the archive."""
        if not self._loaded:
            try:
                for row in await self.store.open():
                    self._watch(Path(row.path), row.session_id, row.last_at, ended=row.ended)
                self._loaded = True
                self._position = self._read_to = await anyio.to_thread.run_sync(self.spool.load_position)
            except StoreError as exc:
                logger.warning("announced transcripts not loaded yet (%s); trying next pass", exc.error_type)
                return
        try:
            read = await anyio.to_thread.run_sync(self._read)
        except OSError as exc:  # an unreadable spool costs announcements' speed, never the import
            if not self._spool_broken:
                self._spool_broken = True
                logger.warning("announcement spool unreadable (%s)", exc.strerror or type(exc).__name__)
            read = None
        else:
            self._spool_broken = False
        if read is not None:
            self._unrecorded += read
        if not self._unrecorded:
            return
        try:
            newly = await self.store.record(self._unrecorded)
        except StoreError as exc:
            logger.warning("announcements not recorded yet (%s); trying next pass", exc.error_type)
            return
        self._unrecorded = []
        self.state.announced(newly)
        if self._read_to is not None and self._read_to != self._position:
            await anyio.to_thread.run_sync(self._consumed, self._read_to)

    def _read(self) -> list[Observed] | None:
        read = self.spool.read(self._read_to)
        if read is None:
            return None
        if read.unreadable:
            logger.warning("skipped %d unreadable line(s) of the announcement spool", read.unreadable)
        self._read_to = read.position
        return self._fold(read.records)

    def _consumed(self, position: Position) -> None:
        try:
            self.spool.save_position(position)
            self._position = position
            if self.spool.compact(position):
                logger.debug("announcement spool compacted")
        except OSError as exc:
            logger.warning("announcement spool position not saved (%s)", exc.strerror or type(exc).__name__)

    def _fold(self, records: list[Announcement]) -> list[Observed]:
        """One row per path, first and last event; the watched set learns each path at once."""
        folded: dict[Path, Observed] = {}
        for record in records:
            path = normalise(record.path)
            under_root = any(path.is_relative_to(root) for root in self._roots)
            refused = refusal(path)
            earlier = folded.get(path)
            folded[path] = Observed(
                str(path),
                record.session_id,
                earlier.first_event if earlier else record.event,
                earlier.first_at if earlier else record.at,
                record.event,
                record.at,
                under_root,
                refused,
            )
            if refused is not None:
                self._refuse(path, refused)
            elif not under_root:
                self._watch(path, record.session_id, record.at, ended=record.event == SESSION_END)
        return list(folded.values())

    def _watch(self, path: Path, session_id: str, at: float, *, ended: bool) -> None:
        watched = self._watched.get(path)
        if watched is None:
            self._watched[path] = _Watched(session_id, at, ended)
        elif at >= watched.last_at:
            watched.session_id, watched.last_at, watched.ended = session_id, at, ended

    def _refuse(self, path: Path, reason: str) -> None:
        self._watched.pop(path, None)
        if (path, reason) not in self._refused:
            self._refused.add((path, reason))
            logger.warning(
                "announced transcript refused: %s (%s); only regular *.jsonl files are imported", path, reason
            )

    # -- the files --------------------------------------------------------------------------------

    def files(self, not_regular: NotRegular) -> list[TranscriptFile]:
        """The watched transcripts present now: each announced session file, then its subagents'."""
        found: list[TranscriptFile] = []
        for path, watched in list(self._watched.items()):
            reason = refusal(path)
            if reason == "symlink" or reason == "not_jsonl":
                self._refuse(path, reason)
                continue
            watched.files = []
            if reason is None and path.is_file():
                found.append(TranscriptFile(root=path.parent, path=path))
                watched.files.append(path)
            elif reason is not None:
                not_regular(path, reason)
            for subagent in subagent_transcripts(path, not_regular):
                found.append(TranscriptFile(root=path.parent, path=subagent))
                watched.files.append(subagent)
        return found

    def changed(self) -> bool:
        """Whether the spool or a watched file moved since last asked: one ``stat`` each."""
        paths = [self.spool.path]
        # A copy taken at once (in C, under the GIL): the pass may add announcements meanwhile.
        for path, watched in list(self._watched.items()):
            paths += [path, path.parent / path.stem / "subagents", *list(watched.files)]
        moved = False
        for path in paths:
            try:
                st = path.stat()
                signature = (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                signature = (0, 0, 0)
            if self._signatures.get(path, (0, 0, 0)) != signature:
                moved = True
            self._signatures[path] = signature
        return moved

    async def settle(self, imported: Callable[[Path], bool], now: float | None = None) -> None:
        """Stop watching sessions that ended (or went quiet) and were imported to their end."""
        now = time.time() if now is None else now
        done = [
            path for path, watched in self._watched.items() if self._finished(path, watched, imported, now)
        ]
        if not done:
            return
        try:
            await self.store.close([str(p) for p in done])
        except StoreError as exc:
            logger.debug("announcements not closed yet: %s", exc.error_type)
            return
        for path in done:
            watched = self._watched.pop(path)
            for file in (path, path.parent / path.stem / "subagents", *watched.files):
                self._signatures.pop(file, None)

    def _finished(self, path: Path, watched: _Watched, imported: Callable[[Path], bool], now: float) -> bool:
        quiet_since = watched.last_at
        for file in watched.files:
            try:
                quiet_since = max(quiet_since, file.stat().st_mtime)
            except OSError:
                continue
        quiet = now - quiet_since
        if quiet < (self.idle_seconds if watched.ended else max(self.idle_seconds, ABANDONED_SECONDS)):
            return False
        return all(imported(file) for file in watched.files)
