"""What the team deployment (docs/deployment.md) relies on, as a member importer runs it: TLS to a
central PostgreSQL from ``sslmode`` in the URL, and the URL from a systemd credential file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

from testkit.importing import clean_env, entry
from testkit.postgres_server import PostgresServer
from testkit.tls import TlsFiles, TlsFrontend, make_authority

pytestmark = pytest.mark.timeout(300)


def _import(transcripts: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mnemo_otel", "import", "--json", str(transcripts)],
        capture_output=True,
        text=True,
        env=clean_env(OTEL_SDK_DISABLED="true", MNEMO_HOST_ID="member-1", **env),
        timeout=120,
        check=False,
    )


@pytest.fixture
def tls_endpoint(
    postgres: PostgresServer, database_url: str, tmp_path: Path
) -> Iterator[tuple[str, TlsFiles]]:
    """``database_url`` reachable only through TLS with our authority's certificate."""
    ours = make_authority(tmp_path / "certs", "ours")
    frontend = TlsFrontend(postgres.port, ours)
    with start_blocking_portal() as portal:
        future, port = portal.start_task(frontend.serve)
        try:
            yield database_url.replace(f":{postgres.port}/", f":{port}/"), ours
        finally:
            future.cancel()


def test_tls__sslmode_verify_full_in_the_url_connects_and_plaintext_is_refused(
    tls_endpoint: tuple[str, TlsFiles], transcripts: Path, tmp_path: Path
) -> None:
    base, ours = tls_endpoint
    theirs = make_authority(tmp_path / "other-certs", "theirs")
    (transcripts / "s.jsonl").write_bytes(entry("a") + entry("b"))

    verified = _import(transcripts, MNEMO_DATABASE_URL=f"{base}?sslmode=verify-full&sslrootcert={ours.ca}")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["entries_stored"] == 2

    plaintext = _import(transcripts, MNEMO_DATABASE_URL=f"{base}?sslmode=disable")
    assert plaintext.returncode == 3, plaintext.stderr  # the TLS-only endpoint hangs up

    impostor = _import(transcripts, MNEMO_DATABASE_URL=f"{base}?sslmode=verify-full&sslrootcert={theirs.ca}")
    assert impostor.returncode == 3 and "SSLCertVerificationError" in impostor.stderr


def test_credentials__the_database_url_is_read_from_the_systemd_credentials_directory(
    database_url: str, transcripts: Path, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "mnemo_database_url").write_text(database_url + "\n", encoding="utf-8")
    (transcripts / "s.jsonl").write_bytes(entry("a"))
    result = _import(transcripts, CREDENTIALS_DIRECTORY=str(credentials))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entries_stored"] == 1
