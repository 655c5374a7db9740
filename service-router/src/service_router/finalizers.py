"""Which Services the router's finalizer must stay on, and which ones a reconcile releases: pure.

The finalizer exists so that no route of ours points at a Service that is gone. It is added to a
clone before its first route and must leave as soon as no route of ours sends to the Service any
more — whatever the reason the Service stopped being routed: it is being deleted, its origin
annotation was removed, or it was changed to name another origin (a retarget). Because an
annotation can change while the router is down, the decision is level-based: it reads only the
Services and the VirtualServices as they are (the routes of ours are found by
:func:`service_router.cloning.route_owner`, never by name prefix), not what changed.

Guarantees:
- a Service keeps the finalizer while it is a live clone (annotated, not being deleted) or while
  any route of ours in its namespace sends to it;
- the reconcile of origin ``O`` releases it only from Services it is answerable for: clones of
  ``O`` being deleted, and Services that are no longer live clones which ``O`` routed (in the
  VirtualServices observed before its writes) or which are named ``O`` (the key a Service whose
  annotation was removed maps to, so a restart finds it too);
- all functions are pure: plain dicts in, names or dicts out, inputs not mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from controller_common import contract, objects
from service_router.cloning import route_owner
from service_router.routes import VirtualServicePlan, routed_by


def clone_of(service: dict[str, Any]) -> str | None:
    """The origin Service a clone Service stands in for, or None for any other Service."""
    return objects.annotations(service).get(contract.ORIGIN_SERVICE_ANNOTATION) or None


def is_live_clone(service: dict[str, Any]) -> bool:
    return clone_of(service) is not None and not objects.is_being_deleted(service)


def _http(virtual_service: dict[str, Any]) -> list[dict[str, Any]]:
    return list((virtual_service.get("spec") or {}).get("http") or [])


def routed_services(virtual_services: Iterable[dict[str, Any]], *, namespace: str) -> frozenset[str]:
    """Services in ``namespace`` that a route of ours (for any origin) sends to."""
    names = set()
    for vs in virtual_services:
        vs_namespace = objects.namespace(vs) or namespace
        for route in _http(vs):
            owner = route_owner(route, vs_namespace=vs_namespace)
            if owner is not None and owner.namespace == namespace:
                names.add(owner.clone)
    return frozenset(names)


def after_writes(observed: Sequence[dict[str, Any]], written: Iterable[VirtualServicePlan]) -> list[dict[str, Any]]:
    """The VirtualServices as they stand once the ``written`` plans are applied to ``observed``."""
    standing = {objects.object_key(vs): vs for vs in observed}
    for plan in written:
        if plan.virtual_service is None:
            continue
        ident = objects.object_key(plan.virtual_service)
        if plan.action == "delete":
            standing.pop(ident, None)
        elif plan.action in ("create", "update"):
            standing[ident] = plan.virtual_service
    return list(standing.values())


def to_release(
    services: Sequence[dict[str, Any]],
    *,
    origin_service: str,
    namespace: str,
    observed: Sequence[dict[str, Any]],
    standing: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Services whose finalizer this origin's reconcile removes, once its writes stand.

    ``observed`` are the VirtualServices the reconcile planned from, ``standing`` those after its
    writes (:func:`after_writes`). See the module docstring for who is answerable for whom.
    """
    was_routed_here = routed_by(observed, origin_service=origin_service, namespace=namespace)
    still_routed = routed_services(standing, namespace=namespace)
    return [
        s for s in services if releasable(s, origin_service, routed_here=was_routed_here, still_routed=still_routed)
    ]


def releasable(
    service: dict[str, Any], origin_service: str, *, routed_here: Iterable[str], still_routed: Iterable[str]
) -> bool:
    """Whether the reconcile of ``origin_service`` removes our finalizer from ``service`` (either backend).

    It holds the finalizer, is no longer a live clone, is one the origin answers for (its clone, the
    Service named like it, or one its routes reached: ``routed_here``) and no route of ours reaches
    it any more (``still_routed``).
    """
    name = objects.name(service)
    if not objects.has_finalizer(service, contract.ROUTER_FINALIZER) or is_live_clone(service):
        return False
    answerable = clone_of(service) == origin_service or name == origin_service or name in routed_here
    return answerable and name not in still_routed
