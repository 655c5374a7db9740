"""``make sandbox``: both emulators in the foreground, for trying things by hand.

Registers the Istio CRDs (Istio's own from ``../shared`` when present, else the project's bundled
VirtualService CRD) and creates the GitHub repository of the example origin in
``manifests/examples`` (``example/hello``) with a signed ``pull_request`` webhook pointing at the
address the replicator is told to listen on. Writes ``.sandbox/kubeconfig`` and ``.sandbox/env``
(``export`` lines for ``KUBECONFIG``, ``GITHUB_API_URL``, ``GITHUB_TOKEN``,
``GITHUB_WEBHOOK_SECRET`` and ``REPLICATOR_WEBHOOK_ADDRESS``) and serves until Ctrl-C.
``tests/sandbox_pr.py`` (``make sandbox-pr``) then opens, pushes to and closes pull requests.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path

from github import Auth, Github

from emulators.github_api import GitHubApiServer
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer
from shared_data import REPO_ROOT, istio_crd_paths

TOKEN = "sandbox-token"
EXAMPLE_REPOSITORY = "example/hello"
"""The repository ``manifests/examples/deployment.yaml`` names (``https://github.com/example/hello``)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_example_repository(api_url: str, *, webhook_url: str, secret: str) -> None:
    """``example/hello`` with a signed ``pull_request`` webhook, as a platform team sets it up."""
    owner, name = EXAMPLE_REPOSITORY.split("/")
    github = Github(base_url=api_url, auth=Auth.Token(TOKEN), retry=None, seconds_between_writes=None)
    try:
        repo = github.get_organization(owner).create_repo(name)
        # the replicator is not listening yet: the ping fails, later deliveries reach it
        repo.create_hook("web", {"url": webhook_url, "content_type": "json", "secret": secret}, ["pull_request"])
    finally:
        github.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make sandbox", description=__doc__)
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".sandbox", help="where to write kubeconfig and env")
    parser.add_argument("--kube-port", type=int, default=0)
    parser.add_argument("--github-port", type=int, default=0)
    parser.add_argument(
        "--webhook-port",
        type=int,
        default=0,
        help="where the replicator's webhook receiver will listen (0: a free one)",
    )
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
        webhook_address = f"127.0.0.1:{args.webhook_port or _free_port()}"
        secret = secrets.token_hex(16)
        create_example_repository(github.api_url, webhook_url=f"http://{webhook_address}/webhook", secret=secret)
        kubeconfig = kube.write_kubeconfig(args.dir / "kubeconfig")
        env = {
            "KUBECONFIG": str(kubeconfig),
            "GITHUB_API_URL": github.api_url,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_WEBHOOK_SECRET": secret,
            "REPLICATOR_WEBHOOK_ADDRESS": webhook_address,
        }
        env_file = args.dir / "env"
        env_file.write_text("".join(f"export {key}={value}\n" for key, value in env.items()))
        print(f"Kubernetes API emulator: {kube.url}  ({len(crds)} CRD file(s) registered)")
        print(f"GitHub REST emulator:    {github.api_url}  (token {TOKEN}, login 'sandbox')")
        print(f"GitHub repository:       {EXAMPLE_REPOSITORY}, webhook to http://{webhook_address}/webhook")
        print(f"\nIn another shell:  source {env_file}")
        print("                   then follow the README, 'Try it by hand'")
        print("Ctrl-C stops the sandbox.", flush=True)
        stop.wait()
    finally:
        github.stop()
        kube.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
