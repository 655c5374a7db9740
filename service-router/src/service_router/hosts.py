"""Which names a host in a VirtualService stands for, the way Istio resolves them.

A VirtualService or a route destination may name a Kubernetes Service as ``svc``,
``svc.ns``, ``svc.ns.svc`` or ``svc.ns.svc.cluster.local``. A name without a dot is short:
Istio resolves it against the namespace of the VirtualService that contains it, not against
the namespace of the Service or of the client. Everything here is pure string logic and
case-insensitive, as DNS names are.

Istio itself only expands dot-less names; ``svc.ns`` and ``svc.ns.svc`` are accepted here as
well because the sidecar's virtual host answers to them and operators write them, so the
router treats a VirtualService written that way as serving the Service.
"""

from __future__ import annotations

CLUSTER_DOMAIN = "cluster.local"


def host_aliases(service: str, namespace: str) -> frozenset[str]:
    """Every spelling of ``service`` in ``namespace``: short, ``.ns``, ``.ns.svc`` and the FQDN."""
    service, namespace = service.lower(), namespace.lower()
    return frozenset(
        {
            service,
            f"{service}.{namespace}",
            f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.{CLUSTER_DOMAIN}",
        }
    )


def canonical_host(host: str, *, context_namespace: str) -> str:
    """The FQDN ``host`` stands for when written in ``context_namespace``.

    ``svc`` -> ``svc.<context>.svc.cluster.local``; ``svc.ns`` and ``svc.ns.svc`` are completed
    with the cluster suffix; anything else (an FQDN, an external name, a wildcard) is kept.
    """
    host = host.lower().rstrip(".")
    if not host or host == "*" or host.startswith("*."):
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{context_namespace.lower()}.svc.{CLUSTER_DOMAIN}"
    if len(parts) == 2:
        return f"{host}.svc.{CLUSTER_DOMAIN}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.{CLUSTER_DOMAIN}"
    return host


def refers_to(host: str, *, service: str, namespace: str, context_namespace: str) -> bool:
    """Whether ``host``, written in an object in ``context_namespace``, names ``service.namespace``.

    A short ``svc`` written in another namespace names that namespace's ``svc``, not ours.
    """
    return canonical_host(host, context_namespace=context_namespace) == (
        f"{service.lower()}.{namespace.lower()}.svc.{CLUSTER_DOMAIN}"
    )


def host_matches(pattern: str, fqdn: str) -> bool:
    """Whether a VirtualService host ``pattern`` (already canonical) covers ``fqdn``; ``*`` wildcards too."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return fqdn.endswith(pattern[1:])
    return pattern == fqdn
