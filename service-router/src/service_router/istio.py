"""Which Istio API the cluster serves: VirtualServices are read and written in that version.

Istio serves ``networking.istio.io`` in v1 (1.22+), v1beta1 and v1alpha3; the router prefers the
newest the server offers, so it works across mesh upgrades without a flag.
"""

from __future__ import annotations

import threading

import structlog

from controller_common.kube import KubeClient, Resource

log = structlog.get_logger(__name__)

ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")


def virtual_service_resource(version: str) -> Resource:
    return Resource(group=ISTIO_GROUP, version=version, plural="virtualservices", kind="VirtualService")


def discover_virtual_services(client: KubeClient) -> Resource | None:
    version = client.server_preferred_version(ISTIO_GROUP, ISTIO_VERSIONS)
    return virtual_service_resource(version) if version else None


def wait_for_virtual_services(
    client: KubeClient, stop: threading.Event, *, retry_seconds: float = 5.0
) -> Resource | None:
    """Wait until the server serves VirtualServices (Istio may be installed after us)."""
    while not stop.is_set():
        resource = discover_virtual_services(client)
        if resource is not None:
            log.info("istio api discovered", api_version=resource.api_version)
            return resource
        log.warning("istio api not served yet; is Istio installed?", group=ISTIO_GROUP, retry_in=retry_seconds)
        stop.wait(retry_seconds)
    return None
