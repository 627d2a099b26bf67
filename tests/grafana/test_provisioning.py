"""Static checks of the generated provisioning, as Grafana will read it."""

from __future__ import annotations

import itertools
import re
from typing import Any

from mnemo_otel.grafana.contacts import (
    ENV_DEADMAN_URL,
    ENV_DISCORD_URL,
    ENV_EMAIL_ADDRESSES,
    ENV_SLACK_URL,
    ENV_SMTP_ENABLED,
    ENV_WEBHOOK_URL,
    SETTING_KEYS,
    contact_points,
    policies,
)
from mnemo_otel.grafana.fleet_panels import FLEET_TABLE_PANEL, per_host
from mnemo_otel.telemetry import names
from tests.grafana._interpolate import interpolate
from tests.grafana._paths import GRAFANA_DIR
from tests.grafana._promql import load, strings

PROVISIONING = GRAFANA_DIR / "provisioning"
UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
ENV = {
    ENV_WEBHOOK_URL: "http://sink:8080/hook",
    ENV_SLACK_URL: "https://chat.example/slack",
    ENV_DISCORD_URL: "https://chat.example/discord",
    ENV_EMAIL_ADDRESSES: "ops@example.org",
    ENV_DEADMAN_URL: "https://ping.example/abc",
    ENV_SMTP_ENABLED: "true",
}


def _datasources() -> list[dict[str, Any]]:
    return list(load(PROVISIONING / "datasources" / "datasources.yaml")["datasources"])


def _rules() -> list[dict[str, Any]]:
    return [
        rule for group in load(PROVISIONING / "alerting" / "rules.yaml")["groups"] for rule in group["rules"]
    ]


def _all_contact_points() -> list[dict[str, Any]]:
    return list(contact_points(ENV)["contactPoints"])


def _dashboard() -> dict[str, Any]:
    return dict(load(GRAFANA_DIR / "dashboards" / "mnemo-importer.json"))


def _routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [route, *(r for child in route.get("routes", []) for r in _routes(child))]


def _unescaped(value: str) -> str:
    return "$".join(value.split("$$"))


class TestDatasources:
    def test_uids__are_fixed(self) -> None:
        assert [(d["uid"], d["url"]) for d in _datasources()] == [
            ("prometheus", "http://prometheus:9090"),
            ("tempo", "http://tempo:3200"),
            ("loki", "http://loki:3100"),
        ]

    def test_every_referenced_datasource_uid__exists(self) -> None:
        uids = {d["uid"] for d in _datasources()}
        for source in _datasources():
            for key, value in _items(source["jsonData"]):
                if key == "datasourceUid":
                    assert value in uids, (source["uid"], value)

    def test_grafana_link_variables__survive_env_interpolation(self) -> None:
        for value in strings(_datasources()):
            assert interpolate(value, ENV) == _unescaped(value), value
        tempo, loki = _datasources()[1]["jsonData"], _datasources()[2]["jsonData"]
        assert interpolate(tempo["tracesToLogsV2"]["query"], ENV) == (
            '{${__tags}} | trace_id="${__trace.traceId}"'
        )
        assert interpolate(loki["derivedFields"][0]["url"], ENV) == "${__value.raw}"
        assert all("{$__tags}" in interpolate(q["query"], ENV) for q in tempo["tracesToMetrics"]["queries"])

    def test_correlations__are_all_wired(self) -> None:
        prometheus, tempo, loki = (d["jsonData"] for d in _datasources())
        assert prometheus["exemplarTraceIdDestinations"][0] == {
            "name": "trace_id",
            "datasourceUid": "tempo",
            "urlDisplayLabel": "Import trace",
        }
        assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
        assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
        assert tempo["serviceMap"] == {"datasourceUid": "prometheus"}
        assert tempo["nodeGraph"] == {"enabled": True}
        assert loki["derivedFields"][0]["datasourceUid"] == "tempo"


