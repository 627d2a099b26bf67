"""The built-in sink: PostgreSQL through asyncpg.

A batch is one transaction: lock the file's checkpoint row, insert the lines into ``mnemo.entries``
in one statement with ``ON CONFLICT DO NOTHING`` (the key decides "stored once"), record quarantined
lines, fold sessions and exchanges from what was newly stored, and move the checkpoint. A crash at any
instant leaves either all of it or none of it. The asyncpg instrumentation traces every statement;
there is no COPY for it to miss.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import anyio.to_thread
import asyncpg
import orjson

from .._version import __version__
from ..errors import BatchRejected, CheckpointMoved, ConfigError, StoreError, StoreUnavailable
from ..host import default_host_id, valid_host_id
from ..model import BadLine, Batch, BatchOutcome, Checkpoint, Entry, FileIdentity
from . import _queries as q
from . import fleet
from ._exact import ExactBatch, entry_digests, exact_batch
from ._fold import FoldResult, fold
from ._oversize import store_in_pieces
from .migrate import apply_migrations

__all__ = ("PostgresSink", "translate_errors")

logger = logging.getLogger(__name__)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ConnectionFailureError,
)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    """Turn driver and socket errors into ours, so callers catch only ``StoreError``."""
    try:
        yield
    except StoreError:
        raise
    except asyncpg.exceptions.InternalClientError as exc:
        # e.g. a connection left mid-protocol by a server that was killed: throw it away and retry
        raise StoreUnavailable(f"database connection broken: {type(exc).__name__}") from exc
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise StoreUnavailable(f"database refused the credentials: {type(exc).__name__}") from exc
    except (asyncpg.DataError, asyncpg.exceptions.ProgramLimitExceededError) as exc:
        raise BatchRejected(f"database rejected the data: {exc.sqlstate}") from exc
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreError(f"database error {exc.sqlstate}: {type(exc).__name__}") from exc


class PostgresSink:
    """Sink writing to PostgreSQL. Create with :meth:`open`; close with :meth:`aclose`.

    :param host_id: the machine the transcripts are on: checkpoints are keyed by (host, path) and
        every row names it. Default: this machine's stable id (:func:`mnemo_otel.host.default_host_id`).
    """

    def __init__(self, pool: asyncpg.Pool, *, host_id: str | None = None) -> None:
        self._pool = pool
        self.host_id = valid_host_id(host_id) if host_id is not None else default_host_id()

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        password: str | None = None,
        host_id: str | None = None,
        migrate: bool = True,
        enroll: bool = True,
        connect_timeout: float = 10.0,
        pool_size: int = 2,
    ) -> PostgresSink:
        """Connect, migrate and enrol this host in the fleet (the first importer after the upgrade
        claims the rows written before hosts were recorded). A malformed URL is a
        :class:`ConfigError`, not a retry.

        ``password``, when given, overrides the URL's: any printable password works unencoded.
        """
        try:
            async with translate_errors():
                pool = await asyncpg.create_pool(
                    dsn,
                    password=password,
                    min_size=1,
                    max_size=pool_size,
                    timeout=connect_timeout,
                    reset=_keep_session,
                )
        except (ValueError, asyncpg.ClientConfigurationError) as exc:
            raise ConfigError(f"invalid database URL: {type(exc).__name__}") from exc
        sink = cls(pool, host_id=host_id)
        try:
            if migrate:
                await sink.migrate()
            if enroll:
                await sink.enroll()
        except BaseException:
            await sink.aclose()
            raise
        return sink

    async def aclose(self) -> None:
        try:
            await self._pool.close()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # a pool whose server vanished cannot close cleanly; nothing is lost
            self._pool.terminate()

    def connection(self) -> AbstractAsyncContextManager[Conn]:
        """A pooled connection, for maintenance commands."""
        return self._pool.acquire()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """Acquire with our errors; after a lost database, no pooled connection is trusted again."""
        try:
            async with translate_errors(), self._pool.acquire() as conn:
                yield conn
        except StoreUnavailable:
            await self._pool.expire_connections()
            raise

    async def migrate(self) -> None:
        async with self._connection() as conn:
            await apply_migrations(conn)

    async def enroll(self) -> dict[str, int]:
        async with self._connection() as conn:
            return await fleet.enroll(conn, self.host_id, __version__)

    async def touch_host(self) -> list[str]:
        """Refresh this host's membership; returns the fleet's members (for the membership gauge)."""
        async with self._connection() as conn:
            return await fleet.touch(conn, self.host_id, __version__)

    async def checkpoint(self, path: str) -> Checkpoint | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(q.SELECT_CHECKPOINT, path, self.host_id)
        return None if row is None else _checkpoint(row)

    async def reset(self, path: str, root: str, *, expected_offset: int) -> None:
        async with self._connection() as conn:
            status = await conn.execute(q.RESET_FILE, path, expected_offset, self.host_id)
        if status == "UPDATE 0" and expected_offset != 0:
            raise CheckpointMoved(f"checkpoint moved before reset at {expected_offset}")

    async def commit(self, batch: Batch) -> BatchOutcome:
        # Digests, compression and the entries' payload need only the batch: built in a worker thread
        # (hashing and zstd release the GIL) before a connection is taken, not inside the transaction.
        exact, entries = await anyio.to_thread.run_sync(_prepare, batch)
        blocks = exact.blocks
        async with self._connection() as conn, conn.transaction():
            locked = await conn.fetchrow(
                q.LOCK_AND_STORE,
                batch.path,
                batch.root,
                self.host_id,
                batch.start,
                entries.rows,
                batch.trace_id,
                [b.start for b in blocks],
                [b.end for b in blocks],
                [b.sha256 for b in blocks],
                [b.body for b in blocks],
                [b.codec for b in blocks],
            )
            assert locked is not None
            if locked["committed_offset"] != batch.start:
                raise CheckpointMoved(
                    f"checkpoint is {locked['committed_offset']}, batch starts at {batch.start}"
                )
            file = (locked["file_id"], locked["generation"])
            outcome = BatchOutcome()
            stored = _count_stored(batch, entries, locked["stored_keys"], outcome)
            await self._store_bad_lines(conn, batch, outcome)
            for block in blocks:
                if block.body is None:
                    await store_in_pieces(conn, batch.path, *file, block)
            copies = await _store_copies(conn, batch, file, exact, stored)
            outcome.key_conflicts = len(copies)
            # A session's own copy of a line first stored by another (a fork's history) is the
            # session's line: folded into its exchanges like a line stored for the first time.
            new_to_session = stored | {i for i, other_session in copies.items() if other_session}
            folded = fold(batch.entries, new_to_session, _open_exchange(locked))
            outcome.exchanges_created = await conn.fetchval(
                q.FINISH_BATCH, *_finish_arguments(batch, folded), self.host_id
            )
        return outcome

    async def restore(self, batch: Batch) -> BatchOutcome:
        """Store lines a verification found missing behind the checkpoint, which stays where it is.

        The same statements as :meth:`commit` (same keys, same quarantine rows, the batch's trace id),
        so a line is still stored once. Sessions and exchanges are not folded again: they were
        derived when the file was first imported.
        """
        outcome = BatchOutcome()
        entries = await anyio.to_thread.run_sync(lambda: _EntriesPayload.of(batch, entry_digests(batch)))
        async with self._connection() as conn, conn.transaction():
            await self._store_entries(conn, batch, outcome, entries)
            await self._store_bad_lines(conn, batch, outcome)
        return outcome

    async def _store_entries(
        self, conn: Conn, batch: Batch, outcome: BatchOutcome, payload: _EntriesPayload
    ) -> set[int]:
        """One INSERT of the whole batch; returns the indexes of the entries it newly stored."""
        if not batch.entries:
            return set()
        rows = await conn.fetch(q.INSERT_ENTRIES, payload.rows, batch.path, batch.trace_id, self.host_id)
        return _count_stored(batch, payload, [row["key"] for row in rows], outcome)

    async def _store_bad_lines(self, conn: Conn, batch: Batch, outcome: BatchOutcome) -> None:
        if not batch.bad_lines:
            return
        await conn.executemany(
            q.INSERT_QUARANTINE,
            [_quarantine_row(batch.path, b, batch.trace_id, self.host_id) for b in batch.bad_lines],
        )
        for bad in batch.bad_lines:
            outcome.quarantined[bad.kind.value] += 1

    async def report_tail(self, path: str, tail: BadLine, trace_id: str | None) -> bool:
        async with self._connection() as conn:
            status = await conn.execute(
                q.INSERT_QUARANTINE, *_quarantine_row(path, tail, trace_id, self.host_id)
            )
        return status != "INSERT 0 0"

    async def store_documents(self, documents: list[tuple[str, bytes, bytes]]) -> None:
        """Keep each (path, sha256, bytes) version of a side document exactly, once."""
        async with self._connection() as conn:
            await conn.execute(
                q.UPSERT_DOCUMENTS,
                self.host_id,
                [path for path, _, _ in documents],
                [digest for _, digest, _ in documents],
                [body for _, _, body in documents],
            )

    async def mark_missing(self, paths: list[str]) -> None:
        async with self._connection() as conn:
            await conn.execute(q.MARK_MISSING, paths, self.host_id)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class _EntriesPayload:
    """``INSERT_ENTRIES``'s rows, one per distinct key (first seen wins), and each key's entry index.

    Each row carries its entry's sha256, stored with a new key so that a key coming back with other
    bytes can be told apart (``_store_copies``).
    """

    rows: bytes
    first_index: dict[str, int]

    @classmethod
    def of(cls, batch: Batch, digests: list[bytes]) -> _EntriesPayload:
        entries = batch.entries
        first_index: dict[str, int] = {}
        for index, entry in enumerate(entries):
            first_index.setdefault(entry.key, index)
        ordered = map(first_index.__getitem__, sorted(first_index))
        return cls(_entries_payload([(entries[i], digests[i]) for i in ordered]), first_index)


def _prepare(batch: Batch) -> tuple[ExactBatch, _EntriesPayload]:
    exact = exact_batch(batch)
    return exact, _EntriesPayload.of(batch, exact.entry_digests)


def _entries_payload(entries: list[tuple[Entry, bytes]]) -> bytes:
    """The ``INSERT_ENTRIES`` rows as one JSON array, UTF-8: scalars encoded, lines pasted as they are."""
    rows = [
        orjson.dumps(
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
            ]
        )[:-1]
        + b","
        + (e.jsonb or e.line)
        + b"]"
        for e, digest in entries
    ]
    return b"[" + b",".join(rows) + b"]"


async def _keep_session(conn: Conn) -> None:
    """Pool release without the reset query: we keep no session state (locks are per transaction),
    and asyncpg still rolls back any open transaction first. Saves a round trip per operation."""


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    identity = None
    if row["inode"] is not None:
        identity = FileIdentity(
            row["device"], row["inode"], row["head_sha256"] or "", row["head_length"], row["mark_sha256"]
        )
    return Checkpoint(path=row["path"], offset=row["committed_offset"], identity=identity)


def _open_exchange(row: asyncpg.Record) -> tuple[str, str] | None:
    session_id, prompt_uuid = row["open_session_id"], row["open_prompt_uuid"]
    return (session_id, prompt_uuid) if session_id and prompt_uuid else None


def _quarantine_row(path: str, bad: BadLine, trace_id: str | None, host_id: str) -> tuple[Any, ...]:
    return (path, bad.offset, bad.kind.value, bad.detail, bad.raw, bad.length, bad.sha256, trace_id, host_id)


async def _store_copies(
    conn: Conn, batch: Batch, file: tuple[int, int], exact: ExactBatch, stored: set[int]
) -> dict[int, bool]:
    """Keep the lines whose key was stored before with other bytes (each distinct copy once):
    ``{entry index: whether its session differs from the first copy's}`` for the new ones."""
    others = [i for i in range(len(batch.entries)) if i not in stored]
    if not others:
        return {}
    entries = batch.entries
    rows = await conn.fetch(
        q.INSERT_LINE_COPIES,
        *file,
        [entries[i].offset for i in others],
        [entries[i].key for i in others],
        [entries[i].session_id for i in others],
        [exact.entry_bodies[i] for i in others],
        [exact.entry_digests[i] for i in others],
    )
    index_at = {entries[i].offset: i for i in others}
    return {index_at[row["line_offset"]]: row["other_session"] for row in rows}


def _count_stored(batch: Batch, payload: _EntriesPayload, keys: list[str], outcome: BatchOutcome) -> set[int]:
    """The indexes of the entries a batch newly stored (``keys``), counted into ``outcome``."""
    stored = {payload.first_index[key] for key in keys}
    for index in stored:
        outcome.stored[batch.entries[index].entry_type] += 1
    outcome.duplicates = len(batch.entries) - len(stored)
    return stored


def _finish_arguments(batch: Batch, folded: FoldResult) -> tuple[Any, ...]:
    """``FINISH_BATCH``'s parameters but the host: checkpoint, exchanges and sessions as columns."""
    identity = batch.identity
    session_id, prompt_uuid = folded.open_exchange or (None, None)
    exchanges, sessions = folded.exchanges, folded.sessions
    return (
        batch.path,
        batch.end,
        identity.device,
        identity.inode,
        identity.head_sha256,
        identity.head_length,
        identity.mark_sha256,
        session_id,
        prompt_uuid,
        [x.session_id for x in exchanges],
        [x.prompt_uuid for x in exchanges],
        [x.prompt_text for x in exchanges],
        ["\n".join(x.assistant_parts) for x in exchanges],
        [x.entry_count for x in exchanges],
        [x.started_at for x in exchanges],
        [x.last_entry_at for x in exchanges],
        [x.last_entry_uuid for x in exchanges],
        [x.session_id for x in sessions],
        [x.first_entry_at for x in sessions],
        [x.last_entry_at for x in sessions],
        [x.entry_count for x in sessions],
    )
