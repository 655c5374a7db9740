"""Label the leader's own Pod, so the webhook Service sends GitHub's deliveries only to it.

Why this exists: the webhook receiver listens only on the Lease holder, but a Service selecting
every replica sends about half of the deliveries to a standby, whose port is closed (a red
delivery in GitHub, which does not retry). The ``replicator-webhook`` Service therefore also
selects :data:`~controller_common.contract.WEBHOOK_RECEIVER_LABEL`, and this module keeps that
label on exactly the leader's Pod — the usual Kubernetes pattern for "route to the leader".

Guarantees:

- At process start a replica removes the label from its own Pod: a container restarted in place
  keeps its Pod's labels, and a former leader must not keep receiving.
- While leading, its own Pod carries the label and no other Pod in its namespace does. Only one
  replica leads, so the leader may clear the label from any other Pod that still claims it: a
  leader killed without a clean stop (SIGKILL, OOM, lost node) leaves its label behind. This
  assumes one replicator installation per namespace, as the manifests' Lease and Service names do.
- On a clean stop the label is removed before the manager releases the Lease (the manager joins
  its runnables first), so the successor labels its Pod after ours is unlabelled.
- A failed read or write is logged, counted in ``replicator_webhook_receiver_label_failures_total``
  and
  retried with capped exponential backoff; it never stops the process (polling stays the truth).
  While leading, the state is re-checked every ``resync_seconds`` in case someone changed it.
- One thread does every write, so "unlabel at start" can never undo "label on leading".
- Sharded (``--shard-count`` > 1), each shard's leader is a receiver: its Pod also carries
  :data:`~controller_common.contract.WEBHOOK_RECEIVER_SHARD_LABEL` with its shard index, and
  "no other Pod" above means no other Pod *of its shard*: a leader never clears another shard's.

The decisions (:func:`plan_changes`, :func:`label_patch`, and the shared
:func:`~controller_common.workqueue.exponential_backoff`) are pure; the
:class:`WebhookReceiverLabel` thread only observes, plans and patches.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from controller_common import contract, errors, objects
from controller_common.kube import PODS, KubeClient
from controller_common.workqueue import exponential_backoff

log = structlog.get_logger(__name__)

LABEL_VALUE = "true"
SELECTOR = f"{contract.WEBHOOK_RECEIVER_LABEL}={LABEL_VALUE}"


def selector(shard: str | None = None) -> str:
    """The Pods a leader looks at: every receiver, or (sharded) the receivers of its own shard."""
    return SELECTOR if shard is None else f"{SELECTOR},{contract.WEBHOOK_RECEIVER_SHARD_LABEL}={shard}"


@dataclass(frozen=True)
class PodRef:
    """This process's own Pod, from the downward API (``POD_NAME``, ``POD_NAMESPACE``)."""

    namespace: str
    name: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PodRef | None:
        """``None`` without ``POD_NAME`` (a local run, a test without Pods): nothing to label."""
        name = (environ.get("POD_NAME") or "").strip()
        if not name:
            return None
        return cls(namespace=(environ.get("POD_NAMESPACE") or "").strip() or "default", name=name)


@dataclass(frozen=True)
class LabelChange:
    """Make ``pod`` carry the label (``labelled``) or not."""

    pod: str
    labelled: bool


def plan_changes(*, own_pod: str, leading: bool, labelled: Iterable[str] | None) -> tuple[LabelChange, ...]:
    """The writes that make the label true of exactly the leader's Pod.

    ``labelled`` is the set of Pods in our namespace observed carrying the label, or ``None`` when
    not observed (a standby does not look: it only ever writes to its own Pod). The leader labels
    its own Pod first, then clears the others: a moment with two receivers is better than a moment
    with none.
    """
    seen = None if labelled is None else frozenset(labelled)
    if not leading:
        if seen is not None and own_pod not in seen:
            return ()
        return (LabelChange(own_pod, labelled=False),)
    changes = [] if seen is not None and own_pod in seen else [LabelChange(own_pod, labelled=True)]
    changes += [LabelChange(pod, labelled=False) for pod in sorted(seen or ()) if pod != own_pod]
    return tuple(changes)


