"""Pure dict helpers: keys, selectors, owner references."""

from __future__ import annotations

import re
from typing import Any

import pytest

from controller_common import objects

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "echo", "namespace": "qa", "uid": "u-1", "labels": {"app": "echo"}},
}


@pytest.mark.parametrize(
    ("obj", "key"),
    [
        (DEPLOYMENT, "qa/echo"),
        ({"metadata": {"name": "qa"}}, "qa"),
        ({}, ""),
    ],
    ids=["namespaced", "cluster-scoped", "empty"],
)
def test_object_key(obj: dict[str, Any], key: str) -> None:
    assert objects.object_key(obj) == key


@pytest.mark.parametrize(
    ("key", "expected"),
    [("qa/echo", ("qa", "echo")), ("echo", (None, "echo"))],
    ids=["namespaced", "cluster-scoped"],
)
def test_split_key(key: str, expected: tuple[str | None, str]) -> None:
    assert objects.split_key(key) == expected


@pytest.mark.parametrize("key", ["", "a/b/c", "/b", "a/"], ids=["empty", "three-parts", "no-ns", "no-name"])
def test_split_key_rejects_malformed(key: str) -> None:
    with pytest.raises(ValueError):
        objects.split_key(key)


def test_accessors_tolerate_missing_and_null_metadata() -> None:
    obj = {"metadata": {"name": "x", "labels": None, "annotations": None}}
    assert objects.labels(obj) == {}
    assert objects.annotations(obj) == {}
    assert objects.labels({}) == {}


def test_accessors_return_copies() -> None:
    obj = objects.deep_copy(DEPLOYMENT)
    objects.labels(obj)["new"] = "x"
    assert "new" not in obj["metadata"]["labels"]


LABELS = {"app": "echo", "tier": "web"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (None, True),
        ({}, True),
        ({"matchLabels": {"app": "echo"}}, True),
        ({"matchLabels": {"app": "other"}}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["api"]}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, False),
        (
            {
                "matchLabels": {"app": "echo"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["api"]}],
            },
            False,
        ),
    ],
    ids=[
        "none-matches-all",
        "empty-matches-all",
        "labels-match",
        "labels-differ",
        "in",
        "in-miss",
        "notin",
        "notin-absent-key",
        "notin-miss",
        "exists",
        "exists-miss",
        "doesnotexist",
        "doesnotexist-miss",
        "unknown-operator-fails-closed",
        "both-must-hold",
    ],
)
def test_match_labels(selector: dict[str, Any] | None, matches: bool) -> None:
    assert objects.match_labels(selector, LABELS) is matches


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ({"app": "echo"}, True),
        ({"app": "echo", "tier": "web"}, True),
        ({"app": "echo", "zone": "a"}, False),
        ({}, False),
        (None, False),
    ],
    ids=["subset", "exact", "extra-key", "empty-selects-nothing", "none-selects-nothing"],
)
def test_selector_matches_labels(selector: dict[str, str] | None, matches: bool) -> None:
    assert objects.selector_matches_labels(selector, LABELS) is matches


def test_owner_reference() -> None:
    ref = objects.owner_reference(DEPLOYMENT)
    assert ref == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "echo",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": False,
    }
    owned = {"metadata": {"ownerReferences": [ref]}}
    assert objects.is_owned_by(owned, DEPLOYMENT)
    assert not objects.is_owned_by({"metadata": {}}, DEPLOYMENT)


def test_owner_reference_requires_uid() -> None:
    with pytest.raises(ValueError, match="uid"):
        objects.owner_reference({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})


@pytest.mark.parametrize(
    ("meta", "deleting"),
    [({"deletionTimestamp": "2026-01-01T00:00:00Z"}, True), ({}, False), ({"deletionTimestamp": None}, False)],
    ids=["set", "absent", "null"],
)
def test_is_being_deleted(meta: dict[str, Any], deleting: bool) -> None:
    assert objects.is_being_deleted({"metadata": meta}) is deleting


def test_now_rfc3339_is_kubernetes_time() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", objects.now_rfc3339())


def _deployment(**meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "echo-pr1", "generation": 2, "labels": {"a": "1"}, **meta},
        "spec": {"replicas": 1},
        "status": {"readyReplicas": 0},
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["status"].update(readyReplicas=1), False),
        (lambda d: d["metadata"].update(resourceVersion="9"), False),
        (lambda d: d["metadata"].update(generation=3), True),
        (lambda d: d["spec"].update(replicas=2), True),
        (lambda d: d["metadata"]["labels"].update(a="2"), True),
        (lambda d: d["metadata"].update(annotations={"x": "y"}), True),
        (lambda d: d["metadata"].update(finalizers=["f"]), True),
        (lambda d: d["metadata"].update(ownerReferences=[{"uid": "u"}]), True),
        (lambda d: d["metadata"].update(deletionTimestamp="2026-12-08T00:00:00Z"), True),
    ],
    ids=[
        "status",
        "resource-version",
        "generation",
        "spec",
        "labels",
        "annotations",
        "finalizers",
        "owners",
        "deleted",
    ],
)
def test_changed_beyond_status(change: Any, expected: bool) -> None:
    import copy

    old = _deployment()
    new = copy.deepcopy(old)
    change(new)
    assert objects.changed_beyond_status(old, new) is expected


def test_a_resync_counts_as_a_change() -> None:
    same = _deployment()
    assert objects.changed_beyond_status(same, same)
