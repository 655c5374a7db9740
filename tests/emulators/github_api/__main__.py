"""Run the GitHub emulator in the foreground: ``python -m emulators.github_api --port 0 --token T:login``.

Prints one line ``GITHUB_API_URL=<api_url>`` (then stays up until SIGINT/SIGTERM), so a parent
process or a person can pick the URL up. ``--token`` may repeat; ``--repo owner/name`` creates
repositories up front (owned by that login, which needs a token, or an organization).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import GitHubApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.github_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-limit", type=int, default=5000)
    parser.add_argument("--token", action="append", default=[], metavar="TOKEN:LOGIN")
    parser.add_argument("--repo", action="append", default=[], metavar="OWNER/NAME")
    args = parser.parse_args(argv)
    server = GitHubApiServer(host=args.host, port=args.port, rate_limit=args.rate_limit)
    logins = []
    for spec in args.token:
        token, sep, login = spec.partition(":")
        if not sep or not token or not login:
            parser.error(f"--token wants TOKEN:LOGIN, got {spec!r}")
        server.add_token(token, login=login)
        logins.append(login)
    for spec in args.repo:
        owner, _, name = spec.partition("/")
        with server.store.lock:
            creator = server.store.user(logins[0] if logins else owner)
            account = server.store.user(owner) if owner in logins else server.store.org(owner, member=creator.login)
            server.store.create_repo(account, name, creator=creator)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(f"GITHUB_API_URL={server.api_url}", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