def label_patch(labelled: bool, shard: str | None = None) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) that sets the label, or removes it (``null``); idempotent.

    Sharded, the shard label is set and removed with it.
    """
    labels: dict[str, str | None] = {contract.WEBHOOK_RECEIVER_LABEL: LABEL_VALUE if labelled else None}
    if shard is not None:
        labels[contract.WEBHOOK_RECEIVER_SHARD_LABEL] = shard if labelled else None
    return {"metadata": {"labels": labels}}


def label_failures_counter(registry: CollectorRegistry, prefix: str) -> Counter:
    """Defined here, next to its only user (``replicator.metrics`` holds the reconcile-side metrics)."""
    return Counter(
        f"{prefix}_webhook_receiver_label_failures_total",
        "Failed calls keeping the webhook-receiver label on the leader's Pod, per operation (list, label, unlabel).",
        ["operation"],
        registry=registry,
    )


class WebhookReceiverLabel:
    """Converge the webhook-receiver label to "on our Pod exactly while we lead", in one thread."""

    def __init__(
        self,
        *,
        client: KubeClient,
        pod: PodRef,
        failures: Counter,
        resync_seconds: float = 60.0,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        step_down_timeout: float = 5.0,
        shard: str | None = None,
    ) -> None:
        self.client = client
        self.pod = pod
        self.shard = shard
        """The shard index when sharded (see the module docstring), else ``None``."""
        self._failures = failures
        self.resync_seconds = resync_seconds
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        # Bounded: the manager joins this runnable before releasing the Lease, and a successor
        # clears a label we could not remove anyway.
        self.step_down_timeout = step_down_timeout
        self._cond = threading.Condition()
        self._leading = False
        self._settled: bool | None = None  # the `leading` state last converged to, None while not
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = log.bind(pod=f"{pod.namespace}/{pod.name}", label=contract.WEBHOOK_RECEIVER_LABEL)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> WebhookReceiverLabel:
        """Start the writer thread (at process start, every replica): it unlabels our Pod first."""
        self._thread = threading.Thread(target=self._loop, name="webhook-receiver-label", daemon=True)
        self._thread.start()
        return self

    def while_leading(self, stop: threading.Event) -> None:
        """A manager runnable: label our Pod now, unlabel it once ``stop`` is set (bounded wait)."""
        self._want(leading=True)
        stop.wait()
        if not self.step_down(timeout=self.step_down_timeout):
            self._log.warning("webhook receiver label not removed before stopping; the next leader removes it")

    def step_down(self, *, timeout: float) -> bool:
        """Ask for the label to go and wait up to ``timeout`` seconds; ``True`` once it is gone."""
        self._want(leading=False)
        with self._cond:
            return self._cond.wait_for(lambda: self._settled is False, timeout=timeout)

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _want(self, *, leading: bool) -> None:
        with self._cond:
            if self._leading != leading:
                self._leading, self._settled = leading, None
        self._wake.set()

    # --- the writer thread ------------------------------------------------------------------

    def _loop(self) -> None:
        failures = 0
        while not self._closed.is_set():
            self._wake.clear()
            with self._cond:
                leading = self._leading
            if self._converge(leading):
                failures = 0
                with self._cond:
                    if self._leading == leading:
                        self._settled = leading
                        self._cond.notify_all()
                # A standby has nothing more to do until it leads; a leader re-checks now and then.
                delay: float | None = self.resync_seconds if leading else None
            else:
                failures += 1
                delay = exponential_backoff(failures, initial=self.initial_backoff, cap=self.max_backoff)
            self._wake.wait(delay)

    def _converge(self, leading: bool) -> bool:
        """One pass: observe (the leader lists labelled Pods), plan, patch. ``True`` if all done."""
        labelled: list[str] | None = None
        ok = True
        if leading:
            try:
                pods, _ = self.client.list(PODS, self.pod.namespace, label_selector=selector(self.shard))
                labelled = [objects.name(p) for p in pods]
            except errors.ApiError as exc:
                # Still label our own Pod (unobserved, the plan does): deliveries reach the leader
                # even while stale labels elsewhere cannot be found yet.
                self._log.warning("listing webhook receiver pods failed", error=str(exc), error_type=type(exc).__name__)
                self._failures.labels(operation="list").inc()
                ok = False
        for change in plan_changes(own_pod=self.pod.name, leading=leading, labelled=labelled):
            ok = self._apply(change) and ok
        return ok

    def _apply(self, change: LabelChange) -> bool:
        action = "label" if change.labelled else "unlabel"
        try:
            self.client.patch(PODS, self.pod.namespace, change.pod, label_patch(change.labelled, self.shard))
        except errors.NotFound:
            if change.pod != self.pod.name:
                return True  # another Pod already gone: nothing left to unlabel
            self._log.warning("own pod not found: check POD_NAME and POD_NAMESPACE", action=action)
            self._failures.labels(operation=action).inc()
            return False
        except errors.ApiError as exc:
            self._log.warning(
                "webhook receiver label write failed",
                action=action,
                target=change.pod,
                error=str(exc),
                error_type=type(exc).__name__,
            )
            self._failures.labels(operation=action).inc()
            return False
        self._log.info("webhook receiver label written", action=action, target=change.pod)
        return True
