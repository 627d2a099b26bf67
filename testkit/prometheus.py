"""Debian's Prometheus 2.42, run with the shipped backends/prometheus.yml.

The shipped file is used as is except for what cannot hold on a test machine: scrape targets name
compose services (``collector:8888``), so a temp copy keeps only the jobs the test maps to real
127.0.0.1 targets, and may shorten the scrape interval. Its ``rule_files`` are resolved through the
compose service's mounts (:func:`shipped_rule_files`), so the tests load exactly the rules compose
does. Flags are the compose service's flags (:data:`PROMETHEUS_FLAGS`; a stack test checks that
compose runs the same ones).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from testkit import REPO_ROOT, free_port, http_get, log_tail, spawn, stop_process, wait_for

__all__ = (
    "PROMETHEUS_FLAGS",
    "SHIPPED_PROMETHEUS_CONFIG",
    "Prometheus",
    "Sample",
    "running_prometheus",
    "shipped_rule_files",
)

SHIPPED_PROMETHEUS_CONFIG = REPO_ROOT / "backends" / "prometheus.yml"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CONTAINER_CONFIG = PurePosixPath("/etc/prometheus/prometheus.yml")

# Feature flags the stack relies on; docker-compose.yml passes the same ones.
PROMETHEUS_FLAGS: tuple[str, ...] = (
    "--web.enable-remote-write-receiver",
    "--enable-feature=exemplar-storage",
)

Sample = dict[str, Any]


def shipped_rule_files() -> list[Path]:
    """The repository files compose's Prometheus loads as rules: its ``rule_files`` patterns matched
    against the service's bind mounts. A pattern no mount satisfies is an error, not an empty list."""
    config = yaml.safe_load(SHIPPED_PROMETHEUS_CONFIG.read_text())
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    mounts: dict[PurePosixPath, Path] = {}
    for volume in services["prometheus"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[PurePosixPath(target)] = REPO_ROOT / source
    found: list[Path] = []
    for pattern in config.get("rule_files", []):
        in_container = CONTAINER_CONFIG.parent / pattern
        matched = sorted(host for target, host in mounts.items() if target.match(str(in_container)))
        if not matched:
            raise ValueError(f"rule_files pattern {pattern!r} matches no file compose mounts")
        found += matched
    return found


_BIND_ATTEMPTS = 3


class PortTaken(Exception):
    """The chosen port was taken before Prometheus could bind it."""


class Prometheus:
    """One Prometheus process on a free port with a throwaway TSDB."""

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_targets: Mapping[str, Sequence[str]] | None = None,
        scrape_interval: str | None = None,
        binary: str = "prometheus",
        load_rules: bool = True,
        retention: str | None = None,
    ) -> None:
        found = shutil.which(binary)
        if found is None:
            raise RuntimeError(f"{binary} not on PATH (tests/run.sh installs Debian's prometheus)")
        self.binary = found
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        self.config_path = workdir / "prometheus.yml"
        self.storage_path = workdir / "tsdb"
        self._write_config(scrape_targets or {}, scrape_interval, load_rules)
        self._proc: subprocess.Popen[bytes] | None = None
        # A replayed month must outlive the default 15 days, counted back from its newest sample.
        self._retention = [f"--storage.tsdb.retention.time={retention}"] if retention else []

    def _write_config(
        self, targets: Mapping[str, Sequence[str]], scrape_interval: str | None, load_rules: bool
    ) -> None:
        config = yaml.safe_load(SHIPPED_PROMETHEUS_CONFIG.read_text())
        jobs = []
        for job in config.get("scrape_configs", []):
            name = job["job_name"]
            if name in targets:
                job["static_configs"] = [{"targets": list(targets[name])}]
                jobs.append(job)
        unknown = set(targets) - {job["job_name"] for job in jobs}
        if unknown:
            raise ValueError(f"no such scrape job in the shipped config: {sorted(unknown)}")
        config["scrape_configs"] = jobs
        # Without rules for a replay of the past: live recording writes "now", and remote-written
        # samples hours older than the newest one are refused.
        config["rule_files"] = [str(path) for path in shipped_rule_files()] if load_rules else []
        if scrape_interval is not None:
            config.setdefault("global", {})["scrape_interval"] = scrape_interval
            config["global"]["evaluation_interval"] = scrape_interval
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def remote_write_url(self) -> str:
        """Where the collector's prometheus_remote_write exporter sends samples."""
        return f"{self.url}/api/v1/write"

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until ready. A free port can be taken by another process between choosing
        it and binding it (tests start several servers at once): then a new port is tried, so read
        ``url`` after this returns."""
        for attempt in range(_BIND_ATTEMPTS):
            try:
                self._start_once(timeout)
                return
            except PortTaken:
                if attempt == _BIND_ATTEMPTS - 1:
                    raise
                self.port = free_port()
                self.log_path.unlink(missing_ok=True)  # its last line would name the old port

    def _start_once(self, timeout: float) -> None:
        self.storage_path.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = spawn(
                [
                    self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.storage_path}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    *PROMETHEUS_FLAGS,
                    *self._retention,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for(
            self._ready,
            timeout=timeout,
            what=f"prometheus /-/ready on port {self.port}",
            diagnostics=lambda: log_tail(self.log_path),
        )

    def _ready(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            log = log_tail(self.log_path)
            if "address already in use" in log:
                raise PortTaken(self.port)
            raise AssertionError(f"prometheus exited early:\n{log}")
        status, _ = http_get(f"{self.url}/-/ready", timeout=2)
        return status == 200

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None

    def api(self, path: str, params: Mapping[str, str]) -> Any:
        """GET an HTTP API endpoint and return its ``data`` (raises on a non-success status)."""
        status, raw = http_get(f"{self.url}{path}?{urllib.parse.urlencode(params)}", timeout=10)
        body = json.loads(raw)
        if status != 200 or body.get("status") != "success":
            raise RuntimeError(f"prometheus {path} failed: {body}")
        return body["data"]

    def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        """Instant query; returns the vector result (each item has ``metric`` and ``value``)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[Sample] = data["result"]
        return result

    def series(self, match: str) -> list[dict[str, str]]:
        """Label sets of every series matching ``match`` (seen in the last hour)."""
        result: list[dict[str, str]] = self.api("/api/v1/series", {"match[]": match})
        return result

    def metric_names(self) -> list[str]:
        names: list[str] = self.api("/api/v1/label/__name__/values", {})
        return names

    def exemplars(self, promql: str, *, start: float, end: float) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.api(
            "/api/v1/query_exemplars", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        )
        return data

    def wait_for_query(self, promql: str, *, timeout: float = 30.0, what: str | None = None) -> list[Sample]:
        """Poll an instant query until it returns at least one sample."""
        return wait_for(
            lambda: self.query(promql) or None,
            timeout=timeout,
            what=what or f"PromQL {promql!r} to return data",
            interval=0.5,
        )


@contextlib.contextmanager
def running_prometheus(
    workdir: Path,
    *,
    scrape_targets: Mapping[str, Sequence[str]] | None = None,
    scrape_interval: str | None = None,
    load_rules: bool = True,
    retention: str | None = None,
) -> Iterator[Prometheus]:
    """A started Prometheus with the shipped config, stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    prom = Prometheus(
        workdir,
        scrape_targets=scrape_targets,
        scrape_interval=scrape_interval,
        load_rules=load_rules,
        retention=retention,
    )
    try:
        prom.start()
        yield prom
    finally:
        prom.stop()
