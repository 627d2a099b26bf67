"""Reading what a database holds and comparing it with a generator's :class:`~testkit.manifest.Expected`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import asyncpg

from .manifest import Expected

__all__ = ("Snapshot", "Verdict", "compare", "snapshot")


@dataclass(frozen=True)
class Snapshot:
    """What the data contract is about, in the shape of :class:`Expected`."""

    keys: frozenset[str]
    quarantine: Counter[tuple[str, int, str, bytes]]
    exchanges: Mapping[tuple[str, str], tuple[int, str]]
    sessions: Mapping[str, int]
    offsets: Mapping[str, int]


async def snapshot(dsn: str) -> Snapshot:
    conn = await asyncpg.connect(dsn)
    try:
        keys = frozenset(r["key"] for r in await conn.fetch("SELECT key FROM mnemo.entries"))
        quarantine = Counter(
            (r["source_path"], r["source_offset"], r["error_kind"], bytes(r["raw"]))
            for r in await conn.fetch(
                "SELECT source_path, source_offset, error_kind, raw FROM mnemo.quarantine"
            )
        )
        exchanges = {
            (r["session_id"], r["prompt_uuid"]): (r["entry_count"], r["assistant_text"])
            for r in await conn.fetch(
                "SELECT session_id, prompt_uuid, entry_count, assistant_text FROM mnemo.exchanges"
            )
        }
        sessions = {
            r["session_id"]: r["entry_count"]
            for r in await conn.fetch("SELECT session_id, entry_count FROM mnemo.sessions")
        }
        offsets = {
            r["path"]: r["committed_offset"]
            for r in await conn.fetch("SELECT path, committed_offset FROM mnemo.files")
        }
    finally:
        await conn.close()
    return Snapshot(keys, quarantine, exchanges, sessions, offsets)


@dataclass
class Verdict:
    """``lost``/``duplicated`` rows and every difference, however small; empty when the contract held."""

    lost: int = 0
    duplicated: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return (self.lost, self.duplicated, self.differences) == (0, 0, [])


def compare(expected: Expected, got: Snapshot) -> Verdict:
    """Keys are unique by construction, so duplication shows as a line folded twice into an exchange or
    session count, or a bad line quarantined twice. Files the manifest does not know (written by
    someone else) are not compared on their checkpoint."""
    verdict = Verdict()
    missing, spurious = expected.keys - got.keys, got.keys - expected.keys
    missing_bad, extra_bad = expected.quarantine - got.quarantine, got.quarantine - expected.quarantine
    verdict.lost += len(missing) + sum(missing_bad.values())
    verdict.duplicated += sum(extra_bad.values())
    for key, (count, _) in got.exchanges.items():
        verdict.duplicated += max(0, count - expected.exchanges.get(key, (0, ""))[0])
    for session_id, count in got.sessions.items():
        verdict.duplicated += max(0, count - expected.sessions.get(session_id, 0))
    notes = verdict.differences
    if missing:
        notes.append(f"{len(missing)} key(s) lost, e.g. {sorted(missing)[:3]}")
    if spurious:
        notes.append(f"{len(spurious)} key(s) stored that no file declares, e.g. {sorted(spurious)[:3]}")
    if missing_bad or extra_bad:
        notes.append(f"quarantine differs: missing {_short(missing_bad)}, extra {_short(extra_bad)}")
    if got.exchanges != expected.exchanges:
        diff = sorted(
            k
            for k in expected.exchanges.keys() | got.exchanges.keys()
            if expected.exchanges.get(k) != got.exchanges.get(k)
        )
        example = [
            (k, expected.exchanges.get(k, (None, ""))[0], got.exchanges.get(k, (None, ""))[0])
            for k in diff[:3]
        ]
        notes.append(f"{len(diff)} exchange(s) differ, e.g. (key, expected count, got count) {example}")
    if dict(got.sessions) != expected.sessions:
        sessions = sorted(
            s
            for s in expected.sessions.keys() | got.sessions.keys()
            if expected.sessions.get(s) != got.sessions.get(s)
        )
        notes.append(f"{len(sessions)} session entry count(s) differ, e.g. {sessions[:3]}")
    wrong = {p: (o, got.offsets.get(p, 0)) for p, o in expected.offsets.items() if got.offsets.get(p, 0) != o}
    if wrong:
        notes.append(f"{len(wrong)} checkpoint(s) differ (expected, got), e.g. {sorted(wrong.items())[:3]}")
    return verdict


def _short(bad: Counter[tuple[str, int, str, bytes]]) -> list[tuple[str, int, str, bytes]]:
    return [(path.rsplit("/", 1)[-1], offset, kind, raw[:40]) for path, offset, kind, raw in sorted(bad)[:5]]
