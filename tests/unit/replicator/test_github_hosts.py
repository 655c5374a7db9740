"""Credentials go only to the hosts the flags configured; the repository annotation cannot add one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e_support import ConnectionRecorder
from emulators.github_api import GitHubApiServer
from replicator.github_hosts import GitHubHosts
from replicator.github_source import AppCredentials, GitHubSource, UntrustedHost
from replicator.repository import parse_repository
from replicator.repository_poller import RepositoryPoller


@pytest.mark.parametrize(
    ("text", "api_url", "mapping", "expected"),
    [
        ("https://github.com/o/r", "http://configured/api/v3/", {}, "http://configured/api/v3"),
        ("o/r", "https://api.github.com", {}, "https://api.github.com"),
        (
            "git@ghe.example.com:o/r.git",
            "https://api.github.com",
            {"GHE.example.com": "https://api.ghe/"},
            "https://api.ghe",
        ),
        ("https://ghe.corp/o/r", "https://ghe.corp/api/v3", {}, "https://ghe.corp/api/v3"),
        ("https://ghe.example.com/o/r", "https://api.github.com", {}, None),
        ("https://api.github.com.evil.example/o/r", "https://api.github.com", {}, None),
        ("ssh://git@127.0.0.1:2222/o/r.git", "http://127.0.0.1:1234", {}, None),
    ],
    ids=["github.com", "short", "enterprise-mapped", "api-url-is-enterprise", "unmapped", "lookalike", "other-port"],
)
def test_each_repository_host_has_its_api_url_only_when_configured(
    text: str, api_url: str, mapping: dict[str, str], expected: str | None
) -> None:
    hosts = GitHubHosts(api_url=api_url, enterprise=mapping)
    repository = parse_repository(text)
    assert hosts.api_url_for(repository) == expected
    refusal = hosts.refusal(repository)
    if expected is None:
        assert refusal is not None and "--github-enterprise-api-url" in refusal and repository.host in refusal
    else:
        assert refusal is None


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    with ConnectionRecorder() as recorder:
        yield recorder.port, recorder.received


@pytest.mark.parametrize("credential", ["token", "app"])
def test_a_repository_on_an_unconfigured_host_never_receives_a_request(
    listener: tuple[int, list[bytes]], credential: str
) -> None:
    port, received = listener
    with GitHubApiServer() as gh:
        gh.add_token("secret-token", login="alice")
        kwargs: dict[str, object] = {"token": "secret-token"}
        if credential == "app":
            kwargs = {"app": AppCredentials(77, "-----BEGIN PRIVATE KEY-----\nnot used\n-----END PRIVATE KEY-----")}
        source = GitHubSource(api_url=gh.api_url, timeout=2, **kwargs)  # type: ignore[arg-type]
        evil = parse_repository(f"https://127.0.0.1:{port}/org/repo")
        with pytest.raises(UntrustedHost, match="--github-enterprise-api-url") as refused:
            source.open_pull_requests(evil)
        assert refused.value.permanent
        for call in (
            lambda: source.commit_date(evil, "a" * 40),
            lambda: source.gate_state(evil, "a" * 40, "build"),
            lambda: source.find_comment(evil, 1, "marker"),
            lambda: source.create_comment(evil, 1, "body"),
        ):
            with pytest.raises(UntrustedHost):
                call()
        assert gh.request_log == []
    assert received == [], "a connection reached the unconfigured host"


def test_the_poller_reports_an_untrusted_repository_as_unavailable_without_a_request(
    listener: tuple[int, list[bytes]],
) -> None:
    port, received = listener
    evil = parse_repository(f"https://127.0.0.1:{port}/org/repo")
    source = GitHubSource(api_url="http://127.0.0.1:9/api/v3", token="secret-token", timeout=2)
    poller = RepositoryPoller(
        source=source, interval=60, origins_by_repository=lambda: {evil: ["ns/a"]}, enqueue=lambda _k: None
    )
    poller.poll_once()
    state = poller.state(evil)
    assert state is not None and state.pull_requests is None and isinstance(state.error, UntrustedHost)
    assert received == []
