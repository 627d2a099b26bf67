"""Which machine this importer runs on: one id for its checkpoints, its rows and its telemetry.

Stable across restarts on purpose (never random per start): a restarted importer must find its own
checkpoints and continue its own heartbeat series, and a dead host must stay the same dead host.
"""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

__all__ = ("MACHINE_ID_FILES", "default_host_id", "valid_host_id")

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


def default_host_id(machine_id_files: tuple[Path, ...] = MACHINE_ID_FILES) -> str:
    """``<hostname>-<8 hex>``: readable, and distinct for two machines that share a hostname.

    The hex part is a digest of the machine id (never the id itself, which systemd asks to keep
    private); where there is none (many containers), the hostname alone, which compose pins.
    """
    hostname = socket.gethostname() or "localhost"
    for path in machine_id_files:
        try:
            machine_id = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if machine_id:
            digest = hashlib.sha256(f"mnemo-otel host:{machine_id}".encode()).hexdigest()
            return f"{hostname}-{digest[:8]}"
    return hostname


def valid_host_id(value: str) -> str:
    """A host id is a label value and a key column: short, printable, no spaces."""
    if not _VALID.match(value):
        raise ValueError(
            "host id must be 1-128 characters of letters, digits and . _ : @ - (starting alphanumeric)"
        )
    return value
