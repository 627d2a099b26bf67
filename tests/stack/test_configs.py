"""The stack's config files, checked by the real tools where one runs here, structurally otherwise.

Docker cannot run here, so compose is validated against the compose spec and held to the hygiene
it promises; the collector config by the built collector's own ``validate``; the Prometheus config
by ``promtool``; Tempo and Loki configs by the keys their pinned versions accept and we rely on.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mnemo_otel.grafana import GRAFANA_VERSION
from mnemo_otel.telemetry import names
from testkit import REPO_ROOT
from testkit.collector import SHIPPED_CONFIG, collector_binary
from testkit.prometheus import PROMETHEUS_FLAGS, SHIPPED_PROMETHEUS_CONFIG, shipped_rule_files

COMPOSE = REPO_ROOT / "docker-compose.yml"
BACKENDS = REPO_ROOT / "backends"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERFILE = REPO_ROOT / "Dockerfile"

IMPORTER_ENV = {
    "MNEMO_DATABASE_URL": "postgresql://mnemo@postgres:5432/mnemo",
    "MNEMO_DATABASE_PASSWORD": "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}",
    "MNEMO_HOST_ID": "${MNEMO_HOST_ID:?set MNEMO_HOST_ID in .env (this machine's name, e.g. the output of hostname)}",
    "MNEMO_ROOTS": '["/transcripts"]',
    "MNEMO_HEALTH__HOST": "127.0.0.1",
    "MNEMO_HEALTH__PORT": "8787",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
    "OTEL_SERVICE_NAME": "mnemo-importer",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=${MNEMO_ENVIRONMENT:-local}",
    "MNEMO_DATA_DIR": "/var/lib/mnemo",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = _load(COMPOSE)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


@pytest.fixture(scope="module")
def collector_config() -> dict[str, Any]:
    data: dict[str, Any] = _load(SHIPPED_CONFIG)
    return data


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_validates_against_the_compose_spec() -> None:
    tool = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_whole_system(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {
        "postgres",
        "importer",
        "witness",  # Claude Code's own events against the archive
        "collector",
        "prometheus",
        "tempo",
        "loki",
        "grafana",
        "grafana-alerting",  # one-shot: renders Grafana's alerting before Grafana starts
        "alert-log",  # the webhook's default target
    }


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image", "")
        if "build" in service:
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: tag {tag!r} names no version"
    assert services["grafana"]["image"] == f"grafana/grafana:{GRAFANA_VERSION}"


def test_every_service_restarts_is_capped_and_rotates_logs(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        # A one-shot restarted "unless-stopped" would run forever; it runs once per `up`.
        assert service.get("restart") == ("no" if name == "grafana-alerting" else "unless-stopped"), name
        assert service.get("mem_limit"), f"{name} has no memory limit"
        logging_ = service.get("logging", {})
        assert logging_.get("driver") == "json-file", name
        assert logging_["options"]["max-size"] and logging_["options"]["max-file"], name


def test_published_ports_are_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"


def test_state_lives_in_named_volumes(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose["volumes"])
    expected = {
        "postgres": "/var/lib/postgresql",
        "importer": "/var/lib/mnemo",
        "prometheus": "/prometheus",
        "tempo": "/var/tempo",
        "loki": "/loki",
        "grafana": "/var/lib/grafana",
    }
    for name, target in expected.items():
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert mounts.get(target) in declared, f"{name}: {target} is not a named volume"


def test_healthchecks_and_start_order(services: dict[str, dict[str, Any]]) -> None:
    # What each check may call is held against the images in test_images.py.
    for name in ("postgres", "importer", "prometheus", "tempo", "loki", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    # The contrib collector image is distroless and its binary has no probe: none inside it.
    assert "healthcheck" not in services["collector"]
    assert services["importer"]["healthcheck"]["test"] == ["CMD", "mnemo-otel", "health"]
    # TCP, not the socket: the entrypoint's first-run server listens on the socket only.
    assert services["postgres"]["healthcheck"]["test"] == [
        "CMD",
        "pg_isready",
        "-h",
        "127.0.0.1",
        "-U",
        "mnemo",
        "-d",
        "mnemo",
    ]
    assert services["importer"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "collector": {"condition": "service_started"},
    }
    healthy = {"condition": "service_healthy"}
    for backend in ("prometheus", "tempo", "loki"):
        assert services["collector"]["depends_on"][backend] == healthy, backend
        assert services["grafana"]["depends_on"][backend] == healthy, backend


def test_importer_environment_is_the_contract(services: dict[str, dict[str, Any]]) -> None:
    importer = services["importer"]
    assert importer["environment"] == IMPORTER_ENV
    assert importer["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    transcripts = [v for v in importer["volumes"] if ":/transcripts" in v]
    assert len(transcripts) == 1
    assert transcripts[0].startswith("${CLAUDE_PROJECTS_DIR:?")
    assert transcripts[0].endswith(":/transcripts:ro")


def test_grafana_admin_password_is_required_and_nobody_is_anonymous_admin(
    services: dict[str, dict[str, Any]],
) -> None:
    env = services["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert not any(key.startswith("GF_AUTH_ANONYMOUS_ORG_ROLE") for key in env)
    volumes = services["grafana"]["volumes"]
    # Folder by folder: mounting all of provisioning/ would hide the image's own plugins/ folder.
    assert "./grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro" in volumes
    assert "./grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro" in volumes
    assert not any(v.startswith("./grafana/provisioning:") for v in volumes)
    assert "./grafana/dashboards:/var/lib/grafana/dashboards/mnemo:ro" in volumes
    provider = _load(REPO_ROOT / "grafana" / "provisioning" / "dashboards" / "mnemo.yaml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/mnemo"


def test_backend_configs_are_mounted_where_the_images_read_them(services: dict[str, dict[str, Any]]) -> None:
    assert "./collector/config.yaml:/etc/otelcol/config.yaml:ro" in services["collector"]["volumes"]
    assert services["collector"]["command"] == ["--config=file:/etc/otelcol/config.yaml"]
    assert (
        "./backends/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in (services["prometheus"]["volumes"])
    )
    assert "./backends/tempo.yaml:/etc/tempo/tempo.yaml:ro" in services["tempo"]["volumes"]
    assert services["tempo"]["command"] == ["-config.file=/etc/tempo/tempo.yaml"]
    assert "./backends/loki.yaml:/etc/loki/loki.yaml:ro" in services["loki"]["volumes"]
    assert services["loki"]["command"] == ["-config.file=/etc/loki/loki.yaml"]


def test_compose_prometheus_runs_the_flags_the_tests_run(services: dict[str, dict[str, Any]]) -> None:
    command = services["prometheus"]["command"]
    assert set(PROMETHEUS_FLAGS) <= set(command)
    assert "--config.file=/etc/prometheus/prometheus.yml" in command


def test_env_example_names_every_variable_compose_requires() -> None:
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert required == {
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "CLAUDE_PROJECTS_DIR",
        "MNEMO_HOST_ID",
        "MNEMO_WITNESS_TOKEN",
    }
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert referenced <= set(example), sorted(referenced - set(example))
    # Shipped empty: an unedited copy cannot start with a password everyone knows, nor mount a
    # placeholder path (Docker would create it empty and root-owned, and nothing gets imported).
    for name in required:
        assert example[name] == "", f"{name} must ship empty in .env.example"


def test_dockerfile_is_slim_non_root_and_self_checking() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases), bases
    assert re.search(r"^USER 10001", text, flags=re.MULTILINE)
    assert "HEALTHCHECK" in text and '"mnemo-otel", "health"' in text
    assert re.search(r'^ENTRYPOINT \["mnemo-otel"\]\nCMD \["run"\]', text, flags=re.MULTILINE)
    assert "--constraint requirements.lock" in text
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"], "the build context must start from nothing"


# --- collector/config.yaml ----------------------------------------------------------------------


def test_the_built_collector_validates_the_shipped_config() -> None:
    result = subprocess.run(
        [str(collector_binary()), "validate", f"--config=file:{SHIPPED_CONFIG}"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _component_types(config: dict[str, Any], kind: str) -> set[str]:
    return {key.split("/", 1)[0] for key in config.get(kind) or {}}


def test_manifest_builds_exactly_the_components_the_config_uses(collector_config: dict[str, Any]) -> None:
    result = subprocess.run(
        [str(collector_binary()), "components"], capture_output=True, text=True, check=True
    )
    built = yaml.safe_load(result.stdout)
    for kind in ("receivers", "processors", "exporters", "extensions", "connectors"):
        have = {c["name"] for c in built.get(kind) or []}
        assert have == _component_types(collector_config, kind), kind


def test_memory_limiter_comes_first_in_every_pipeline(collector_config: dict[str, Any]) -> None:
    pipelines = collector_config["service"]["pipelines"]
    assert set(pipelines) == {"metrics", "traces", "logs", "logs/claude_code"}
    for name, pipeline in pipelines.items():
        assert pipeline["processors"][0] == "memory_limiter", name
    assert pipelines["metrics"]["exporters"] == ["prometheus_remote_write"]
    assert pipelines["traces"]["exporters"] == ["otlp_http/tempo"]
    assert pipelines["logs"]["exporters"] == ["otlp_http/loki"]
    assert pipelines["logs/claude_code"]["exporters"] == ["otlp_http/witness"]
    assert collector_config["service"]["extensions"] == ["health_check"]


def test_claude_codes_telemetry_is_split_from_the_importers(collector_config: dict[str, Any]) -> None:
    """Structure only; tests/stack/test_witness_pipeline.py proves the split on the running collector."""
    pipelines = collector_config["service"]["pipelines"]
    for name in ("metrics", "traces", "logs"):
        assert pipelines[name]["processors"] == ["memory_limiter", "filter/not_claude_code"], name
    assert pipelines["logs/claude_code"]["processors"] == [
        "memory_limiter",
        "filter/claude_code_only",
        "transform/witness_allow_list",
    ]
    processors = collector_config["processors"]
    # A condition that cannot be evaluated fails the export instead of letting a record through.
    for name in ("filter/not_claude_code", "filter/claude_code_only", "transform/witness_allow_list"):
        assert processors[name]["error_mode"] == "propagate", name


def test_endpoints_come_from_env_with_compose_defaults(services: dict[str, dict[str, Any]]) -> None:
    text = SHIPPED_CONFIG.read_text()
    defaults = dict(re.findall(r"\$\{env:([A-Z0-9_]+):-([^}]*)\}", text))
    assert defaults["PROMETHEUS_REMOTE_WRITE_ENDPOINT"] == "http://prometheus:9090/api/v1/write"
    assert defaults["TEMPO_OTLP_HTTP_ENDPOINT"] == "http://tempo:4318"
    assert defaults["LOKI_OTLP_ENDPOINT"] == "http://loki:3100/otlp"
    assert defaults["OTELCOL_OTLP_HTTP_ENDPOINT"] == "0.0.0.0:4318"
    assert defaults["OTELCOL_OTLP_GRPC_ENDPOINT"] == "0.0.0.0:4317"
    assert defaults["OTELCOL_METRICS_PORT"] == "8888"
    assert defaults["MNEMO_WITNESS_ENDPOINT"] == "http://witness:4320"
    assert defaults["MNEMO_WITNESS_TOKEN"] == ""
    for host in ("prometheus", "tempo", "loki"):
        assert host in services
    # Every `${...}` in the file is an env lookup with a default: nothing breaks when unset.
    assert len(re.findall(r"\$\{", text)) == len(re.findall(r"\$\{env:[A-Z0-9_]+:-", text))


def test_exporters_queue_and_retry(collector_config: dict[str, Any]) -> None:
    exporters = collector_config["exporters"]
    prw = exporters["prometheus_remote_write"]
    assert prw["remote_write_queue"]["enabled"] is True
    assert prw["retry_on_failure"]["enabled"] is True
    assert prw["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert "service.*" in prw["resource_constant_labels"]["included"]
    for name in ("otlp_http/tempo", "otlp_http/loki", "otlp_http/witness"):
        assert exporters[name]["sending_queue"]["enabled"] is True, name
        assert exporters[name]["sending_queue"]["batch"], name
        assert exporters[name]["retry_on_failure"]["enabled"] is True, name
    # The witness's events are never given up on while the collector runs (0 = no deadline).
    assert exporters["otlp_http/witness"]["retry_on_failure"]["max_elapsed_time"] == "0s"


def test_compose_hands_the_collector_the_witness_token(services: dict[str, dict[str, Any]]) -> None:
    env = services["collector"]["environment"]
    token = "${MNEMO_WITNESS_TOKEN:?set MNEMO_WITNESS_TOKEN in .env (openssl rand -hex 32)}"
    assert env == {"MNEMO_WITNESS_TOKEN": token}
    witness = services["witness"]
    assert witness["environment"]["MNEMO_WITNESS__TOKEN"] == token  # the same token on both ends
    assert witness["environment"]["MNEMO_WITNESS__HOST"] == "0.0.0.0"
    assert witness["command"] == ["witness"]


# --- backends -----------------------------------------------------------------------------------


def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(SHIPPED_PROMETHEUS_CONFIG)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = _load(SHIPPED_PROMETHEUS_CONFIG)
    assert config["storage"]["tsdb"]["out_of_order_time_window"]
    assert config["storage"]["exemplars"]["max_exemplars"] > 0
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["otelcol"]["static_configs"][0]["targets"] == ["collector:8888"]


def test_compose_prometheus_loads_the_generated_sli_rules() -> None:
    """``rule_files`` resolved through compose's mounts names the generated file, which promtool accepts."""
    generated = REPO_ROOT / "grafana" / "prometheus" / "recording-rules.yaml"
    assert shipped_rule_files() == [generated]
    result = subprocess.run(
        ["promtool", "check", "rules", str(generated)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tempo_config_is_tempo3_monolithic_with_a_metrics_generator() -> None:
    config = _load(BACKENDS / "tempo.yaml")
    # Tempo 3 refuses to start with these 2.x blocks.
    for removed in ("ingester", "compactor", "ingester_client", "metrics_generator_client"):
        assert removed not in config, removed
    assert config["storage"]["trace"]["backend"] == "local"
    protocols = config["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"  # the collector's otlp_http/tempo target
    remote_write = config["metrics_generator"]["storage"]["remote_write"]
    assert remote_write == [{"url": "http://prometheus:9090/api/v1/write", "send_exemplars": True}]
    processors = config["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert set(processors) == {"span-metrics", "service-graphs"}


def test_loki_config_ingests_otlp_and_keeps_high_cardinality_out_of_the_index() -> None:
    config = _load(BACKENDS / "loki.yaml")
    assert config["auth_enabled"] is False
    (schema,) = config["schema_config"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "filesystem")
    limits = config["limits_config"]
    assert limits["allow_structured_metadata"] is True
    resource = limits["otlp_config"]["resource_attributes"]
    assert resource["ignore_defaults"] is True
    indexed = {attr for rule in resource["attributes_config"] for attr in rule.get("attributes", [])}
    assert indexed == {"service.name", "service.namespace", "deployment.environment.name"}
    for high_cardinality in (names.ATTR_SESSION_ID, names.ATTR_TRANSCRIPT_PATH, "service.instance.id"):
        assert high_cardinality not in indexed
    assert "log_attributes" not in limits["otlp_config"]  # all log attributes: structured metadata
