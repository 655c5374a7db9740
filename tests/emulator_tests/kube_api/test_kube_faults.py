"""Fault injection: chosen verbs/resources fail, requests slow down, watches get cut."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import service, wait_for


@pytest.mark.parametrize(("code", "reason"), [(500, "InternalError"), (409, "Conflict"), (503, "ServiceUnavailable")])
def test_injected_status_answers_matching_requests(
    core: client.CoreV1Api, server: KubeApiServer, code: int, reason: str
) -> None:
    server.faults.inject(verb="create", resource="services", status=code)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service("default", service())
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"], body["kind"]) == (code, reason, "Status")
    core.create_namespaced_config_map("default", {"metadata": {"name": "unaffected"}})
    assert server.objects("services") == []


def test_429_carries_retry_after(server: KubeApiServer) -> None:
    # urllib here: the kubernetes client's urllib3 would honour Retry-After and retry by itself
    server.faults.inject(verb="list", resource="services", status=429, retry_after=7)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + "/api/v1/namespaces/default/services", timeout=5)
    assert err.value.code == 429
    assert err.value.headers["Retry-After"] == "7"
    body = json.loads(err.value.read())
    assert (body["reason"], body["details"]["retryAfterSeconds"]) == ("TooManyRequests", 7)


def test_times_limits_and_remove_ends_a_fault(core: client.CoreV1Api, server: KubeApiServer) -> None:
    handle = server.faults.inject(verb="get", resource="configmaps", status=500, times=1)
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("c", "default")
    assert core.read_namespaced_config_map("c", "default").metadata.name == "c"
    forever = server.faults.inject(verb="get", resource="configmaps", status=500)
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("c", "default")
    forever.remove()
    handle.remove()
    assert core.read_namespaced_config_map("c", "default").metadata.name == "c"


def test_rate_fails_a_fraction(core: client.CoreV1Api, server: KubeApiServer) -> None:
    server.faults.inject(verb="list", resource="configmaps", status=500, rate=0.5)
    failures = 0
    for _ in range(40):
        try:
            core.list_namespaced_config_map("default")
        except ApiException:
            failures += 1
    assert 5 < failures < 35


def test_failed_requests_are_logged_with_their_status(core: client.CoreV1Api, server: KubeApiServer) -> None:
    server.faults.inject(verb="update", resource="configmaps", status=500)
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    with pytest.raises(ApiException):
        core.replace_namespaced_config_map("c", "default", {"metadata": {"name": "c"}, "data": {"a": "b"}})
    assert [(r.verb, r.status) for r in server.request_log if r.resource == "configmaps"] == [
        ("create", 201),
        ("update", 500),
    ]


def test_latency_slows_every_request(core: client.CoreV1Api, server: KubeApiServer) -> None:
    server.faults.latency_seconds = 0.2
    started = time.monotonic()
    core.list_namespaced_config_map("default")
    assert time.monotonic() - started >= 0.2
    server.faults.clear()
    assert server.faults.latency_seconds == 0


def test_drop_watches_cuts_streams_abruptly(server: KubeApiServer) -> None:
    outcome: dict[str, object] = {}

    def consume() -> None:
        try:
            with urllib.request.urlopen(
                server.url + "/api/v1/namespaces/default/configmaps?watch=true", timeout=10
            ) as resp:
                outcome["body"] = resp.read()
        except Exception as exc:  # http.client.IncompleteRead: no terminating chunk
            outcome["error"] = type(exc).__name__

    t = threading.Thread(target=consume)
    t.start()
    wait_for(lambda: any(r.verb == "watch" for r in server.request_log))
    server.faults.drop_watches()
    t.join(timeout=5)
    assert outcome.get("error") == "IncompleteRead"


def test_watch_fault(server: KubeApiServer) -> None:
    server.faults.inject(verb="watch", status=500)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + "/api/v1/namespaces/default/configmaps?watch=true", timeout=5)
    assert err.value.code == 500


def test_unknown_verb_is_rejected(server: KubeApiServer) -> None:
    with pytest.raises(ValueError):
        server.faults.inject(verb="destroy")


def test_emulator_bugs_answer_500_and_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    with KubeApiServer() as server:

        def broken(*args: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(server.api, "get", broken)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "/api/v1/namespaces/default", timeout=5)
        assert err.value.code == 500
        assert json.loads(err.value.read())["reason"] == "InternalError"
        assert len(server.internal_errors) == 1 and "RuntimeError: boom" in server.internal_errors[0]
