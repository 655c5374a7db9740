"""A developer on the emulated GitHub, without PyGithub's client-side pacing.

PyGithub waits ``seconds_between_writes`` (1 s) before each write and ``seconds_between_requests``
(0.25 s) between requests by default. Timed from just before ``create_pull``, that wait would
be measured as controller latency, and it slows every set-up; benchmarks act through this client.
"""

from __future__ import annotations

from github import Auth, Github
from github.Repository import Repository

from world import OWNER, TOKEN, World


def repository(world: World, name: str) -> Repository:
    client = Github(
        base_url=world.github.api_url,
        auth=Auth.Token(TOKEN),
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    return client.get_repo(f"{OWNER}/{name}")
