"""Ask the router's own Istio routing model where a request would go, as a Service name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service_router.evaluate import evaluate


def route_request(
    virtual_service: dict[str, Any] | None,
    *,
    host: str,
    headers: Mapping[str, str],
    namespace: str = "default",
) -> str | None:
    """The short Service name the request reaches (None: Envoy would answer 404)."""
    destination = evaluate(
        [virtual_service] if virtual_service else [], host=host, namespace=namespace, headers=headers
    )
    return destination.host.split(".")[0] if destination else None
