"""A router-only world for the service-router's end-to-end tests.

The router runs as a real process from its console script, with a kubeconfig of its own token so
the emulator's request log tells its writes from everyone else's, and with /metrics and the probes
on one known port. Clone Services are created here as the replicator would create them: the
annotation is the whole contract, so no replicator (and no GitHub) is needed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from controller_common import contract, objects
from controller_common.kube import EVENTS, SERVICES
from e2e_support import BIN_DIR, ControllerProcess, wait_until
from world import VIRTUAL_SERVICES, World, free_port

ROUTER_TOKEN = "service-router-e2e"


@dataclass
class Router:
    world: World
    extra: tuple[str, ...] = ()
    process: ControllerProcess | None = field(default=None, init=False)
    port: int = field(default=0, init=False)
    starts: int = field(default=0, init=False)

    def start(self) -> Router:
        self.starts += 1
        self.port = free_port()
        kubeconfig = self.world.kube.write_kubeconfig(self.world.workdir / "router-kubeconfig", token=ROUTER_TOKEN)
        address = f"127.0.0.1:{self.port}"
        args = ["--metrics-bind-address", address, "--health-probe-bind-address", address, "--resync-period", "30"]
        self.process = ControllerProcess(
            f"service-router#{self.starts}",
            [*args, *self.extra],
            env={"KUBECONFIG": str(kubeconfig)},
            log_dir=self.world.workdir,
        )
        self.world.controllers.append(self.process)
        wait_until(self._ready, timeout=20, message="service-router ready")
        return self

    def stop(self) -> None:
        assert self.process is not None
        assert self.process.stop() == 0, self.process.logs()[-3000:]

    def _ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """The sample ``name`` with exactly these labels (summed over others), 0 when absent."""
        text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def reconciles(self) -> float:
        return self.metric("service_router_reconcile_total", controller="service-router")

    def writes(self, resource: str = "virtualservices", verb: str | None = None) -> list[Any]:
        return [
            r
            for r in self.world.kube.request_log
            if r.user == ROUTER_TOKEN and r.resource == resource and r.is_write and verb in (None, r.verb)
        ]

    def settle(self, poke: Callable[[], None]) -> None:
        """Make the router look again (``poke`` changes something it watches) and wait until it has."""
        before = self.reconciles()
        poke()
        wait_until(lambda: self.reconciles() > before, timeout=10, message="router reconciled after the poke")

    def helper(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``service-router <args>`` as a person would (the admin kubeconfig of the world)."""
        return subprocess.run(
            [str(BIN_DIR / "service-router"), *args],
            env={"KUBECONFIG": str(self.world.kubeconfig), "PATH": str(BIN_DIR)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def create_clone(world: World, name: str, origin: str) -> None:
    world.client.create(
        SERVICES,
        {
            "metadata": {
                "name": name,
                "namespace": world.namespace,
                "labels": {contract.MANAGED_BY_LABEL: contract.REPLICATOR_MANAGER},
                "annotations": {contract.ORIGIN_SERVICE_ANNOTATION: origin},
            },
            "spec": {"selector": {contract.CLONE_LABEL: name}, "ports": [{"name": "http", "port": 80}]},
        },
    )


def virtual_service(world: World, name: str) -> dict[str, Any] | None:
    found = [v for v in world.client.list(VIRTUAL_SERVICES, world.namespace)[0] if objects.name(v) == name]
    return found[0] if found else None


def route_names(world: World, name: str) -> list[str]:
    vs = virtual_service(world, name)
    return [str(r.get("name")) for r in (vs or {}).get("spec", {}).get("http") or []]


def service(world: World, name: str) -> dict[str, Any] | None:
    found = [s for s in world.client.list(SERVICES, world.namespace)[0] if objects.name(s) == name]
    return found[0] if found else None


def event_reasons(world: World, involved: str) -> list[str]:
    events = world.client.list(EVENTS, world.namespace)[0]
    return [e["reason"] for e in events if (e.get("involvedObject") or {}).get("name") == involved]
