"""The shared contract: header names and clone names are what both controllers agree on."""

import pytest

from controller_common import contract


@pytest.mark.parametrize(
    ("origin", "namespace", "expected"),
    [
        ("echo", "default", "service-router-echo-default"),
        ("Echo", "QA", "service-router-echo-qa"),
    ],
    ids=["plain", "lower-cased"],
)
def test_routing_header(origin: str, namespace: str, expected: str) -> None:
    assert contract.routing_header(origin, namespace) == expected


@pytest.mark.parametrize(
    ("origin", "pr", "expected_len"),
    [("echo", 7, len("echo-pr7")), ("a" * 70, 12, 63), ("b" * 59, 1234, 63)],
    ids=["short-kept", "long-truncated", "boundary-truncated"],
)
def test_clone_name_fits_dns_label(origin: str, pr: int, expected_len: int) -> None:
    name = contract.clone_name(origin, pr)
    assert len(name) == expected_len
    assert name.endswith(f"-pr{pr}")


def test_clone_name_is_deterministic_and_distinct_for_shared_prefixes() -> None:
    a = contract.clone_name("x" * 60 + "-alpha", 1)
    b = contract.clone_name("x" * 60 + "-beta", 1)
    assert a == contract.clone_name("x" * 60 + "-alpha", 1)
    assert a != b
