"""``make sandbox``: both emulators in the foreground, for trying things by hand.

Registers the Istio CRDs (Istio's own from ``../shared`` when present, else the project's bundled
VirtualService CRD), writes ``.sandbox/kubeconfig`` and ``.sandbox/env`` (``export`` lines for
``KUBECONFIG``, ``GITHUB_API_URL`` and ``GITHUB_TOKEN``) and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from emulators.github_api import GitHubApiServer
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer
from shared_data import REPO_ROOT, istio_crd_paths

TOKEN = "sandbox-token"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make sandbox", description=__doc__)
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".sandbox", help="where to write kubeconfig and env")
    parser.add_argument("--kube-port", type=int, default=0)
    parser.add_argument("--github-port", type=int, default=0)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    kube = KubeApiServer(port=args.kube_port).start()
    github = GitHubApiServer(port=args.github_port).start()
    try:
        crds = istio_crd_paths() or [BUNDLED_VIRTUAL_SERVICE_CRD]
        kube.apply_crd_files(crds)
        github.add_token(TOKEN, login="sandbox")
        kubeconfig = kube.write_kubeconfig(args.dir / "kubeconfig")
        env_file = args.dir / "env"
        env_file.write_text(
            f"export KUBECONFIG={kubeconfig}\nexport GITHUB_API_URL={github.api_url}\nexport GITHUB_TOKEN={TOKEN}\n"
        )
        print(f"Kubernetes API emulator: {kube.url}  ({len(crds)} CRD file(s) registered)")
        print(f"GitHub REST emulator:    {github.api_url}  (token {TOKEN}, login 'sandbox')")
        print(f"\nIn another shell:  source {env_file}")
        print(f"                   {REPO_ROOT / '.venv/bin/kubectl'} get namespaces")
        print("Ctrl-C stops the sandbox.", flush=True)
        stop.wait()
    finally:
        github.stop()
        kube.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
