"""Informer indexes: what one origin's reconcile reads, found by lookup instead of a namespace scan.

A reconcile of ``<namespace>/<origin>`` used to read every Service, VirtualService and Gateway API
route of the namespace and scan them all, so its cost grew with the namespace (about 100 ms at 300
environments in one namespace). These index functions give each object the ``namespace/name``
values under which a reconcile must see it, and :func:`read` gathers the objects of a few values;
the planners stay pure and unchanged, and see a subset of the namespace that contains everything
they would have looked at.

Guarantees (what keeps an index read as good as the namespace list):
- a VirtualService is found under the key of every Service a host or a destination of any of its
  http routes names (any spelling: ``svc``, ``svc.ns``, ``svc.ns.svc``, the FQDN), of the origin of
  each route of ours (its routing header read in the VirtualService's own namespace, as the planner
  compares it) and of the clone it sends to, and of the origins whose new VirtualService would take
  its name (``<origin>``, ``<origin>-service-router``, ``<origin>-service-router-<n>``);
- an HTTPRoute or GRPCRoute is found under every Service a parentRef names, the origin and the
  clone of a route of ours, and every name a derived or baseline route of ours could want
  (``service-router--<clone>[--<n>]``, ``service-router--<origin>--baseline[-<port>]``);
- a Service is found under the origin it clones (:func:`~service_router.finalizers.clone_of`);
- an object of a shape the planners do not expect (a ``spec`` that is no object, routes that are no
  list, ...) is also found under ``<namespace>/*``, which every reconcile of the namespace reads: a
  planner that trips over it trips for every origin, exactly as it did when it read the namespace;
- index functions never raise (they run inside the informer, on its lock).

The planners ignore everything outside those values, so a read that also returns some objects more
(an index value shared by accident) plans the same; the unit tests check plans from index reads
against plans from whole-namespace lists on randomized namespaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from controller_common import contract, objects
from service_router.cloning import route_owner
from service_router.finalizers import clone_of
from service_router.gateway_routes import CLONE_LABEL, ORIGIN_LABEL, is_ours
from service_router.hosts import canonical_host

CLONE_OF_INDEX = "service-router/clone-of"
"""Services by the key of the origin they clone (``namespace/origin``)."""
VIRTUAL_SERVICE_INDEX = "service-router/virtual-service-keys"
"""VirtualServices by the Service keys a reconcile must see them for."""
GATEWAY_ROUTE_INDEX = "service-router/gateway-route-keys"
"""HTTPRoutes and GRPCRoutes by the Service keys a reconcile must see them for."""
ANY = "*"
"""The name part of the value every reconcile of a namespace reads (objects of an unexpected shape)."""

SERVICE_SUFFIX = ".svc.cluster.local"
_NEW_NAME = re.compile(rf"^(.+)-{re.escape(contract.SERVICE_ROUTER_MANAGER)}(?:-[0-9]+)?$")

IndexFunction = Callable[[dict[str, Any]], list[str]]


class IndexedCache(Protocol):
    def by_index(self, name: str, value: str) -> list[dict[str, Any]]: ...


def service_key(host: str, *, context_namespace: str) -> str | None:
    """``namespace/service`` of the Service ``host`` names when written in ``context_namespace``, or None."""
    fqdn = canonical_host(host, context_namespace=context_namespace)
    if not fqdn.endswith(SERVICE_SUFFIX):
        return None
    parts = fqdn[: -len(SERVICE_SUFFIX)].split(".")
    return f"{parts[1]}/{parts[0]}" if len(parts) == 2 and all(parts) else None


def _namespace(obj: dict[str, Any]) -> str:
    return objects.namespace(obj) or "default"


def _is_list(value: Any) -> bool:
    """Absent, empty, or a list: the shapes the planners iterate without a second look."""
    return not value or isinstance(value, list)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _safely(index: IndexFunction) -> IndexFunction:
    def safe(obj: dict[str, Any]) -> list[str]:
        try:
            return index(obj)
        except Exception:  # an index must never break the informer (it runs on its lock)
            return [f"{_namespace(obj)}/{ANY}"]

    safe.__name__ = index.__name__
    safe.__doc__ = index.__doc__
    return safe


@_safely
def clone_of_index(service: dict[str, Any]) -> list[str]:
    """The values of a Service in :data:`CLONE_OF_INDEX`: its origin's key when it is a clone."""
    origin = clone_of(service)
    return [f"{_namespace(service)}/{origin}"] if origin else []


