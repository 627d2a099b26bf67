"""The daemon's own zero-loss checks, on real processes: the periodic scrub repairs rows deleted behind
its back and says so in telemetry; lines seen on disk and deleted, cut off or replaced before their
commit (the database down, or slow) are counted to the byte, recorded, reported by ``health``, and
still reported after a restart; the retention guard warns in ``health``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
import pytest

from mnemo_otel.telemetry import names
from testkit import free_port, http_get, wait_for
from testkit.importing import clean_env, entry
from testkit.otlp_sink import OtlpSink, running_sink
from testkit.postgres_server import PostgresServer
from testkit.sql import fetch, scalar_or

from ..telemetry.daemon import daemon_env, metric_points, running_daemon


def _last(sink: OtlpSink, metric: names.MetricName) -> float | None:
    points = metric_points(sink, metric.name)
    if not points:
        return None
    point = points[-1][1]
    return float(point.as_int if point.HasField("as_int") else point.as_double)


@pytest.fixture
def otlp() -> Iterator[OtlpSink]:
    with running_sink() as sink:
        yield sink


BEFORE = entry("a") + entry("b")  # imported before anything goes wrong
APPENDED = entry("c") + entry("d") + entry("e")  # seen on disk, never committed
REPLACEMENT = entry("x") + entry("y") + entry("z", text="a longer line than the ones it replaces")


@dataclass(frozen=True)
class _Change:
    """What happens to the file once the daemon has seen ``APPENDED`` and before it could commit it."""

    name: str
    reason: str
    apply: Callable[[Path], object]
    lost: int
    stored: frozenset[str]  # the keys in the archive once the daemon has caught up


def _cut(size: int) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        with path.open("r+b") as f:
            f.truncate(size)

    return apply


def _replaced_by(content: bytes) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        staged = path.with_name("replacement.tmp")
        staged.write_bytes(content)
        staged.replace(path)  # a new inode: the way editors and sync tools rewrite a file

    return apply


DELETED = _Change("deleted", "deleted", Path.unlink, len(APPENDED), frozenset("ab"))
CHANGES = [
    _Change(
        "cut_in_the_appended_lines",
        "truncated",
        _cut(len(BEFORE + entry("c"))),
        len(entry("d") + entry("e")),
        frozenset("abc"),
    ),
    # The importer re-reads a file cut below its checkpoint from 0: the committed line b is not lost.
    _Change("cut_below_the_checkpoint", "truncated", _cut(len(entry("a"))), len(APPENDED), frozenset("ab")),
    _Change("replaced", "replaced", _replaced_by(REPLACEMENT), len(APPENDED), frozenset("abxyz")),
]


def test_scrub__finds_rows_deleted_behind_its_back_exports_the_count_and_repairs_them(
    database_url: str, transcripts: Path, tmp_path: Path, otlp: OtlpSink
) -> None:
    keys = [f"k{i}" for i in range(40)]
    (transcripts / "s.jsonl").write_bytes(b"".join(entry(k) for k in keys) + b"{not json\n")
    env = daemon_env(database_url, otlp.url, MNEMO_VERIFY__INTERVAL_SECONDS="1")
    with running_daemon(transcripts, env, tmp_path / "daemon.log") as proc:
        wait_for(
            lambda: scalar_or(-1, database_url, "SELECT count(*) FROM mnemo.entries") == 40,
            timeout=60,
            what="import",
        )
        wait_for(lambda: _last(otlp, names.VERIFY_MISSING) == 0, timeout=60, what="a clean scrub exported")
        first_run = _last(otlp, names.VERIFY_LAST_RUN)
        assert first_run is not None and _last(otlp, names.VERIFY_INTERVAL) == 1

        gone = {
            r["key"]
            for r in fetch(
                database_url, "DELETE FROM mnemo.entries WHERE key IN ('k3','k17','k30') RETURNING key"
            )
        }
        fetch(database_url, "DELETE FROM mnemo.quarantine")
        wait_for(
            lambda: any(p.as_int == 4 for _, p in metric_points(otlp, names.VERIFY_MISSING.name)),
            timeout=60,
            what="the scrub to export 4 missing lines",
        )
        wait_for(
            lambda: scalar_or(-1, database_url, "SELECT count(*) FROM mnemo.entries") == 40,
            timeout=60,
            what="repair",
        )
        assert scalar_or(-1, database_url, "SELECT count(*) FROM mnemo.quarantine") == 1
        wait_for(
            lambda: (_last(otlp, names.VERIFY_REPAIRED) or 0) >= 4, timeout=30, what="the repaired counter"
        )
        wait_for(
            lambda: _last(otlp, names.VERIFY_MISSING) == 0, timeout=60, what="the next scrub to be clean"
        )
        assert (_last(otlp, names.VERIFY_LAST_RUN) or 0) > first_run

        # the repaired rows carry the trace id of the scrub that wrote them
        scrubs = {s.trace_id for s in otlp.wait_for_spans(lambda s: s.name == "mnemo.verify.scrub")}
        traces = {
            r["import_trace_id"]
            for r in fetch(
                database_url,
                "SELECT import_trace_id FROM mnemo.entries WHERE key = ANY($1::text[])",
                sorted(gone),
            )
        }
        assert len(traces) == 1 and traces <= scrubs
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    runs = fetch(database_url, "SELECT missing, repaired FROM mnemo.verify_runs ORDER BY id")
    assert (4, 4) in [(r["missing"], r["repaired"]) for r in runs]


def test_source_lost__lines_deleted_while_the_database_is_down_are_counted_recorded_and_kept(
    transcripts: Path, tmp_path: Path, otlp: OtlpSink
) -> None:
    server = PostgresServer()
    server.start()
    try:
        _lost_while_down(server, transcripts, tmp_path, otlp)
    finally:
        server.destroy()


def _lost_while_down(server: PostgresServer, transcripts: Path, tmp_path: Path, otlp: OtlpSink) -> None:
    dsn = server.dsn()
    path = transcripts / "s.jsonl"
    path.write_bytes(BEFORE)
    port = free_port()
    claude = tmp_path / "claude"
    claude.mkdir()
    (claude / "settings.json").write_text(json.dumps({"cleanupPeriodDays": 3}))
    env = _loss_env(dsn, otlp.url, port, tmp_path, CLAUDE_CONFIG_DIR=str(claude))
    with running_daemon(transcripts, env, tmp_path / "first.log") as proc:
        # the unterminated tail is not a loss
        _change_appended_while_down(server, port, path, Path.unlink, tail=b'{"type":"user","uuid":"partial"')
        server.start()
        wait_for(lambda: _last(otlp, names.SOURCE_LOST) == len(APPENDED), timeout=60, what="source.lost")
        wait_for(
            lambda: scalar_or(-1, dsn, "SELECT count(*) FROM mnemo.source_losses") == 1,
            timeout=60,
            what="the record",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    row = fetch(dsn, "SELECT source_path, reason, lost_bytes, host_id FROM mnemo.source_losses")[0]
    assert (row["source_path"], row["reason"], row["lost_bytes"]) == (str(path), "deleted", len(APPENDED))

    with otlp._lock:
        otlp.metrics.clear()  # what follows comes from the restarted daemon
    with running_daemon(transcripts, env, tmp_path / "second.log") as proc:
        health = wait_for(
            lambda: (h := _health(port))["source_lost_bytes"] == len(APPENDED) and h,
            timeout=60,
            what="health to report the loss after the restart (loaded from the database)",
        )
        assert health["status"] == "degraded"
        assert any("vanished from disk" in r for r in health["reasons"])
        assert any("after 3 day(s)" in r for r in health["reasons"])  # the retention guard
        wait_for(lambda: _last(otlp, names.SOURCE_RETENTION) == 3 * 86400, timeout=30, what="retention")
        wait_for(lambda: _last(otlp, names.SOURCE_LOST) == len(APPENDED), timeout=30, what="lost, restarted")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


@pytest.mark.parametrize("change", [DELETED, *CHANGES], ids=lambda c: c.name)
def test_source_lost__a_loss_noticed_while_the_database_is_down_survives_a_restart_and_is_recorded_once(
    change: _Change, transcripts: Path, tmp_path: Path
) -> None:
    server = PostgresServer()
    server.start()
    try:
        _lost_then_restarted_while_down(server, change, transcripts, tmp_path)
    finally:
        server.destroy()


def _lost_then_restarted_while_down(
    server: PostgresServer, change: _Change, transcripts: Path, tmp_path: Path
) -> None:
    dsn, port, data = server.dsn(), free_port(), tmp_path / "data"
    path = transcripts / "s.jsonl"
    path.write_bytes(BEFORE)
    env = _loss_env(dsn, None, port, tmp_path, OTEL_SDK_DISABLED="true")
    with running_daemon(transcripts, env, tmp_path / "first.log") as proc:
        _change_appended_while_down(server, port, path, change.apply)
        wait_for(lambda: _health(port)["source_lost_bytes"] == change.lost, timeout=30, what="counted")
        proc.send_signal(signal.SIGTERM)  # the database is still down: the event is only in the journal
        assert proc.wait(timeout=60) == 0
    (journal,) = data.glob("pending-losses-*.jsonl")
    journaled = journal.read_bytes()
    assert len(journaled.splitlines()) == 1

    server.start()
    for run in ("second", "replayed"):  # the replay: a crash after recording, before the journal shrank
        with running_daemon(transcripts, env, tmp_path / f"{run}.log") as proc:
            wait_for(
                lambda: scalar_or(0, dsn, "SELECT count(*) FROM mnemo.source_losses") == 1,
                timeout=60,
                what="the record",
            )
            wait_for(lambda: not journal.exists(), timeout=30, what="the journal emptied")
            wait_for(lambda: _caught_up(dsn, path), timeout=60, what="what is on disk imported")
            assert _health(port)["source_lost_bytes"] == change.lost
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        rows = fetch(dsn, "SELECT source_path, reason, lost_bytes FROM mnemo.source_losses")
        assert [tuple(r.values()) for r in rows] == [(str(path), change.reason, change.lost)]
        assert _stored(dsn) == change.stored
        journal.write_bytes(journaled)


@dataclass(frozen=True)
class _Archive:
    """A database, and how to keep the daemon from committing: the database down, or every checkpoint
    read waiting on a lock (a database that answers, slowly)."""

    dsn: str
    uncommittable: Callable[[], AbstractContextManager[None]]


@pytest.fixture(params=["database_down", "commit_held"])
def archive(request: pytest.FixtureRequest) -> Iterator[_Archive]:
    if request.param == "commit_held":
        dsn: str = request.getfixturevalue("database_url")
        yield _Archive(dsn, lambda: _checkpoints_locked(dsn))
        return
    server = PostgresServer()
    server.start()
    try:
        yield _Archive(server.dsn(), lambda: _stopped(server))
    finally:
        server.destroy()


@contextmanager
def _stopped(server: PostgresServer) -> Iterator[None]:
    server.stop()
    try:
        yield
    finally:
        server.start()


@contextmanager
def _checkpoints_locked(dsn: str) -> Iterator[None]:
    """Every checkpoint read waits inside: the daemon sees the file grow but cannot import it."""
    locked, release = threading.Event(), threading.Event()

    async def hold() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE mnemo.files IN ACCESS EXCLUSIVE MODE")
                locked.set()
                await anyio.to_thread.run_sync(release.wait)
        finally:
            await conn.close()

    holder = threading.Thread(target=anyio.run, args=(hold,))
    holder.start()
    try:
        assert locked.wait(timeout=30), "the lock on mnemo.files was not taken"
        yield
    finally:
        release.set()
        holder.join(timeout=30)


@pytest.mark.parametrize("change", [DELETED, *CHANGES], ids=lambda c: c.name)
def test_source_lost__lines_deleted_cut_or_replaced_before_their_commit_are_counted_recorded_and_reported(
    archive: _Archive, change: _Change, transcripts: Path, tmp_path: Path, otlp: OtlpSink
) -> None:
    path = transcripts / "s.jsonl"
    with _changed_before_commit(archive, change.apply, path, tmp_path, otlp) as port:
        wait_for(
            lambda: scalar_or(0, archive.dsn, "SELECT count(*) FROM mnemo.source_losses") > 0,
            timeout=60,
            what="a record",
        )
        wait_for(lambda: (_last(otlp, names.SOURCE_LOST) or 0) > 0, timeout=30, what="source.lost exported")
        health = _health_command(port)
    rows = fetch(archive.dsn, "SELECT source_path, reason, lost_bytes FROM mnemo.source_losses")
    assert [tuple(r.values()) for r in rows] == [(str(path), change.reason, change.lost)]
    assert _last(otlp, names.SOURCE_LOST) == change.lost
    assert (health["status"], health["source_lost_bytes"]) == ("degraded", change.lost)
    assert any(f"{change.lost} bytes of transcript lines vanished" in r for r in health["reasons"])
    assert _stored(archive.dsn) == change.stored


def test_source_lost__a_replacement_that_still_holds_the_lines_seen_loses_nothing(
    archive: _Archive, transcripts: Path, tmp_path: Path, otlp: OtlpSink
) -> None:
    """An atomic rewrite (a sync tool, an editor) keeps what was seen: no loss, no alert."""
    path = transcripts / "s.jsonl"
    copy = BEFORE + APPENDED + entry("f")
    with _changed_before_commit(archive, _replaced_by(copy), path, tmp_path, otlp) as port:
        exported = len(metric_points(otlp, names.SOURCE_LOST.name))
        wait_for(
            lambda: len(metric_points(otlp, names.SOURCE_LOST.name)) > exported,
            timeout=30,
            what="source.lost exported after the catch-up",
        )
        health = _health_command(port)
    assert fetch(archive.dsn, "SELECT * FROM mnemo.source_losses") == []
    assert _last(otlp, names.SOURCE_LOST) == 0
    assert (health["status"], health["source_lost_bytes"]) == ("healthy", 0)
    assert _stored(archive.dsn) == set("abcdef")


@contextmanager
def _changed_before_commit(
    archive: _Archive, change: Callable[[Path], object], path: Path, tmp_path: Path, otlp: OtlpSink
) -> Iterator[int]:
    """A daemon that imported ``BEFORE``, saw ``APPENDED`` and could not commit it before ``change``;
    inside, it has imported what is on disk now (yields its health port); stopped cleanly after."""
    dsn, port = archive.dsn, free_port()
    path.write_bytes(BEFORE)
    env = _loss_env(dsn, otlp.url, port, tmp_path)
    with running_daemon(path.parent, env, tmp_path / "daemon.log") as proc:
        _wait_imported_before(dsn)
        with archive.uncommittable():
            _append_seen_then(change, port, path, APPENDED, len(APPENDED))
        wait_for(lambda: _caught_up(dsn, path), timeout=60, what="what is on disk imported")
        yield port
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def _stored(dsn: str) -> set[str]:
    return {r["key"] for r in fetch(dsn, "SELECT key FROM mnemo.entries")}


def _caught_up(dsn: str, path: Path) -> bool:
    """What is left of the file, or the file that replaced it, is imported to its end (a deleted file
    keeps its checkpoint)."""
    size = path.stat().st_size if path.exists() else len(BEFORE)
    return scalar_or(-1, dsn, "SELECT committed_offset FROM mnemo.files WHERE path = $1", str(path)) == size


def _health_command(port: int) -> dict[str, Any]:
    """What ``mnemo-otel health`` prints, as an operator or a container healthcheck sees it."""
    result = subprocess.run(
        [sys.executable, "-m", "mnemo_otel", "health"],
        capture_output=True,
        text=True,
        env=clean_env(MNEMO_HEALTH__PORT=str(port)),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _loss_env(dsn: str, otlp_url: str | None, port: int, tmp_path: Path, **extra: str) -> dict[str, str]:
    return daemon_env(
        dsn,
        otlp_url,
        MNEMO_HEALTH__PORT=str(port),
        MNEMO_RETRY__INITIAL_SECONDS="0.1",
        MNEMO_RETRY__MAX_SECONDS="0.5",
        MNEMO_IMPORTS__RESCAN_INTERVAL_SECONDS="1",
        MNEMO_DATA_DIR=str(tmp_path / "data"),
        **extra,
    )


def _change_appended_while_down(
    server: PostgresServer, port: int, path: Path, change: Callable[[Path], object], tail: bytes = b""
) -> None:
    """The daemon has imported ``BEFORE``: stop the database, append ``APPENDED`` (and ``tail``), wait
    until the daemon has seen them, ``change`` the file."""
    _wait_imported_before(server.dsn())
    server.stop()
    _append_seen_then(change, port, path, APPENDED + tail, len(APPENDED))


def _wait_imported_before(dsn: str) -> None:
    wait_for(lambda: scalar_or(-1, dsn, "SELECT count(*) FROM mnemo.entries") == 2, timeout=60, what="import")


def _append_seen_then(
    change: Callable[[Path], object], port: int, path: Path, data: bytes, seen: int
) -> None:
    """Append ``data``, wait until the daemon has seen ``seen`` bytes of it waiting, then ``change`` the file:
    the daemon cannot commit meanwhile, so those bytes are seen on disk and never committed."""
    with path.open("ab") as f:
        f.write(data)
    wait_for(lambda: _health(port)["backlog_bytes"] >= seen, timeout=30, what="the append seen")
    change(path)


def _health(port: int) -> dict[str, Any]:
    _, body = http_get(f"http://127.0.0.1:{port}/healthz")
    report: dict[str, Any] = json.loads(body)
    return report


def test_verify_command__reports_recorded_losses(database_url: str, transcripts: Path) -> None:
    fetch(
        database_url,
        "INSERT INTO mnemo.source_losses (host_id, source_path, reason, lost_bytes, detected_at)"
        " VALUES ('h', '/x.jsonl', 'deleted', 123, now())",
    )
    (transcripts / "s.jsonl").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "mnemo_otel", "verify", "--json", str(transcripts)],
        capture_output=True,
        text=True,
        env=clean_env(MNEMO_DATABASE_URL=database_url, OTEL_SDK_DISABLED="true"),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["source_lost"] == {"events": 1, "bytes": 123}
