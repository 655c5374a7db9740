"""Host spellings, resolved the way Istio resolves them."""

from __future__ import annotations

import pytest

from service_router.hosts import canonical_host, host_aliases, host_matches, refers_to


def test_host_aliases_are_the_four_spellings() -> None:
    assert host_aliases("Echo", "Default") == {
        "echo",
        "echo.default",
        "echo.default.svc",
        "echo.default.svc.cluster.local",
    }


@pytest.mark.parametrize(
    ("host", "context", "expected"),
    [
        ("echo", "default", "echo.default.svc.cluster.local"),
        ("echo", "other", "echo.other.svc.cluster.local"),
        ("echo.default", "other", "echo.default.svc.cluster.local"),
        ("echo.default.svc", "other", "echo.default.svc.cluster.local"),
        ("echo.default.svc.cluster.local.", "other", "echo.default.svc.cluster.local"),
        ("api.example.com", "default", "api.example.com"),
        ("*.default.svc.cluster.local", "other", "*.default.svc.cluster.local"),
        ("*", "default", "*"),
    ],
    ids=["short", "short-other-context", "dot-ns", "dot-svc", "trailing-dot", "external", "wildcard", "star"],
)
def test_canonical_host(host: str, context: str, expected: str) -> None:
    assert canonical_host(host, context_namespace=context) == expected


@pytest.mark.parametrize(
    ("host", "context", "expected"),
    [
        ("echo", "default", True),
        ("echo", "other", False),
        ("echo.default", "other", True),
        ("ECHO.DEFAULT.SVC", "other", True),
        ("echo.default.svc.cluster.local", "other", True),
        ("echo-pr1", "default", False),
        ("echo.other", "default", False),
    ],
    ids=["short-same-ns", "short-other-ns", "dot-ns", "upper-case", "fqdn", "other-service", "other-ns-spelled"],
)
def test_refers_to(host: str, context: str, expected: bool) -> None:
    assert refers_to(host, service="echo", namespace="default", context_namespace=context) is expected


@pytest.mark.parametrize(
    ("pattern", "fqdn", "expected"),
    [
        ("*", "echo.default.svc.cluster.local", True),
        ("*.default.svc.cluster.local", "echo.default.svc.cluster.local", True),
        ("*.other.svc.cluster.local", "echo.default.svc.cluster.local", False),
        ("echo.default.svc.cluster.local", "echo.default.svc.cluster.local", True),
        ("echo.default.svc.cluster.local", "echo2.default.svc.cluster.local", False),
    ],
    ids=["star", "wildcard", "wildcard-other", "exact", "exact-other"],
)
def test_host_matches(pattern: str, fqdn: str, expected: bool) -> None:
    assert host_matches(pattern, fqdn) is expected
