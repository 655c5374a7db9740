"""The alerts and the dashboard in ``manifests/monitoring/`` speak the metrics the code exports.

The exported names and labels come from instantiating the real metric classes
(``controller_common.metrics.Metrics`` plus each controller's domain metrics) on a fresh registry,
so a renamed metric or label fails here instead of leaving a silent alert or an empty panel.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from controller_common.metrics import Metrics
from replicator.metrics import ReplicatorMetrics
from service_router.metrics import RouterMetrics
from shared_data import REPO_ROOT

Render = Callable[[str], list[dict[str, Any]]]

PREFIXES = {"replicator": "replicator", "service-router": "service_router"}
DOMAIN = {"replicator": ReplicatorMetrics, "service-router": RouterMetrics}
# Labels Prometheus adds to every scraped series (target labels) or to histogram buckets.
TARGET_LABELS = frozenset({"namespace", "pod", "job", "instance", "service", "endpoint", "container", "le"})
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created")}
DASHBOARD = REPO_ROOT / "manifests" / "monitoring" / "grafana" / "dashboard.json"
METRIC = re.compile(r"\b((?:replicator|service_router)_[a-zA-Z0-9_]+)\b")
SELECTOR = re.compile(r"\b((?:replicator|service_router)_[a-zA-Z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def exported(controller: str) -> dict[str, frozenset[str]]:
    """Every series name the controller exposes on /metrics, with its label names."""
    library = Metrics(PREFIXES[controller])
    domain = DOMAIN[controller].create(library)
    library.build_info("0.0.0")
    collectors = [*vars(library).values(), *(getattr(domain, f.name) for f in dataclasses.fields(domain))]
    series: dict[str, frozenset[str]] = {}
    for collector in collectors:
        if isinstance(collector, MetricWrapperBase):
            for suffix in SUFFIXES[collector._type]:
                series[collector._name + suffix] = frozenset(collector._labelnames)
    return series


EXPORTED = {**exported("replicator"), **exported("service-router")}


def _labels_of(metric: str) -> frozenset[str]:
    labels = EXPORTED[metric]
    # A domain label named like a target label is renamed by Prometheus (honorLabels off).
    renamed = {f"exported_{label}" for label in labels if label in TARGET_LABELS}
    return labels | renamed | TARGET_LABELS


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (not inside quoted label values or variables)."""
    return set(METRIC.findall(re.sub(r'"[^"]*"', '""', expr)))


def promql_problems(expr: str) -> list[str]:
    """Unknown metric names, unknown label names in selectors and groupings, in one expression."""
    problems = []
    metrics = metric_names(expr)
    problems += [f"unknown metric {m}" for m in sorted(metrics - EXPORTED.keys())]
    known = metrics & EXPORTED.keys()
    for metric, matchers in SELECTOR.findall(expr):
        if metric in EXPORTED:
            for label, _op, _value in MATCHER.findall(matchers):
                if label not in _labels_of(metric):
                    problems.append(f"{metric} has no label {label}")
    available = frozenset().union(TARGET_LABELS, *(_labels_of(m) for m in known))
    for group in GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in group.split(","))):
            if label not in available:
                problems.append(f"no metric in the expression has label {label}")
    return problems


def _rules(render: Render) -> list[dict[str, Any]]:
    return [
        rule
        for obj in render("monitoring")
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
        for rule in group["rules"]
    ]


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in _panels(dashboard) for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_the_exported_metric_names_follow_controller_runtime() -> None:
    for prefix in PREFIXES.values():
        for name in ("reconcile_total", "reconcile_errors_total", "reconcile_time_seconds_bucket", "workqueue_depth"):
            assert f"{prefix}_{name}" in EXPORTED


def test_every_alert_expression_uses_only_exported_metrics_and_labels(render: Render) -> None:
    problems = {rule["alert"]: promql_problems(rule["expr"]) for rule in _rules(render)}
    assert {alert: found for alert, found in problems.items() if found} == {}


@pytest.mark.parametrize("controller", PREFIXES)
def test_every_alert_names_a_metric_of_its_own_controller(controller: str, render: Render) -> None:
    rule = next(
        o for o in render("monitoring") if o["kind"] == "PrometheusRule" and o["metadata"]["name"] == controller
    )
    assert rule["metadata"]["namespace"] == f"{controller}-system"
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            names = metric_names(alert["expr"])
            assert all(n.startswith(PREFIXES[controller] + "_") for n in names), alert["alert"]
            assert names or f'job="{controller}"' in alert["expr"], alert["alert"]


