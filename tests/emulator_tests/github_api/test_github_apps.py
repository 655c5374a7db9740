"""GitHub App authentication through PyGithub unchanged: JWT, installation lookup, installation
tokens that act as the bot, expire and share one rate-limit bucket."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github, GithubIntegration
from github.Repository import Repository

from emulators.github_api import GitHubApiServer

APP_ID = 4242


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
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


@pytest.fixture
def installation_id(gh: GitHubApiServer, repo: Repository, key_pair: tuple[str, str]) -> int:
    gh.add_app(APP_ID, public_key_pem=key_pair[1], slug="replicator")
    return gh.install_app(APP_ID, "alice")


def integration_for(gh: GitHubApiServer, key_pair: tuple[str, str]) -> GithubIntegration:
    """PyGithub's App client, minus its client-side throttle (1 s between writes)."""
    return GithubIntegration(
        base_url=gh.api_url, auth=app_auth(key_pair), seconds_between_requests=None, seconds_between_writes=None
    )


def app_auth(key_pair: tuple[str, str]) -> Auth.AppAuth:
    return Auth.AppAuth(APP_ID, key_pair[0])


def test_installation_found_per_repository_and_token_acts_as_bot(
    gh: GitHubApiServer, key_pair: tuple[str, str], installation_id: int
) -> None:
    integration = integration_for(gh, key_pair)
    installation = integration.get_repo_installation("alice", "shop")
    assert installation.id == installation_id
    g = Github(
        base_url=gh.api_url,
        auth=app_auth(key_pair).get_installation_auth(installation.id),
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    repo = g.get_repo("alice/shop")
    sha = gh.push("alice", "shop", "feature")
    repo.create_pull(base="main", head="feature", title="t")
    repo.get_commit(sha).create_status("success", context="image")
    comment = repo.get_pull(1).create_issue_comment("environments")
    assert comment.user.login == "replicator[bot]"


def test_jwt_is_only_for_app_endpoints(gh: GitHubApiServer, key_pair: tuple[str, str], installation_id: int) -> None:
    token = app_auth(key_pair).token
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{gh.api_url}/app", headers=headers).json()["slug"] == "replicator"
    assert requests.post(f"{gh.api_url}/user/repos", headers=headers, json={"name": "x"}).status_code == 401


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iss": str(APP_ID), "iat": -60, "exp": 3600}, "too far in the future"),
        ({"iss": str(APP_ID), "iat": -1200, "exp": -600}, "Expiration time"),
        ({"iss": "999", "iat": -60, "exp": 300}, "Integration not found"),
    ],
    ids=["exp-too-far", "expired", "unknown-app"],
)
def test_bad_jwts_are_401(
    gh: GitHubApiServer, key_pair: tuple[str, str], installation_id: int, claims: dict, message: str
) -> None:
    now = int(time.time())
    payload = {"iss": claims["iss"], "iat": now + claims["iat"], "exp": now + claims["exp"]}
    token = jwt.encode(payload, key_pair[0], algorithm="RS256")
    answer = requests.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert message in answer.json()["message"]


def test_jwt_signed_by_another_key_is_401(gh: GitHubApiServer, installation_id: int) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode({"iss": str(APP_ID), "iat": now - 60, "exp": now + 300}, other, algorithm="RS256")
    assert requests.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_installation_tokens_share_a_rate_bucket_and_expire(
    gh: GitHubApiServer, key_pair: tuple[str, str], installation_id: int
) -> None:
    integration = integration_for(gh, key_pair)
    first = integration.get_access_token(installation_id)
    assert first.expires_at.timestamp() > time.time() + 3500
    headers = {"Authorization": f"token {first.token}"}
    assert requests.get(f"{gh.api_url}/repos/alice/shop", headers=headers).status_code == 200
    gh.set_rate_limit(first.token, remaining=10)
    second = integration.get_access_token(installation_id)
    answer = requests.get(f"{gh.api_url}/repos/alice/shop", headers={"Authorization": f"token {second.token}"})
    assert answer.headers["X-RateLimit-Remaining"] == "9"  # a fresh token does not refill the bucket
    gh.installation_token_ttl = 0
    expired = integration.get_access_token(installation_id)
    answer = requests.get(f"{gh.api_url}/repos/alice/shop", headers={"Authorization": f"token {expired.token}"})
    assert answer.status_code == 401 and answer.json()["message"] == "Bad credentials"


def test_uninstalling_revokes_installation_tokens(
    gh: GitHubApiServer, alice: Github, key_pair: tuple[str, str], installation_id: int
) -> None:
    alice.get_user().create_repo("secret", private=True)
    token = integration_for(gh, key_pair).get_access_token(installation_id).token
    headers = {"Authorization": f"token {token}"}
    assert requests.get(f"{gh.api_url}/repos/alice/secret", headers=headers).status_code == 200
    gh.uninstall_app(installation_id)
    assert requests.get(f"{gh.api_url}/repos/alice/secret", headers=headers).status_code == 401


def test_webhooks_carry_the_installation(gh: GitHubApiServer, repo: Repository, installation_id: int) -> None:
    from .test_github_webhooks import Receiver

    rx = Receiver()
    try:
        repo.create_hook("web", {"url": rx.url, "content_type": "json"}, ["pull_request"])
        gh.push("alice", "shop", "feature")
        repo.create_pull(base="main", head="feature", title="t")
        assert gh.wait_for_webhooks()
        assert rx.received[-1].payload["installation"]["id"] == installation_id
    finally:
        rx.httpd.shutdown()
        rx.httpd.server_close()
