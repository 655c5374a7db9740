"""`make demo --pause` as a person sees it: every step's lines before its prompt, a push that
visibly changes the clone, a hint that shows the routes, and Ctrl-C that ends quietly with 130.

The demo runs as its own process with a pipe for stdin, as ``make demo DEMO_ARGS=--pause`` would.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_data import REPO_ROOT

pytestmark = pytest.mark.e2e

PROMPT = "press Enter to continue "


class Demo:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "demo", "--pause"],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "tests"), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        self.fd = self.process.stdout.fileno()
        self.output = ""

    def until_prompt(self, timeout: float = 90) -> str:
        """Everything printed up to the next prompt (the prompt has no newline: read bytes)."""
        start = len(self.output)
        deadline = time.monotonic() + timeout
        while PROMPT not in self.output[start:]:
            left = deadline - time.monotonic()
            assert left > 0, f"no prompt within {timeout}s:\n{self.output[-3000:]}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                assert chunk, f"the demo ended before a prompt:\n{self.output[-3000:]}"
                self.output += chunk.decode(errors="replace")
        end = self.output.index(PROMPT, start) + len(PROMPT)
        return self.output[start:end]

    def enter(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 90) -> int:
        rest, _ = self.process.communicate(timeout=timeout)
        self.output += rest.decode(errors="replace")
        return self.process.returncode

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []


@pytest.fixture
def demo() -> Iterator[Demo]:
    running = Demo()
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def test_pause_prints_each_step_before_its_prompt_and_shows_the_pushed_commit(demo: Demo) -> None:
    demo.until_prompt()
    demo.enter()
    opened = demo.until_prompt()
    assert "== 2. PR #1 opened" in opened
    assert re.search(r"request with service-router-echo-default: echo-pr1\.default -> echo-pr1", opened), opened
    assert "request without it -> echo" in opened
    assert "kubectl service-router routes" in opened
    first_head = re.search(r"Deployment\s+echo-pr1\s+.*commit ([0-9a-f]{7})", opened)
    assert first_head, opened
    demo.enter()
    pushed = demo.until_prompt()
    sha = re.search(r"new commit ([0-9a-f]{7}) pushed to PR #1: echo-pr1 now runs commit \1", pushed)
    assert sha, pushed
    assert re.search(rf"Deployment\s+echo-pr1\s+.*commit {sha.group(1)}", pushed), pushed
    assert sha.group(1) != first_head.group(1)
    for _ in range(3):
        demo.enter()
        demo.until_prompt()
    demo.enter()
    assert demo.finish() == 0, demo.output[-3000:]
    assert "Done: every step converged" in demo.output


def test_ctrl_c_stops_everything_without_a_traceback(demo: Demo) -> None:
    demo.until_prompt()
    demo.enter()
    demo.until_prompt()  # PR #1 routed: both controllers are running
    children = demo.children()
    assert len(children) == 2, children
    demo.process.send_signal(signal.SIGINT)
    assert demo.finish(timeout=60) == 130
    assert "Traceback" not in demo.output, demo.output[-3000:]
    assert "interrupted: stopping the controllers and emulators" in demo.output
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
