"""Every spelling of a repository a user might paste normalises to one value."""

from __future__ import annotations

import pytest

from replicator.repository import Repository, parse_repository


@pytest.mark.parametrize(
    ("text", "host", "owner", "name"),
    [
        ("https://github.com/org/repo", "github.com", "org", "repo"),
        ("https://github.com/org/repo.git", "github.com", "org", "repo"),
        ("https://github.com/org/repo/", "github.com", "org", "repo"),
        ("https://GitHub.com/org/repo", "github.com", "org", "repo"),
        ("https://www.github.com/org/repo", "github.com", "org", "repo"),
        ("http://ghe.example.com/org/repo", "ghe.example.com", "org", "repo"),
        ("https://GHE.Example.com:8443/org/repo.git", "ghe.example.com:8443", "org", "repo"),
        ("git@github.com:org/repo.git", "github.com", "org", "repo"),
        ("git@ghe.example.com:org/repo", "ghe.example.com", "org", "repo"),
        ("ssh://git@github.com/org/repo.git", "github.com", "org", "repo"),
        ("ssh://git@ghe.example.com:2222/org/repo.git", "ghe.example.com:2222", "org", "repo"),
        ("org/repo", "github.com", "org", "repo"),
        ("  org/my.repo_x-1  ", "github.com", "org", "my.repo_x-1"),
    ],
    ids=[
        "https",
        "https-dot-git",
        "trailing-slash",
        "host-case",
        "www",
        "enterprise-http",
        "enterprise-port",
        "scp-like",
        "scp-like-enterprise",
        "ssh-url",
        "ssh-url-port",
        "short",
        "short-with-punctuation",
    ],
)
def test_accepted_forms(text: str, host: str, owner: str, name: str) -> None:
    assert parse_repository(text) == Repository(host, owner, name)
    assert parse_repository(text).host == host


@pytest.mark.parametrize(
    "text",
    [
        "",
        "repo",
        "org/repo/extra",
        "https://github.com/org",
        "https://github.com/org/repo/pulls",
        "ftp://github.com/org/repo",
        "org/ repo",
        "-org/repo",
        "org/..",
    ],
    ids=["empty", "no-owner", "too-deep", "url-no-repo", "url-subpage", "bad-scheme", "space", "bad-owner", "dots"],
)
def test_rejected_forms_name_the_accepted_ones(text: str) -> None:
    with pytest.raises(ValueError, match=r"git@github.com:<owner>/<repo>.git"):
        parse_repository(text)


@pytest.mark.parametrize(
    ("text", "api_url", "full_name"),
    [
        ("org/repo", "https://api.github.com", "org/repo"),
        ("http://ghe.example.com/org/repo", "https://ghe.example.com/api/v3", "org/repo"),
    ],
    ids=["github-com", "enterprise"],
)
def test_api_url(text: str, api_url: str, full_name: str) -> None:
    repo = parse_repository(text)
    assert (repo.api_url, repo.full_name) == (api_url, full_name)


def test_equal_ignoring_case_so_origins_share_a_fetch() -> None:
    a = parse_repository("https://github.com/Org/Repo")
    b = parse_repository("git@github.com:org/repo.git")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert parse_repository("org/repo") != parse_repository("https://ghe.example.com/org/repo")
