"""Scale out beyond one leader: N shards, each owning the namespaces whose stable hash falls to it.

Why this exists: one Lease means one process does every reconcile, however many replicas run.
With ``--shard-count N`` a controller runs as N independent shards (``--shard-index``, or the
ordinal of a StatefulSet Pod), each with its own Lease (``<lease>-shard-<i>``) and therefore its
own leader and standbys. A shard reconciles only the keys it owns, so two shards never write the
same object and a failover inside one shard leaves the others untouched.

Guarantees:

- Ownership is a pure function of the name and the shard count: the first 8 bytes of the SHA-256
  of the UTF-8 name, modulo the count. Every process, of any Python version or machine, agrees
  (never Python's ``hash()``, which is salted per process), and every name has exactly one owner.
- ``Shard(1, 0)`` (the default) owns everything: an unsharded controller behaves as before.
- Keys are filtered when they are enqueued, in one place (:class:`ShardedWorkQueue`): informers
  stay cluster-wide (each shard still caches everything it watches), but a key another shard
  owns never reaches a worker, is never retried and never delayed here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge

from controller_common import metrics as metrics_mod
from controller_common.workqueue import RateLimiter, WorkQueue

# A StatefulSet Pod is named ``<statefulset>-<ordinal>``; the name is a DNS label.
_STATEFULSET_POD = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?-(0|[1-9][0-9]*)")


def bucket(name: str, count: int) -> int:
    """The shard, in ``range(count)``, that owns ``name``: stable across processes and machines."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def pod_ordinal(pod_name: str) -> int | None:
    """The ordinal of a StatefulSet Pod name (``replicator-1`` -> 1); ``None`` for any other name."""
    match = _STATEFULSET_POD.fullmatch(pod_name.strip())
    return int(match[2]) if match else None


def namespace_of_key(key: str) -> str:
    """``namespace/name`` -> ``namespace`` (a cluster-scoped ``name`` -> ``""``)."""
    namespace, sep, _ = key.partition("/")
    return namespace if sep else ""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``; see the module docstring."""

    count: int = 1
    index: int = 0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"shard count must be at least 1, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard index must be in 0..{self.count - 1}, not {self.index}")

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owns(self, name: str) -> bool:
        """Whether this shard owns ``name`` (a namespace, or any other partitioning name)."""
        return not self.sharded or bucket(name, self.count) == self.index

    def owns_key(self, key: str) -> bool:
        """Whether this shard owns the ``namespace/name`` key: by its namespace."""
        return self.owns(namespace_of_key(key))

    def lease_name(self, base: str) -> str:
        """``base`` unsharded, else ``<base>-shard-<index>``: one leader per shard."""
        return f"{base}-shard-{self.index}" if self.sharded else base


UNSHARDED = Shard()
"""The default: one shard that owns every namespace."""


def index_from_environment(count: int, environ: Mapping[str, str]) -> int:
    """The default ``--shard-index``: the StatefulSet ordinal in ``$POD_NAME`` when sharded, else 0.

    Unsharded, ``$POD_NAME`` is never read: a Deployment Pod's random suffix may look like one.
    """
    if count <= 1:
        return 0
    ordinal = pod_ordinal(environ.get("POD_NAME") or "")
    return 0 if ordinal is None else ordinal


class ShardedWorkQueue(WorkQueue):
    """A :class:`WorkQueue` that drops, at enqueue, every key its shard does not own.

    Every way in (``add``, ``add_after``, ``add_rate_limited``) passes ``accepts``, so handlers,
    pollers and webhooks stay unaware of sharding.
    """

    def __init__(
        self,
        name: str,
        accepts: Callable[[str], bool],
        rate_limiter: RateLimiter | None = None,
        *,
        metrics: metrics_mod.Metrics | None = None,
    ) -> None:
        super().__init__(name, rate_limiter, metrics=metrics)
        self.accepts = accepts

    def add(self, key: str) -> None:
        if self.accepts(key):
            super().add(key)

    def add_after(self, key: str, delay: float) -> None:
        if self.accepts(key):
            super().add_after(key, delay)


def register_shard_info(registry: CollectorRegistry, prefix: str, shard: Shard) -> Gauge:
    """``<prefix>_shard_info{index,count}`` = 1: which shard this process is (``0`` of ``1`` unsharded)."""
    gauge = Gauge(
        f"{prefix}_shard_info",
        "The shard this process reconciles for: index of count (namespaces by a stable hash).",
        ["index", "count"],
        registry=registry,
    )
    gauge.labels(index=str(shard.index), count=str(shard.count)).set(1)
    return gauge
