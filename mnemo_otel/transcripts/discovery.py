"""Finding transcript files under the watched roots."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..model import TranscriptFile

__all__ = ("default_roots", "discover")


def default_roots(environ: os._Environ[str] | dict[str, str]) -> list[Path]:
    """Claude Code writes under ``$CLAUDE_CONFIG_DIR/projects``, else ``~/.claude/projects``."""
    config_dir = environ.get("CLAUDE_CONFIG_DIR")
    base = Path(config_dir).expanduser() if config_dir else Path.home() / ".claude"
    return [base / "projects"]


def discover(roots: Sequence[Path]) -> Iterator[TranscriptFile]:
    """Yield every ``*.jsonl`` under the roots (subagent transcripts included), in a stable order.

    A root may also be a single file. Unreadable directories are skipped by ``os.walk``; the caller
    checks that each root exists, so a typo is an error rather than an empty import.
    """
    seen: set[Path] = set()
    for root in roots:
        if root.is_file():
            candidates: Iterator[Path] = iter([root]) if root.suffix == ".jsonl" else iter(())
            base = root.parent
        else:
            candidates = _walk_jsonl(root)
            base = root
        for path in candidates:
            if path not in seen:
                seen.add(path)
                yield TranscriptFile(root=base, path=path)


def _walk_jsonl(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".jsonl"):
                yield Path(dirpath) / name
