"""The foreground runner: ``python -m emulators.github_api`` prints its URL and serves until SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

TESTS_DIR = Path(__file__).resolve().parents[2]


def test_runner_prints_url_serves_tokens_and_repos_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.github_api", "--port", "0", "--token", "T:alice", "--repo", "acme/web"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("GITHUB_API_URL=http://127.0.0.1:")
        api = line.split("=", 1)[1]
        headers = {"Authorization": "token T"}
        assert requests.get(f"{api}/user", headers=headers, timeout=5).json()["login"] == "alice"
        repo = requests.get(f"{api}/repos/acme/web", headers=headers, timeout=5).json()
        assert repo["owner"]["type"] == "Organization" and repo["default_branch"] == "main"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
