"""Configuration mistakes end in one log line and their own exit code, never a traceback.

Why this exists: the first hour with a controller is spent on its configuration — no kubeconfig,
an address that is taken, a Secret mounted at the wrong path. Each such mistake is checked at
start-up, before an informer or a worker runs, and raised as a :class:`StartupError` naming the
flag or file and the fix; :func:`run_main` (each controller's ``main()``) logs it as one structured
line (JSON unless a terminal, like every other line) and exits with the error's code, so a pod's
``Last State: Terminated, Exit Code`` already says which kind of mistake it was.

Exit codes (README, "Exit codes"): 0 stopped cleanly; 1 failed while running; 2 usage (argparse);
3..7 below.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from controller_common.flags import ProcessSettings
from controller_common.health import parse_bind_address
from controller_common.kube import KubeClient
from controller_common.logging import configure_logging

EXIT_KUBECONFIG = 3
"""No cluster to talk to: no kubeconfig and not in a cluster, or the kubeconfig / context is unusable."""
EXIT_BIND_ADDRESS = 4
"""A ``--*-bind-address`` is not an address of this machine in the form ``HOST:PORT``, ``:PORT`` or ``0``."""
EXIT_CANNOT_LISTEN = 5
"""A ``--*-bind-address`` port is already in use, or may not be opened (a privileged port)."""
EXIT_CREDENTIALS_FILE = 6
"""A token, key or secret file cannot be read, or does not hold what it should."""
EXIT_GITHUB_CREDENTIALS = 7
"""GitHub answered 401 to the credentials (``GET /user``, or ``GET /app`` for a GitHub App)."""

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class StartupError(Exception):
    """A configuration mistake found at start-up: ``message`` names the flag or file and the fix."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = " ".join(message.split())  # one line, whatever the wrapped error held


def run_main(main: Callable[[], int], *, name: str) -> int:
    """Run ``main``; a :class:`StartupError` becomes one error line and its exit code."""
    try:
        return main()
    except StartupError as error:
        if not structlog.is_configured():
            configure_logging()  # the mistake came before the flags that choose the format were read
        structlog.get_logger(name).error("cannot start", error=error.message, exit_code=error.exit_code)
        return error.exit_code


# --- listen addresses ----------------------------------------------------------------------------


def check_listen_addresses(addresses: Mapping[str, str]) -> None:
    """``{flag: address}``: every address parses and its port can be opened now.

    The metrics and health-probe flags may name the same address (one server serves both); any
    other two flags naming one port are a mistake. Port 0 (any free port) never conflicts.
    """
    seen: dict[tuple[str, int], tuple[str, str]] = {}
    for flag, address in addresses.items():
        try:
            parsed = parse_bind_address(address)
        except ValueError as exc:
            reason = str(exc).split(": ", 1)[-1]
            if reason.startswith("want"):
                reason = "no port"
            raise StartupError(
                EXIT_BIND_ADDRESS, f"{flag}={address!r}: {reason}; write HOST:PORT, :PORT or 0 to disable"
            ) from None
        if parsed is None:
            continue
        if parsed[1] != 0 and parsed in seen:
            other_flag, other_address = seen[parsed]
            if other_address.strip() == address.strip() and {flag, other_flag} == {
                "--metrics-bind-address",
                "--health-probe-bind-address",
            }:
                continue
            raise StartupError(
                EXIT_CANNOT_LISTEN,
                f"{flag}={address!r} and {other_flag}={other_address!r} name one port; give each its own",
            )
        seen[parsed] = (flag, address)
        _try_listen(flag, address, parsed)