def test_the_alerts_cover_what_operators_are_paged_for(render: Render) -> None:
    """Reconcile errors, GitHub rate limit, webhook failures, stuck routes/environments, down, no leader."""
    used = set().union(*(metric_names(rule["expr"]) for rule in _rules(render)))
    assert {
        "replicator_reconcile_errors_total",
        "service_router_reconcile_errors_total",
        "replicator_github_rate_limit_remaining",
        "replicator_webhook_deliveries_total",
        "replicator_workqueue_depth",
        "service_router_workqueue_depth",
        "replicator_leader_election_master_status",
        "service_router_leader_election_master_status",
        "service_router_conflicts_total",
    } <= used
    for rule in _rules(render):
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
    names = [rule["alert"] for rule in _rules(render)]
    assert len(names) == len(set(names))


def test_webhook_result_values_in_alerts_are_ones_the_receiver_reports(render: Render) -> None:
    source = (REPO_ROOT / "replicator" / "src" / "replicator" / "webhook.py").read_text()
    for rule in _rules(render):
        for metric, matchers in SELECTOR.findall(rule["expr"]):
            if metric != "replicator_webhook_deliveries_total":
                continue
            for label, _op, value in MATCHER.findall(matchers):
                if label == "result":
                    assert all(f'"{v}"' in source for v in value.split("|")), value


@pytest.mark.parametrize("controller", PREFIXES)
def test_alert_jobs_are_the_ones_the_service_monitor_produces(controller: str, render: Render) -> None:
    monitor = next(
        o for o in render("monitoring") if o["kind"] == "ServiceMonitor" and o["metadata"]["name"] == controller
    )
    service = next(
        o for o in render(controller) if o["kind"] == "Service" and o["metadata"]["name"].endswith("-metrics")
    )
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    jobs = {v for rule in _rules(render) for label, _op, v in MATCHER.findall(rule["expr"]) if label == "job"}
    assert job in jobs


@pytest.mark.parametrize("controller", PREFIXES)
def test_the_service_monitor_scrapes_the_metrics_service_of_its_controller(controller: str, render: Render) -> None:
    monitor = next(
        o for o in render("monitoring") if o["kind"] == "ServiceMonitor" and o["metadata"]["name"] == controller
    )
    objects = render(controller)
    selected = [
        o
        for o in objects
        if o["kind"] == "Service"
        and o["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
        and monitor["spec"]["selector"]["matchLabels"].items() <= o["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == [f"{controller}-metrics"]
    ports = {p["name"] for p in selected[0]["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    assert all(e.get("honorLabels") is False for e in monitor["spec"]["endpoints"])


def test_every_dashboard_query_uses_only_exported_metrics_and_labels() -> None:
    problems = {expr: promql_problems(expr) for expr in _dashboard_exprs(_dashboard())}
    assert {expr: found for expr, found in problems.items() if found} == {}


def test_the_dashboard_shows_environments_routes_reconciles_github_and_webhooks() -> None:
    used = set().union(*(metric_names(expr) for expr in _dashboard_exprs(_dashboard())))
    for prefix in PREFIXES.values():
        assert {
            f"{prefix}_reconcile_total",
            f"{prefix}_reconcile_errors_total",
            f"{prefix}_reconcile_time_seconds_bucket",
            f"{prefix}_workqueue_depth",
        } <= used
    assert {
        "replicator_environments",
        "service_router_managed_routes",
        "replicator_github_rate_limit_remaining",
        "replicator_github_requests_total",
        "replicator_webhook_deliveries_total",
    } <= used


def test_the_dashboard_is_well_formed_grafana_json() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in _panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            assert set(re.findall(r"\$(\w+)", target["expr"])) <= variables | {"__rate_interval"}, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


def test_the_dashboard_config_map_carries_the_dashboard_json(render: Render) -> None:
    (config_map,) = render("monitoring/grafana")
    assert config_map["kind"] == "ConfigMap" and config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = config_map["data"].values()
    assert json.loads(content) == _dashboard()
