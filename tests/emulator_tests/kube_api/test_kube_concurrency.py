"""Concurrency: optimistic locking lets exactly one writer win, and watches miss nothing."""

from __future__ import annotations

import threading
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer


def test_concurrent_updates_from_one_version_have_exactly_one_winner(core: client.CoreV1Api, kubeconfig: Path) -> None:
    base = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"n": "0"}})
    outcomes: list[int] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            body = {"metadata": {"name": "c", "resourceVersion": base.metadata.resource_version}, "data": {"n": str(i)}}
            client.CoreV1Api(api).replace_namespaced_config_map("c", "default", body)
            status = 200
        except ApiException as err:
            status = err.status
        finally:
            api.close()
        with lock:
            outcomes.append(status)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(outcomes) == [200] + [409] * 7


def test_resource_versions_are_unique_and_increasing_under_concurrent_writes(
    server: KubeApiServer, kubeconfig: Path
) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        core = client.CoreV1Api(api)
        try:
            for j in range(10):
                made = core.create_namespaced_config_map("default", {"metadata": {"name": f"c-{i}-{j}"}})
                with lock:
                    seen.append(int(made.metadata.resource_version))
        finally:
            api.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(seen) == len(set(seen)) == 50
    assert max(seen) == server.resource_version


def test_a_watch_sees_every_concurrent_write_in_order(core: client.CoreV1Api, kubeconfig: Path) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    names = [f"c-{i}-{j}" for i in range(4) for j in range(10)]
    received: list[tuple[str, int]] = []
    w = watch.Watch()
    ready = threading.Event()

    def consume() -> None:
        ready.set()
        for event in w.stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10):
            received.append((event["object"].metadata.name, int(event["object"].metadata.resource_version)))
            if len(received) == len(names):
                w.stop()

    def writer(i: int) -> None:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            for j in range(10):
                client.CoreV1Api(api).create_namespaced_config_map("default", {"metadata": {"name": f"c-{i}-{j}"}})
        finally:
            api.close()

    consumer = threading.Thread(target=consume)
    consumer.start()
    ready.wait(timeout=5)
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join(timeout=20)
    consumer.join(timeout=15)
    assert sorted(name for name, _ in received) == sorted(names)
    versions = [v for _, v in received]
    assert versions == sorted(versions)
