"""``mnemo-otel hook``: Claude Code announces a transcript; the announcement goes to the spool.

It runs inside Claude Code's session, so it must never harm it: nothing on stdout (a hook's stdout
can become context), exit 0 whatever happens (exit 2 from a Stop hook would keep Claude going), at
most one line on stderr, and fast (standard library only: neither the settings model, nor the
database driver, nor OpenTelemetry). Only ids, the path, the event name and the time are kept:
the hook's input also carries conversation text (``last_assistant_message``), which is never read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn

from .spool import FIELD_MAX_CHARS, Announcement, Spool, SpoolFull, spool_directory

__all__ = ("STDIN_MAX_BYTES", "default_data_dir", "hook_main", "record_from_input")

STDIN_MAX_BYTES = 16 * 1024 * 1024  # a Stop event carries the last answer: large, but not this large
_PROG = "mnemo-otel hook"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> _Parser:
    parser = _Parser(
        prog=_PROG,
        description="A Claude Code hook (SessionStart, Stop, SessionEnd): reads the hook's JSON on stdin "
        "and records the transcript's path for the importer. --install adds it to settings.json.",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="the spool's data dir (MNEMO_DATA_DIR)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--install", action="store_true", help="add this hook to Claude Code's settings.json")
    action.add_argument("--uninstall", action="store_true", help="remove this hook from settings.json")
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="the settings.json to edit (default: $CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json)",
    )
    parser.add_argument("--dry-run", action="store_true", help="show the change as a diff; write nothing")
    return parser


def hook_main(
    argv: Sequence[str], *, stdin: BinaryIO | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """The command's entry: the hook itself (always 0), or ``--install``/``--uninstall``."""
    env = os.environ if environ is None else environ
    editing = "--install" in argv or "--uninstall" in argv
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        if editing:
            sys.stderr.write(f"{_PROG}: error: {exc}\n")
            return 2
        return _complain(f"bad arguments ({exc}); nothing recorded")
    data_dir = args.data_dir or _env_data_dir(env)
    if args.install or args.uninstall:
        from .install import edit_settings

        return edit_settings(args.settings, data_dir, install=args.install, dry_run=args.dry_run, environ=env)
    try:
        return _announce(stdin if stdin is not None else _stdin(), data_dir, env)
    except Exception as exc:  # noqa: BLE001 -- the hook must never fail Claude Code's session
        return _complain(f"announcement not recorded ({type(exc).__name__})")


def _announce(stream: BinaryIO | None, data_dir: Path, env: Mapping[str, str]) -> int:
    if stream is None or stream.isatty():
        return _complain("expects Claude Code's hook JSON on stdin; nothing recorded")
    data = stream.read(STDIN_MAX_BYTES + 1)
    if len(data) > STDIN_MAX_BYTES:
        while stream.read(1024 * 1024):  # drain: the writer must not meet a closed pipe
            pass
        return _complain(f"hook input over {STDIN_MAX_BYTES} bytes; nothing recorded")
    record, problem = record_from_input(data, host=_host_id(env), now=time.time())
    if record is None:
        return _complain(f"{problem}; nothing recorded")
    spool = Spool(spool_directory(data_dir))
    try:
        spool.append(record)
    except SpoolFull:
        return _complain(f"spool full at {spool.path} (is the importer running?); announcement refused")
    except OSError as exc:
        return _complain(f"cannot write the spool at {spool.path} ({exc.strerror or type(exc).__name__})")
    return 0


def record_from_input(data: bytes, *, host: str, now: float) -> tuple[Announcement | None, str]:
    """The announcement in a hook's input, or ``None`` and why not (never the input's content)."""
    import json

    if not data.strip():
        return None, "empty hook input"
    try:
        obj = json.loads(data)
    except ValueError:
        return None, "hook input is not JSON"
    if not isinstance(obj, dict):
        return None, "hook input is not a JSON object"
    fields = {name: obj.get(name) for name in ("session_id", "transcript_path", "hook_event_name")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            return None, f"hook input has no {name}"
        if len(value) > FIELD_MAX_CHARS or "\x00" in value:
            return None, f"hook input's {name} is unusable"
    path = str(fields["transcript_path"])
    if not Path(path).is_absolute():
        return None, "hook input's transcript_path is not absolute"
    return Announcement(host, str(fields["session_id"]), path, str(fields["hook_event_name"]), now), ""


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """``Settings.data_dir``'s default without loading the settings model (or platformdirs on Linux)."""
    if sys.platform.startswith("linux"):
        xdg = environ.get("XDG_DATA_HOME", "").strip()
        base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
        return base / "mnemo-otel"
    import platformdirs

    return platformdirs.user_data_path("mnemo-otel")


def _env_data_dir(env: Mapping[str, str]) -> Path:
    configured = env.get("MNEMO_DATA_DIR")
    return Path(configured) if configured else default_data_dir(env)


def _host_id(env: Mapping[str, str]) -> str:
    from ..host import default_host_id, valid_host_id

    configured = env.get("MNEMO_HOST_ID", "")
    try:
        return valid_host_id(configured)
    except ValueError:
        return default_host_id()


def _stdin() -> BinaryIO | None:
    return sys.stdin.buffer if sys.stdin is not None else None


def _complain(message: str) -> int:
    """One line on stderr, exit 0: Claude Code carries on whatever the hook thinks."""
    try:
        sys.stderr.write(f"{_PROG}: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return 0
