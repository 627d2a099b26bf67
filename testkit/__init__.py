"""Real components for integration tests: the built collector, Debian's Prometheus, an OTLP sink.

Each module starts a real process or server on free 127.0.0.1 ports and stops it on exit; the
helpers here are the small pieces they share (ports, polling with a deadline, process teardown).
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ("REPO_ROOT", "free_port", "http_get", "log_tail", "spawn", "stop_process", "wait_for")

REPO_ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` s.

    Polling with a deadline, never a fixed sleep: fast machines pass fast, slow ones still pass.
    ``diagnostics`` (e.g. a process log tail) is appended to the failure message.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
        except (OSError, ValueError, RuntimeError, http.client.HTTPException) as exc:
            # A component that is still starting refuses connections or answers errors; a probe
            # that raises AssertionError (e.g. "process exited") stops the wait at once.
            last_error = exc
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            extra = f"\n{diagnostics()}" if diagnostics else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}{extra}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: a graceful stop that never hangs a test run."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def log_tail(path: Path, lines: int = 40) -> str:
    """Last lines of a component's log, for failure messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET a local URL; returns (status, body) for error statuses too, leaking no socket."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def spawn(args: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen``, tried again when exec reports EFAULT.

    Starting servers from several threads at once (the Grafana replay does) occasionally has the
    vfork child's exec fail with EFAULT on this kernel; nothing was started, so a retry is safe.
    """
    for attempt in range(3):
        try:
            return subprocess.Popen(args, **popen)
        except OSError as exc:
            if exc.errno != errno.EFAULT or attempt == 2:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")