def _try_listen(flag: str, address: str, parsed: tuple[str, int]) -> None:
    host, port = parsed
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # As the real servers do: a port left in TIME_WAIT by our previous run is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except socket.gaierror:
        raise StartupError(
            EXIT_BIND_ADDRESS, f"{flag}={address!r}: {host!r} is not a host name or address; write HOST:PORT or :PORT"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                EXIT_CANNOT_LISTEN,
                f"{flag}={address!r}: port {port} is already in use; stop what listens there or choose another port",
            ) from None
        if exc.errno == errno.EACCES:
            raise StartupError(
                EXIT_CANNOT_LISTEN,
                f"{flag}={address!r}: may not open port {port} (ports below 1024 need privileges); "
                "choose a port above 1024",
            ) from None
        raise StartupError(
            EXIT_BIND_ADDRESS,
            f"{flag}={address!r}: cannot listen there ({exc.strerror}); name an address of this machine, "
            "or :PORT for all of them",
        ) from None


# --- the cluster -----------------------------------------------------------------------------------


def kube_client(process: ProcessSettings, environ: Mapping[str, str] | None = None) -> KubeClient:
    """The client for ``--kubeconfig``/``$KUBECONFIG``/in-cluster/``~/.kube/config``, or a :class:`StartupError`."""
    env = os.environ if environ is None else environ
    kubeconfig = process.kubeconfig
    if kubeconfig:
        source = "$KUBECONFIG" if env.get("KUBECONFIG") == kubeconfig else "--kubeconfig"
        _check_kubeconfig_files(source, kubeconfig)
    elif env.get("KUBERNETES_SERVICE_HOST"):
        source = "in-cluster configuration"
    else:
        default = Path("~/.kube/config").expanduser()
        if not default.is_file():
            raise StartupError(
                EXIT_KUBECONFIG,
                "no Kubernetes cluster to talk to: not in a cluster ($KUBERNETES_SERVICE_HOST is unset) and no "
                f"kubeconfig (--kubeconfig, $KUBECONFIG, {default}); pass --kubeconfig=PATH or run in a pod",
            )
        source, kubeconfig = "~/.kube/config", str(default)
    try:
        return KubeClient.from_environment(process.kubeconfig, process.context)
    except Exception as exc:  # the kubernetes client's ConfigException, or worse on a malformed file
        if source == "in-cluster configuration":
            fix = "mount the ServiceAccount token (automountServiceAccountToken) or pass --kubeconfig"
            raise StartupError(EXIT_KUBECONFIG, f"{source}: {exc}; {fix}") from None
        fix = "fix the file, or pick one of its contexts with --context (kubectl config get-contexts)"
        context = f" (--context={process.context})" if process.context else ""
        raise StartupError(
            EXIT_KUBECONFIG, f"{source} {kubeconfig}{context}: {exc or type(exc).__name__}; {fix}"
        ) from None


def _check_kubeconfig_files(source: str, kubeconfig: str) -> None:
    # $KUBECONFIG may list several files; kubectl and the client merge those that exist.
    paths = [Path(p).expanduser() for p in kubeconfig.split(os.pathsep) if p]
    if not any(path.is_file() for path in paths):
        problem = "not a file" if any(path.exists() for path in paths) else "no such file"
        raise StartupError(
            EXIT_KUBECONFIG,
            f"{source} {kubeconfig}: {problem}; pass the path of a kubeconfig (kubectl config view --raw > FILE)",
        )
    for path in paths:
        if path.is_file():
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise StartupError(
                    EXIT_KUBECONFIG,
                    f"{source} {path}: cannot read it ({exc.strerror}); make it readable by the controller's user",
                ) from None


# --- files ---------------------------------------------------------------------------------------


def read_credentials_file(flag: str, path: str) -> str:
    """The stripped text of a token, key or secret file, or a :class:`StartupError` naming the flag."""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise StartupError(
            EXIT_CREDENTIALS_FILE,
            f"{flag} {path}: cannot read it ({exc.strerror or exc}); fix the path (the Secret's mount and key) "
            "or make the file readable by the controller's user",
        ) from None
    except UnicodeDecodeError:
        raise StartupError(
            EXIT_CREDENTIALS_FILE, f"{flag} {path}: not a text file; point it at the file itself"
        ) from None
