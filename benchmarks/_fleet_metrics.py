"""The alert and recording rules against a fleet's series: evaluation time per group, series per host.

A loopback exporter serves, in Prometheus text format, every importer metric of the telemetry
contract (``names.METRICS``) under the names and labels the collector gives them in Prometheus
(resource labels with ``service_instance_id`` per host, histogram buckets at the importer's
boundaries, ``mnemo_importer_fleet_member`` for every host from every host), one scrape target per
host, plus one witness that has heard every host. Debian's Prometheus scrapes them every 5 s
(``honor_labels``, so the pushed labels stay as the collector writes them) and evaluates the shipped
promtool mirror (every recording and alert rule), each group every 5 s instead of its own interval,
so a minute holds a dozen rounds. Prometheus's own ``prometheus_rule_group_last_duration_seconds``
is read after each round. The series hold only a minute of history, so range functions over long
windows read fewer samples than in a steady state: the figures are a lower bound for those groups.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final, Self

import yaml

from mnemo_otel.telemetry import names
from mnemo_otel.telemetry.names import MetricKind, MetricName
from testkit import REPO_ROOT, http_get
from testkit.prometheus import Prometheus

from ._common import median
from ._report import format_table

__all__ = ("RuleFigures", "exposition", "measure", "table")

RULES: Final = REPO_ROOT / "grafana" / "promtool" / "rules.yaml"
INTERVAL_SECONDS: Final = 5
WITNESS: Final = "witness"
_BUCKETS: Final = {
    names.IMPORT_DURATION.name: (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    names.LAG.name: (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800),
    names.WITNESS_LAG.name: (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800),
}


def _label(key: str) -> str:
    return key.replace(".", "_")


def _attributes(metric: MetricName, hosts: Sequence[str]) -> list[dict[str, str]]:
    """The attribute sets a busy importer (or the witness) records each metric with."""
    by_name: dict[str, list[dict[str, str]]] = {
        names.ENTRIES_IMPORTED.name: [{names.ATTR_ENTRY_TYPE: t} for t in names.ENTRY_METRIC_TYPES],
        names.QUARANTINED.name: [{names.ATTR_ERROR_TYPE: t} for t in ("invalid_json", "oversize")],
        names.IMPORT_FAILURES.name: [{names.ATTR_ERROR_TYPE: "db_unavailable"}],
        names.PROCESS_CPU_TIME.name: [{"cpu.mode": m} for m in ("user", "system")],
        names.FILESYSTEM_UTILIZATION.name: [
            {names.ATTR_VOLUME: v, "system.filesystem.mountpoint": "/"} for v in ("watched", "data")
        ],
        names.FILESYSTEM_FREE.name: [{names.ATTR_VOLUME: v} for v in ("watched", "data")],
        names.FLEET_MEMBER.name: [{names.ATTR_FLEET_HOST: h} for h in hosts],
        names.RESTORE_INEXACT.name: [{names.ATTR_RESTORE_KIND: k} for k in names.RESTORE_KINDS],
        names.WITNESS_EVENTS.name: [
            {names.ATTR_EVENT_NAME: e} for e in ("user_prompt", "api_request", "tool_result", "tool_decision")
        ],
        names.WITNESS_UNARCHIVED.name: [{names.ATTR_WITNESS_HOST: h} for h in hosts],
        names.WITNESS_LAST_HEARD.name: [{names.ATTR_WITNESS_HOST: h} for h in hosts],
    }
    return by_name.get(metric.name, [{}])


def _value(metric: MetricName, now: float, elapsed: float) -> float:
    """A plausible healthy value: fresh timestamps, nothing missing, counters rising."""
    if metric.name.endswith(".timestamp"):
        return now - (600 if metric is names.VERIFY_LAST_RUN else 1)
    if metric in (names.DB_UP, names.FLEET_MEMBER):
        return 1
    if metric is names.VERIFY_INTERVAL:
        return 3600
    if metric is names.SOURCE_RETENTION:
        return 30 * 86400
    if metric.kind is MetricKind.COUNTER:
        return round(10 * elapsed)
    return 0 if metric.kind is MetricKind.GAUGE and "backlog" in metric.name else 1000


def exposition(host: str, hosts: Sequence[str], now: float, started: float) -> str:
    """One host's importer series (or, for ``WITNESS``, the witness's), as Prometheus scrapes them."""
    witness = host == WITNESS
    metrics = names.WITNESS_METRICS if witness else names.METRICS
    resource = {
        "job": f"{names.SERVICE_NAMESPACE}/{'mnemo-witness' if witness else names.SERVICE_NAME_DEFAULT}",
        "instance": host,
        "service_name": "mnemo-witness" if witness else names.SERVICE_NAME_DEFAULT,
        "service_namespace": names.SERVICE_NAMESPACE,
        "service_version": "0.1.0",
        "service_instance_id": host,
        "deployment_environment_name": "bench",
    }
    elapsed = now - started
    out: list[str] = []

    def sample(name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        out.append(f"{name}{{{text}}} {value:g}")

    for metric in metrics:
        base = metric.prometheus
        kind = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}[metric.kind.value]
        out.append(f"# TYPE {base} {kind}")
        for attributes in _attributes(metric, hosts):
            labels = {**resource, **{_label(k): v for k, v in attributes.items()}}
            if metric.kind is not MetricKind.HISTOGRAM:
                sample(base, labels, _value(metric, now, elapsed))
                continue
            count = round(10 * elapsed)
            bounds = _BUCKETS[metric.name]
            for i, bound in enumerate(bounds):
                sample(f"{base}_bucket", {**labels, "le": f"{bound:g}"}, round(count * (i + 1) / len(bounds)))
            sample(f"{base}_bucket", {**labels, "le": "+Inf"}, count)
            sample(f"{base}_sum", labels, count * 0.2)
            sample(f"{base}_count", labels, count)
    sample("target_info", {**resource, "telemetry_sdk_language": "python"}, 1)
    return "\n".join(out) + "\n"


class _Exporter:
    """``GET /metrics/<host>`` on 127.0.0.1: that host's series at the time of the scrape."""

    def __init__(self, hosts: Sequence[str]) -> None:
        started = time.time()
        fleet = list(hosts)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = self.path.rsplit("/", 1)[-1]
                body = exposition(host, fleet, time.time(), started).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(slots=True)
