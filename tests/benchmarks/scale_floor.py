"""The raw floor of the scale benchmark: only the Kubernetes writes one environment needs.

For every environment, ``KubeClient`` (the controllers' own client) creates the clone Deployment,
creates the clone Service and adds one route to the origin's VirtualService, nothing else: no
reads, no Events, no ownerReference or finalizer follow-ups. The route goes in with one JSON
patch (``add`` at ``/spec/http/0``), which the server applies atomically, so concurrent
environments of one origin never conflict and every environment costs exactly three writes.

It runs against the same emulated API server as the controllers, before they start, in a
namespace of its own that is deleted (and waited for) afterwards, so the controllers never see
these objects. Each thread has its own client (its own connection); "unbounded" is one thread
per environment, capped at :data:`UNBOUNDED_MAX_THREADS`: with 1,000 connections at once the
emulator's accept backlog (128) overflows and connections are reset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from controller_common import contract
from controller_common.kube import DEPLOYMENTS, NAMESPACES, SERVICES, KubeClient
from world import VIRTUAL_SERVICES, World, seed_origin

UNBOUNDED_MAX_THREADS = 100
FLOOR_IMAGE = "ghcr.io/mercari/{name}:pr-{number}"


def _clone_deployment(namespace: str, origin: str, clone: str, number: int) -> dict[str, Any]:
    labels = {"app": clone}
    return {
        "metadata": {
            "name": clone,
            "namespace": namespace,
            "labels": {**labels, contract.PULL_REQUEST_LABEL: str(number)},
            "annotations": {contract.CLONE_ORIGIN_ANNOTATION: origin},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, "version": "v1"}},
                "spec": {
                    "containers": [
                        {
                            "name": origin,
                            "image": FLOOR_IMAGE.format(name=origin, number=number),
                            "ports": [{"containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def _clone_service(namespace: str, clone: str) -> dict[str, Any]:
    labels = {"app": clone}
    return {
        "metadata": {"name": clone, "namespace": namespace, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def _route(namespace: str, origin: str, clone: str) -> dict[str, Any]:
    header = contract.routing_header(origin, namespace)
    return {
        "name": contract.managed_route_name(clone),
        "match": [{"headers": {header: {"exact": contract.routing_value(clone, namespace)}}}],
        "route": [{"destination": {"host": contract.service_host(clone, namespace)}}],
    }


def _write_environment(client: KubeClient, namespace: str, origin: str, number: int) -> None:
    clone = contract.clone_name(origin, number)
    client.create(DEPLOYMENTS, _clone_deployment(namespace, origin, clone, number))
    client.create(SERVICES, _clone_service(namespace, clone))
    client.patch(
        VIRTUAL_SERVICES,
        namespace,
        origin,
        [{"op": "add", "path": "/spec/http/0", "value": _route(namespace, origin, clone)}],
        patch_type="json",
    )


def measure(world: World, *, origins: Sequence[str], prs_per_origin: int, threads: int | None) -> float:
    """Seconds for ``threads`` threads (``None``: unbounded) to write every environment."""
    namespace = f"scale-floor-{threads or 'unbounded'}"
    world.client.create(NAMESPACES, {"metadata": {"name": namespace}})
    for origin in origins:
        seed_origin(world.client, namespace, origin, repository="none", image=f"ghcr.io/mercari/{origin}:1.0.0")
    work = [(origin, number) for number in range(1, prs_per_origin + 1) for origin in origins]
    count = min(len(work), UNBOUNDED_MAX_THREADS) if threads is None else threads
    shares = [work[i::count] for i in range(count)]
    clients = [KubeClient.from_environment(str(world.kubeconfig)) for _ in shares]
    start = threading.Barrier(len(shares) + 1)
    failures: list[BaseException] = []

    def worker(client: KubeClient, share: list[tuple[str, int]]) -> None:
        start.wait()
        try:
            for origin, number in share:
                _write_environment(client, namespace, origin, number)
        except BaseException as exc:  # reported after the join, with the figure withheld
            failures.append(exc)

    pool = [threading.Thread(target=worker, args=pair, daemon=True) for pair in zip(clients, shares, strict=True)]
    for thread in pool:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - t0
    for client in clients:
        client.close()
    if failures:
        raise RuntimeError(f"floor with {count} threads: {len(failures)} failed, first: {failures[0]!r}")
    _delete_namespace(world, namespace)
    return seconds


def _delete_namespace(world: World, namespace: str, timeout: float = 300.0) -> None:
    """Delete the floor's namespace and wait until the namespace controller emptied and removed it."""
    world.client.delete(NAMESPACES, None, namespace)
    deadline = time.monotonic() + timeout
    while any(n["metadata"]["name"] == namespace for n in world.kube.objects("namespaces")):
        if time.monotonic() > deadline:
            raise AssertionError(f"namespace {namespace} still there after {timeout} s")
        time.sleep(0.2)
