"""Hostile annotations stay with their own origin, and never choose where credentials go.

Next to a healthy origin: origins whose annotations hold deeply nested JSON, an idle expiry that
overflows date arithmetic, kilobytes of brackets, and one whose repository URL names a host the
operator never configured (a loopback port recording every connection, standing in for an
attacker's server). Each gets a Warning Event naming the fix; the untrusted host receives not even
a connection; and a pull request opened afterwards gets the healthy origin its clone on time.
"""

from __future__ import annotations

import pytest
from e2e.replicator_support import Replicator, open_pull, seed, wait_clones, wait_event

from controller_common import contract
from e2e_support import ConnectionRecorder
from world import OWNER, World

pytestmark = pytest.mark.e2e

HOSTILE = {
    "deep-env": {contract.ENV_ANNOTATION: '{"A": ' * 2000 + "1" + "}" * 2000},
    "far-expiry": {contract.IDLE_EXPIRY_ANNOTATION: "3000000d"},
    "huge-expiry": {contract.IDLE_EXPIRY_ANNOTATION: "99999999999d"},
    "brackets": {contract.REQUIRED_LABELS_ANNOTATION: "[" * 1000},
}


def test_hostile_annotations_are_contained_and_an_unconfigured_host_gets_no_request(world: World) -> None:
    shop = world.create_repository("shop")
    repository = f"https://github.com/{OWNER}/shop"
    seed(world, "healthy", repository=repository)
    for name, hostile in HOSTILE.items():
        seed(world, name, repository=repository, annotations=hostile)
    with ConnectionRecorder() as attacker:
        seed(world, "stolen", repository=f"https://127.0.0.1:{attacker.port}/{OWNER}/shop")
        replicator = Replicator(world, poll_interval=0.3)
        first = open_pull(world, shop, "first")
        wait_clones(world, "healthy", {first})

        for name, hostile in HOSTILE.items():
            (key,) = hostile
            event = wait_event(world, name, "InvalidAnnotation", contains=key)
            assert event["type"] == "Warning" and len(event["message"]) < 1024, event["message"]
        assert "365d" in wait_event(world, "far-expiry", "InvalidAnnotation")["message"]
        refused = wait_event(world, "stolen", "UntrustedRepositoryHost")
        assert refused["type"] == "Warning"
        assert f"--github-enterprise-api-url=127.0.0.1:{attacker.port}=" in refused["message"]

        # A second PR after every hostile origin was read: polling is still alive for the others.
        second = open_pull(world, shop, "second")
        wait_clones(world, "healthy", {first, second})
        assert attacker.received == [], "the replicator connected to a host no flag configured"
    for name in (*HOSTILE, "stolen"):
        assert wait_clones(world, name, set()) == {}
    assert replicator.metric("replicator_origin_errors_total", reason="repository-host") >= 1
    logs = replicator.process.logs()
    assert "poll failed" not in logs and "Traceback" not in logs, logs[-4000:]
    assert replicator.process.running
