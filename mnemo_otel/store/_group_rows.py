"""One commit's parameters, for one file's batch or several files' at once.

A catch-up of many small sessions costs more in round trips and transactions than in rows, so the
sink takes several files' batches in one transaction; a single batch is a group of one. Everything
here is built from the batches alone: the digests, compressed blocks and entries payload in a worker
thread before a connection is taken (``prepare``), the folded exchanges and sessions merged across the
group (``finish_arguments``), so each statement touches each row once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..model import Batch, BatchOutcome, Entry
from ._exact import ExactBatch, exact_batch
from ._fold import ExchangeDelta, FoldResult, SessionDelta

__all__ = (
    "EntriesPayload",
    "PreparedGroup",
    "exchange_owners",
    "finish_arguments",
    "prepare",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class EntriesPayload:
    """The entries statement's rows, one per distinct key, and the (batch, entry) each key came from.

    First seen wins, in batch order then file order: the group stores what importing its files one
    after the other would have stored. Each row carries its entry's sha256, stored with a new key so
    that a key coming back with other bytes can be told apart, and its batch's 1-based index, which
    names the row's file and trace.
    """

    rows: bytes
    first_index: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, batches: Sequence[Batch], digests: Sequence[list[bytes]]) -> EntriesPayload:
        first_index: dict[str, tuple[int, int]] = {}
        for batch_index, batch in enumerate(batches):
            for index, entry in enumerate(batch.entries):
                first_index.setdefault(entry.key, (batch_index, index))
        rows = [(batches[b].entries[i], digests[b][i], b + 1) for _, (b, i) in sorted(first_index.items())]
        return cls(_payload(rows), first_index)

    def stored(
        self, batches: Sequence[Batch], keys: list[str], outcomes: list[BatchOutcome]
    ) -> list[set[int]]:
        """Each batch's indexes of the entries the group newly stored (``keys``), counted into its outcome."""
        stored: list[set[int]] = [set() for _ in batches]
        for key in keys:
            batch_index, index = self.first_index[key]
            stored[batch_index].add(index)
        for batch, indexes, outcome in zip(batches, stored, outcomes, strict=True):
            for index in indexes:
                outcome.stored[batch.entries[index].entry_type] += 1
            outcome.duplicates = len(batch.entries) - len(indexes)
        return stored


@dataclass(frozen=True, slots=True)
class PreparedGroup:
    exact: list[ExactBatch]
    entries: EntriesPayload

    def lock_and_store_arguments(self, batches: Sequence[Batch], host: str) -> tuple[Any, ...]:
        blocks = [(number, block) for number, exact in enumerate(self.exact, 1) for block in exact.blocks]
        return (
            [b.path for b in batches],
            [b.root for b in batches],
            host,
            [b.start for b in batches],
            self.entries.rows,
            [b.trace_id for b in batches],
            [number for number, _ in blocks],
            [b.start for _, b in blocks],
            [b.end for _, b in blocks],
            [b.sha256 for _, b in blocks],
            [b.body for _, b in blocks],
            [b.codec for _, b in blocks],
        )


def prepare(batches: Sequence[Batch]) -> PreparedGroup:
    exact = [exact_batch(batch) for batch in batches]
    return PreparedGroup(exact, EntriesPayload.of(batches, [e.entry_digests for e in exact]))


def exchange_owners(folds: Sequence[FoldResult]) -> dict[tuple[str, str], int]:
    """The first batch to touch each exchange: a new one is counted as created there."""
    owners: dict[tuple[str, str], int] = {}
    for batch_index, folded in enumerate(folds):
        for x in folded.exchanges:
            owners.setdefault((x.session_id, x.prompt_uuid), batch_index)
    return owners


