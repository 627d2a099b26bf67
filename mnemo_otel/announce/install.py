"""``mnemo-otel hook --install|--uninstall``: our entry in Claude Code's settings.json, and only ours.

Claude Code's schema: ``{"hooks": {"<Event>": [{"matcher": "", "hooks": [{"type": "command",
"command": "..."}]}]}}``. Every other setting and hook is kept as it was; an existing entry of ours
is updated in place (so running it again changes nothing); the file is replaced atomically (temp
file, fsync, rename, its mode kept; a symlinked settings.json has its target replaced, the link
kept). A settings.json that is not a JSON object is refused untouched (exit 2).
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ("HOOK_EVENTS", "HOOK_TIMEOUT_SECONDS", "edit_settings", "hook_command", "is_ours", "with_hook")

HOOK_EVENTS = ("SessionStart", "Stop", "SessionEnd")
HOOK_TIMEOUT_SECONDS = 10  # Claude Code's default is 60; ours takes milliseconds
_PROG = "mnemo-otel hook"


class SettingsError(Exception):
    """settings.json is not something we may edit."""


def hook_command(data_dir: Path) -> str:
    """An absolute, shell-quoted invocation: Claude Code runs it with its own PATH and working
    directory. The console script beside this interpreter, else the interpreter itself (``-P``: the
    session's working directory never shadows the package)."""
    script = Path(sys.executable).parent / "mnemo-otel"
    if script.is_file() and os.access(script, os.X_OK):
        invocation = [str(script)]
    else:
        invocation = [sys.executable, "-P", "-m", "mnemo_otel"]
    return shlex.join([*invocation, "hook", "--data-dir", str(data_dir.expanduser().absolute())])


def is_ours(command: object) -> bool:
    """Whether a hook command is ``mnemo-otel hook`` (any install of it, any options)."""
    if not isinstance(command, str):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    for i, word in enumerate(words):
        if word != "hook" or i == 0:
            continue
        if Path(words[i - 1]).name == "mnemo-otel" or words[max(0, i - 2) : i] == ["-m", "mnemo_otel"]:
            return True
    return False


def with_hook(settings: dict[str, Any], command: str | None) -> dict[str, Any]:
    """``settings`` with our hook set to ``command`` for each event (``None``: removed everywhere).

    :raises SettingsError: ``hooks`` (or an event's list) is not what Claude Code's schema says.
    """
    result: dict[str, Any] = json.loads(json.dumps(settings))  # a deep copy of plain JSON
    hooks = result.get("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError('"hooks" is not an object')
    for event in list(hooks) if command is None else HOOK_EVENTS:
        groups = hooks.get(event, [])
        if not isinstance(groups, list):
            raise SettingsError(f'"hooks.{event}" is not a list')
        kept = _without_ours(groups, keep_first=command is not None)
        if command is not None and not _set_ours(kept, command):
            entry = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT_SECONDS}
            kept.append({"matcher": "", "hooks": [entry]})
        if kept:
            hooks[event] = kept
        elif event in hooks:
            del hooks[event]
    if hooks:
        result["hooks"] = hooks
    else:
        result.pop("hooks", None)
    return result


def _without_ours(groups: list[Any], *, keep_first: bool) -> list[Any]:
    """The groups without our entries (the first one kept when updating); a group we emptied goes."""
    kept: list[Any] = []
    seen = False
    for group in groups:
        entries = group.get("hooks") if isinstance(group, dict) else None
        if not isinstance(entries, list):
            kept.append(group)
            continue
        remaining = []
        for entry in entries:
            ours = isinstance(entry, dict) and is_ours(entry.get("command"))
            if ours and keep_first and not seen:
                seen = True
                remaining.append(entry)
            elif not ours:
                remaining.append(entry)
        if remaining or not entries:
            kept.append({**group, "hooks": remaining})
    return kept


def _set_ours(groups: list[Any], command: str) -> bool:
    for group in groups:
        for entry in group.get("hooks", []) if isinstance(group, dict) else []:
            if isinstance(entry, dict) and is_ours(entry.get("command")):
                entry["type"] = "command"
                entry["command"] = command
                entry.setdefault("timeout", HOOK_TIMEOUT_SECONDS)
                return True
    return False


def default_settings_path(environ: Mapping[str, str]) -> Path:
    config_dir = environ.get("CLAUDE_CONFIG_DIR")
    base = Path(config_dir).expanduser() if config_dir else Path.home() / ".claude"
    return base / "settings.json"


def edit_settings(
    path: Path | None, data_dir: Path, *, install: bool, dry_run: bool, environ: Mapping[str, str]
) -> int:
    """Install or uninstall; 0 done (or nothing to do), 1 cannot write, 2 settings.json refused."""
    target = path or default_settings_path(environ)
    try:
        before = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = None
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {target}: {exc}", 2)
    try:
        current = json.loads(before) if before is not None and before.strip() else {}
        if not isinstance(current, dict):
            raise SettingsError("it is not a JSON object")
        updated = with_hook(current, hook_command(data_dir) if install else None)
    except ValueError as exc:  # json's errors and SettingsError alike
        return _fail(f"{target} is not valid settings JSON ({exc}); left untouched", 2)
    except SettingsError as exc:
        return _fail(f"{target}: {exc}; left untouched", 2)
    if updated == current and before is not None:
        sys.stdout.write(f"{target}: {'already installed' if install else 'not installed'}; no change\n")
        return 0
    after = json.dumps(updated, indent=2, ensure_ascii=False) + "\n"
    if dry_run:
        diff = difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            after.splitlines(keepends=True),
            str(target),
            str(target),
        )
        sys.stdout.write("".join(diff))
        return 0
    try:
        _replace_atomically(target, after.encode())
    except OSError as exc:
        return _fail(f"cannot write {target}: {exc.strerror or exc}", 1)
    done = f"installed for {', '.join(HOOK_EVENTS)}" if install else "removed"
    sys.stdout.write(f"{target}: mnemo-otel hook {done}\n")
    return 0


def _replace_atomically(target: Path, body: bytes) -> None:
    real = Path(os.path.realpath(target))  # a symlinked settings.json (dotfiles) keeps its link
    real.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = real.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600
    temporary = real.with_name(f".{real.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        temporary.replace(real)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(real.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{_PROG}: error: {message}\n")
    return code