def _items(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [(k, v) for k, v in node.items()] + [i for v in node.values() for i in _items(v)]
    if isinstance(node, list):
        return [i for v in node for i in _items(v)]
    return []


class TestRules:
    def test_uids__are_short_valid_and_unique(self) -> None:
        uids = [rule["uid"] for rule in _rules()]
        assert all(UID.match(uid) for uid in uids), uids
        assert len(set(uids)) == len(uids)
        titles = [rule["title"] for rule in _rules()]
        assert len(set(titles)) == len(titles)

    def test_condition_and_expressions__reference_existing_refids(self) -> None:
        for rule in _rules():
            refs = [query["refId"] for query in rule["data"]]
            assert len(set(refs)) == len(refs)
            assert rule["condition"] in refs
            for query in rule["data"]:
                if query["datasourceUid"] == "__expr__":
                    assert query["model"]["expression"] in refs
                assert query["model"]["refId"] == query["refId"]

    def test_datasource_uids__exist(self) -> None:
        uids = {d["uid"] for d in _datasources()} | {"__expr__"}
        for rule in _rules():
            assert {query["datasourceUid"] for query in rule["data"]} <= uids

    def test_states_and_durations__use_grafana_file_spellings(self) -> None:
        for rule in _rules():
            assert rule["noDataState"] in {"Alerting", "NoData", "OK", "KeepLast"}
            assert rule["execErrState"] in {"Alerting", "Error", "OK", "KeepLast"}
            assert re.fullmatch(r"\d+[smh]", rule["for"]) and re.fullmatch(r"\d+[smh]", rule["keepFiringFor"])
            assert "keep_firing_for" not in rule and "no_data_state" not in rule

    def test_heartbeat__alerts_on_no_data_and_never_returns_empty(self) -> None:
        rule = next(r for r in _rules() if r["uid"] == "mnemo-heartbeat-stale")
        assert rule["noDataState"] == "Alerting"
        assert rule["data"][0]["model"]["expr"].endswith("or on() vector(1e9)")
        assert rule["labels"] == {"severity": "critical"}

    def test_templates__survive_grafana_interpolation(self) -> None:
        for rule in _rules():
            assert all("$" not in value for value in rule["labels"].values())
            for key, value in rule["annotations"].items():
                assert "${" not in value and "$$" not in value, (rule["uid"], key)
                assert value.count("{{ if") + value.count("{{ with") == value.count("{{ end }}")
            assert {"summary", "description", "runbook"} <= set(rule["annotations"])

    def test_dashboard_links__point_at_existing_panels(self) -> None:
        dashboard = _dashboard()
        panel_ids = {panel["id"] for panel in dashboard["panels"]}
        linked = [rule for rule in _rules() if rule["labels"]["severity"] != "none"]
        for rule in linked:
            assert rule["dashboardUid"] == dashboard["uid"]
            assert rule["panelId"] in panel_ids
        unlinked = [rule for rule in _rules() if rule not in linked]
        assert all("panelId" not in rule and "dashboardUid" not in rule for rule in unlinked)


class TestNotifications:
    """Contact points and policies for every channel configured (the committed files configure
    none; which channels exist per environment is tested in test_contacts.py)."""

    def test_setting_keys__are_ones_grafana_reads(self) -> None:
        for point in _all_contact_points():
            for receiver in point["receivers"]:
                assert set(receiver["settings"]) <= SETTING_KEYS[receiver["type"]], receiver["uid"]

    def test_receivers__cover_every_channel_with_unique_uids(self) -> None:
        receivers = [r for point in _all_contact_points() for r in point["receivers"]]
        assert sorted(r["type"] for r in receivers) == ["discord", "email", "slack", "webhook", "webhook"]
        uids = [r["uid"] for r in receivers]
        assert all(UID.match(uid) for uid in uids) and len(set(uids)) == len(uids)

    def test_addresses__come_only_from_the_environment(self) -> None:
        for point in _all_contact_points():
            (receiver,) = point["receivers"]
            settings = receiver["settings"]
            target = settings.get("url", settings.get("addresses"))
            assert re.fullmatch(r"\$[A-Z_]+", target), target
            assert interpolate(target, ENV) == ENV[target[1:]]
            others = [v for k, v in settings.items() if k not in ("url", "addresses") and isinstance(v, str)]
            assert all(interpolate(v, ENV) == v for v in others)

    def test_policy_tree__routes_to_existing_points_and_critical_faster(self) -> None:
        (root,) = policies(ENV)["policies"]
        names = {point["name"] for point in _all_contact_points()}
        routes = _routes(root)
        assert {route["receiver"] for route in routes} == names
        assert root["receiver"] == "mnemo-webhook"
        assert root["group_by"] == ["alertname", "service_instance_id"]
        assert all(interpolate(v, ENV) == v for v in strings(root))

        def seconds(duration: str) -> int:
            return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]

        by_severity = {
            r["object_matchers"][0][2]: r for r in routes[1:] if r["object_matchers"][0][0] == "severity"
        }
        critical, warning = by_severity["critical"], by_severity["warning"]
        assert seconds(critical["group_wait"]) < seconds(warning["group_wait"])
        assert seconds(critical["repeat_interval"]) < seconds(warning["repeat_interval"])

    def test_messages__use_templates_that_are_defined(self) -> None:
        templates = load(PROVISIONING / "alerting" / "templates.yaml")["templates"]
        text = "".join(template["template"] for template in templates)
        defined = set(re.findall(r'{{ define "([^"]+)" }}', text))
        used = {
            name
            for value in [*strings(_all_contact_points()), text]
            for name in re.findall(r'{{ template "([^"]+)"', value)
        }
        assert used and used <= defined
        for template in templates:
            opened = len(re.findall(r"{{ (?:define|if|range|with) ", template["template"]))
            assert opened == template["template"].count("{{ end }}"), template["name"]
        assert "DashboardURL" in text and "StartsAt" in text


