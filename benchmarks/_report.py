"""What every benchmark prints around its figures: the machine, the date and the commit measured."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil

__all__ = ("REPO", "environment", "format_table")

REPO = Path(__file__).resolve().parent.parent


def environment() -> list[tuple[str, str]]:
    """Figures mean little without the machine, date and commit they were measured on."""
    ram_gib = psutil.virtual_memory().total / 2**30
    return [
        (
            "machine",
            f"{os.cpu_count()} cores, {ram_gib:.1f} GiB RAM, {platform.machine()}, {platform.system()}",
        ),
        ("python", platform.python_version()),
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("commit", _commit()),
    ]


def _commit() -> str:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{head} (+ uncommitted changes)" if dirty else head


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table that reads well in a terminal and pastes into Markdown."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def render(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(cells[0]), rule, *map(render, cells[1:])])
