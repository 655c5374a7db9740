"""Fixtures for the GitHub emulator's tests: a running server, PyGithub clients, a repository."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from github import Auth, Github
from github.Repository import Repository

from emulators.github_api import GitHubApiServer

ALICE = "token-alice"
BOB = "token-bob"


@pytest.fixture
def gh() -> Iterator[GitHubApiServer]:
    with GitHubApiServer(rate_limit=5000) as server:
        server.add_token(ALICE, login="alice")
        server.add_token(BOB, login="bob")
        yield server
        assert server.internal_errors == [], "the emulator answered 500 for a bug of its own"


def client(gh: GitHubApiServer, token: str, **kwargs: object) -> Github:
    """PyGithub as a user would build it, minus its client-side throttle (1 s between writes)."""
    return Github(
        base_url=gh.api_url,
        auth=Auth.Token(token),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def alice(gh: GitHubApiServer) -> Iterator[Github]:
    g = client(gh, ALICE)
    yield g
    g.close()


@pytest.fixture
def repo(alice: Github) -> Repository:
    return alice.get_user().create_repo("shop")


def auth(token: str = ALICE) -> dict[str, str]:
    return {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"}
