"""Every knob of mnemo-otel, read from ``MNEMO_*`` environment variables (``OTEL_*`` belong to the SDK).

Built once by the CLI and passed down; library code never reads the environment itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import AfterValidator, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .host import default_host_id, valid_host_id
from .retention import settings_path
from .transcripts.discovery import default_roots

__all__ = (
    "HealthSettings",
    "ImportSettings",
    "RetrySettings",
    "Settings",
    "TelemetrySettings",
    "VerifySettings",
    "WatchdogSettings",
)

MiB = 1024 * 1024


class ImportSettings(BaseModel):
    batch_max_lines: int = Field(5000, gt=0, description="Lines per transaction at most.")
    batch_max_bytes: int = Field(16 * MiB, gt=0, description="Line bytes per transaction at most.")
    max_line_bytes: int = Field(64 * MiB, gt=0, description="Longer lines are quarantined as oversize.")
    tail_grace_seconds: float = Field(
        120.0, ge=0, description="An unterminated last line idle this long is reported (still pending)."
    )
    rescan_interval_seconds: float = Field(
        30.0, gt=0, description="Full rescan period: the source of truth when file events are missed."
    )
    concurrent_files: int = Field(
        3, gt=0, le=8, description="Files imported at once (parsing overlaps with the database's work)."
    )
    idle_beat_seconds: float = Field(5.0, gt=0, description="Heartbeat period of the idle loop.")
    announced_idle_seconds: float = Field(
        600.0,
        ge=0,
        description="A transcript announced by a hook is watched until its session ended, stayed idle "
        "this long, and was imported to its end.",
    )


class RetrySettings(BaseModel):
    initial_seconds: float = Field(0.5, gt=0)
    max_seconds: float = Field(
        15.0, gt=0, description="Longest pause between attempts (keeps the heartbeat fresh)."
    )


class HealthSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    stale_after_seconds: float = Field(90.0, gt=0, description="Heartbeat older than this: unhealthy.")


class WitnessSettings(BaseModel):
    """``mnemo-otel witness``: the OTLP/HTTP logs receiver for Claude Code's own events."""

    host: str = "127.0.0.1"
    port: int = Field(4320, ge=0, le=65535)
    token: SecretStr | None = Field(None, description="Bearer token; required when not on loopback.")
    grace_seconds: float = Field(300.0, ge=0, description="A witnessed line missing longer: unarchived.")
    interval_seconds: float = Field(30.0, gt=0, description="Reconciliation period.")
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Larger export requests get 413.")


class WatchdogSettings(BaseModel):
    timeout_seconds: float = Field(120.0, gt=0, description="Loop silent this long: dump stacks and exit.")


class TelemetrySettings(BaseModel):
    """Ours only: the exporters and batch processors keep reading their own ``OTEL_*`` variables."""

    shutdown_grace_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="At exit, how long the last exports may take before the process goes anyway.",
    )
    database_spans: bool = Field(
        False,
        description="A client span per SQL statement (asyncpg instrumentation): for diagnosis, it costs "
        "several spans per batch.",
    )


class VerifySettings(BaseModel):
    interval_seconds: float = Field(
        86400.0,
        ge=0,
        description="Period of the daemon's scrub of the archive against the files, each followed by the "
        "restore drill; 0 = both off.",
    )
    niceness: int = Field(10, ge=0, le=19, description="Scheduling priority of the scrub's keying process.")


class Settings(BaseSettings):
    """Configuration. ``MNEMO_DATABASE_URL`` unset means: use the embedded PostgreSQL.

    ``MNEMO_DATABASE_PASSWORD`` travels beside the URL, never inside it: a password pasted into a
    URL must be percent-encoded, and one with ``/``, ``#`` or ``@`` otherwise breaks the URL or,
    worse, names another host. When set, it overrides any password in the URL.
    """

    model_config = SettingsConfigDict(env_prefix="MNEMO_", env_nested_delimiter="__", extra="ignore")

    database_url: SecretStr | None = None
    database_password: SecretStr | None = None
    host_id: Annotated[str, AfterValidator(valid_host_id)] = Field(
        default_factory=default_host_id,
        description="This machine in a fleet: checkpoints, rows and service.instance.id carry it.",
    )
    roots: list[Path] = Field(default_factory=lambda: default_roots(os.environ))
    claude_settings: Path = Field(
        default_factory=lambda: settings_path(os.environ),
        description="Claude Code's settings.json, read for cleanupPeriodDays (the retention guard).",
    )
    data_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path("mnemo-otel"))
    imports: ImportSettings = Field(default_factory=ImportSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    watchdog: WatchdogSettings = Field(default_factory=WatchdogSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    witness: WitnessSettings = Field(default_factory=WitnessSettings)
