"""The built-in sink: PostgreSQL through asyncpg.

A batch is one transaction: lock the file's checkpoint row, insert the lines into ``mnemo.entries``
in one statement with ``ON CONFLICT DO NOTHING`` (the key decides "stored once"), record quarantined
lines, fold sessions and exchanges from what was newly stored, and move the checkpoint. A crash at any
instant leaves either all of it or none of it. Several small files' batches can share one transaction
(``commit_many``): the same statements, each taking the whole group. The asyncpg instrumentation traces every statement;
there is no COPY for it to miss.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio.to_thread
import asyncpg

from .._version import __version__
from ..errors import BatchRejected, CheckpointMoved, ConfigError, StoreError, StoreUnavailable
from ..host import default_host_id, valid_host_id
from ..model import BadLine, Batch, BatchOutcome, Checkpoint, FileIdentity
from . import _queries as q
from . import fleet
from ._exact import ExactBatch, entry_digests
from ._fold import fold
from ._group_rows import EntriesPayload, exchange_owners, finish_arguments, prepare
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
        return (await self.checkpoints([path])).get(path)

    async def checkpoints(self, paths: Sequence[str]) -> dict[str, Checkpoint]:
        async with self._connection() as conn:
            rows = await conn.fetch(q.SELECT_CHECKPOINTS, list(paths), self.host_id)
        return {row["path"]: _checkpoint(row) for row in rows}

    async def reset(self, path: str, root: str, *, expected_offset: int) -> None:
        async with self._connection() as conn:
            status = await conn.execute(q.RESET_FILE, path, expected_offset, self.host_id)
        if status == "UPDATE 0" and expected_offset != 0:
            raise CheckpointMoved(f"checkpoint moved before reset at {expected_offset}")

    async def commit(self, batch: Batch) -> BatchOutcome:
        return (await self.commit_many([batch]))[0]

    async def commit_many(self, batches: Sequence[Batch]) -> list[BatchOutcome]:
        """Commit several files' batches (one each) in one transaction: all of them or none.

        Lines repeated across the batches are stored once, first seen in batch order winning, as if
        the files were committed one after the other in that order.
        """
        if len({batch.path for batch in batches}) != len(batches):
            raise ValueError("a group commit takes one batch per file")
        # Digests, compression and the entries' payload need only the batches: built in a worker thread
        # (hashing and zstd release the GIL) before a connection is taken, not inside the transaction.
        group = await anyio.to_thread.run_sync(prepare, batches)
        outcomes = [BatchOutcome() for _ in batches]
        async with self._connection() as conn, conn.transaction():
            locked = await conn.fetchrow(
                q.LOCK_AND_STORE, *group.lock_and_store_arguments(batches, self.host_id)
            )
            assert locked is not None
            files = _locked_files(locked, batches)
            stored = group.entries.stored(batches, locked["stored_keys"], outcomes)
            await self._store_bad_lines(conn, batches, outcomes)
            folds = []
            for batch, exact, file, new, outcome in zip(
                batches, group.exact, files, stored, outcomes, strict=True
            ):
                for block in exact.blocks:
                    if block.body is None:
                        await store_in_pieces(conn, batch.path, file.file_id, file.generation, block)
                copies = await _store_copies(conn, batch, (file.file_id, file.generation), exact, new)
                outcome.key_conflicts = len(copies)
                # A session's own copy of a line first stored by another (a fork's history) is the
                # session's line: folded into its exchanges like a line stored for the first time.
                new_to_session = new | {i for i, other_session in copies.items() if other_session}
                folds.append(fold(batch.entries, new_to_session, file.open_exchange))
            created = await conn.fetch(q.FINISH_BATCH, *finish_arguments(batches, folds, self.host_id))
        owners = exchange_owners(folds)
        for session_id, prompt_uuid in created:
            outcomes[owners[(session_id, prompt_uuid)]].exchanges_created += 1
        return outcomes

    async def restore(self, batch: Batch) -> BatchOutcome:
        """Store lines a verification found missing behind the checkpoint, which stays where it is.

        The same statements as :meth:`commit` (same keys, same quarantine rows, the batch's trace id),
        so a line is still stored once. Sessions and exchanges are not folded again: they were
        derived when the file was first imported.
        """
        outcomes = [BatchOutcome()]
        entries = await anyio.to_thread.run_sync(lambda: EntriesPayload.of([batch], [entry_digests(batch)]))
        async with self._connection() as conn, conn.transaction():
            if batch.entries:
                rows = await conn.fetch(
                    q.INSERT_ENTRIES, entries.rows, [batch.path], [batch.trace_id], self.host_id
                )
                entries.stored([batch], [row["key"] for row in rows], outcomes)
            await self._store_bad_lines(conn, [batch], outcomes)
        return outcomes[0]

    async def _store_bad_lines(
        self, conn: Conn, batches: Sequence[Batch], outcomes: list[BatchOutcome]
    ) -> None:
        rows = [
            _quarantine_row(batch.path, bad, batch.trace_id, self.host_id)
            for batch in batches
            for bad in batch.bad_lines
        ]
        if not rows:
            return
        await conn.executemany(q.INSERT_QUARANTINE, rows)
        for batch, outcome in zip(batches, outcomes, strict=True):
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


@dataclass(frozen=True, slots=True)
class _LockedFile:
    file_id: int
    generation: int
    committed_offset: int
    open_exchange: tuple[str, str] | None


def _locked_files(row: asyncpg.Record, batches: Sequence[Batch]) -> list[_LockedFile]:
    """Each batch's file as ``LOCK_AND_STORE`` locked it, in batch order; a moved checkpoint stops here."""
    by_path = {
        path: _LockedFile(
            file_id, generation, offset, (session_id, prompt_uuid) if session_id and prompt_uuid else None
        )
        for path, offset, session_id, prompt_uuid, file_id, generation in zip(
            row["paths"],
            row["committed_offsets"],
            row["open_session_ids"],
            row["open_prompt_uuids"],
            row["file_ids"],
            row["generations"],
            strict=True,
        )
    }
    files = [by_path[batch.path] for batch in batches]
    for batch, file in zip(batches, files, strict=True):
        if file.committed_offset != batch.start:
            raise CheckpointMoved(f"checkpoint is {file.committed_offset}, batch starts at {batch.start}")
    return files


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
