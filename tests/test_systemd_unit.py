"""The example systemd unit as shipped: systemd itself accepts it, and what it says matches what the
daemon does (the command exists and parses, ``Type=notify`` gets READY/WATCHDOG/STOPPING, systemd's
watchdog leaves the in-process one time to act first)."""

from __future__ import annotations

import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from mnemo_otel.cli import _parser, _run
from testkit import REPO_ROOT
from testkit.importing import clean_env, entry

UNIT = REPO_ROOT / "mnemo_otel" / "systemd" / "mnemo-otel.service"


def _unit() -> dict[str, list[str]]:
    """``Section.Key`` -> values (keys may repeat, e.g. ``Environment=``); comments skipped."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        text = raw.strip()
        if not text or text.startswith(("#", ";")):
            continue
        if text.startswith("["):
            section = text.strip("[]")
            continue
        key, _, value = text.partition("=")
        values.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return values


def _one(unit: dict[str, list[str]], key: str) -> str:
    [value] = unit[key]
    return value


def _environment(unit: dict[str, list[str]]) -> dict[str, str]:
    pairs = [
        item.partition("=") for value in unit.get("Service.Environment", []) for item in shlex.split(value)
    ]
    return {key: value for key, _, value in pairs}


def test_unit__systemd_analyze_verify_accepts_it_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed (Debian package systemd; tests/run.sh installs it)"
    home, runtime = tmp_path / "home", tmp_path / "runtime"
    (home / ".local" / "bin").mkdir(parents=True)
    runtime.mkdir(mode=0o700)
    # %h/.local/bin/mnemo-otel, as `pip install --user` puts it: this environment's console script.
    (home / ".local" / "bin" / "mnemo-otel").symlink_to(Path(sys.executable).parent / "mnemo-otel")
    unit = tmp_path / UNIT.name
    unit.write_bytes(UNIT.read_bytes())
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    result = subprocess.run(
        [analyze, "--user", "verify", str(unit)], capture_output=True, text=True, env=env, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit__says_what_the_daemon_does() -> None:
    unit = _unit()
    program, *args = shlex.split(_one(unit, "Service.ExecStart"))
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(program).name in scripts
    parsed = _parser().parse_args(args)
    assert parsed.handler is _run and parsed.paths == []  # `run` with no path: the configured roots
    assert _one(unit, "Service.Type") == "notify"
    assert _one(unit, "Service.NotifyAccess") in ("main", "all")
    assert _one(unit, "Service.Restart") in ("always", "on-failure")  # the watchdog's exit 70 restarts
    in_process = float(_environment(unit)["MNEMO_WATCHDOG__TIMEOUT_SECONDS"])
    watchdog_sec = float(_one(unit, "Service.WatchdogSec"))
    assert watchdog_sec > in_process  # ours dumps stacks and exits first; systemd's is the backstop
    assert watchdog_sec >= 2 * min(5.0, in_process / 4)  # WATCHDOG=1 pings come often enough


def test_unit__daemon_notifies_ready_watchdog_and_stopping_as_type_notify_expects(
    database_url: str, transcripts: Path, tmp_path: Path
) -> None:
    unit = _unit()
    (transcripts / "s.jsonl").write_bytes(entry("a"))
    address = tmp_path / "notify.sock"
    env = clean_env(**_environment(unit))
    env.update(
        {
            "NOTIFY_SOCKET": str(address),
            "MNEMO_DATABASE_URL": database_url,
            "MNEMO_HEALTH__PORT": "0",
            "OTEL_SDK_DISABLED": "true",  # no collector here; the unit's endpoint is irrelevant
        }
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(address))
        server.settimeout(60)
        proc = subprocess.Popen(
            [sys.executable, "-m", "mnemo_otel", "run", str(transcripts)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert server.recv(64) == b"READY=1"
            ready = time.monotonic()
            assert server.recv(64) == b"WATCHDOG=1"
            assert time.monotonic() - ready < float(_one(unit, "Service.WatchdogSec")) / 2
            proc.send_signal(signal.SIGTERM)
            while (message := server.recv(64)) != b"STOPPING=1":
                assert message == b"WATCHDOG=1", message
            assert proc.wait(timeout=float(_one(unit, "Service.TimeoutStopSec"))) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
