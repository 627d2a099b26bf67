"""mnemo-otel: exactly-once import of Claude Code transcripts into PostgreSQL, observable end to end."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ("__version__",)
