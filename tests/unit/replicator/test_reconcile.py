"""``CloneReconciler`` against a fake at our own boundary: the actions it takes, per policy.

The Kubernetes client is a recording fake holding the objects (the informer caches read from the
same store), GitHub is a fake lister behind a real ``RepositoryPoller``; assertions are on the
writes, Events and the resulting objects, not on call internals.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller_common import contract, errors
from controller_common.metrics import Metrics
from replicator.github_source import GitHubError, Listing
from replicator.metrics import ReplicatorMetrics
from replicator.pull_request import PullRequest
from replicator.reconcile import CLONES_OF_INDEX, CloneReconciler, clones_of_index
from replicator.repository import Repository
from replicator.repository_poller import RepositoryPoller, Requirements

REPO = Repository(host="github.com", owner="org", name="repo")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
Obj = dict[str, Any]


@dataclass
class FakeCluster:
    """Objects by (kind, namespace, name) plus the writes made, as ``verb kind/name``."""

    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)
    uid: int = 0

    def put(self, obj: Obj) -> Obj:
        kind = obj.get("kind") or ("Service" if "ports" in obj.get("spec", {}) else "Deployment")
        obj = {**copy.deepcopy(obj), "kind": kind}
        self.uid += 1
        obj["metadata"].setdefault("uid", f"uid-{self.uid}")
        obj["metadata"]["resourceVersion"] = str(self.uid)
        self.objects[(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def _write(self, verb: str, obj: Obj) -> None:
        key = f"{verb} {obj['kind']}/{obj['metadata']['name']}"
        if key in self.fail:
            raise self.fail[key]
        self.writes.append(key)

    def create(self, _resource: Any, obj: Obj) -> Obj:
        self._write("create", obj)
        return self.put(obj)  # as the server answers: with the uid it assigned

    def replace(self, _resource: Any, obj: Obj) -> Obj:
        self._write("update", obj)
        self.put(obj)
        return obj

    def delete(self, resource: Any, namespace: str, name: str, **_: Any) -> None:
        kind = resource.kind
        self._write("delete", {"kind": kind, "metadata": {"name": name}})
        self.objects.pop((kind, namespace, name), None)


@dataclass
class Cache:
    cluster: FakeCluster
    kind: str

    def get(self, key: str) -> Obj | None:
        namespace, name = key.split("/", 1)
        return self.cluster.objects.get((self.kind, namespace, name))

    def list_namespace(self, namespace: str) -> list[Obj]:
        return [o for (k, ns, _), o in self.cluster.objects.items() if k == self.kind and ns == namespace]

    def by_index(self, name: str, value: str) -> list[Obj]:
        assert name == CLONES_OF_INDEX
        return [o for (k, _, _), o in self.cluster.objects.items() if k == self.kind and value in clones_of_index(o)]


@dataclass
class Lister:
    answer: Listing | GitHubError
    gates: dict[tuple[str, str], bool | None] = field(default_factory=dict)
    dates: dict[str, datetime] = field(default_factory=dict)

    def open_pull_requests(self, repository: Repository) -> Listing:
        if isinstance(self.answer, GitHubError):
            raise self.answer
        return self.answer

    def commit_date(self, repository: Repository, sha: str) -> datetime | None:
        return self.dates.get(sha)

    def gate_state(self, repository: Repository, sha: str, name: str) -> bool | None:
        return self.gates.get((name, sha))

    def forget_commits(self, repository: Repository, keep: set[str]) -> None:
        return None


def pr(number: int, *, sha: str = "", **fields: Any) -> PullRequest:
    return PullRequest(
        number=number,
        head_sha=sha or f"{number:040d}",
        head_ref=f"branch-{number}",
        base_ref=fields.pop("base_ref", "main"),
        updated_at=fields.pop("updated_at", NOW - timedelta(minutes=number)),
        **fields,
    )


def origin(**annotations: str) -> Obj:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": "echo",
            "namespace": "shop",
            "labels": {"app": "echo"},
            "annotations": {contract.REPOSITORY_ANNOTATION: "org/repo", **annotations},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "echo"}},
            "template": {
                "metadata": {"labels": {"app": "echo"}},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/org/echo:1.0"}]},
            },
        },
    }


SERVICE: Obj = {
    "kind": "Service",
    "metadata": {"name": "echo", "namespace": "shop"},
    "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80}]},
}


@dataclass
class Harness:
    cluster: FakeCluster
    lister: Lister
    poller: RepositoryPoller
    reconcile: CloneReconciler
    events: list[tuple[str, str, str]]

    def run(self) -> None:
        self.poller.request_refresh(REPO)  # as a webhook would: GitHub changed, fetch now
        self.poller.poll_once()
        self.reconcile("shop/echo")

    def clones(self) -> dict[str, str]:
        """Clone Deployment name -> head sha it runs."""
        return {
            name: o["metadata"]["annotations"][contract.CLONE_HEAD_SHA_ANNOTATION]
            for (kind, _, name), o in self.cluster.objects.items()
            if kind == "Deployment" and name != "echo"
        }

    def reasons(self) -> list[str]:
        return [reason for reason, _, _ in self.events]


@pytest.fixture
def harness() -> Callable[..., Harness]:
    def build(answer: Listing | GitHubError, *, annotations: dict[str, str] | None = None) -> Harness:
        cluster = FakeCluster()
        cluster.put(origin(**(annotations or {})))
        cluster.put(SERVICE)
        lister = Lister(answer)
        deployments = Cache(cluster, "Deployment")
        needs = Requirements(commit_dates=True, gates=frozenset({"image"}))
        poller = RepositoryPoller(
            source=lister,
            interval=60,
            origins_by_repository=lambda: {REPO: ["shop/echo"]},
            requirements=lambda: {REPO: needs},
            enqueue=lambda _key: None,
        )
        events: list[tuple[str, str, str]] = []
        reconcile = CloneReconciler(
            client=cluster,  # type: ignore[arg-type]
            deployments=deployments,
            services=Cache(cluster, "Service"),
            poller=poller,
            record_event=lambda involved, **kw: events.append((kw["reason"], kw["message"], kw.get("event_type", ""))),
            metrics=ReplicatorMetrics.create(Metrics("test")),
            clock=NOW.timestamp,
        )
        return Harness(cluster, lister, poller, reconcile, events)

    return build


def test_each_policy_skip_is_reported_once_and_only_selected_prs_get_clones(harness: Callable[..., Harness]) -> None:
    prs = (pr(1), pr(2, draft=True), pr(3, is_fork=True), pr(4, labels=frozenset({"wip"})), pr(5))
    h = harness(
        Listing(prs, changed=True),
        annotations={contract.EXCLUDED_LABELS_ANNOTATION: "wip", contract.MAX_ENVIRONMENTS_ANNOTATION: "1"},
    )
    h.run()
    assert set(h.clones()) == {"echo-pr1"}  # the most recently updated of 1 and 5
    assert h.reasons().count("PullRequestsSkipped") == 1 and h.reasons().count("EnvironmentLimitReached") == 1
    skipped = next(m for r, m, _ in h.events if r == "PullRequestsSkipped")
    assert "draft: #2" in skipped and "fork: #3" in skipped and "excluded-label: #4" in skipped
    # One write per object: the clone Service was created with its owner reference already.
    assert h.cluster.writes == ["create Deployment/echo-pr1", "create Service/echo-pr1"]
    clone = h.cluster.objects[("Deployment", "shop", "echo-pr1")]
    service = h.cluster.objects[("Service", "shop", "echo-pr1")]
    owners = {(r["kind"], r["name"], r["uid"]) for r in service["metadata"]["ownerReferences"]}
    assert ("Deployment", "echo-pr1", clone["metadata"]["uid"]) in owners
    writes = len(h.cluster.writes)
    h.events.clear()
    h.run()
    assert h.events == [] and len(h.cluster.writes) == writes, "steady state: no write, no Event"


def test_image_gate_skips_new_prs_and_holds_existing_clones_on_their_commit(harness: Callable[..., Harness]) -> None:
    h = harness(Listing((pr(1, sha="a" * 40),), changed=True), annotations={contract.IMAGE_GATE_ANNOTATION: "image"})
    h.run()
    assert h.clones() == {} and "image-pending: #1" in h.events[0][1]
    h.lister.gates[("image", "a" * 40)] = True
    h.run()
    assert h.clones() == {"echo-pr1": "a" * 40}
    h.lister.answer = Listing((pr(1, sha="b" * 40),), changed=True)
    h.run()
    assert h.clones() == {"echo-pr1": "a" * 40}
    assert any(r == "ImageNotReady" and "bbbbbbb" in m for r, m, _ in h.events)
    h.lister.gates[("image", "b" * 40)] = False
    h.run()
    assert h.clones() == {"echo-pr1": "a" * 40}, "a failed build keeps the previous commit too"
    h.lister.gates[("image", "b" * 40)] = True
    h.run()
    assert h.clones() == {"echo-pr1": "b" * 40}


def test_idle_expiry_uses_the_head_commit_date_and_requeues_for_the_next_expiry(
    harness: Callable[..., Harness],
) -> None:
    fresh, stale = pr(1, sha="f" * 40), pr(2, sha="e" * 40, labels=frozenset())
    h = harness(
        Listing((fresh, stale), changed=True),
        annotations={contract.IDLE_EXPIRY_ANNOTATION: "1h", contract.KEEP_LABEL_ANNOTATION: "keep"},
    )
    h.lister.dates = {"f" * 40: NOW - timedelta(minutes=50), "e" * 40: NOW - timedelta(hours=3)}
    with pytest.raises(errors.RequeueAfter) as requeue:
        h.run()
    assert set(h.clones()) == {"echo-pr1"} and 600 <= requeue.value.seconds <= 602
    h.lister.answer = Listing((fresh, pr(2, sha="e" * 40, labels=frozenset({"Keep"}))), changed=True)
    with pytest.raises(errors.RequeueAfter):
        h.run()
    assert set(h.clones()) == {"echo-pr1", "echo-pr2"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({contract.MAX_ENVIRONMENTS_ANNOTATION: "lots"}, "InvalidAnnotation"),
        ({contract.IMAGE_TEMPLATE_ANNOTATION: "{image}:{nope}"}, "InvalidAnnotation"),
        ({contract.REPLICATION_PREFIX + "max-enviroments": "2"}, "InvalidAnnotation"),
    ],
    ids=["bad-number", "unknown-placeholder", "typo-key"],
)
def test_bad_annotation_warns_and_deletes_nothing(
    harness: Callable[..., Harness], change: dict[str, str], reason: str
) -> None:
    h = harness(Listing((pr(1),), changed=True))
    h.run()
    before = dict(h.cluster.objects)
    h.cluster.objects[("Deployment", "shop", "echo")]["metadata"]["annotations"].update(change)
    writes = list(h.cluster.writes)
    with pytest.raises(errors.PermanentError, match=reason):  # a failure, not a success, for the engine
        h.run()
    assert h.cluster.writes == writes and set(h.cluster.objects) == set(before)
    assert h.events[-1][0] == reason and h.events[-1][2] == "Warning"


def test_unknown_repository_warns_and_keeps_clones_and_origin_gone_deletes_them(
    harness: Callable[..., Harness],
) -> None:
    h = harness(Listing((pr(1),), changed=True))
    h.run()
    h.lister.answer = GitHubError("Not Found", status=404)
    h.poller.request_refresh(REPO)
    with pytest.raises(errors.PermanentError, match="RepositoryUnavailable"):
        h.run()
    assert set(h.clones()) == {"echo-pr1"}
    assert h.events[-1][0] == "RepositoryUnavailable" and h.events[-1][2] == "Warning"
    assert "does not exist" in h.events[-1][1] and "token" in h.events[-1][1], "the fix, not a raw URL"
    assert "http" not in h.events[-1][1]
    del h.cluster.objects[("Deployment", "shop", "echo")]
    h.reconcile("shop/echo")
    assert h.clones() == {} and not [k for k in h.cluster.objects if k[2].startswith("echo-pr")]


def test_failed_write_is_a_warning_event_and_raises_for_the_queue(harness: Callable[..., Harness]) -> None:
    h = harness(Listing((pr(1),), changed=True))
    h.cluster.fail["create Deployment/echo-pr1"] = errors.Forbidden("quota exceeded")
    with pytest.raises(errors.Forbidden):
        h.run()
    assert h.events[-1][0] == "CloneFailed" and "quota exceeded" in h.events[-1][1]


def test_origin_without_service_still_gets_a_clone_and_a_warning(harness: Callable[..., Harness]) -> None:
    h = harness(Listing((pr(1),), changed=True))
    del h.cluster.objects[("Service", "shop", "echo")]
    h.run()
    assert set(h.clones()) == {"echo-pr1"} and "NoService" in h.reasons()


@pytest.mark.parametrize(
    ("annotations", "prs", "cloned", "skip"),
    [
        ({}, (pr(1), pr(2, draft=True)), {1}, "draft: #2"),
        ({contract.INCLUDE_DRAFTS_ANNOTATION: "true"}, (pr(1), pr(2, draft=True)), {1, 2}, None),
        ({}, (pr(1), pr(2, is_fork=True)), {1}, "fork: #2"),
        ({contract.INCLUDE_FORKS_ANNOTATION: "true"}, (pr(1), pr(2, is_fork=True)), {1, 2}, None),
        ({contract.REQUIRED_LABELS_ANNOTATION: "qa,demo"}, (pr(1, labels=frozenset({"QA"})), pr(2)), {1}, "#2"),
        ({contract.EXCLUDED_LABELS_ANNOTATION: "wip"}, (pr(1), pr(2, labels=frozenset({"wip"}))), {1}, "#2"),
        ({contract.BASE_BRANCHES_ANNOTATION: "main,release/*"}, (pr(1), pr(2, base_ref="develop")), {1}, "#2"),
        ({contract.MAX_ENVIRONMENTS_ANNOTATION: "0"}, (pr(1),), set(), None),
    ],
    ids=["draft", "drafts-included", "fork", "forks-included", "required", "excluded", "base-branch", "cap-zero"],
)
def test_each_policy_annotation_decides_the_clones(
    harness: Callable[..., Harness],
    annotations: dict[str, str],
    prs: tuple[PullRequest, ...],
    cloned: set[int],
    skip: str | None,
) -> None:
    h = harness(Listing(prs, changed=True), annotations=annotations)
    h.run()
    assert set(h.clones()) == {f"echo-pr{n}" for n in cloned}
    if skip is not None:
        assert any(skip in message for reason, message, _ in h.events if reason == "PullRequestsSkipped")


@pytest.mark.parametrize(
    ("write", "error"),
    [
        ("create Deployment/echo-pr1", errors.AlreadyExists('deployments.apps "echo-pr1" already exists')),
        ("create Service/echo-pr1", errors.AlreadyExists('services "echo-pr1" already exists')),
        ("update Deployment/echo-pr1", errors.Conflict("the object has been modified")),
    ],
)
def test_a_write_racing_the_cache_is_a_quiet_requeue_counted_as_a_conflict(
    harness: Callable[..., Harness], write: str, error: errors.ApiError
) -> None:
    h = harness(Listing((pr(1),), changed=True))
    if write.startswith("update"):
        h.run()  # the clone exists; the next commit makes the reconcile update it
        h.lister.answer = Listing((pr(1, sha="f" * 40),), changed=True)
        h.events.clear()
    h.cluster.fail[write] = error
    with pytest.raises(errors.TransientError):
        h.run()
    assert "CloneFailed" not in h.reasons()
    verb, kind = write.split(" ")[0], write.split(" ")[1].split("/")[0]
    assert h.reconcile.metrics.write_conflicts.labels(kind=kind, action=verb)._value.get() == 1
    assert h.reconcile.metrics.origin_errors.labels(reason="write")._value.get() == 0
    del h.cluster.fail[write]  # the cache caught up: the retry converges
    h.run()
    assert h.clones() == {"echo-pr1": "f" * 40 if verb == "update" else f"{1:040d}"}


def test_an_origin_on_an_unconfigured_github_host_is_a_warning_naming_the_flag(harness: Callable[..., Harness]) -> None:
    h = harness(
        Listing((pr(1),), changed=True),
        annotations={contract.REPOSITORY_ANNOTATION: "https://attacker.example/org/repo"},
    )
    with pytest.raises(errors.PermanentError):
        h.run()
    assert h.clones() == {} and h.cluster.writes == []
    assert h.events[-1][0] == "UntrustedRepositoryHost" and h.events[-1][2] == "Warning"
    assert "--github-enterprise-api-url=attacker.example=" in h.events[-1][1]
    assert h.reconcile.metrics.origin_errors.labels(reason="repository-host")._value.get() == 1
