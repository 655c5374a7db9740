"""The contents API through PyGithub unchanged: files are read, created, updated and deleted, each
write a commit on its branch that an open pull request follows, with GitHub's sha checks."""

from __future__ import annotations

import base64

import pytest
import requests
from github import GithubException
from github.Repository import Repository

from emulators.github_api import GitHubApiServer

from .conftest import auth


def test_new_repository_has_the_readme_auto_init_writes(repo: Repository) -> None:
    readme = repo.get_contents("README.md")
    assert not isinstance(readme, list)
    assert (readme.type, readme.encoding, readme.decoded_content) == ("file", "base64", b"# shop\n")


def test_create_file_is_a_commit_on_the_branch_and_answers_201(repo: Repository, gh: GitHubApiServer) -> None:
    main = repo.get_branch("main").commit.sha
    repo.create_git_ref("refs/heads/feature", main)
    created = repo.create_file("app/version.txt", "add version", "1\n", branch="feature")
    commit = created["commit"]
    assert repo.get_branch("feature").commit.sha == commit.sha != main
    assert [p.sha for p in repo.get_commit(commit.sha).parents] == [main]
    assert repo.get_git_commit(commit.sha).message == "add version"
    assert [r.status for r in gh.request_log if r.method == "PUT"] == [201]
    got = repo.get_contents("app/version.txt", ref="feature")
    assert not isinstance(got, list)
    assert got.decoded_content == b"1\n" and got.sha == created["content"].sha
    with pytest.raises(GithubException) as err:
        repo.get_contents("app/version.txt")  # main did not change
    assert err.value.status == 404


def test_response_shapes_are_githubs(repo: Repository, gh: GitHubApiServer) -> None:
    url = f"{gh.api_url}/repos/alice/shop/contents/docs/a.md"
    body = {"message": "docs", "content": base64.b64encode(b"hello").decode()}
    put = requests.put(url, json=body, headers=auth(), timeout=5)
    assert put.status_code == 201
    data = put.json()
    assert set(data) == {"content", "commit"}
    assert set(data["content"]) >= {"name", "path", "sha", "size", "url", "html_url", "git_url", "download_url"}
    assert data["content"]["_links"].keys() == {"self", "git", "html"}
    # git's blob id of b"hello": what `git hash-object` prints
    assert data["content"]["sha"] == "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0"
    assert set(data["commit"]) >= {"sha", "url", "html_url", "author", "committer", "message", "tree", "parents"}
    got = requests.get(url, headers=auth(), timeout=5).json()
    assert (got["type"], got["encoding"], got["content"]) == ("file", "base64", "aGVsbG8=\n")
    listing = requests.get(f"{gh.api_url}/repos/alice/shop/contents/", headers=auth(), timeout=5).json()
    assert [(e["path"], e["type"]) for e in listing] == [("README.md", "file"), ("docs", "dir")]


def test_update_file_needs_the_current_sha(repo: Repository) -> None:
    first = repo.create_file("config.yaml", "add", "a: 1\n")
    stale = first["content"].sha
    updated = repo.update_file("config.yaml", "change", "a: 2\n", stale)
    assert repo.get_branch("main").commit.sha == updated["commit"].sha
    got = repo.get_contents("config.yaml")
    assert not isinstance(got, list) and got.decoded_content == b"a: 2\n"
    with pytest.raises(GithubException) as err:
        repo.update_file("config.yaml", "again", "a: 3\n", stale)
    assert err.value.status == 409
    assert err.value.data["message"] == f"config.yaml does not match {stale}"


@pytest.mark.parametrize("method", ["put", "delete"], ids=["update", "delete"])
def test_changing_an_existing_file_without_sha_is_422(repo: Repository, gh: GitHubApiServer, method: str) -> None:
    repo.create_file("x.txt", "add", "x")
    body = {"message": "m", "content": base64.b64encode(b"y").decode()}
    url = f"{gh.api_url}/repos/alice/shop/contents/x.txt"
    answer = requests.request(method, url, json=body, headers=auth(), timeout=5)
    assert answer.status_code == 422
    assert '"sha" wasn\'t supplied' in answer.json()["message"]


def test_delete_file_is_a_commit_and_checks_the_sha(repo: Repository) -> None:
    created = repo.create_file("old.txt", "add", "old")
    with pytest.raises(GithubException) as err:
        repo.delete_file("old.txt", "remove", "0" * 40)
    assert err.value.status == 409
    deleted = repo.delete_file("old.txt", "remove", created["content"].sha)
    assert repo.get_branch("main").commit.sha == deleted["commit"].sha
    with pytest.raises(GithubException) as err:
        repo.get_contents("old.txt")
    assert err.value.status == 404
    with pytest.raises(GithubException) as err:
        repo.delete_file("old.txt", "remove", created["content"].sha)
    assert err.value.status == 404


def test_a_write_on_a_pull_request_branch_moves_the_pull_head(repo: Repository, gh: GitHubApiServer) -> None:
    repo.create_git_ref("refs/heads/feature", repo.get_branch("main").commit.sha)
    repo.create_file("a.txt", "first", "1", branch="feature")
    pull = repo.create_pull(base="main", head="feature", title="t")
    sha = repo.get_contents("a.txt", ref="feature").sha  # type: ignore[union-attr]
    pushed = repo.update_file("a.txt", "second", "2", sha, branch="feature")["commit"].sha
    assert repo.get_pull(pull.number).head.sha == pushed
    assert gh.wait_for_webhooks()


def test_write_to_a_missing_branch_or_bad_base64_is_refused(repo: Repository, gh: GitHubApiServer) -> None:
    with pytest.raises(GithubException) as err:
        repo.create_file("a.txt", "m", "x", branch="nope")
    assert err.value.status == 404
    bad = {"message": "m", "content": "not base64!"}
    answer = requests.put(f"{gh.api_url}/repos/alice/shop/contents/a.txt", json=bad, headers=auth(), timeout=5)
    assert answer.status_code == 422


def test_merged_pull_brings_its_files_to_the_base(repo: Repository) -> None:
    repo.create_git_ref("refs/heads/feature", repo.get_branch("main").commit.sha)
    repo.create_file("feature.txt", "add", "f", branch="feature")
    repo.create_pull(base="main", head="feature", title="t").merge()
    got = repo.get_contents("feature.txt")
    assert not isinstance(got, list) and got.decoded_content == b"f"
