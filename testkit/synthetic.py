"""Synthetic Claude Code transcripts, shaped like the real ones, for tests, benchmarks and demos.

Sessions alternate real prompts, assistant lines (one content block per line, as Claude Code
streams them), tool uses and tool results, with the occasional summary line that has no uuid.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ("line", "session_lines", "write_corpus")

_WORDS = [
    "the",
    "import",
    "keeps",
    "every",
    "line",
    "exactly",
    "once",
    "across",
    "crashes",
    "restarts",
    "and",
    "slow",
    "databases",
]


def line(obj: dict[str, object]) -> bytes:
    """One transcript line as Claude Code writes it: compact JSON, raw UTF-8, newline-terminated."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def session_lines(
    session_id: str, *, turns: int, rng: random.Random, text_bytes: int = 400, start: datetime | None = None
) -> Iterator[bytes]:
    clock = start or datetime(2026, 1, 1, tzinfo=UTC)
    parent: str | None = None

    def stamp() -> str:
        nonlocal clock
        clock += timedelta(milliseconds=rng.randint(50, 5000))
        return clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def envelope(kind: str, message: dict[str, object]) -> dict[str, object]:
        nonlocal parent
        entry_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
        obj: dict[str, object] = {
            "parentUuid": parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": "/home/user/project",
            "sessionId": session_id,
            "version": "2.1.0",
            "type": kind,
            "message": message,
            "uuid": entry_uuid,
            "timestamp": stamp(),
        }
        parent = entry_uuid
        return obj

    for _ in range(turns):
        yield line(envelope("user", {"role": "user", "content": _text(rng, text_bytes)}))
        tool_id = f"toolu_{rng.getrandbits(64):016x}"
        yield line(
            envelope("assistant", _assistant([{"type": "thinking", "thinking": _text(rng, text_bytes // 2)}]))
        )
        yield line(
            envelope(
                "assistant",
                _assistant([{"type": "tool_use", "id": tool_id, "name": "Read", "input": {"path": "/x"}}]),
            )
        )
        result = [{"type": "tool_result", "tool_use_id": tool_id, "content": _text(rng, text_bytes * 2)}]
        yield line(envelope("user", {"role": "user", "content": result}))
        yield line(envelope("assistant", _assistant([{"type": "text", "text": _text(rng, text_bytes)}])))
    yield line({"type": "summary", "summary": _text(rng, 40), "leafUuid": parent})


def _assistant(content: list[dict[str, object]]) -> dict[str, object]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x", "content": content}


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(_WORDS)
        words.append(word)
        total += len(word) + 1
    return " ".join(words)


def write_corpus(root: Path, *, target_bytes: int, seed: int = 7, turns_per_session: int = 40) -> int:
    """Write sessions under ``root/<project>/<session>.jsonl`` until ``target_bytes``; returns bytes."""
    rng = random.Random(seed)
    written = 0
    index = 0
    while written < target_bytes:
        project = root / f"-home-user-project-{index % 5}"
        project.mkdir(parents=True, exist_ok=True)
        session_id = str(uuid.UUID(int=rng.getrandbits(128)))
        with (project / f"{session_id}.jsonl").open("wb") as f:
            for data in session_lines(session_id, turns=turns_per_session, rng=rng):
                f.write(data)
                written += len(data)
        index += 1
    return written
