"""Lease-based leader election, following client-go's ``leaderelection`` package.

Why this exists: several replicas of a controller may run (rolling updates, HA); only one may
write at a time, or two reconciles of the same key would fight. Every replica keeps its caches,
metrics and probes; only the holder of a ``coordination.k8s.io/v1`` Lease runs workers.

Guarantees (client-go semantics):

- A replica takes the Lease only when it is free, released, or *observed* unrenewed for
  ``lease_duration`` seconds by this replica's own monotonic clock (never by comparing wall
  clocks across machines). Every write carries the Lease's ``resourceVersion``, so two
  candidates racing for it cannot both win (the loser gets a Conflict).
- The leader renews every ``retry_period``; if it cannot renew for ``renew_deadline`` seconds,
  or sees another holder, it has lost leadership: :meth:`LeaderElector.renew_until_lost`
  returns ``False`` and the process must stop its workers and exit non-zero
  (``renew_deadline < lease_duration`` leaves a margin before anyone else may take over).
- On a clean stop the leader releases the Lease (empty holder, 1 s duration) so a successor
  does not wait out a full ``lease_duration``.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from controller_common import errors, objects
from controller_common import metrics as metrics_mod
from controller_common.kube import LEASES, KubeClient

log = structlog.get_logger(__name__)


def micro_time(moment: datetime | None = None) -> str:
    """``metav1.MicroTime``: RFC 3339 with microseconds, UTC."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    """``<hostname>_<uuid>`` like controller-runtime: unique even for two processes on one host."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class LeaderElector:
    """Acquire, renew and release one Lease on behalf of ``identity``."""

    def __init__(
        self,
        client: KubeClient,
        *,
        name: str,
        namespace: str,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        release_on_cancel: bool = True,
        clock: Callable[[], float] = time.monotonic,
        metrics: metrics_mod.Metrics | None = None,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("need retry_period < renew_deadline < lease_duration")
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._clock = clock
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._leading = threading.Event()
        m = metrics if metrics is not None else metrics_mod.current()
        self._status = m.leader_election_status.labels(name=name)
        self._log = log.bind(lease=f"{namespace}/{name}", identity=self.identity)

    # --- the protocol -----------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self._leading.is_set()

    def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the Lease; ``True`` if we hold it afterwards."""
        now = micro_time()
        try:
            lease = self.client.get(LEASES, self.namespace, self.name)
        except errors.NotFound:
            return self._create(now)
        except errors.ApiError as exc:
            self._log.warning("lease read failed", error=str(exc))
            return False
        spec = dict(lease.get("spec") or {})
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("acquireTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            # Expiry is judged by when *we* saw the record change, not by its wall-clock stamps.
            self._observed, self._observed_at = record, self._clock()
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and self._observed_at + duration > self._clock():
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=int(self.lease_duration), renewTime=now)
        if holder != self.identity:
            spec.update(acquireTime=now, leaseTransitions=transitions + 1)
        updated = objects.deep_copy(lease)
        updated["spec"] = spec
        try:
            written = self.client.replace(LEASES, updated)
        except errors.ApiError as exc:
            # A Conflict means another candidate wrote first: not ours this round.
            self._log.info("lease update failed", error=str(exc), error_type=type(exc).__name__)
            return False
        self._observe_own(written)
        if holder != self.identity:
            self._log.info("lease acquired", previous_holder=holder or None)
        return True

    def _create(self, now: str) -> bool:
        lease = {
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            written = self.client.create(LEASES, lease)
        except errors.ApiError as exc:
            self._log.info("lease create failed", error=str(exc), error_type=type(exc).__name__)
            return False
        self._observe_own(written)
        self._log.info("lease acquired", previous_holder=None)
        return True

    def _observe_own(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        self._observed = (
            spec.get("holderIdentity") or "",
            spec.get("renewTime"),
            spec.get("acquireTime"),
            spec.get("leaseTransitions"),
        )
        self._observed_at = self._clock()

    # --- lifecycle --------------------------------------------------------------------------

    def acquire(self, stop_event: threading.Event) -> bool:
        """Block until we lead (``True``) or ``stop_event`` is set (``False``)."""
        self._log.info("waiting for leadership")
        while not stop_event.is_set():
            if self.try_acquire_or_renew():
                self._set_leading(True)
                return True
            stop_event.wait(self.retry_period)
        return False

    def renew_until_lost(self, stop_event: threading.Event) -> bool:
        """Keep renewing; ``True`` on a clean stop (lease released), ``False`` when leadership is lost."""
        last_renewed = self._clock()
        while not stop_event.wait(self.retry_period):
            if self.try_acquire_or_renew():
                last_renewed = self._clock()
                continue
            other = self._observed[0] if self._observed else ""
            if (other and other != self.identity) or self._clock() - last_renewed >= self.renew_deadline:
                self._set_leading(False)
                self._log.error("leadership lost", holder=other or None)
                return False
        if self.release_on_cancel:
            self.release()
        self._set_leading(False)
        return True

    def run(
        self,
        stop_event: threading.Event,
        *,
        on_started_leading: Callable[[threading.Event], None],
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> bool:
        """Acquire, run ``on_started_leading(leading)`` in a thread, renew; ``False`` if lost.

        ``leading`` is set when leadership ends (stop or loss): the callback must return then.
        """
        if not self.acquire(stop_event):
            return True
        leading_ended = threading.Event()
        worker = threading.Thread(
            target=on_started_leading, args=(leading_ended,), name=f"leader-{self.name}", daemon=True
        )
        worker.start()
        clean = self.renew_until_lost(stop_event)
        leading_ended.set()
        worker.join(self.lease_duration)
        if on_stopped_leading is not None:
            on_stopped_leading()
        return clean

    def release(self) -> None:
        """Give the Lease up if we hold it; errors are logged (the Lease then simply expires)."""
        try:
            lease = self.client.get(LEASES, self.namespace, self.name)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != self.identity:
                return
            now = micro_time()
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=now, acquireTime=now)
            lease["spec"] = spec
            self.client.replace(LEASES, lease)
            self._log.info("lease released")
        except errors.ApiError as exc:
            self._log.warning("lease release failed", error=str(exc))

    def _set_leading(self, leading: bool) -> None:
        if leading:
            self._leading.set()
        else:
            self._leading.clear()
        self._status.set(1 if leading else 0)