class RuleFigures:
    """One run: each group's evaluation durations (seconds, one per round), rules per group, series."""

    hosts: int
    durations: dict[str, list[float]] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)
    series_per_host: float = 0.0
    head_series: int = 0
    fleet_member_series: int = 0


def _rules_file(workdir: Path) -> tuple[Path, dict[str, int]]:
    """The promtool mirror with every group evaluated each ``INTERVAL_SECONDS``; rules per group."""
    spec = yaml.safe_load(RULES.read_text())
    for group in spec["groups"]:
        group["interval"] = f"{INTERVAL_SECONDS}s"
    path = workdir / "rules.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path, {group["name"]: len(group["rules"]) for group in spec["groups"]}


def _own_metrics(prom: Prometheus) -> dict[str, dict[str, float]]:
    """Per rule group: Prometheus's last duration and last evaluation time, from its /metrics."""
    _, raw = http_get(f"{prom.url}/metrics", timeout=10)
    found: dict[str, dict[str, float]] = {}
    for line in raw.decode().splitlines():
        for metric in ("last_duration_seconds", "last_evaluation_timestamp_seconds"):
            prefix = f'prometheus_rule_group_{metric}{{rule_group="'
            if line.startswith(prefix):
                group = line[len(prefix) :].split('"', 1)[0].rsplit(";", 1)[-1]
                found.setdefault(group, {})[metric] = float(line.rsplit(" ", 1)[-1])
        if line.startswith("prometheus_tsdb_head_series "):
            found.setdefault("", {})["head"] = float(line.rsplit(" ", 1)[-1])
    return found


def _run(workdir: Path, count: int, rounds: int) -> RuleFigures:
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = [f"host-{i:02d}" for i in range(1, count + 1)]
    rules_path, rules = _rules_file(workdir)
    figures = RuleFigures(count, rules=rules)
    with _Exporter(hosts) as exporter:
        prom = Prometheus(workdir, scrape_interval=f"{INTERVAL_SECONDS}s", load_rules=False)
        config = yaml.safe_load(prom.config_path.read_text())
        config["rule_files"] = [str(rules_path)]
        config["scrape_configs"] = [
            {
                "job_name": "fleet",
                "honor_labels": True,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{exporter.port}"],
                        "labels": {"__metrics_path__": f"/metrics/{h}"},
                    }
                    for h in [*hosts, WITNESS]
                ],
            }
        ]
        prom.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        prom.start()
        try:
            seen: dict[str, float] = {}
            deadline = time.monotonic() + (rounds + 2) * INTERVAL_SECONDS + 5
            warm_up = time.monotonic() + 2 * INTERVAL_SECONDS  # the first rounds see almost no data
            while time.monotonic() < deadline:
                time.sleep(1)
                for group, values in _own_metrics(prom).items():
                    at = values.get("last_evaluation_timestamp_seconds")
                    if not group or at is None or seen.get(group) == at or time.monotonic() < warm_up:
                        continue
                    seen[group] = at
                    figures.durations.setdefault(group, []).append(values["last_duration_seconds"])
            counted = prom.query('count by (service_instance_id) ({service_instance_id=~"host-.+"})')
            figures.series_per_host = median([float(s["value"][1]) for s in counted])
            member = prom.query(f"count({names.FLEET_MEMBER.prometheus})")
            figures.fleet_member_series = int(float(member[0]["value"][1])) if member else 0
            figures.head_series = int(_own_metrics(prom)[""]["head"])
        finally:
            prom.stop()
    return figures


def measure(workdir: Path, host_counts: Sequence[int], rounds: int) -> list[RuleFigures]:
    return [_run(workdir / f"hosts-{count}", count, rounds) for count in host_counts]


def table(runs: Sequence[RuleFigures]) -> str:
    groups = list(runs[0].rules)
    rows: list[list[str]] = []
    for group in groups:
        values = [median(run.durations.get(group, [float("nan")])) * 1000 for run in runs]
        rows.append(
            [
                group,
                str(runs[0].rules[group]),
                *[f"{v:.2f}" for v in values],
                f"{values[-1] / values[0]:.1f}x" if values[0] else "",
            ]
        )
    totals = [sum(median(run.durations.get(g, [0.0])) for g in groups) * 1000 for run in runs]
    rows.append(
        [
            "all groups",
            str(sum(runs[0].rules.values())),
            *[f"{t:.2f}" for t in totals],
            f"{totals[-1] / totals[0]:.1f}x",
        ]
    )
    headers = ["rule group", "rules", *[f"{run.hosts} host(s), ms" for run in runs], "ratio"]
    series = "; ".join(
        f"{run.hosts} host(s): {run.series_per_host:.0f} series per host, "
        f"{run.fleet_member_series} fleet-member series, {run.head_series:,} in the head"
        for run in runs
    )
    rounds = min(len(v) for v in runs[-1].durations.values()) if runs[-1].durations else 0
    return "\n".join(
        [
            (
                f"rule evaluation (median of >= {rounds} rounds, each group every {INTERVAL_SECONDS} s; "
                "Prometheus's prometheus_rule_group_last_duration_seconds)"
            ),
            format_table(headers, rows),
            f"series: {series}",
        ]
    )
