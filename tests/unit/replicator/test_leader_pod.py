"""The webhook-receiver label: on exactly the leader's Pod, never fatal, retried with backoff.

The pure decisions are table-driven; the writer thread runs against an in-memory fake of the
Pods at our own client boundary (``list`` and merge ``patch``), asserting on the resulting labels.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controller_common import contract, errors
from e2e_support import wait_until
from replicator.leader_pod import (
    SELECTOR,
    LabelChange,
    PodRef,
    WebhookReceiverLabel,
    label_failures_counter,
    label_patch,
    plan_changes,
    selector,
)

KEY = contract.WEBHOOK_RECEIVER_LABEL
SHARD_KEY = contract.WEBHOOK_RECEIVER_SHARD_LABEL
NAMESPACE = "replicator-system"


@pytest.mark.parametrize(
    ("leading", "labelled", "expected"),
    [
        pytest.param(False, None, [LabelChange("a", False)], id="standby-unobserved-clears-its-own"),
        pytest.param(False, ["a"], [LabelChange("a", False)], id="standby-labelled-clears-its-own"),
        pytest.param(False, [], [], id="standby-clean-nothing"),
        pytest.param(False, ["b"], [], id="standby-never-touches-others"),
        pytest.param(True, [], [LabelChange("a", True)], id="leader-labels-itself"),
        pytest.param(True, None, [LabelChange("a", True)], id="leader-unobserved-labels-itself"),
        pytest.param(True, ["a"], [], id="leader-already-labelled-nothing"),
        pytest.param(True, ["b", "a"], [LabelChange("b", False)], id="leader-clears-a-killed-leaders-leftover"),
        pytest.param(
            True,
            ["c", "b"],
            [LabelChange("a", True), LabelChange("b", False), LabelChange("c", False)],
            id="leader-labels-itself-first-then-clears-others",
        ),
    ],
)
def test_plan_puts_the_label_on_exactly_the_leaders_pod(
    leading: bool, labelled: list[str] | None, expected: list[LabelChange]
) -> None:
    assert list(plan_changes(own_pod="a", leading=leading, labelled=labelled)) == expected


@pytest.mark.parametrize(
    ("labelled", "value"),
    [pytest.param(True, "true", id="label"), pytest.param(False, None, id="unlabel-with-null")],
)
def test_label_patch_is_a_merge_patch_of_the_one_label(labelled: bool, value: str | None) -> None:
    assert label_patch(labelled) == {"metadata": {"labels": {KEY: value}}}
    assert f"{KEY}=true" == SELECTOR


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, None, id="no-pod-name-skips"),
        pytest.param({"POD_NAME": " "}, None, id="blank-pod-name-skips"),
        pytest.param({"POD_NAME": "r-1", "POD_NAMESPACE": "ns"}, PodRef("ns", "r-1"), id="downward-api"),
        pytest.param({"POD_NAME": "r-1"}, PodRef("default", "r-1"), id="namespace-defaults"),
    ],
)
def test_the_pod_comes_from_the_downward_api(environ: dict[str, str], expected: PodRef | None) -> None:
    assert PodRef.from_environment(environ) == expected


class FakePods:
    """Pods of one namespace at our client boundary: ``list`` by the label selector, merge ``patch``."""

    def __init__(self, *names: str) -> None:
        self.labels: dict[str, dict[str, str]] = {name: {"app.kubernetes.io/name": "replicator"} for name in names}
        self.failures: list[errors.ApiError] = []  # raised, in order, by the next calls
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.lists: list[str] = []  # the label selectors listed, in order
        self._lock = threading.Lock()

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def list(self, _resource: Any, namespace: str, *, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        assert namespace == NAMESPACE and label_selector.startswith(SELECTOR)
        wanted = dict(term.split("=", 1) for term in label_selector.split(","))
        with self._lock:
            self.lists.append(label_selector)
            self._maybe_fail()
            items = [
                {"metadata": {"name": n, "labels": dict(lb)}}
                for n, lb in self.labels.items()
                if all(lb.get(k) == v for k, v in wanted.items())
            ]
        return items, "1"

    def patch(self, _resource: Any, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        assert namespace == NAMESPACE
        with self._lock:
            self._maybe_fail()
            if name not in self.labels:
                raise errors.NotFound(f"pods {name!r} not found")
            self.patches.append((name, patch))
            for key, value in patch["metadata"]["labels"].items():
                if value is None:
                    self.labels[name].pop(key, None)
                else:
                    self.labels[name][key] = value
        return {"metadata": {"name": name, "labels": dict(self.labels[name])}}

    def receivers(self) -> list[str]:
        with self._lock:
            return sorted(n for n, lb in self.labels.items() if lb.get(KEY) == "true")

    def label(self, name: str) -> None:
        self.labels[name][KEY] = "true"


def _labeller(
    pods: FakePods, registry: CollectorRegistry, pod: str = "a", shard: str | None = None
) -> WebhookReceiverLabel:
    return WebhookReceiverLabel(
        client=pods,  # type: ignore[arg-type]
        pod=PodRef(NAMESPACE, pod),
        shard=shard,
        failures=label_failures_counter(registry, "replicator"),
        resync_seconds=0.05,
        initial_backoff=0.01,
        max_backoff=0.05,
    )


def _failures(registry: CollectorRegistry, operation: str) -> float:
    value = registry.get_sample_value("replicator_webhook_receiver_label_failures_total", {"operation": operation})
    return value or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_a_restarted_former_leader_clears_its_own_label_and_leaves_others_alone(
    registry: CollectorRegistry,
) -> None:
    pods = FakePods("a", "b")
    pods.label("a")
    pods.label("b")
    labeller = _labeller(pods, registry).start()
    try:
        wait_until(lambda: pods.receivers() == ["b"], timeout=5, message="own label cleared")
    finally:
        labeller.close()
    assert [name for name, _ in pods.patches] == ["a"]


def test_the_leader_labels_itself_clears_a_leftover_and_unlabels_on_a_clean_stop(
    registry: CollectorRegistry,
) -> None:
    pods = FakePods("a", "b")
    pods.label("b")  # a leader killed without a clean stop
    labeller = _labeller(pods, registry).start()
    stop = threading.Event()
    runnable = threading.Thread(target=labeller.while_leading, args=(stop,))
    runnable.start()
    try:
        wait_until(lambda: pods.receivers() == ["a"], timeout=5, message="only the leader labelled")
        pods.label("b")  # someone puts it back: the periodic re-check takes it off again
        wait_until(lambda: pods.receivers() == ["a"], timeout=5, message="re-checked")
        stop.set()
        runnable.join(timeout=5)
        # while_leading returns (and the manager releases the Lease) only after the label is gone.
        assert not runnable.is_alive()
        assert pods.receivers() == []
    finally:
        stop.set()
        labeller.close()


def test_failures_are_counted_and_retried_never_raised(registry: CollectorRegistry) -> None:
    pods = FakePods("a")
    pods.failures = [errors.ServerError("boom"), errors.Forbidden("no rbac"), errors.ConnectionFailed("blip")]
    labeller = _labeller(pods, registry).start()
    stop = threading.Event()
    runnable = threading.Thread(target=labeller.while_leading, args=(stop,))
    runnable.start()
    try:
        wait_until(lambda: pods.receivers() == ["a"], timeout=5, message="labelled after retries")
        assert _failures(registry, "unlabel") + _failures(registry, "list") + _failures(registry, "label") == 3
    finally:
        stop.set()
        runnable.join(timeout=5)
        labeller.close()
    assert pods.receivers() == []


def test_a_leader_that_cannot_list_still_labels_its_own_pod(registry: CollectorRegistry) -> None:
    pods = FakePods("a", "b")
    pods.label("b")

    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise errors.Forbidden("cannot list pods")

    pods.list = forbidden  # type: ignore[method-assign]
    labeller = _labeller(pods, registry).start()
    stop = threading.Event()
    runnable = threading.Thread(target=labeller.while_leading, args=(stop,))
    runnable.start()
    try:
        wait_until(lambda: "a" in pods.receivers(), timeout=5, message="own pod labelled anyway")
        wait_until(lambda: _failures(registry, "list") >= 2, timeout=5, message="the list is retried")
        assert pods.receivers() == ["a", "b"]
    finally:
        stop.set()
        runnable.join(timeout=5)
        labeller.close()


def test_a_missing_own_pod_is_counted_and_retried(registry: CollectorRegistry) -> None:
    pods = FakePods("b")
    labeller = _labeller(pods, registry).start()
    try:
        wait_until(lambda: _failures(registry, "unlabel") >= 2, timeout=5, message="retried with backoff")
    finally:
        labeller.close()
    assert pods.patches == []


def test_a_step_down_that_cannot_write_gives_up_in_time(registry: CollectorRegistry) -> None:
    """The manager waits for the runnable before releasing the Lease: the wait is bounded."""
    pods = FakePods("a")
    labeller = WebhookReceiverLabel(
        client=pods,  # type: ignore[arg-type]
        pod=PodRef(NAMESPACE, "a"),
        failures=label_failures_counter(registry, "replicator"),
        initial_backoff=0.01,
        max_backoff=0.05,
        step_down_timeout=0.3,
    ).start()
    stop = threading.Event()
    runnable = threading.Thread(target=labeller.while_leading, args=(stop,))
    runnable.start()
    try:
        wait_until(lambda: pods.receivers() == ["a"], timeout=5)
        pods.failures = [errors.ServerError("down")] * 10_000
        stop.set()
        runnable.join(timeout=5)
        assert not runnable.is_alive()
        assert pods.receivers() == ["a"]  # left for the next leader to clear
        assert _failures(registry, "unlabel") >= 1
    finally:
        stop.set()
        labeller.close()


def test_a_sharded_label_names_the_shard_and_a_leader_looks_only_at_its_own_shard() -> None:
    assert label_patch(True, "1") == {"metadata": {"labels": {KEY: "true", SHARD_KEY: "1"}}}
    assert label_patch(False, "1") == {"metadata": {"labels": {KEY: None, SHARD_KEY: None}}}
    assert selector("1") == f"{KEY}=true,{SHARD_KEY}=1"
    assert selector(None) == SELECTOR


def test_each_shards_leader_keeps_its_label_and_clears_only_its_own_shards_leftovers(
    registry: CollectorRegistry,
) -> None:
    """Every shard's leader receives webhooks: none may take another shard's leader off the Service."""
    pods = FakePods("a", "b", "c")
    pods.labels["c"].update({KEY: "true", SHARD_KEY: "0"})  # a killed leader of shard 0
    # Two processes: two registries.
    leaders = [
        _labeller(pods, registry, "a", shard="0").start(),
        _labeller(pods, CollectorRegistry(), "b", shard="1").start(),
    ]
    stop = threading.Event()
    runnables = [threading.Thread(target=leader.while_leading, args=(stop,)) for leader in leaders]
    for runnable in runnables:
        runnable.start()
    try:
        wait_until(lambda: pods.receivers() == ["a", "b"], timeout=5, message="both shard leaders labelled")
        # Several periodic re-checks of both leaders later, neither has unlabelled the other.
        seen = len(pods.lists)
        wait_until(lambda: len(pods.lists) >= seen + 6, timeout=5, message="re-checked")
        assert pods.receivers() == ["a", "b"]
        assert {pods.labels[p].get(SHARD_KEY) for p in ("a", "b")} == {"0", "1"}
        # The only unlabels: each process's own Pod at start, and shard 0's leftover.
        unlabelled = sorted(name for name, patch in pods.patches if patch == label_patch(False, "0"))
        assert unlabelled == ["a", "b", "c"]
        stop.set()
        for runnable in runnables:
            runnable.join(timeout=5)
        assert pods.receivers() == []
        assert all(SHARD_KEY not in pods.labels[p] for p in ("a", "b", "c"))
    finally:
        stop.set()
        for leader in leaders:
            leader.close()
