"""Run the emulator in the foreground: ``python -m emulators.kube_api --port 8001 --kubeconfig PATH``."""

from __future__ import annotations

import argparse
import signal
import threading

from .cluster import KubeApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.kube_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig for this server")
    parser.add_argument("--token", default="admin-token")
    parser.add_argument("--crd", action="append", default=[], help="CRD YAML file to register (repeatable)")
    parser.add_argument("--deployment-delay", type=float, default=0.05)
    parser.add_argument("--tls", action="store_true", help="serve HTTPS (kubectl sends tokens only over TLS)")
    parser.add_argument(
        "--authorization",
        choices=["allow-all", "rbac"],
        default="allow-all",
        help="rbac: only --token (system:masters) and registered tokens authenticate; RBAC objects decide",
    )
    args = parser.parse_args(argv)

    done = threading.Event()
    server = KubeApiServer(
        args.host,
        args.port,
        deployment_delay_seconds=args.deployment_delay,
        tls=args.tls,
        authorization=args.authorization,
        admin_token=args.token,
    )
    server.apply_crd_files(args.crd)
    server.start()
    path = server.write_kubeconfig(args.kubeconfig, token=args.token)
    print(f"kube-api emulator listening on {server.url}; kubeconfig {path}", flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