def _virtual_service_well_formed(spec: Any) -> bool:
    if not spec:
        return True
    if not isinstance(spec, dict) or not all(_is_list(spec.get(k)) for k in ("hosts", "gateways", "http")):
        return False
    for route in spec.get("http") or []:
        if not isinstance(route, dict) or not _is_list(route.get("route")):
            return False
        for item in route.get("route") or []:
            if not isinstance(item, dict) or not (not item.get("destination") or isinstance(item["destination"], dict)):
                return False
    return True


@_safely
def virtual_service_index(virtual_service: dict[str, Any]) -> list[str]:
    """The values of a VirtualService in :data:`VIRTUAL_SERVICE_INDEX` (see the module docstring).

    More than :func:`service_router.reconcile.keys_for_virtual_service`, which names the keys to
    *enqueue*: the destinations of our own routes too (a clone's key, or a foreign host a split
    route still sends to), the origin a route's header names read in this namespace, and the
    origins a new VirtualService of which would want this one's name.
    """
    namespace = _namespace(virtual_service)
    values = set()
    name = objects.name(virtual_service)
    values.add(f"{namespace}/{name}")
    if match := _NEW_NAME.match(name):
        values.add(f"{namespace}/{match.group(1)}")
    spec = virtual_service.get("spec")
    if not _virtual_service_well_formed(spec):
        values.add(f"{namespace}/{ANY}")
    spec = spec if isinstance(spec, dict) else {}
    hosts = [str(h) for h in _list(spec.get("hosts"))]
    for route in _list(spec.get("http")):
        if not isinstance(route, dict):
            continue
        owner = route_owner(route, vs_namespace=namespace)
        if owner is not None:
            values.add(f"{owner.namespace}/{owner.clone}")
            origin = owner.header.removeprefix(contract.HEADER_PREFIX)
            for ns in {namespace, owner.namespace}:
                if origin.endswith(f"-{ns}"):
                    values.add(f"{ns}/{origin.removesuffix(f'-{ns}')}")
        for item in _list(route.get("route")):
            destination = item.get("destination") if isinstance(item, dict) else None
            if isinstance(destination, dict) and destination.get("host"):
                hosts.append(str(destination.get("host", "")))
    values.update(key for host in hosts if (key := service_key(host, context_namespace=namespace)))
    return sorted(values)


def _route_names(name: str) -> set[str]:
    """The clones and origins a route of this name could be wanted for: ``service-router--X``,
    ``service-router--X--<n>`` and ``service-router--X--baseline[-<port>]`` all give ``X``."""
    if not name.startswith(contract.MANAGED_ROUTE_PREFIX):
        return set()
    rest = name.removeprefix(contract.MANAGED_ROUTE_PREFIX)
    return {rest, *(rest[:i] for i in range(1, len(rest)) if rest.startswith("--", i))}


@_safely
def gateway_route_index(route: dict[str, Any]) -> list[str]:
    """The values of an HTTPRoute or GRPCRoute in :data:`GATEWAY_ROUTE_INDEX` (see the module docstring)."""
    namespace = _namespace(route)
    values = {f"{namespace}/{n}" for n in _route_names(objects.name(route))}
    spec = route.get("spec")
    if spec and (not isinstance(spec, dict) or not _is_list(spec.get("parentRefs"))):
        values.add(f"{namespace}/{ANY}")
    spec = spec if isinstance(spec, dict) else {}
    for ref in _list(spec.get("parentRefs")):
        # As gateway_routes.service_parent_refs and names_service read a parentRef naming a Service.
        if isinstance(ref, dict) and "kind" in ref and str(ref.get("group", "")) == "" and ref["kind"] == "Service":
            values.add(f"{ref.get('namespace') or namespace}/{ref.get('name', '')}")
    if is_ours(route):
        labels = objects.labels(route)
        for label in (ORIGIN_LABEL, CLONE_LABEL):
            if labels.get(label):
                values.add(f"{namespace}/{labels[label]}")
    return sorted(values)


INDEXES: dict[str, IndexFunction] = {
    CLONE_OF_INDEX: clone_of_index,
    VIRTUAL_SERVICE_INDEX: virtual_service_index,
    GATEWAY_ROUTE_INDEX: gateway_route_index,
}
"""Index name -> function: what ``__main__`` registers, and what the test caches compute."""


def read(cache: IndexedCache, index: str, keys: Iterable[str], *, namespace: str) -> list[dict[str, Any]]:
    """The objects of ``namespace`` found under any of ``keys`` or the namespace's ``*``, each once,
    ordered by ``namespace/name`` (as a namespace list is)."""
    found: dict[str, dict[str, Any]] = {}
    for value in dict.fromkeys([*keys, f"{namespace}/{ANY}"]):
        for obj in cache.by_index(index, value):
            if objects.namespace(obj) == namespace:
                found.setdefault(objects.object_key(obj), obj)
    return [found[key] for key in sorted(found)]
