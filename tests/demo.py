"""``make demo``: a pull request's life told to a person, against emulated Kubernetes and GitHub.

Starts both emulators and both controllers (as separate processes), then: opens a PR, pushes a
commit, opens a second PR, closes one and merges the other, printing after each step a short
table of Deployments (a clone's row shows the commit it runs), Services and routes, and where a
request goes with and without the routing header. ``--pause`` waits for Enter after each step and
prints the ``kubectl`` commands to look around (``kubectl service-router routes`` among them). Exits
0 and leaves no process behind; Ctrl-C stops everything and exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from controller_common import contract
from e2e_support import BIN_DIR
from evaluate_support import route_request
from world import Snapshot, World

ORIGIN = "echo"
REPOSITORY = f"https://github.com/mercari/{ORIGIN}"
IMAGE = "ghcr.io/mercari/echo:1.4.2"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("    " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def describe(snap: Snapshot) -> str:
    rows = [("KIND", "NAME", "DETAIL")]
    for name, d in sorted(snap.deployments.items()):
        status = d.get("status") or {}
        ready = f"{status.get('availableReplicas', 0)}/{d['spec'].get('replicas')} available"
        head = (d["metadata"].get("annotations") or {}).get(contract.CLONE_HEAD_SHA_ANNOTATION)
        rows.append(("Deployment", name, f"{snap.image(name)}  {ready}" + (f"  commit {head[:7]}" if head else "")))
    for name, s in sorted(snap.services.items()):
        origin = (s["metadata"].get("annotations") or {}).get(contract.ORIGIN_SERVICE_ANNOTATION)
        rows.append(("Service", name, f"clone of {origin}" if origin else "origin"))
    for route in (snap.virtual_service or {}).get("spec", {}).get("http") or []:
        match = route.get("match") or [{}]
        headers = match[0].get("headers") or {}
        condition = ", ".join(f"{k}={v.get('exact')}" for k, v in headers.items()) or "(any request)"
        target = route["route"][0]["destination"]["host"]
        rows.append(("Route", str(route.get("name", "-")), f"{condition} -> {target}"))
    return table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--pause", action="store_true", help="wait for Enter after each step")
    args = parser.parse_args(argv)

    try:
        with tempfile.TemporaryDirectory(prefix="pr-env-demo-") as tmp:
            world = World(Path(tmp)).start()
            try:
                return _story(world, pause=args.pause)
            except KeyboardInterrupt:
                print("\ninterrupted: stopping the controllers and emulators", flush=True)
                return 130
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not strand a process
                world.stop()
    except KeyboardInterrupt:  # while starting: nothing is left running
        print("\ninterrupted", flush=True)
        return 130


def look_around(world: World) -> list[str]:
    """The commands to see what a step made, in a shell of one's own (the kubectl plugin included)."""
    return [
        f'export KUBECONFIG={world.kubeconfig} PATH="{BIN_DIR}:$PATH"',
        "kubectl get deploy,svc,virtualservices",
        "kubectl service-router routes",
        f"kubectl get virtualservice {ORIGIN} -o yaml",
    ]


def _story(world: World, *, pause: bool) -> int:
    step_number = 0
    pausing = pause

    def step(
        title: str, until: Callable[[Snapshot], bool], notes: Callable[[Snapshot], list[str]] | None = None
    ) -> Snapshot:
        nonlocal step_number, pausing
        step_number += 1
        print(f"\n== {step_number}. {title}", flush=True)
        snap = world.wait_for(ORIGIN, until, timeout=60, message=title)
        print(describe(snap), flush=True)
        for line in notes(snap) if notes else []:
            print(f"    {line}", flush=True)
        if pausing:
            print("\n    look around (another shell):", *(f"      {c}" for c in look_around(world)), sep="\n")
            try:
                input("    press Enter to continue ")
            except EOFError:  # stdin closed: go on without pausing
                pausing = False
        return snap

    print("Emulated Kubernetes API:", world.kube.url, "| emulated GitHub API:", world.github.api_url)
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=REPOSITORY, image=IMAGE)
    step(f"origin '{ORIGIN}' annotated with {REPOSITORY}", lambda s: ORIGIN in s.deployments)
    world.start_controllers()
    print("   replicator and service-router started as separate processes")

    first = world.open_pull_request(repo, "feature-a")
    a = f"{ORIGIN}-pr{first}"
    header = contract.routing_header(ORIGIN, world.namespace)

    def routing(snap: Snapshot) -> list[str]:
        with_header = route_request(snap.virtual_service, host=ORIGIN, headers={header: f"{a}.{world.namespace}"})
        without = route_request(snap.virtual_service, host=ORIGIN, headers={})
        return [
            "",
            f"request with {header}: {a}.{world.namespace} -> {with_header}",
            f"request without it -> {without}",
        ]

    step(f"PR #{first} opened: its own Deployment, Service and route", lambda s: _routed(s, a), routing)

    sha = world.push(repo, "feature-a")
    step(
        f"new commit {sha[:7]} pushed to PR #{first}: {a} now runs commit {sha[:7]}",
        lambda s: _head(s, a) == sha,
    )

    second = world.open_pull_request(repo, "feature-b")
    b = f"{ORIGIN}-pr{second}"
    step(f"PR #{second} opened: two environments, both routes before the default", lambda s: _routed(s, b))

    repo.get_pull(first).edit(state="closed")
    step(f"PR #{first} closed", lambda s: a not in s.deployments and not _routed(s, a))
    repo.get_pull(second).merge()
    step(
        f"PR #{second} merged: only the origin remains",
        lambda s: s.route_names == ["default"] and b not in s.deployments,
    )
    print("\nDone: every step converged; stopping the controllers and emulators.")
    return 0


def _routed(snap: Snapshot, clone: str) -> bool:
    return clone in snap.deployments and clone in snap.services and f"service-router--{clone}" in snap.route_names


def _head(snap: Snapshot, clone: str) -> str | None:
    deployment = snap.deployments.get(clone)
    return ((deployment or {}).get("metadata", {}).get("annotations") or {}).get(contract.CLONE_HEAD_SHA_ANNOTATION)


if __name__ == "__main__":
    sys.exit(main())