def finish_arguments(batches: Sequence[Batch], folds: Sequence[FoldResult], host: str) -> tuple[Any, ...]:
    """``FINISH_BATCH``'s parameters: each file's checkpoint, the group's exchanges and sessions as columns.

    A parent transcript and its subagents' share a session (and may share an exchange): one statement
    cannot upsert a row twice, so each is merged here first, by the same rules the upsert applies,
    which are associative: first prompt text, assistant parts in order, counts summed, the earliest
    start and the latest end.
    """
    owners = exchange_owners(folds)
    exchanges = _merged_exchanges(folds)
    sessions = _merged_sessions(folds)
    identities = [b.identity for b in batches]
    opened = [f.open_exchange or (None, None) for f in folds]
    return (
        [b.path for b in batches],
        [b.end for b in batches],
        [i.device for i in identities],
        [i.inode for i in identities],
        [i.head_sha256 for i in identities],
        [i.head_length for i in identities],
        [i.mark_sha256 for i in identities],
        [session_id for session_id, _ in opened],
        [prompt_uuid for _, prompt_uuid in opened],
        [x.session_id for x in exchanges],
        [x.prompt_uuid for x in exchanges],
        [x.prompt_text for x in exchanges],
        ["\n".join(x.assistant_parts) for x in exchanges],
        [x.entry_count for x in exchanges],
        [x.started_at for x in exchanges],
        [x.last_entry_at for x in exchanges],
        [x.last_entry_uuid for x in exchanges],
        [owners[(x.session_id, x.prompt_uuid)] + 1 for x in exchanges],
        [s.session_id for s in sessions],
        [s.first_entry_at for s in sessions],
        [s.last_entry_at for s in sessions],
        [s.entry_count for s in sessions],
        host,
    )


def _merged_exchanges(folds: Sequence[FoldResult]) -> list[ExchangeDelta]:
    if len(folds) == 1:
        return folds[0].exchanges
    merged: dict[tuple[str, str], ExchangeDelta] = {}
    for folded in folds:
        for x in folded.exchanges:
            key = (x.session_id, x.prompt_uuid)
            into = merged.get(key)
            if into is None:
                merged[key] = ExchangeDelta(
                    x.session_id,
                    x.prompt_uuid,
                    x.prompt_text,
                    list(x.assistant_parts),
                    x.entry_count,
                    x.started_at,
                    x.last_entry_at,
                    x.last_entry_uuid,
                )
                continue
            into.prompt_text = into.prompt_text or x.prompt_text
            into.assistant_parts += x.assistant_parts
            into.entry_count += x.entry_count
            into.started_at = into.started_at or x.started_at
            into.last_entry_at = _latest(into.last_entry_at, x.last_entry_at)
            into.last_entry_uuid = x.last_entry_uuid or into.last_entry_uuid
    # Sorted: concurrent transactions lock shared rows in the same order.
    return [merged[key] for key in sorted(merged)]


def _merged_sessions(folds: Sequence[FoldResult]) -> list[SessionDelta]:
    if len(folds) == 1:
        return folds[0].sessions
    merged: dict[str, SessionDelta] = {}
    for folded in folds:
        for s in folded.sessions:
            into = merged.get(s.session_id)
            if into is None:
                merged[s.session_id] = SessionDelta(
                    s.session_id, s.first_entry_at, s.last_entry_at, s.entry_count
                )
                continue
            into.entry_count += s.entry_count
            into.last_entry_at = _latest(into.last_entry_at, s.last_entry_at)
            if into.first_entry_at is None or (
                s.first_entry_at is not None and s.first_entry_at < into.first_entry_at
            ):
                into.first_entry_at = s.first_entry_at
    return [merged[key] for key in sorted(merged)]


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def _payload(entries: list[tuple[Entry, bytes, int]]) -> bytes:
    """The entries statement's rows as one JSON array, UTF-8: scalars encoded, lines pasted as they are
    (each is JSON already; ``orjson.Fragment`` inserts it without parsing it again)."""
    return orjson.dumps(
        [
            [
                e.key,
                e.entry_type,
                e.uuid,
                e.parent_uuid,
                e.session_id,
                None if e.timestamp is None else (e.timestamp - _EPOCH) // _MICROSECOND,
                e.offset,
                digest.hex(),
                e.line.decode() if e.jsonb is not None else None,
                number,
                orjson.Fragment(e.jsonb or e.line),
            ]
            for e, digest, number in entries
        ]
    )
