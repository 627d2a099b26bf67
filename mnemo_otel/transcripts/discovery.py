"""Finding transcript files under the watched roots: regular files named ``*.jsonl``, nothing else."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..model import TranscriptFile
from .reader import file_kind

__all__ = ("NotRegular", "default_roots", "discover", "side_documents", "subagent_transcripts")

# Called with the path and its kind ("fifo", "socket", "device", ...) for a ``*.jsonl`` that is not
# a regular file: opening a FIFO blocks until a writer comes, a device may never end.
NotRegular = Callable[[Path, str], None]


def default_roots(environ: os._Environ[str] | dict[str, str]) -> list[Path]:
    """Claude Code writes under ``$CLAUDE_CONFIG_DIR/projects``, else ``~/.claude/projects``."""
    config_dir = environ.get("CLAUDE_CONFIG_DIR")
    base = Path(config_dir).expanduser() if config_dir else Path.home() / ".claude"
    return [base / "projects"]


def discover(roots: Sequence[Path], not_regular: NotRegular | None = None) -> Iterator[TranscriptFile]:
    """Yield every regular ``*.jsonl`` under the roots (subagent transcripts included), in a stable order.

    A root may also be a single file. A directory named ``*.jsonl`` is walked like any other; a FIFO,
    socket or device so named is handed to ``not_regular`` and never yielded, so never opened.
    Unreadable directories are skipped; the caller checks that each root exists, so a typo is an error
    rather than an empty import.
    """
    seen: set[Path] = set()
    report = not_regular or _ignore
    for root in roots:
        if root.is_dir():
            candidates, base = _walk_jsonl(root, report), root
        else:
            candidates, base = _single(root, report), root.parent
        for path in candidates:
            if path not in seen:
                seen.add(path)
                yield TranscriptFile(root=base, path=path)


def _single(path: Path, report: NotRegular) -> Iterator[Path]:
    if path.suffix != ".jsonl":
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # gone, or a dangling link: nothing to import, the caller reported a missing root
    if stat.S_ISREG(mode):
        yield path
    else:
        report(path, file_kind(mode))


def _walk_jsonl(root: Path, report: NotRegular) -> Iterator[Path]:
    """A directory's files by name, then its subdirectories by name (``os.walk``'s order); the types
    come from the directory listing, so only symlinks cost a ``stat``. Linked directories are not
    followed (a link cycle would never end)."""
    try:
        with os.scandir(root) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        return
    subdirectories: list[Path] = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                subdirectories.append(Path(entry.path))
            elif entry.name.endswith(".jsonl"):
                if entry.is_file(follow_symlinks=True):
                    yield Path(entry.path)
                elif (kind := file_kind(entry.stat(follow_symlinks=True).st_mode)) != "directory":
                    report(Path(entry.path), kind)
        except OSError:
            continue  # vanished meanwhile, or a dangling link
    for directory in subdirectories:
        yield from _walk_jsonl(directory, report)


def _ignore(path: Path, kind: str) -> None:
    return None


# A side document bigger than this is not a description any more: not archived (a warning says so).
SIDE_DOCUMENT_MAX_BYTES = 1024 * 1024


def side_documents(transcripts: Sequence[TranscriptFile]) -> Iterator[Path]:
    """The ``agent-*.meta.json`` beside each subagent transcript (``<session>/subagents/agent-X.jsonl``):
    regular files only, like transcripts."""
    for transcript in transcripts:
        path = transcript.path
        if path.parent.name != "subagents":
            continue
        meta = path.with_name(path.stem + ".meta.json")
        try:
            mode = meta.lstat().st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode):
            yield meta


def subagent_transcripts(session_file: Path, not_regular: NotRegular) -> list[Path]:
    """The transcripts of a session's subagents, beside its file: ``<dir>/<session>/subagents/*.jsonl``."""
    subagents = session_file.parent / session_file.stem / "subagents"
    return [t.path for t in discover([subagents], not_regular)] if subagents.is_dir() else []
