"""What the scale benchmark reads from outside the controllers: processes, metrics, memory, idleness.

Both controllers run from their console scripts with default flags except the listening
addresses (known ports, so ``/metrics`` and ``/readyz`` can be read) and, for the replicator, the
webhook receiver and its secret. Memory is the kernel's view (``VmRSS`` and the peak ``VmHWM`` in
``/proc/<pid>/status``). "Idle" is read from the controllers' own metrics: ``/readyz`` answers
200, ``<prefix>_workqueue_depth`` is 0 and ``<prefix>_reconcile_total`` has not moved for a while.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from e2e_support import ControllerProcess
from world import World, free_port

WEBHOOK_SECRET = "scale-webhook-secret"


@dataclass
class Controller:
    """One controller process with known ports; ``start`` may be called again after ``stop``."""

    name: str
    prefix: str
    world: World
    poll_interval: float | None = None
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    webhook_port: int = field(default_factory=free_port)
    process: ControllerProcess | None = None
    started_at: float = 0.0
    runs: int = 0

    @property
    def is_replicator(self) -> bool:
        return self.name == "replicator"

    def start(self) -> None:
        args = ["--metrics-bind-address", f"127.0.0.1:{self.metrics_port}"]
        args += ["--health-probe-bind-address", f"127.0.0.1:{self.health_port}"]
        env = dict(self.world.env)
        if self.is_replicator:
            args += ["--webhook-bind-address", f"127.0.0.1:{self.webhook_port}"]
            env["GITHUB_WEBHOOK_SECRET"] = WEBHOOK_SECRET
            if self.poll_interval is not None:
                args += ["--poll-interval", str(self.poll_interval)]
        self.runs += 1
        self.started_at = time.time()
        self.process = ControllerProcess(f"{self.name}#{self.runs}", args, env=env, log_dir=Path(self.world.workdir))
        self.world.controllers.append(self.process)

    def stop(self) -> int:
        assert self.process is not None
        return self.process.stop(timeout=30.0)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.process.pid

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/webhook"

    def listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.webhook_port)) == 0

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> dict[str, float]:
        """Metric name -> sum over its label sets (empty while the endpoint does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            return {}
        sums: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            key, value = line.rsplit(" ", 1)
            metric = key.partition("{")[0]
            sums[metric] = sums.get(metric, 0.0) + float(value)
        return sums

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB (10^6 bytes), as the kernel reports them for the process."""
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(rest.split()[0]) * 1024 / 1e6
        return fields["VmRSS"], fields["VmHWM"]


@dataclass(frozen=True)
class Idle:
    """When a controller last did something (seconds after its start) and what it did meanwhile."""

    seconds: float
    reconciles: float
    timed_out: bool


def wait_idle(
    controller: Controller,
    *,
    stable: float,
    timeout: float,
    also_done: Callable[[], float | None] = lambda: 0.0,
    interval: float = 0.25,
) -> Idle:
    """Poll until ready, queue empty and ``reconcile_total`` unchanged for ``stable`` seconds.

    ``also_done`` returns the wall-clock time some outside condition was met (for the replicator:
    every repository listed once since the start), or ``None`` while it is not. The figure is the
    last moment of activity (depth above 0, a reconcile counted, or that condition) after start.
    """
    depth_name, total_name = f"{controller.prefix}_workqueue_depth", f"{controller.prefix}_reconcile_total"
    start = controller.started_at
    last_total: float | None = None
    last_activity = start
    deadline = start + timeout
    while True:
        now = time.time()
        values = controller.metrics() if controller.ready() else {}
        if values:
            total, depth = values.get(total_name, 0.0), values.get(depth_name, 0.0)
            if total != last_total or depth > 0:
                last_total, last_activity = total, now
            outside = also_done()
            if outside is not None and depth == 0 and now - max(last_activity, outside) >= stable:
                return Idle(max(last_activity, outside) - start, total, False)
        else:
            last_activity = now
        if now > deadline:
            return Idle(timeout, last_total or 0.0, True)
        time.sleep(interval)
