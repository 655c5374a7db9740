"""labelSelector and fieldSelector on list, with kube-apiserver's syntax and errors."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api.errors import ApiError
from emulators.kube_api.selectors import parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=api", True),
        ("missing!=x", True),
        ("app in (web,api)", True),
        ("app in (api)", False),
        ("app notin (api, db)", True),
        ("app notin (web)", False),
        ("missing notin (web)", True),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=web,env in (prod),!canary", True),
        ("app=web,env=dev", False),
        ("", True),
    ],
)
def test_label_selector_operators(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector)(LABELS) is matches


@pytest.mark.parametrize("selector", ["=x", "a b c", "-bad=x", "app=with space", "app in (a"])
def test_malformed_label_selectors_are_bad_requests(selector: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(selector)({})
    assert err.value.code == 400


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("metadata.name=web", True),
        ("metadata.name==web", True),
        ("metadata.name!=web", False),
        ("metadata.namespace=default", True),
        ("metadata.namespace=default,metadata.name=api", False),
    ],
)
def test_field_selector_operators(selector: str, matches: bool) -> None:
    obj = {"metadata": {"name": "web", "namespace": "default"}}
    assert parse_field_selector(selector, "configmaps")(obj) is matches


def test_unsupported_field_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.replicas=1", "deployments")
    assert err.value.code == 400


def test_event_field_selectors_for_involved_object() -> None:
    event = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Service", "name": "web"}}
    assert parse_field_selector("involvedObject.kind=Service,involvedObject.name=web", "events")(event)


def test_list_filters_by_label_selector(core: client.CoreV1Api) -> None:
    for name, team in (("a", "x"), ("b", "y"), ("c", "x")):
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"team": team}}})
    found = core.list_namespaced_config_map("default", label_selector="team in (x)").items
    assert [c.metadata.name for c in found] == ["a", "c"]


def test_list_filters_by_field_selector_across_namespaces(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "same"}})
    core.create_namespaced_config_map("other", {"metadata": {"name": "same"}})
    found = core.list_config_map_for_all_namespaces(field_selector="metadata.namespace!=default").items
    assert [(c.metadata.namespace, c.metadata.name) for c in found] == [("other", "same")]


def test_bad_selector_over_http_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("default", field_selector="data.x=1")
    assert err.value.status == 400
