"""The importer container's own command, run natively with the environment compose would give it.

Docker cannot run here, so the test does what compose and Docker would: it interpolates
docker-compose.yml's ``importer.environment`` with .env-style values, takes the command from the
Dockerfile's ENTRYPOINT/CMD, and maps the container's network names and mounts to this host
(``postgres:5432`` -> the test server, ``/transcripts`` -> a temporary directory). The database
requires a password full of the characters that break URLs.
"""

from __future__ import annotations

import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import asyncpg
import pytest
import yaml

from mnemo_otel.errors import MnemoError
from testkit import free_port, log_tail, stop_process, wait_for
from testkit.compose import COMPOSE_FILE, container_command, interpolate, service_environment
from testkit.importing import clean_env, entry
from testkit.otlp_sink import OtlpSink, running_sink
from testkit.postgres_server import PostgresServer

# Every printable ASCII character but the single quote (which a .env value cannot hold inside the
# single quotes that keep `$` and `#` literal), a space, and a non-ASCII letter.
AWKWARD_PASSWORD = "".join(c for c in string.punctuation if c != "'") + " aZ09 /+=@#% ä"

ROLE = DATABASE = "mnemo"


@pytest.fixture(scope="module")
def password_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        server.require_passwords()
        anyio.run(_create_role, server)
        yield server
    finally:
        server.destroy()


async def _create_role(server: PostgresServer) -> None:
    admin = await asyncpg.connect(server.dsn())
    try:
        # Utility statements take no parameters: quote the literal on the server.
        create = await admin.fetchval(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", ROLE, AWKWARD_PASSWORD
        )
        await admin.execute(create)
        await admin.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    finally:
        await admin.close()


@pytest.fixture
def collector() -> Iterator[OtlpSink]:
    """Stands in for the collector, so the importer's telemetry flush on SIGTERM is quick."""
    with running_sink() as sink:
        yield sink


def _dotenv(transcripts: Path) -> dict[str, str]:
    """What a user's .env holds after the README's first-run steps."""
    return {
        "POSTGRES_PASSWORD": AWKWARD_PASSWORD,
        "GRAFANA_ADMIN_PASSWORD": "irrelevant-here",
        "CLAUDE_PROJECTS_DIR": str(transcripts),
        "MNEMO_HOST_ID": "laptop-7",
        "MNEMO_ENVIRONMENT": "test",
    }


def _on_this_host(env: dict[str, str], mapping: dict[str, str]) -> dict[str, str]:
    """Docker's DNS and mounts, done by hand: container addresses and paths -> this host's."""
    mapped = {}
    for key, value in env.items():
        for container_side, host_side in mapping.items():
            value = value.replace(container_side, host_side)
        mapped[key] = value
    return mapped


async def _count_entries(server: PostgresServer) -> int:
    conn = await asyncpg.connect(server.dsn(DATABASE))
    try:
        exists = await conn.fetchval("SELECT to_regclass('mnemo.entries') IS NOT NULL")
        return int(await conn.fetchval("SELECT count(*) FROM mnemo.entries")) if exists else 0
    finally:
        await conn.close()


async def _wrong_password_is_refused(server: PostgresServer) -> None:
    """Guard: the server really checks passwords, so an import below means the right one arrived."""
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://{ROLE}@127.0.0.1:{server.port}/{DATABASE}", password="wrong")


def test_the_importer_container_command_imports_with_an_awkward_password(
    password_server: PostgresServer, tmp_path: Path, collector: OtlpSink
) -> None:
    anyio.run(_wrong_password_is_refused, password_server)
    transcripts = tmp_path / "projects"
    (transcripts / "-home-me-proj").mkdir(parents=True)
    (transcripts / "-home-me-proj" / "s1.jsonl").write_bytes(
        entry("u1") + entry("a1", kind="assistant") + entry("u2", text="second prompt")
    )
    variables = _dotenv(transcripts)
    compose_env = service_environment("importer", variables)
    env = _on_this_host(
        compose_env,
        {
            "@postgres:5432/": f"@127.0.0.1:{password_server.port}/",
            "http://collector:4318": collector.url,
            "/transcripts": str(transcripts),
            "/var/lib/mnemo": str(tmp_path / "data"),
        },
    )
    env["MNEMO_HEALTH__PORT"] = str(free_port())
    # The transcripts mount compose would make is the directory the mapping points at.
    volumes = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["importer"]["volumes"]
    volume = next(v for v in volumes if v.endswith(":/transcripts:ro"))
    assert interpolate(volume, variables) == f"{transcripts}:/transcripts:ro"

    argv = container_command("importer")
    assert argv == ["mnemo-otel", "run"]
    argv[0] = str(Path(sys.executable).with_name("mnemo-otel"))
    log = tmp_path / "importer.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=clean_env(**env), stdout=out, stderr=subprocess.STDOUT)
    try:

        def imported() -> bool:
            assert proc.poll() is None, f"importer exited {proc.returncode}:\n{log_tail(log)}"
            return anyio.run(_count_entries, password_server) == 3

        wait_for(imported, timeout=90, what="3 rows in mnemo.entries", diagnostics=lambda: log_tail(log))
    finally:
        stop_process(proc, timeout=45)
    assert proc.returncode == 0, log_tail(log)
    assert AWKWARD_PASSWORD not in log.read_text(encoding="utf-8", errors="replace")


EVERY_PRINTABLE = string.printable.strip() + " " + "'"  # ASCII letters, digits, punctuation, space


def test_any_printable_password_reaches_the_database_beside_the_url(
    password_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    anyio.run(_set_password, password_server, EVERY_PRINTABLE)
    try:
        monkeypatch.setenv(
            "MNEMO_DATABASE_URL", f"postgresql://{ROLE}@127.0.0.1:{password_server.port}/{DATABASE}"
        )
        monkeypatch.setenv("MNEMO_DATABASE_PASSWORD", EVERY_PRINTABLE)
        assert anyio.run(_open_settings_sink) == 1
        # The same password pasted unencoded into the URL is what the stack used to do: refused.
        monkeypatch.delenv("MNEMO_DATABASE_PASSWORD")
        monkeypatch.setenv(
            "MNEMO_DATABASE_URL",
            f"postgresql://{ROLE}:{EVERY_PRINTABLE}@127.0.0.1:{password_server.port}/{DATABASE}",
        )
        with pytest.raises(MnemoError):
            anyio.run(_open_settings_sink)
    finally:
        anyio.run(_set_password, password_server, AWKWARD_PASSWORD)


async def _open_settings_sink() -> int:
    from mnemo_otel.daemon import open_sink
    from mnemo_otel.settings import Settings

    sink = await open_sink(Settings())
    try:
        async with sink.connection() as conn:
            value: int = await conn.fetchval("SELECT 1")
            return value
    finally:
        await sink.aclose()


async def _set_password(server: PostgresServer, password: str) -> None:
    admin = await asyncpg.connect(server.dsn())
    try:
        alter = await admin.fetchval(
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", ROLE, password
        )
        await admin.execute(alter)
    finally:
        await admin.close()


def test_a_password_without_a_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mnemo_otel.errors import ConfigError

    monkeypatch.setenv("MNEMO_DATABASE_PASSWORD", "secret")
    with pytest.raises(ConfigError, match="MNEMO_DATABASE_URL"):
        anyio.run(_open_settings_sink)
