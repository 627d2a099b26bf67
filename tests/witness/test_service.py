"""``mnemo-otel witness`` as a process on a real PostgreSQL: answers, idempotence, reconciliation,
``witness status``, and the database going away under it (503, then nothing lost)."""

from __future__ import annotations

import gzip
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mnemo_otel.telemetry import names
from testkit import wait_for, witnessing
from testkit.claude_events import claude_event, export
from testkit.importing import entry
from testkit.otlp_sink import running_sink
from testkit.postgres_server import PostgresServer
from testkit.sql import scalar
from testkit.witnessing import witness_env, witness_status
from tests.telemetry.daemon import metric_units

CLI = [sys.executable, "-m", "mnemo_otel"]


GRACE_NONE = {"MNEMO_WITNESS__GRACE_SECONDS": "0"}  # missing at once: a test waits on nothing


def _env(dsn: str, port: int) -> dict[str, str]:
    return witness_env(dsn, port, **GRACE_NONE)


@contextmanager
def running_witness(dsn: str, log: Path, **extra: str) -> Iterator[str]:
    with witnessing.running_witness(dsn, log, env={**GRACE_NONE, **extra}) as witness:
        yield witness.url


def post(
    url: str, body: bytes, content_type: str = "application/x-protobuf", **headers: str
) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        f"{url}/v1/logs", data=body, method="POST", headers={"Content-Type": content_type, **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _import(dsn: str, transcripts: Path) -> None:
    imported = subprocess.run(
        [*CLI, "import", str(transcripts)], env=_env(dsn, 0), capture_output=True, timeout=120, check=False
    )
    assert imported.returncode == 0, imported.stderr


def status(dsn: str, *args: str) -> tuple[int, dict[str, Any]]:
    return witness_status(dsn, *args, **GRACE_NONE)


def test_an_export_is_recorded_once_however_often_it_is_sent(database_url: str, tmp_path: Path) -> None:
    body = export(
        [
            claude_event("user_prompt", "S", message_uuid="u1"),
            claude_event("assistant_response", "S", message_uuid="a1", query_source="sdk"),
        ]
    ).SerializeToString()
    with running_witness(database_url, tmp_path / "w.log") as url:
        assert post(url, body)[0] == 200
        assert post(url, gzip.compress(body), **{"Content-Encoding": "gzip"})[0] == 200  # the collector's way
    assert scalar(database_url, "SELECT count(*) FROM mnemo.witnessed") == 2
    assert scalar(database_url, "SELECT host FROM mnemo.witness_hosts") == "laptop"
    assert "u1" not in (tmp_path / "w.log").read_text()  # ids are not logged either


def test_bad_input_gets_a_clear_answer_and_the_service_goes_on(database_url: str, tmp_path: Path) -> None:
    good = export([claude_event("user_prompt", "S", message_uuid="u1")]).SerializeToString()
    with running_witness(database_url, tmp_path / "w.log", MNEMO_WITNESS__MAX_BODY_BYTES="2000") as url:
        assert post(url, b"\x0a\xff\xff\xff garbage")[0] == 400
        assert post(url, b"{not json", "application/json")[0] == 400
        assert post(url, good, "text/plain")[0] == 415
        assert post(url, b"x" * 5000)[0] == 413
        assert (
            post(url, gzip.compress(b"\x00" * 100_000), **{"Content-Encoding": "gzip"})[0] == 413
        )  # a zip bomb
        assert post(url, good)[0] == 200
    assert scalar(database_url, "SELECT count(*) FROM mnemo.witnessed") == 1


def test_with_a_token_only_its_bearer_is_heard(database_url: str, tmp_path: Path) -> None:
    good = export([claude_event("user_prompt", "S", message_uuid="u1")]).SerializeToString()
    with running_witness(database_url, tmp_path / "w.log", MNEMO_WITNESS__TOKEN="s3cret") as url:
        assert post(url, good)[0] == 401
        assert post(url, good, Authorization="Bearer wrong")[0] == 401
        assert post(url, good, Authorization="Bearer s3cret")[0] == 200


def test_reconciliation_and_status__a_line_witnessed_but_not_archived_is_named_until_it_arrives(
    database_url: str, tmp_path: Path, transcripts: Path
) -> None:
    body = export(
        [
            claude_event("user_prompt", "S", message_uuid="u1"),
            claude_event("user_prompt", "S", sequence=1, message_uuid="u2"),
        ]
    ).SerializeToString()
    with running_witness(database_url, tmp_path / "w.log") as url:
        assert post(url, body)[0] == 200
    code, report = status(database_url)
    assert code == 5
    assert (report["witnessed"], report["archived"], report["unarchived"]) == (2, 0, 2)
    assert report["sessions"] == [{"session_id": "S", "count": 2}]
    assert report["hosts"]["laptop"]["imported"] is False  # Claude Code is used there, nothing archives it
    (transcripts / "S.jsonl").write_bytes(entry("u1", session="S") + entry("u2", session="S"))
    _import(database_url, transcripts)
    code, report = status(database_url)
    assert (code, report["unarchived"], report["archived"]) == (0, 0, 2)
    assert report["lag_p99_seconds"] is not None


def test_the_database_down_gets_503_with_retry_after_and_loses_nothing(tmp_path: Path) -> None:
    server = PostgresServer()
    server.start()
    try:
        dsn = server.dsn()
        body = export([claude_event("user_prompt", "S", message_uuid="u1")]).SerializeToString()
        with running_witness(dsn, tmp_path / "w.log") as url:
            server.stop()
            code, headers = post(url, body)
            assert code == 503 and int(headers["Retry-After"]) > 0
            server.start()
            wait_for(
                lambda: post(url, body)[0] == 200 or None, timeout=60, what="the witness to record again"
            )
        assert scalar(dsn, "SELECT count(*) FROM mnemo.witnessed") == 1
    finally:
        server.destroy()


def test_an_older_client_without_message_uuid_is_checked_by_its_prompt_id(
    database_url: str, tmp_path: Path, transcripts: Path
) -> None:
    body = export(
        [claude_event("user_prompt", "S", prompt_id="p-old")], version="2.1.100"
    ).SerializeToString()
    with running_witness(database_url, tmp_path / "w.log") as url:
        assert post(url, body)[0] == 200
    assert status(database_url)[0] == 5
    (transcripts / "S.jsonl").write_bytes(entry("u-old", session="S", promptId="p-old"))
    _import(database_url, transcripts)
    code, report = status(database_url)
    assert (code, report["archived"], report["unarchived"]) == (0, 1, 0)


def test_the_witness_exports_each_of_its_metrics(
    database_url: str, tmp_path: Path, transcripts: Path
) -> None:
    (transcripts / "S.jsonl").write_bytes(entry("u1", session="S"))
    _import(database_url, transcripts)
    body = export([claude_event("user_prompt", "S", message_uuid="u1")]).SerializeToString()
    with running_sink() as sink:
        otel = {
            "OTEL_SDK_DISABLED": "false",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "300",
        }
        with running_witness(database_url, tmp_path / "w.log", **otel) as url:
            assert post(url, body)[0] == 200
            expected = {m.name for m in names.WITNESS_METRICS}
            wait_for(
                lambda: expected <= set(metric_units(sink)) or None, timeout=30, what="every witness metric"
            )
            assert set(metric_units(sink)) & {m.name for m in names.METRICS} == set()  # no importer's
