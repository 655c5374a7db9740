"""The poller's view of the origins: one origin's bad annotation never hides another's repository."""

from __future__ import annotations

from typing import Any

import pytest

from controller_common import contract
from replicator.github_hosts import GitHubHosts
from replicator.origin_index import origins_by_repository, requirements_by_repository
from replicator.repository import parse_repository
from replicator.repository_poller import Requirements

HOSTS = GitHubHosts(api_url="http://127.0.0.1:1/api/v3")
DEEP = "[" * 2000 + "]" * 2000


def deployment(name: str, **annotations: str) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "ghcr.io/org/app:1"}]}}},
    }


GOOD = deployment(
    "good",
    **{contract.REPOSITORY_ANNOTATION: "org/good", contract.IDLE_EXPIRY_ANNOTATION: "3d"},
)


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        (contract.IDLE_EXPIRY_ANNOTATION, "99999999999d"),
        (contract.IDLE_EXPIRY_ANNOTATION, "3000000d"),
        (contract.REQUIRED_LABELS_ANNOTATION, "[" * 1000),
        (contract.REQUIRED_LABELS_ANNOTATION, DEEP),
        (contract.CONTAINERS_ANNOTATION, DEEP),
        (contract.ENV_ANNOTATION, '{"A": ' * 3000 + "1" + "}" * 3000),
        (contract.MAX_ENVIRONMENTS_ANNOTATION, "9" * 5000),
    ],
    ids=[
        "huge-duration",
        "overflowing-duration",
        "open-brackets",
        "deep-list",
        "deep-containers",
        "deep-env",
        "digits",
    ],
)
def test_a_bad_annotation_on_one_origin_leaves_the_others_polled(annotation: str, value: str) -> None:
    bad = deployment("bad", **{contract.REPOSITORY_ANNOTATION: "org/bad", annotation: value})
    origins = origins_by_repository([bad, GOOD], HOSTS)
    needs = requirements_by_repository([bad, GOOD], HOSTS)
    assert origins[parse_repository("org/good")] == ["shop/good"]
    assert needs[parse_repository("org/good")] == Requirements(commit_dates=True)
    assert parse_repository("org/bad") not in needs  # its reconcile reports the annotation


def test_repositories_on_unconfigured_hosts_are_never_polled() -> None:
    evil = deployment("evil", **{contract.REPOSITORY_ANNOTATION: "https://attacker.example/org/repo"})
    assert list(origins_by_repository([evil, GOOD], HOSTS)) == [parse_repository("org/good")]
    assert list(requirements_by_repository([evil, GOOD], HOSTS)) == [parse_repository("org/good")]


def test_a_malformed_object_in_the_cache_is_left_out() -> None:
    broken: dict[str, Any] = {"kind": "Deployment", "metadata": {"name": "x", "annotations": ["not", "a", "map"]}}
    assert list(origins_by_repository([broken, GOOD], HOSTS)) == [parse_repository("org/good")]
