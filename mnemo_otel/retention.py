"""How long Claude Code keeps transcripts: its ``cleanupPeriodDays`` setting.

At each start-up Claude Code silently deletes transcripts older than that (30 days unless set), so an
importer outage longer than it loses history for good. The daemon exports it and ``health`` warns
when it is short.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

__all__ = ("DEFAULT_CLEANUP_DAYS", "SHORT_RETENTION_DAYS", "cleanup_period_days", "settings_path")

logger = logging.getLogger(__name__)

DEFAULT_CLEANUP_DAYS = 30.0
SHORT_RETENTION_DAYS = 7.0


def settings_path(environ: Mapping[str, str]) -> Path:
    """``$CLAUDE_CONFIG_DIR/settings.json``, else ``~/.claude/settings.json``."""
    config_dir = environ.get("CLAUDE_CONFIG_DIR")
    base = Path(config_dir).expanduser() if config_dir else Path.home() / ".claude"
    return base / "settings.json"


def cleanup_period_days(path: Path) -> float:
    """The configured retention in days; the default when the file or the key is absent or unusable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_CLEANUP_DAYS
    except (OSError, ValueError) as exc:
        logger.warning("cannot read %s (%s); assuming the default retention", path, type(exc).__name__)
        return DEFAULT_CLEANUP_DAYS
    value = document.get("cleanupPeriodDays") if isinstance(document, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_CLEANUP_DAYS
    return max(0.0, float(value))
