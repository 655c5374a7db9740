"""What GitHub does around every response, checked with plain ``requests``: ETag/304, rate-limit
headers and exhaustion, Link pagination, credentials, faults."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from github import Github, GithubException
from github.Repository import Repository

from emulators.github_api import GitHubApiServer

from .conftest import ALICE, auth, client


@pytest.fixture
def pulls_url(gh: GitHubApiServer, repo: Repository) -> str:
    for i in range(5):
        gh.push("alice", "shop", f"b{i}")
        repo.create_pull(base="main", head=f"b{i}", title=f"pr {i}")
    return f"{gh.api_url}/repos/alice/shop/pulls"


def test_get_answers_etag_and_304_is_free(gh: GitHubApiServer, pulls_url: str) -> None:
    first = requests.get(pulls_url, headers=auth())
    assert first.status_code == 200 and first.headers["ETag"]
    remaining = int(first.headers["X-RateLimit-Remaining"])
    gh.clear_request_log()
    again = requests.get(pulls_url, headers={**auth(), "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert int(again.headers["X-RateLimit-Remaining"]) == remaining
    (record,) = gh.request_log
    assert record.etag_hit and not record.counted_against_rate_limit and record.status == 304


def test_pygithub_requester_conditional_request_gets_304(gh: GitHubApiServer, alice: Github, pulls_url: str) -> None:
    """The replicator's polling path: PyGithub's requester with If-None-Match (lists don't send ETags)."""
    status, headers, data = alice.requester.requestJson("GET", "/repos/alice/shop/pulls", parameters={"per_page": 2})
    assert status == 200 and len(json.loads(data)) == 2 and 'rel="next"' in headers["link"]
    status, again, data = alice.requester.requestJson(
        "GET", "/repos/alice/shop/pulls", parameters={"per_page": 2}, headers={"If-None-Match": headers["etag"]}
    )
    assert (status, data) == (304, "")
    assert again["x-ratelimit-remaining"] == headers["x-ratelimit-remaining"]
    assert 'rel="next"' in again["link"]


def test_etag_changes_when_a_pull_changes(gh: GitHubApiServer, pulls_url: str, repo: Repository) -> None:
    tag = requests.get(pulls_url, headers=auth()).headers["ETag"]
    repo.get_pull(1).add_to_labels("preview")
    changed = requests.get(pulls_url, headers={**auth(), "If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert gh.request_log[-1].counted_against_rate_limit


def test_single_pull_has_last_modified_and_if_modified_since(gh: GitHubApiServer, pulls_url: str) -> None:
    first = requests.get(f"{pulls_url}/1", headers=auth())
    assert "Last-Modified" in first.headers
    again = requests.get(f"{pulls_url}/1", headers={**auth(), "If-Modified-Since": first.headers["Last-Modified"]})
    assert again.status_code == 304


def test_rate_limit_headers_count_down(gh: GitHubApiServer, pulls_url: str) -> None:
    one = requests.get(pulls_url, headers=auth())
    two = requests.get(pulls_url, headers=auth())
    assert one.headers["X-RateLimit-Limit"] == "5000"
    assert one.headers["X-RateLimit-Resource"] == "core"
    assert int(two.headers["X-RateLimit-Remaining"]) == int(one.headers["X-RateLimit-Remaining"]) - 1
    assert int(two.headers["X-RateLimit-Used"]) == 5000 - int(two.headers["X-RateLimit-Remaining"])
    assert int(two.headers["X-RateLimit-Reset"]) > time.time()


def test_exhausted_rate_limit_is_403_until_reset(gh: GitHubApiServer, pulls_url: str) -> None:
    gh.set_rate_limit(ALICE, remaining=1, reset_in_seconds=120)
    assert requests.get(pulls_url, headers=auth()).status_code == 200
    refused = requests.get(pulls_url, headers=auth())
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("API rate limit exceeded for")
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) >= int(time.time()) + 100
    overview = requests.get(f"{gh.api_url}/rate_limit", headers=auth())
    assert overview.status_code == 200
    assert overview.json()["resources"]["core"]["remaining"] == 0
    gh.set_rate_limit(ALICE, reset_in_seconds=-1)
    assert requests.get(pulls_url, headers=auth()).status_code == 200


def test_pygithub_sees_rate_limit_exceeded(gh: GitHubApiServer, alice: Github, pulls_url: str) -> None:
    gh.set_rate_limit(ALICE, remaining=0, reset_in_seconds=60)
    with pytest.raises(GithubException) as err:
        alice.get_repo("alice/shop")
    assert err.value.status == 403
    assert alice.get_rate_limit().resources.core.remaining == 0


def test_rate_limit_endpoint_is_not_counted(gh: GitHubApiServer) -> None:
    before = requests.get(f"{gh.api_url}/rate_limit", headers=auth()).json()["rate"]["remaining"]
    after = requests.get(f"{gh.api_url}/rate_limit", headers=auth()).json()["rate"]["remaining"]
    assert before == after == 5000
    assert not any(r.counted_against_rate_limit for r in gh.request_log)


def test_link_header_has_absolute_next_last_first_prev(gh: GitHubApiServer, pulls_url: str) -> None:
    first = requests.get(pulls_url, headers=auth(), params={"per_page": 2, "state": "all"})
    links = first.links
    assert set(links) == {"next", "last"}
    assert links["next"]["url"].startswith(gh.api_url + "/repos/alice/shop/pulls?")
    assert "page=3" in links["last"]["url"] and "state=all" in links["next"]["url"]
    middle = requests.get(links["next"]["url"], headers=auth())
    assert set(middle.links) == {"prev", "next", "last", "first"}
    last = requests.get(links["last"]["url"], headers=auth())
    assert set(last.links) == {"prev", "first"} and len(last.json()) == 1


def test_per_page_is_capped_at_100(gh: GitHubApiServer, pulls_url: str) -> None:
    answer = requests.get(pulls_url, headers=auth(), params={"per_page": 1000})
    assert len(answer.json()) == 5 and "Link" not in answer.headers


@pytest.mark.parametrize("header", ["token token-alice", "Bearer token-alice"], ids=["token-scheme", "bearer-scheme"])
def test_both_authorization_schemes_are_accepted(gh: GitHubApiServer, header: str) -> None:
    me = requests.get(f"{gh.api_url}/user", headers={"Authorization": header})
    assert me.status_code == 200 and me.json()["login"] == "alice"


def test_unknown_token_is_401_bad_credentials(gh: GitHubApiServer) -> None:
    answer = requests.get(f"{gh.api_url}/user", headers={"Authorization": "token nope"})
    assert answer.status_code == 401
    assert answer.json()["message"] == "Bad credentials"
    assert "documentation_url" in answer.json()


def test_writes_need_authentication(gh: GitHubApiServer, repo: Repository) -> None:
    answer = requests.post(f"{gh.api_url}/user/repos", json={"name": "x"})
    assert answer.status_code == 401


def test_injected_502_then_recovers(gh: GitHubApiServer, pulls_url: str) -> None:
    gh.faults.inject(method="GET", path_regex=r"/pulls$", status=502, times=1)
    assert requests.get(pulls_url, headers=auth()).status_code == 502
    assert requests.get(pulls_url, headers=auth()).status_code == 200
    assert [r.status for r in gh.request_log[-2:]] == [502, 200]


def test_injected_429_carries_retry_after(gh: GitHubApiServer, pulls_url: str) -> None:
    gh.faults.inject(path_regex=r"/pulls", status=429, retry_after=2)
    answer = requests.get(pulls_url, headers=auth())
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "2"
    assert "secondary rate limit" in answer.json()["message"]
    assert not gh.request_log[-1].counted_against_rate_limit
    gh.faults.clear()
    assert requests.get(pulls_url, headers=auth()).status_code == 200


def test_fault_rate_zero_never_fires(gh: GitHubApiServer, pulls_url: str) -> None:
    gh.faults.inject(path_regex=r"/pulls$", status=500, rate=0.0)
    assert all(requests.get(pulls_url, headers=auth()).status_code == 200 for _ in range(5))


def test_latency_is_added(gh: GitHubApiServer) -> None:
    gh.faults.latency_seconds = 0.2
    started = time.monotonic()
    requests.get(f"{gh.api_url}/user", headers=auth())
    assert time.monotonic() - started >= 0.2


def test_request_log_records_method_path_query_and_token(gh: GitHubApiServer, pulls_url: str) -> None:
    gh.clear_request_log()
    requests.get(pulls_url, headers=auth(), params={"state": "closed"})
    (record,) = gh.request_log
    assert (record.method, record.path, record.query, record.status, record.token) == (
        "GET",
        "/repos/alice/shop/pulls",
        {"state": "closed"},
        200,
        ALICE,
    )
    assert record.counted_against_rate_limit and not record.etag_hit


def test_error_bodies_look_like_githubs(gh: GitHubApiServer, repo: Repository) -> None:
    missing = requests.get(f"{gh.api_url}/repos/alice/shop/pulls/99", headers=auth())
    assert missing.status_code == 404 and missing.json()["message"] == "Not Found"
    invalid = requests.post(
        f"{gh.api_url}/repos/alice/shop/pulls", headers=auth(), json={"title": "t", "head": "x", "base": "main"}
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"] == [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
    assert re.match(r"https://docs\.github\.com/", invalid.json()["documentation_url"])


def test_urls_in_objects_point_at_the_emulator(gh: GitHubApiServer, alice: Github, pulls_url: str) -> None:
    body = requests.get(f"{pulls_url}/1", headers=auth()).json()
    assert body["url"] == f"{pulls_url}/1"
    assert body["head"]["repo"]["url"] == f"{gh.api_url}/repos/alice/shop"
    assert client(gh, ALICE).get_repo("alice/shop").get_pull(1).title == "pr 0"


def test_stop_takes_the_api_away_even_from_pooled_connections(gh: GitHubApiServer) -> None:
    session = requests.Session()
    assert session.get(f"{gh.api_url}/user", headers=auth()).status_code == 200
    gh.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{gh.api_url}/user", headers=auth(), timeout=5)


def test_anonymous_reads_public_repos_from_a_small_bucket(gh: GitHubApiServer, alice: Github, repo: Repository) -> None:
    alice.get_user().create_repo("secret", private=True)
    public = requests.get(f"{gh.api_url}/repos/alice/shop")
    assert public.status_code == 200 and public.headers["X-RateLimit-Limit"] == "60"
    assert requests.get(f"{gh.api_url}/repos/alice/secret").status_code == 404
    assert requests.get(f"{gh.api_url}/user").status_code == 401


def test_concurrent_writers_get_distinct_pull_numbers(gh: GitHubApiServer, repo: Repository) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for i in range(12):
        gh.push("alice", "shop", f"c{i}")

    def open_pull(i: int) -> int:
        answer = requests.post(
            f"{gh.api_url}/repos/alice/shop/pulls",
            headers=auth(),
            json={"title": f"c{i}", "head": f"c{i}", "base": "main"},
            timeout=10,
        )
        assert answer.status_code == 201
        return int(answer.json()["number"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(open_pull, range(12)))
    assert sorted(numbers) == list(range(1, 13))


def test_conditional_request_is_refused_too_when_exhausted(gh: GitHubApiServer, pulls_url: str) -> None:
    """Documented choice: an exhausted bucket answers 403 before ETags are compared."""
    tag = requests.get(pulls_url, headers=auth()).headers["ETag"]
    gh.set_rate_limit(ALICE, remaining=0)
    assert requests.get(pulls_url, headers={**auth(), "If-None-Match": tag}).status_code == 403
