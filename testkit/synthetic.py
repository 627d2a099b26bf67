"""Synthetic Claude Code transcripts, shaped like the real ones, for tests, benchmarks and demos.

Sessions alternate real prompts, assistant lines (one content block per line, as Claude Code
streams them), tool uses and tool results, with the occasional summary line that has no uuid. Each
line comes annotated (:class:`testkit.manifest.Line`) with what the importer must make of it; the
richer shapes of real transcripts (subagents, compaction, snapshots, queue operations) are in
:mod:`testkit.shapes`.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .manifest import Line, Manifest, Part, line_key

__all__ = ("Envelope", "line", "plain_session", "session_lines", "text", "write_corpus", "write_sessions")

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


def text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(_WORDS)
        words.append(word)
        total += len(word) + 1
    return " ".join(words)


class Envelope:
    """The fields every session line shares; tracks the clock and the parent chain of one session."""

    def __init__(
        self,
        session_id: str,
        rng: random.Random,
        *,
        start: datetime | None = None,
        sidechain: bool = False,
        agent_id: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.rng = rng
        self.clock = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.parent: str | None = None
        self.sidechain = sidechain
        self.agent_id = agent_id

    def stamp(self) -> str:
        self.clock += timedelta(milliseconds=self.rng.randint(50, 5000))
        return self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    def obj(self, kind: str, **fields: object) -> dict[str, object]:
        entry_uuid = self.new_uuid()
        obj: dict[str, object] = {
            "parentUuid": self.parent,
            "isSidechain": self.sidechain,
            "userType": "external",
            "cwd": "/home/user/project",
            "sessionId": self.session_id,
            "version": "2.1.0",
        }
        if self.agent_id is not None:
            obj["agentId"] = self.agent_id
        obj.update({"type": kind, **fields, "uuid": entry_uuid, "timestamp": self.stamp()})
        self.parent = entry_uuid
        return obj

    def entry(self, obj: dict[str, object], part: Part = Part.OTHER, said: str = "") -> Line:
        data = line(obj)
        session = obj.get("sessionId")
        return Line(
            data,
            key=line_key(data, obj.get("uuid")),
            session=session if isinstance(session, str) else None,
            part=part,
            text=said,
        )

    def prompt(self, said: str) -> Line:
        return self.entry(self.obj("user", message={"role": "user", "content": said}), Part.PROMPT)

    def assistant(self, block: dict[str, object]) -> Line:
        message = {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [block],
        }
        said = block["text"] if block.get("type") == "text" and isinstance(block.get("text"), str) else ""
        return self.entry(self.obj("assistant", message=message), Part.ASSISTANT, str(said))

    def user_other(self, content: object, **fields: object) -> Line:
        """A ``type: user`` line nobody typed (tool result, caveat, command echo, compact summary)."""
        return self.entry(self.obj("user", message={"role": "user", "content": content}, **fields))


def plain_session(
    session_id: str, *, turns: int, rng: random.Random, text_bytes: int = 400, start: datetime | None = None
) -> Iterator[Line]:
    """Prompt, thinking, tool use, tool result, answer; ``turns`` times, then a summary line."""
    env = Envelope(session_id, rng, start=start)
    for _ in range(turns):
        yield env.prompt(text(rng, text_bytes))
        tool_id = f"toolu_{rng.getrandbits(64):016x}"
        yield env.assistant({"type": "thinking", "thinking": text(rng, text_bytes // 2)})
        yield env.assistant({"type": "tool_use", "id": tool_id, "name": "Read", "input": {"path": "/x"}})
        yield env.user_other(
            [{"type": "tool_result", "tool_use_id": tool_id, "content": text(rng, text_bytes * 2)}]
        )
        yield env.assistant({"type": "text", "text": text(rng, text_bytes)})
    yield summary(env)


def summary(env: Envelope) -> Line:
    """The resume picker's title: no uuid, no session; keyed by its digest."""
    data = line({"type": "summary", "summary": text(env.rng, 40), "leafUuid": env.parent})
    return Line(data, key=line_key(data, None))


def session_lines(
    session_id: str, *, turns: int, rng: random.Random, text_bytes: int = 400, start: datetime | None = None
) -> Iterator[bytes]:
    """The bytes of :func:`plain_session`, for writers that need no expectations."""
    for item in plain_session(session_id, turns=turns, rng=rng, text_bytes=text_bytes, start=start):
        yield item.data


def write_sessions(
    root: Path, manifest: Manifest, *, target_bytes: int, rng: random.Random, turns_per_session: int = 40
) -> list[Path]:
    """Plain sessions under ``root/<project>/<session>.jsonl``, recorded in ``manifest``."""
    written = 0
    paths: list[Path] = []
    while written < target_bytes:
        project = root / f"-home-user-project-{len(paths) % 5}"
        session_id = str(uuid.UUID(int=rng.getrandbits(128)))
        lines = list(plain_session(session_id, turns=turns_per_session, rng=rng))
        path = project / f"{session_id}.jsonl"
        manifest.write(path, lines)
        written += sum(len(x.data) for x in lines)
        paths.append(path)
    return paths


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
