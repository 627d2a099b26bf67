"""The second witness with the real client, through the real collector and its shipped config: a
session no importer watches is named by ``witness status`` until its folder is imported; watched
sessions (tool use, a subagent, a fork, a compaction, an API error) never show as unarchived; and a
canary prompt sent with OTEL_LOG_USER_PROMPTS=1 reaches no table but the transcripts' and no log."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from mnemo_otel.grafana import RULES
from mnemo_otel.grafana.spec import AlertSpec
from testkit import free_port, wait_for
from testkit.chaos.harness import CLI, REPO, importer_env
from testkit.claude_api import FakeMessagesApi, Text
from testkit.claude_code import ClaudeHome
from testkit.claude_formats import run_everyday_scenarios
from testkit.collector import Collector, running_collector
from testkit.interop import ImporterDaemon
from testkit.otlp_sink import running_sink
from testkit.prometheus import Prometheus, running_prometheus
from testkit.sql import scalar
from testkit.witnessing import RunningWitness, running_witness, witness_status

pytestmark = pytest.mark.anyio

TOKEN = "interop-witness-token"
CANARY = "canary-7f3a9c-never-in-telemetry"
CONTENT_FREE_TABLES = ("witnessed", "witness_hosts", "hosts", "files", "source_losses", "verify_runs")


def telemetry_env(collector: Collector) -> dict[str, str]:
    """What the README tells users to set, plus the client's content switches turned on."""
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
        "OTEL_RESOURCE_ATTRIBUTES": "mnemo.host.id=interop-host",
        "OTEL_LOGS_EXPORT_INTERVAL": "200",
        "OTEL_LOG_USER_PROMPTS": "1",
        "OTEL_LOG_TOOL_DETAILS": "1",
    }


@dataclass(frozen=True)
class Stack:
    collector: Collector
    witness: RunningWitness
    prometheus: Prometheus


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[Stack]:
    """Prometheus, the collector on its shipped config, and the witness between them: Claude Code's
    events go collector -> witness, the witness's metrics go back through the collector to Prometheus."""
    witness_port = free_port()
    with (
        running_sink() as backends,
        running_prometheus(tmp_path / "prometheus", load_rules=False) as prometheus,
        running_collector(
            tmp_path,
            remote_write_url=prometheus.remote_write_url,
            tempo_url=backends.url,
            loki_url=f"{backends.url}/otlp",
            extra_env={
                "MNEMO_WITNESS_ENDPOINT": f"http://127.0.0.1:{witness_port}",
                "MNEMO_WITNESS_TOKEN": TOKEN,
            },
        ) as collector,
        running_witness(
            database_url,
            tmp_path / "witness.log",
            witness_port,
            {
                "MNEMO_WITNESS__TOKEN": TOKEN,
                "MNEMO_HOST_ID": "witness-host",
                "OTEL_SDK_DISABLED": "false",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_METRIC_EXPORT_INTERVAL": "500",
            },
        ) as witness,
    ):
        yield Stack(collector, witness, prometheus)


def _gap_rule() -> AlertSpec:
    return next(rule for rule in RULES if rule.name == "MnemoWitnessGap")


async def test_a_session_no_importer_watches_is_named_until_its_folder_is_imported(
    api: FakeMessagesApi,
    claude: ClaudeHome,
    daemon: ImporterDaemon,
    stack: Stack,
    tmp_path: Path,
) -> None:
    collector, witness = stack.collector, stack.witness
    watched = ClaudeHome(claude.home, api.url, **telemetry_env(collector))
    await anyio.to_thread.run_sync(run_everyday_scenarios, api, watched)
    elsewhere = tmp_path / "elsewhere"
    unwatched = ClaudeHome(
        tmp_path / "other-home", api.url, CLAUDE_CONFIG_DIR=str(elsewhere), **telemetry_env(collector)
    )
    api.push(Text("an answer nobody archives yet"))
    hidden = await anyio.to_thread.run_sync(lambda: unwatched.run("-p", f"a prompt with {CANARY}"))
    await daemon.settle()

    def named() -> dict[str, Any] | None:
        code, report = witness_status(daemon.dsn)
        return report if code == 5 and report["sessions"] else None

    report = await anyio.to_thread.run_sync(
        lambda: wait_for(named, timeout=90, what="the unarchived session")
    )
    assert report["sessions"] == [{"session_id": hidden.session_id, "count": 2}]  # its prompt and answer
    assert report["hosts"]["interop-host"]["unarchived"] == 2
    assert report["archived"] > 0  # the watched sessions' lines: witnessed and archived
    gap = _gap_rule()

    def firing() -> list[Any] | None:
        return [
            s
            for s in stack.prometheus.query(gap.condition)
            if s["metric"].get("mnemo_witness_host") == "interop-host"
        ] or None

    await anyio.to_thread.run_sync(
        lambda: wait_for(firing, timeout=90, what="MnemoWitnessGap on the real series")
    )

    imported = subprocess.run(
        [*CLI, "import", str(elsewhere / "projects")],
        cwd=REPO,
        env=importer_env(daemon.dsn),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    code, report = witness_status(daemon.dsn)
    assert (code, report["unarchived"], report["sessions"]) == (0, 0, [])
    assert report["lag_p99_seconds"] is not None
    await anyio.to_thread.run_sync(
        lambda: wait_for(lambda: not firing() or None, timeout=90, what="MnemoWitnessGap to resolve")
    )

    for table in CONTENT_FREE_TABLES:
        sql = f"SELECT count(*) FROM mnemo.{table} t WHERE t::text LIKE '%' || $1 || '%'"
        found = await anyio.to_thread.run_sync(lambda: scalar(daemon.dsn, sql, CANARY))  # noqa: B023
        assert found == 0, table
    assert CANARY not in witness.log.read_text()
    assert CANARY not in collector.log()