class TestDashboard:
    def test_host_variable__filters_every_importer_query_and_defaults_to_all(self) -> None:
        dashboard = _dashboard()
        (variable,) = dashboard["templating"]["list"]
        assert variable["name"] == "host" and variable["includeAll"] and variable["allValue"] == ".*"
        assert variable["current"]["value"] == ["$__all"]
        exprs = [
            t["expr"]
            for p in dashboard["panels"]
            if p["id"] != FLEET_TABLE_PANEL
            for t in p["targets"]
            if t["datasource"]["type"] == "prometheus"
        ]
        importer = [e for e in exprs if "mnemo_importer_" in e or "process_" in e]
        assert len(importer) >= 20
        assert all('service_instance_id=~"$host"' in e for e in importer)
        assert not any("$host" in e for e in exprs if "otelcol_" in e)  # the collector is not a host

    def test_fleet_table__one_row_per_host_with_version_heartbeat_backlog_and_last_import(self) -> None:
        (table,) = [p for p in _dashboard()["panels"] if p["id"] == FLEET_TABLE_PANEL]
        renamed = table["transformations"][1]["options"]["renameByName"]
        assert renamed["service_instance_id"] == "Host" and renamed["service_version"] == "Version"
        assert {"Heartbeat age", "Backlog age", "Since last import"} <= set(renamed.values())
        assert all("by (service_instance_id" in t["expr"] for t in table["targets"])
        assert all("$host" not in t["expr"] for t in table["targets"])  # the whole fleet, always

    def test_panels__use_existing_datasources_and_unique_ids(self) -> None:
        uids = {d["uid"] for d in _datasources()}
        panels = _dashboard()["panels"]
        assert len({panel["id"] for panel in panels}) == len(panels)
        for panel in panels:
            if panel["type"] == "alertlist":
                continue
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert all(target["datasource"]["uid"] in uids for target in panel["targets"])

    def test_panels__show_traces_logs_and_alerts(self) -> None:
        by_type: dict[str, list[dict[str, Any]]] = {}
        for panel in _dashboard()["panels"]:
            by_type.setdefault(panel["type"], []).append(panel)
        (traces,) = [p for p in by_type["table"] if p["datasource"]["type"] == "tempo"]
        assert traces["targets"][0]["query"] == (
            '{ name = "mnemo.import" && resource.service.instance.id =~ "$host" }'
        )
        (logs,) = by_type["logs"]
        assert logs["targets"][0]["expr"] == '{service_name="mnemo-importer"} | service_instance_id=~"$host"'
        assert "alertlist" in by_type
        assert any("histogram_quantile" in t["expr"] for p in by_type["timeseries"] for t in p["targets"])

    def test_status_row__shows_uptime_and_restarts_from_process_uptime(self) -> None:
        panels = _dashboard()["panels"]
        row = next(panel["gridPos"]["y"] for panel in panels if panel["title"] == "Uptime")
        status = [panel for panel in panels if panel["gridPos"]["y"] == row]
        assert all(panel["type"] == "stat" for panel in status)
        spans = sorted((p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"]) for p in status)
        assert spans[0][0] == 0 and spans[-1][1] == 24
        assert all(end == start for (_, end), (start, _) in itertools.pairwise(spans))
        by_title = {panel["title"]: panel["targets"][0]["expr"] for panel in status}
        uptime = names.PROCESS_UPTIME.prometheus
        assert by_title["Uptime"] == per_host(f"min({uptime})")
        assert by_title["Restarts (24h)"] == per_host(f"sum(resets({uptime}[24h]))")
        assert {"Heartbeat age", "Since last import", "Backlog oldest age", "Database"} <= set(by_title)

    def test_provider__points_at_the_dashboards_folder(self) -> None:
        (provider,) = load(PROVISIONING / "dashboards" / "mnemo.yaml")["providers"]
        assert provider["type"] == "file"
        assert provider["folder"] != load(PROVISIONING / "alerting" / "rules.yaml")["groups"][0]["folder"]
