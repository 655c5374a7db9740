"""``GitHubSource`` against the GitHub emulator: conditional reads, pages, gates, commits, App auth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.github_api import GitHubApiServer
from replicator.github_source import AppCredentials, GitHubError, GitHubSource, RateLimited
from replicator.repository import Repository, parse_repository

TOKEN = "token-alice"
SHOP = Repository(host="github.com", owner="alice", name="shop")


@pytest.fixture
def gh() -> Iterator[GitHubApiServer]:
    with GitHubApiServer() as server:
        server.add_token(TOKEN, login="alice")
        server.add_token("token-bob", login="bob")
        yield server
        assert server.internal_errors == []


def _source(gh: GitHubApiServer, **kwargs: object) -> GitHubSource:
    seen: list[tuple[str, int]] = []
    source = GitHubSource(api_url=gh.api_url, on_response=lambda e, s: seen.append((e, s)), **kwargs)  # type: ignore[arg-type]
    source.seen = seen  # type: ignore[attr-defined]
    return source


def _repo_with_pulls(gh: GitHubApiServer, count: int) -> list[str]:
    import requests

    headers = {"Authorization": f"token {TOKEN}"}
    requests.post(f"{gh.api_url}/user/repos", headers=headers, json={"name": "shop"}).raise_for_status()
    heads = []
    for n in range(count):
        heads.append(gh.push("alice", "shop", f"b{n}"))
        body = {"title": f"t{n}", "head": f"b{n}", "base": "main"}
        requests.post(f"{gh.api_url}/repos/alice/shop/pulls", headers=headers, json=body).raise_for_status()
    return heads


def test_every_page_is_followed_and_an_unchanged_list_is_only_free_304s(gh: GitHubApiServer) -> None:
    _repo_with_pulls(gh, 5)
    source = _source(gh, token=TOKEN, per_page=2)
    first = source.open_pull_requests(SHOP)
    assert [pr.number for pr in first.pull_requests] == [1, 2, 3, 4, 5] and first.changed and first.requests == 3
    gh.clear_request_log()
    again = source.open_pull_requests(SHOP)
    assert not again.changed and again.not_modified == 3
    assert all(r.status == 304 and not r.counted_against_rate_limit for r in gh.request_log)
    assert source.rate_limit.remaining is not None


def test_gate_from_check_run_then_commit_status_and_commit_date_once_per_sha(gh: GitHubApiServer) -> None:
    import requests

    heads = _repo_with_pulls(gh, 1)
    source = _source(gh, token=TOKEN)
    headers = {"Authorization": f"token {TOKEN}"}
    assert source.gate_state(SHOP, heads[0], "image") is None
    run = {"name": "image", "head_sha": heads[0], "status": "in_progress"}
    run_id = requests.post(f"{gh.api_url}/repos/alice/shop/check-runs", headers=headers, json=run).json()["id"]
    assert source.gate_state(SHOP, heads[0], "image") is None
    requests.patch(
        f"{gh.api_url}/repos/alice/shop/check-runs/{run_id}", headers=headers, json={"conclusion": "failure"}
    )
    assert source.gate_state(SHOP, heads[0], "image") is False
    requests.post(f"{gh.api_url}/repos/alice/shop/check-runs", headers=headers, json={**run, "conclusion": "success"})
    assert source.gate_state(SHOP, heads[0], "image") is True

    status = {"state": "pending", "context": "built"}
    requests.post(f"{gh.api_url}/repos/alice/shop/statuses/{heads[0]}", headers=headers, json=status)
    assert source.gate_state(SHOP, heads[0], "built") is None
    requests.post(
        f"{gh.api_url}/repos/alice/shop/statuses/{heads[0]}", headers=headers, json={**status, "state": "error"}
    )
    assert source.gate_state(SHOP, heads[0], "built") is False

    gh.clear_request_log()
    stamp = source.commit_date(SHOP, heads[0])
    assert stamp is not None and stamp.tzinfo is not None
    assert source.commit_date(SHOP, heads[0]) == stamp
    assert len([r for r in gh.request_log if "/commits/" in r.path]) == 1


def test_errors_map_to_permanent_and_rate_limited(gh: GitHubApiServer) -> None:
    source = _source(gh, token=TOKEN)
    with pytest.raises(GitHubError) as missing:
        source.open_pull_requests(Repository(host="github.com", owner="alice", name="nope"))
    assert missing.value.permanent and not isinstance(missing.value, RateLimited)
    _repo_with_pulls(gh, 1)
    gh.faults.inject(method="GET", path_regex="/pulls$", status=429, retry_after=7, times=1)
    with pytest.raises(RateLimited) as limited:
        source.open_pull_requests(SHOP)
    assert limited.value.retry_after == 7
    gh.set_rate_limit(TOKEN, remaining=0, reset_in_seconds=30)
    with pytest.raises(RateLimited) as exhausted:
        source.open_pull_requests(SHOP)
    assert exhausted.value.retry_after is not None and 1 <= exhausted.value.retry_after <= 31
    assert ("pulls", 429) in source.seen and ("pulls", 403) in source.seen  # type: ignore[attr-defined]


def _key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_github_app_finds_the_installation_per_owner_and_refreshes_its_token(gh: GitHubApiServer) -> None:
    _repo_with_pulls(gh, 2)
    private, public = _key_pair()
    gh.add_app(77, public_key_pem=public)
    installation = gh.install_app(77, "alice")
    # PyGithub renews an installation token 20 s before it expires: with a 20 s lifetime, every use renews.
    gh.installation_token_ttl = 20
    gh.clear_request_log()
    source = _source(gh, app=AppCredentials(77, private))
    assert [pr.number for pr in source.open_pull_requests(SHOP).pull_requests] == [1, 2]
    source.open_pull_requests(SHOP)
    reads = [r for r in gh.request_log if r.path == "/repos/alice/shop/pulls"]
    assert len({r.token for r in reads}) == 2 and all(r.login == "replicator[bot]" for r in reads)
    assert len([r for r in gh.request_log if r.path == "/repos/alice/shop/installation"]) == 1
    assert len([r for r in gh.request_log if r.path.endswith("/access_tokens")]) == 2

    with pytest.raises(GitHubError, match="not installed"):
        source.open_pull_requests(Repository(host="github.com", owner="bob", name="other"))
    gh.uninstall_app(installation)


SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


@pytest.mark.parametrize(
    ("status", "retry_after", "message", "waits", "secondary"),
    [
        (403, None, SECONDARY, [60, 120, 240], True),
        (429, None, SECONDARY, [60, 120, 240], True),
        (403, 17, SECONDARY, [17, 17, 17], True),
        (403, None, "You have triggered an abuse detection mechanism.", [60, 120, 240], True),
        (429, 5, "Too many requests", [5, 5, 5], True),
    ],
    ids=["403-no-retry-after", "429-no-retry-after", "403-retry-after", "abuse-message", "429-retry-after"],
)
def test_secondary_rate_limits_wait_as_github_asks_and_back_off_while_they_last(
    gh: GitHubApiServer, status: int, retry_after: int | None, message: str, waits: list[int], secondary: bool
) -> None:
    _repo_with_pulls(gh, 1)
    source = _source(gh, token=TOKEN)
    gh.faults.inject(
        method="GET", path_regex="/pulls$", status=status, retry_after=retry_after, message=message, times=3
    )
    seen = []
    for _ in waits:
        with pytest.raises(RateLimited) as limited:
            source.open_pull_requests(SHOP)
        seen.append(limited.value.retry_after)
        assert limited.value.secondary is secondary
    assert seen == waits
    assert [pr.number for pr in source.open_pull_requests(SHOP).pull_requests] == [1]  # the limit lifted
    gh.faults.inject(method="GET", path_regex="/pulls$", status=403, message=SECONDARY, times=1)
    with pytest.raises(RateLimited) as again:
        source.open_pull_requests(SHOP)
    assert again.value.retry_after == 60, "a success resets the backoff"


def test_a_plain_403_is_not_a_rate_limit(gh: GitHubApiServer) -> None:
    _repo_with_pulls(gh, 1)
    source = _source(gh, token=TOKEN)
    gh.faults.inject(method="GET", path_regex="/pulls$", status=403, message="Resource not accessible by integration")
    with pytest.raises(GitHubError) as forbidden:
        source.open_pull_requests(SHOP)
    assert not isinstance(forbidden.value, RateLimited) and forbidden.value.status == 403


def test_an_exhausted_budget_is_a_primary_limit(gh: GitHubApiServer) -> None:
    _repo_with_pulls(gh, 1)
    source = _source(gh, token=TOKEN)
    gh.set_rate_limit(TOKEN, remaining=0, reset_in_seconds=30)
    with pytest.raises(RateLimited) as exhausted:
        source.open_pull_requests(SHOP)
    assert not exhausted.value.secondary


def test_reads_are_not_paced_by_a_fixed_sleep_but_a_spent_budget_becomes_a_pause(gh: GitHubApiServer) -> None:
    _repo_with_pulls(gh, 1)
    source = _source(gh, token=TOKEN)
    gh.clear_request_log()
    for _ in range(30):  # a burst of reads (304s) goes out back to back
        source.open_pull_requests(SHOP)
    assert len(gh.request_log) == 30
    gh.set_rate_limit(TOKEN, remaining=20, reset_in_seconds=600)  # under a tenth of 5,000 left
    source.open_pull_requests(SHOP)  # learns the budget from the headers
    source.open_pull_requests(SHOP)  # reserves the next slot 30 s (600 s / 20) away
    with pytest.raises(RateLimited, match="left until the reset") as spread:
        source.open_pull_requests(SHOP)
    assert spread.value.retry_after is not None and 25 <= spread.value.retry_after <= 31
    assert len(gh.request_log) == 32, "the spread read never left"


def test_only_what_is_read_is_remembered_with_an_etag_not_githubs_whole_answer(gh: GitHubApiServer) -> None:
    from replicator.pull_request import PullRequest

    heads = _repo_with_pulls(gh, 3)
    source = _source(gh, token=TOKEN)
    source.open_pull_requests(SHOP)
    import requests

    run = {"name": "image", "head_sha": heads[0], "status": "completed", "conclusion": "success"}
    headers = {"Authorization": f"token {TOKEN}"}
    requests.post(f"{gh.api_url}/repos/alice/shop/check-runs", headers=headers, json=run).raise_for_status()
    assert source.gate_state(SHOP, heads[0], "image") is True
    remembered = {url: entry.data for (_, url), entry in source._cache.items()}
    pages = [data for url, data in remembered.items() if "/pulls" in url]
    assert pages and all(isinstance(pr, PullRequest) for page in pages for pr in page)
    (runs,) = [data for url, data in remembered.items() if "/check-runs" in url]
    assert {key for run in runs["check_runs"] for key in run} <= {"id", "name", "status", "conclusion"}
    assert [pr.number for pr in source.open_pull_requests(SHOP).pull_requests] == [1, 2, 3]  # from a 304


def test_two_spellings_of_one_repository_each_see_a_change_the_other_fetched_first(gh: GitHubApiServer) -> None:
    _repo_with_pulls(gh, 1)
    host = gh.api_url.split("//", 1)[1].split("/", 1)[0]
    source = _source(gh, token=TOKEN, enterprise_api_urls={host: gh.api_url})
    enterprise = parse_repository(f"http://{host}/alice/shop")  # mapped to the same API as github.com
    assert enterprise != SHOP
    assert source.open_pull_requests(SHOP).changed and source.open_pull_requests(enterprise).changed
    _repo_with_pulls_more(gh)
    first = source.open_pull_requests(enterprise)
    second = source.open_pull_requests(SHOP)  # same URL: a 304 to the ETag the first stored would hide PR 2
    assert first.changed and second.changed
    assert [pr.number for pr in second.pull_requests] == [1, 2]


def _repo_with_pulls_more(gh: GitHubApiServer) -> None:
    import requests

    gh.push("alice", "shop", "b-more")
    body = {"title": "more", "head": "b-more", "base": "main"}
    headers = {"Authorization": f"token {TOKEN}"}
    requests.post(f"{gh.api_url}/repos/alice/shop/pulls", headers=headers, json=body).raise_for_status()
