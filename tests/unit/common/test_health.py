"""Metrics and probe endpoints: bind addresses, status codes, one or two servers."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from controller_common import health


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        (":8080", ("", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9090", ("::1", 9090)),
        ("0", None),
        ("", None),
    ],
    ids=["all-interfaces", "loopback-ephemeral", "ipv6", "zero-disables", "empty-disables"],
)
def test_parse_bind_address(address: str, parsed: tuple[str, int] | None) -> None:
    assert health.parse_bind_address(address) == parsed


@pytest.mark.parametrize("address", ["8080x", "host:port", ":70000"], ids=["no-colon", "bad-port", "range"])
def test_parse_bind_address_rejects_garbage(address: str) -> None:
    with pytest.raises(ValueError):
        health.parse_bind_address(address)


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("test_things_total", "Things.", registry=registry).inc(3)
    return registry


class Flag:
    def __init__(self, value: bool) -> None:
        self.value = value

    def __call__(self) -> bool:
        return self.value


@pytest.fixture
def servers() -> Iterator[list[tuple[object, int]]]:
    started: list[tuple[object, int]] = []
    yield started
    health.shutdown(started)  # type: ignore[arg-type]


def test_one_server_serves_metrics_and_probes(registry: CollectorRegistry, servers: list[tuple[object, int]]) -> None:
    ready = Flag(False)
    server, port = health.serve("127.0.0.1:0", registry=registry, ready=ready)
    assert server is not None and port
    servers.append((server, port))
    assert fetch(port, "/healthz") == (200, "ok")
    assert fetch(port, "/readyz")[0] == 503
    ready.value = True
    assert fetch(port, "/readyz") == (200, "ok")
    status, body = fetch(port, "/metrics")
    assert status == 200
    assert "test_things_total 3.0" in body
    assert fetch(port, "/nope")[0] == 404


def test_a_raising_check_is_not_ready(servers: list[tuple[object, int]]) -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    server, port = health.serve("127.0.0.1:0", registry=None, ready=broken)
    assert server is not None and port
    servers.append((server, port))
    assert fetch(port, "/readyz")[0] == 503


def test_disabled_address_serves_nothing() -> None:
    assert health.serve("0", registry=CollectorRegistry(), ready=lambda: True) == (None, 0)


def test_serve_endpoints_shares_one_server_for_equal_addresses(
    registry: CollectorRegistry, servers: list[tuple[object, int]]
) -> None:
    started = health.serve_endpoints(
        metrics_bind_address="127.0.0.1:0",
        health_probe_bind_address="127.0.0.1:0",
        registry=registry,
        ready=lambda: True,
    )
    servers.extend(started)  # type: ignore[arg-type]
    assert len(started) == 1
    (_, port) = started[0]
    assert fetch(port, "/metrics")[0] == 200
    assert fetch(port, "/readyz")[0] == 200


def test_serve_endpoints_splits_different_addresses(
    registry: CollectorRegistry, servers: list[tuple[object, int]]
) -> None:
    started = health.serve_endpoints(
        metrics_bind_address="127.0.0.1:0",
        health_probe_bind_address="0.0.0.0:0",
        registry=registry,
        ready=lambda: True,
    )
    servers.extend(started)  # type: ignore[arg-type]
    (_, metrics_port), (_, probe_port) = started
    assert fetch(metrics_port, "/metrics")[0] == 200
    assert fetch(metrics_port, "/readyz")[0] == 404
    assert fetch(probe_port, "/readyz")[0] == 200
    assert fetch(probe_port, "/metrics")[0] == 404


def test_serve_endpoints_with_metrics_disabled(servers: list[tuple[object, int]]) -> None:
    started = health.serve_endpoints(
        metrics_bind_address="0",
        health_probe_bind_address="127.0.0.1:0",
        registry=CollectorRegistry(),
        ready=lambda: True,
    )
    servers.extend(started)  # type: ignore[arg-type]
    assert len(started) == 1
    assert fetch(started[0][1], "/metrics")[0] == 404
