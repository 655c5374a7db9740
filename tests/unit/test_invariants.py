"""The invariant checker itself: a converged state passes, and each kind of violation is caught.

Hand-made snapshots of one origin (``echo``) with two open pull requests, cloned and routed as the
controllers leave them; every case breaks one property and must be reported under its kind.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from invariants import KINDS, Expectations, Violation, check, report

from controller_common import contract

NS = "default"
ORIGIN = "echo"
HEADER = contract.routing_header(ORIGIN, NS)
SHA = {1: "1" * 40, 2: "2" * 40}

State = dict[str, Any]


def _origin() -> dict[str, Any]:
    return {
        "metadata": {
            "name": ORIGIN,
            "namespace": NS,
            "uid": "u-echo",
            "resourceVersion": "10",
            "generation": 1,
            "labels": {"app": ORIGIN},
            "annotations": {contract.REPOSITORY_ANNOTATION: "https://github.com/mercari/echo"},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": ORIGIN}},
            "template": {
                "metadata": {"labels": {"app": ORIGIN, "version": "v1"}},
                "spec": {"containers": [{"name": ORIGIN, "image": "ghcr.io/mercari/echo:1.0"}]},
            },
        },
        "status": {"replicas": 3},
    }


def _service(name: str, selector: dict[str, str], **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "11", "annotations": annotations or None},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def _route(name: str, host: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "route": [{"destination": {"host": host}}], **extra}


def _managed_route(clone: str, *, name: str | None = None, header: str = HEADER) -> dict[str, Any]:
    return {
        "name": name or contract.managed_route_name(clone),
        "match": [{"headers": {header: {"exact": contract.routing_value(clone, NS)}}}],
        "route": [{"destination": {"host": contract.service_host(clone, NS)}}],
    }


def _virtual_service(http: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": ORIGIN,
            "namespace": NS,
            "resourceVersion": "12",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"hosts": [contract.service_host(ORIGIN, NS)], "http": http},
    }


def _ownership(number: int) -> dict[str, str]:
    return {
        contract.MANAGED_BY_LABEL: contract.REPLICATOR_MANAGER,
        contract.ORIGIN_LABEL: ORIGIN,
        contract.PULL_REQUEST_LABEL: str(number),
        contract.CLONE_LABEL: f"{ORIGIN}-pr{number}",
    }


def _clone_deployment(number: int) -> dict[str, Any]:
    clone = f"{ORIGIN}-pr{number}"
    return {
        "metadata": {
            "name": clone,
            "namespace": NS,
            "labels": _ownership(number),
            "annotations": {contract.CLONE_ORIGIN_ANNOTATION: ORIGIN, contract.CLONE_HEAD_SHA_ANNOTATION: SHA[number]},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {contract.CLONE_LABEL: clone}},
            "template": {
                "metadata": {"labels": {contract.CLONE_LABEL: clone, "version": "v1"}},
                "spec": {"containers": [{"name": ORIGIN, "image": f"ghcr.io/mercari/echo:pr-{number}"}]},
            },
        },
    }


def _clone_service(number: int) -> dict[str, Any]:
    clone = f"{ORIGIN}-pr{number}"
    service = _service(
        clone,
        {contract.CLONE_LABEL: clone},
        **{contract.ORIGIN_SERVICE_ANNOTATION: ORIGIN, contract.CLONE_ORIGIN_ANNOTATION: ORIGIN},
    )
    service["metadata"]["labels"] = _ownership(number)
    service["metadata"]["finalizers"] = [contract.ROUTER_FINALIZER]
    return service


def _pull(number: int, *, state: str = "open", draft: bool = False) -> dict[str, Any]:
    repo = {"full_name": "mercari/echo"}
    return {
        "number": number,
        "state": state,
        "draft": draft,
        "labels": [],
        "head": {"sha": SHA.get(number, "f" * 40), "ref": f"feature-{number}", "repo": repo},
        "base": {"ref": "main", "repo": repo},
        "updated_at": "2026-01-01T00:00:00Z",
    }


def _controllers() -> list[dict[str, Any]]:
    return [{"name": n, "alive": True, "ready": True, "leading": True} for n in ("replicator", "service-router")]


def converged() -> tuple[State, State, dict[str, list[dict[str, Any]]]]:
    """Before: the origin as the user wrote it. After: two PRs cloned and routed."""
    default = _route("default", contract.service_host(ORIGIN, NS), timeout="5s")
    before = {
        "deployments": [_origin()],
        "services": [_service(ORIGIN, {"app": ORIGIN})],
        "virtualservices": [_virtual_service([default])],
        "controllers": _controllers(),
    }
    after = copy.deepcopy(before)
    after["deployments"] += [_clone_deployment(1), _clone_deployment(2)]
    after["services"] += [_clone_service(1), _clone_service(2)]
    after["virtualservices"][0]["spec"]["http"] = [
        _managed_route("echo-pr1"),
        _managed_route("echo-pr2"),
        copy.deepcopy(default),
    ]
    return before, after, {"mercari/echo": [_pull(1), _pull(2)]}


def _find(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in items if i["metadata"]["name"] == name)


def _http(state: State) -> list[dict[str, Any]]:
    return _find(state["virtualservices"], ORIGIN)["spec"]["http"]


def _drop(items: list[dict[str, Any]], name: str) -> None:
    items.remove(_find(items, name))


def _both(change: Callable[[State], None]) -> Callable[[State, State, Any], None]:
    return lambda before, after, _github: (change(before), change(after))  # type: ignore[func-returns-value]


def _annotate_origin(key: str, value: str | None) -> Callable[[State], None]:
    def change(state: State) -> None:
        annotations = _find(state["deployments"], ORIGIN)["metadata"]["annotations"]
        if value is None:
            annotations.pop(key)
        else:
            annotations[key] = value

    return change


def _duplicate_clone(_b: State, after: State, _g: Any) -> None:
    copied = _clone_deployment(1)
    copied["metadata"]["name"] = "echo-pr1-copy"
    after["deployments"].append(copied)


def _set_head(_b: State, _a: State, github: Any) -> None:
    github["mercari/echo"][0]["head"]["sha"] = "9" * 40


def _close_second(_b: State, _a: State, github: Any) -> None:
    github["mercari/echo"][1]["state"] = "closed"


def _select_origin_pods(_b: State, after: State, _g: Any) -> None:
    _find(after["services"], "echo-pr1")["spec"]["selector"] = {"app": ORIGIN}


def _label_clone_pods_like_origin(_b: State, after: State, _g: Any) -> None:
    _find(after["deployments"], "echo-pr1")["spec"]["template"]["metadata"]["labels"]["app"] = ORIGIN


def _route_twice(_b: State, after: State, _g: Any) -> None:
    _http(after).insert(1, _managed_route("echo-pr1", name="service-router--echo-pr1--1"))


def _move_after_default(_b: State, after: State, _g: Any) -> None:
    http = _http(after)
    http.append(http.pop(0))


def _route_to_ghost(_b: State, after: State, _g: Any) -> None:
    _http(after).insert(0, _managed_route("echo-pr9"))


def _header_of_another_origin(_b: State, after: State, _g: Any) -> None:
    _http(after)[0] = _managed_route("echo-pr1", header=contract.routing_header("web", NS))


def _split_with_origin(_b: State, after: State, _g: Any) -> None:
    route = _http(after)[0]
    route["route"] = [
        {"destination": {"host": contract.service_host("echo-pr1", NS)}, "weight": 50},
        {"destination": {"host": contract.service_host(ORIGIN, NS)}, "weight": 50},
    ]


def _look_alike(_b: State, after: State, _g: Any) -> None:
    _http(after).insert(0, _route("service-router--echo-pr3", contract.service_host("echo-pr3", NS)))


def _edit_default(_b: State, after: State, _g: Any) -> None:
    _http(after)[-1]["timeout"] = "30s"


def _scale_origin(_b: State, after: State, _g: Any) -> None:
    _find(after["deployments"], ORIGIN)["spec"]["replicas"] = 1


def _delete_clone_service(_b: State, after: State, _g: Any) -> None:
    _find(after["services"], "echo-pr1")["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"


def _finalize_origin(_b: State, after: State, _g: Any) -> None:
    _find(after["services"], ORIGIN)["metadata"]["finalizers"] = [contract.ROUTER_FINALIZER]


def _router_not_ready(_b: State, after: State, _g: Any) -> None:
    after["controllers"][1]["ready"] = False


CASES: dict[str, Callable[[State, State, Any], None]] = {
    "unchecked-origin": _both(_annotate_origin(contract.IMAGE_GATE_ANNOTATION, "build")),
    "missing-clone": lambda _b, after, _g: _drop(after["deployments"], "echo-pr2"),
    "duplicate-clone": _duplicate_clone,
    "unexpected-clone": _close_second,
    "stale-head": _set_head,
    "missing-clone-service": lambda _b, after, _g: _drop(after["services"], "echo-pr2"),
    "orphan-clone": _both(_annotate_origin(contract.REPOSITORY_ANNOTATION, None)),
    "clone-service-selects-foreign-pods": _select_origin_pods,
    "origin-service-selects-clone-pods": _label_clone_pods_like_origin,
    "unrouted-clone": lambda _b, after, _g: _http(after).pop(1),
    "duplicate-route": _route_twice,
    "misplaced-route": _move_after_default,
    "route-to-missing-service": _route_to_ghost,
    "wrong-header": _header_of_another_origin,
    "route-to-origin": _split_with_origin,
    "malformed-managed-route": _look_alike,
    "foreign-route-changed": _edit_default,
    "foreign-object-changed": _scale_origin,
    "foreign-object-deleted": lambda _b, after, _g: _drop(after["services"], ORIGIN),
    "finalizer-left": _delete_clone_service,
    "stray-finalizer": _finalize_origin,
    "no-live-leader": _router_not_ready,
}


def test_every_kind_has_a_case() -> None:
    assert sorted(CASES) == sorted(KINDS)


def test_a_converged_state_holds_every_invariant() -> None:
    before, after, github = converged()
    assert check(before, after, github) == []


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_violation_is_detected(kind: str) -> None:
    before, after, github = converged()
    CASES[kind](before, after, github)
    found = check(before, after, github)
    assert kind in {v.kind for v in found}, report(found)
    assert all(v.kind in KINDS for v in found)


def test_fields_the_server_owns_may_change() -> None:
    before, after, github = converged()
    origin = _find(after["deployments"], ORIGIN)
    origin["metadata"].update(resourceVersion="99", generation=1, managedFields=[{"manager": "kube"}])
    origin["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2"
    origin["status"] = {"replicas": 3, "readyReplicas": 3}
    _find(after["virtualservices"], ORIGIN)["metadata"]["resourceVersion"] = "100"
    assert check(before, after, github) == []


def test_a_look_alike_route_that_was_there_before_is_foreign_and_kept() -> None:
    """A route of someone else's named like the router's stays as it was; the router names its own ``--1``."""
    before, after, github = converged()
    look_alike = _route("service-router--echo-pr1", contract.service_host("legacy", NS))
    _http(before).insert(0, copy.deepcopy(look_alike))
    _http(after)[0] = _managed_route("echo-pr1", name="service-router--echo-pr1--1")
    _http(after).append(copy.deepcopy(look_alike))  # moved to the end: a change of order is a change
    assert [v.kind for v in check(before, after, github)] == ["foreign-route-changed"]
    _http(after).pop()
    _http(after).insert(0, look_alike)
    assert check(before, after, github) == []


def test_eligibility_follows_the_origins_policy() -> None:
    """A draft gets no clone by default; with include-drafts it must have one."""
    before, after, github = converged()
    github["mercari/echo"].append(_pull(3, draft=True))
    assert check(before, after, github) == []
    for state in (before, after):
        _annotate_origin(contract.INCLUDE_DRAFTS_ANNOTATION, "true")(state)
    assert [v.kind for v in check(before, after, github)] == ["missing-clone"]


def test_expected_numbers_replace_the_derived_ones() -> None:
    before, after, github = converged()
    only_one = Expectations(environments={f"{NS}/{ORIGIN}": [1]})
    assert {v.kind for v in check(before, after, github, only_one)} == {"unexpected-clone"}
    gated = Expectations(environments={f"{NS}/{ORIGIN}": [1, 2]})
    for state in (before, after):
        _annotate_origin(contract.IMAGE_GATE_ANNOTATION, "build")(state)
    assert check(before, after, github, gated) == []


def test_objects_the_test_changed_are_not_compared() -> None:
    before, after, github = converged()
    _scale_origin(before, after, github)
    assert check(before, after, github, Expectations(changed={f"Deployment/{NS}/{ORIGIN}"})) == []


def test_a_router_only_world_checks_no_pull_requests() -> None:
    """Without the replicator (hand-made clone Services), only the router's invariants apply."""
    before, after, _github = converged()
    after["controllers"] = after["controllers"][1:]
    assert check(before, after, {}, Expectations(controllers=("service-router",))) == []


def test_an_origin_that_is_no_service_needs_no_route() -> None:
    before, after, github = converged()
    ghost = _service("ghost-pr1", {"a": "b"}, **{contract.ORIGIN_SERVICE_ANNOTATION: "ghost"})
    after["services"].append(ghost)
    assert check(before, after, github) == []


def test_the_report_names_kind_subject_and_detail() -> None:
    text = report([Violation("missing-clone", "Deployment/default/echo", "PR #2 has no clone Deployment")])
    assert text == "1 invariant(s) broken:\n  [missing-clone] Deployment/default/echo: PR #2 has no clone Deployment"
