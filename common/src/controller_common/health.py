"""``/metrics``, ``/healthz`` and ``/readyz`` over plain HTTP, like controller-runtime's manager.

Why this exists: every replica (leader or not) must be scrapeable and probe-able, and both
controllers take the same flags (``--metrics-bind-address``, ``--health-probe-bind-address``).
A tiny standard-library server in a daemon thread is all this needs; no framework.

Guarantees:

- Bind addresses follow controller-runtime: ``":8080"`` (all interfaces), ``"127.0.0.1:0"``
  (ephemeral port, reported back), ``"[::1]:8080"``, and ``"0"`` (or empty) disables.
- ``/readyz`` and ``/healthz`` answer ``200 ok`` when their callable returns true, ``503`` when
  it returns false *or raises*; ``/metrics`` is the Prometheus text format of one registry.
- :func:`serve_endpoints` serves metrics and probes on one server when both flags name the same
  address, on two otherwise.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = structlog.get_logger(__name__)

Check = Callable[[], bool]

DISABLED = ("", "0")


def parse_bind_address(bind_address: str) -> tuple[str, int] | None:
    """``":8080"`` → ``("", 8080)``; ``"[::1]:0"`` → ``("::1", 0)``; ``"0"`` → ``None`` (disabled)."""
    address = bind_address.strip()
    if address in DISABLED:
        return None
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"bind address {bind_address!r}: want host:port, ':port' or '0' to disable")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"bind address {bind_address!r}: port is not a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"bind address {bind_address!r}: port out of range")
    return host, number


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], routes: dict[str, Callable[[], tuple[int, str, bytes]]]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.routes = routes
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found\n"
        else:
            status, content_type, body = route()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every few seconds would drown the controller's own logs


def _probe(name: str, check: Check) -> Callable[[], tuple[int, str, bytes]]:
    def answer() -> tuple[int, str, bytes]:
        try:
            ok = bool(check())
        except Exception:
            log.exception("probe check failed", probe=name)
            ok = False
        if ok:
            return 200, "text/plain; charset=utf-8", b"ok"
        return 503, "text/plain; charset=utf-8", f"{name} check failed".encode()

    return answer


def _metrics(registry: CollectorRegistry) -> Callable[[], tuple[int, str, bytes]]:
    return lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))


def serve(
    bind_address: str,
    *,
    registry: CollectorRegistry | None,
    ready: Check | None,
    healthy: Check = lambda: True,
) -> tuple[ThreadingHTTPServer | None, int]:
    """Serve ``/metrics`` (if ``registry``) and the probes (if ``ready``) on ``bind_address``.

    Returns ``(server, port)``, or ``(None, 0)`` when the address disables serving.
    Stop with ``server.shutdown(); server.server_close()``.
    """
    address = parse_bind_address(bind_address)
    if address is None:
        return None, 0
    routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {}
    if registry is not None:
        routes["/metrics"] = _metrics(registry)
    if ready is not None:
        routes["/healthz"] = _probe("healthz", healthy)
        routes["/readyz"] = _probe("readyz", ready)
    server = _Server(address, routes)
    port = int(server.server_address[1])
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"http-{port}", daemon=True
    )
    thread.start()
    log.info("serving", address=bind_address, port=port, paths=sorted(routes))
    return server, port


def serve_endpoints(
    *,
    metrics_bind_address: str,
    health_probe_bind_address: str,
    registry: CollectorRegistry,
    ready: Check,
    healthy: Check = lambda: True,
) -> list[tuple[ThreadingHTTPServer, int]]:
    """The two controller-runtime flags: one server if they name the same address, else two."""
    same = metrics_bind_address.strip() == health_probe_bind_address.strip()
    if same:
        server, port = serve(metrics_bind_address, registry=registry, ready=ready, healthy=healthy)
        return [(server, port)] if server is not None else []
    started: list[tuple[ThreadingHTTPServer, int]] = []
    for address, reg, rdy in (
        (metrics_bind_address, registry, None),
        (health_probe_bind_address, None, ready),
    ):
        server, port = serve(address, registry=reg, ready=rdy, healthy=healthy)
        if server is not None:
            started.append((server, port))
    return started


def shutdown(servers: list[tuple[ThreadingHTTPServer, int]]) -> None:
    for server, _ in servers:
        server.shutdown()
        server.server_close()
