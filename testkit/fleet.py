"""Several machines on one test machine: each importer in its own mount namespace, where its host's
transcripts are bind-mounted at the SAME absolute path the others use.

Real isolation, not a seam in the code: the importer under test cannot tell it is not alone on a
machine of its own. ``unshare -m`` needs root; elsewhere ``unshare -r -m`` maps the user to root in
a user namespace (allowed on Debian 12 and most distributions).
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio
import anyio.abc
import asyncpg

from testkit.chaos.harness import CLI, POLL_TIMEOUT_SECONDS, REPO, build_corpus, importer_env
from testkit.manifest import Line, Manifest
from testkit.synthetic import line, plain_session

__all__ = ("Host", "complete_offsets_on", "host_importer", "make_hosts", "namespaced", "wait_for_hosts")

SHARED_SESSION = "5e55a7ed-0000-4000-8000-000000000001"
SAME_NAME_FILE = Path("-home-user-notes") / "same-name.jsonl"


@dataclass(frozen=True, slots=True)
class Host:
    host_id: str
    directory: Path  # what this host has at the shared path


def namespaced(args: list[str], host: Host, same_root: Path) -> list[str]:
    """The ``mnemo-otel`` command line run with ``host.directory`` mounted at ``same_root``."""
    flags = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    return ["unshare", *flags, "sh", "-c", script, "sh", str(host.directory), str(same_root), *CLI, *args]


@asynccontextmanager
async def host_importer(
    host: Host, args: list[str], dsn: str, same_root: Path, log: IO[bytes], **extra_env: str
) -> AsyncIterator[anyio.abc.Process]:
    """An importer of ``host`` (``MNEMO_HOST_ID``), always gone (SIGKILL if need be) at the end."""
    env = importer_env(dsn, MNEMO_HOST_ID=host.host_id, **extra_env)
    proc = await anyio.open_process(
        namespaced(args, host, same_root), stdout=log, stderr=log, cwd=REPO, env=env
    )
    try:
        yield proc
    finally:
        with anyio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


def make_hosts(
    workdir: Path, count: int, *, mb: float, seed: int, manifest: Manifest | None = None
) -> list[Host]:
    """``count`` hosts with their own corpora (hostile lines included), plus on every host the same
    resumed session (identical lines: stored once) and a file of the same name with different lines.
    Every line is recorded in ``manifest`` (at its path under the host's directory)."""
    manifest = manifest if manifest is not None else Manifest()
    hosts = []
    for index in range(count):
        host = Host(f"host-{index + 1}", workdir / f"machine-{index + 1}")
        build_corpus(host.directory, mb=mb, seed=seed + index + 1, manifest=manifest)
        shared = plain_session(SHARED_SESSION, turns=30, rng=random.Random(seed))
        manifest.write(host.directory / "-home-user-shared" / f"{SHARED_SESSION}.jsonl", shared)
        own = [
            Line(line({"type": "user", "uuid": f"{host.host_id}-{i}"}), key=f"{host.host_id}-{i}")
            for i in range(50)
        ]
        manifest.write(host.directory / SAME_NAME_FILE, own)
        hosts.append(host)
    return hosts


def complete_offsets_on(host: Host, same_root: Path) -> dict[tuple[str, str], int]:
    """(host, path as the importer sees it) -> the checkpoint once every complete line is in."""
    return {
        (host.host_id, str(same_root / path.relative_to(host.directory))): path.read_bytes().rfind(b"\n") + 1
        for path in host.directory.rglob("*.jsonl")
    }


async def wait_for_hosts(dsn: str, expected: dict[tuple[str, str], int]) -> None:
    """Poll until every (host, path) checkpoint is exactly where its complete lines end."""
    with anyio.fail_after(POLL_TIMEOUT_SECONDS):
        while True:
            try:
                conn = await asyncpg.connect(dsn)
                try:
                    rows = await conn.fetch("SELECT host, path, committed_offset FROM mnemo.files")
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError):
                rows = []
            got = {(r["host"], r["path"]): r["committed_offset"] for r in rows}
            if all(got.get(key, 0) == offset for key, offset in expected.items()):  # empty: no row
                return
            await anyio.sleep(0.2)
