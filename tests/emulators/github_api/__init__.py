"""An emulated GitHub REST API (the GitHub Enterprise ``/api/v3`` path) for tests and the demo.

A real HTTP server on 127.0.0.1 that PyGithub and ``requests`` use unchanged::

    from github import Auth, Github
    from emulators.github_api import GitHubApiServer

    with GitHubApiServer(rate_limit=5000) as gh:          # starts; port 0 = ephemeral
        gh.add_token("token-alice", login="alice")
        g = Github(base_url=gh.api_url, auth=Auth.Token("token-alice"))
        repo = g.get_user().create_repo("shop")           # has branch main with one commit
        main = repo.get_branch("main").commit.sha

Pushing a commit as a person would (GitHub refuses a pull request with no commits between base
and head, and so does the emulator)::

    commit = requests.post(f"{gh.api_url}/repos/alice/shop/git/commits", headers=auth,
                           json={"message": "m", "tree": "any", "parents": [main]}).json()
    repo.create_git_ref("refs/heads/feature", commit["sha"])          # new branch
    repo.get_git_ref("heads/feature").edit(new_sha, force=False)       # later pushes
    sha = gh.push("alice", "shop", "feature")                          # same thing in one call
    pr = repo.create_pull(base="main", head="feature", title="t", draft=True)

Test controls (Python, not HTTP): ``add_token``, ``add_org``, ``request_log`` /
``clear_request_log``, ``faults`` (``inject``, ``latency_seconds``, ``drop_webhooks``, ``clear``),
``set_rate_limit``, ``deliveries`` / ``wait_for_webhooks``, ``push``, ``repo``, ``stop``.
GitHub Apps: ``add_app(app_id, public_key_pem=...)``, ``install_app(app_id, account) -> id``,
``uninstall_app``, ``installation_token_ttl``; PyGithub's ``Auth.AppAuth`` /
``GithubIntegration`` work unchanged (JWT -> installation -> access token acting as ``<slug>[bot]``).
Run in the foreground with ``python -m emulators.github_api --port 0 --token T:login``.

Where it is as strict as GitHub (tests depend on it): 422 for a pull with a missing branch, no
new commits, or a duplicate open pull for the same head/base; 405 merging a closed or draft pull;
409 merging with a stale ``sha``; a contents write to an existing file needs its blob ``sha``
(422 without it, 409 when it is stale); 422 on a non-fast-forward ref update without ``force``; 404 for
unknown or private-to-others repositories; 401 for unknown/expired tokens; 403 rate limit exceeded;
list items lack the detail-only keys (``merged``, ``mergeable``, ``commits``, ...) as on GitHub;
a deployment without ``required_contexts`` is refused (409) while commit statuses are not green.

Where it differs, on purpose:

- Extensions: ``POST /repos/{o}/{r}/pulls/{n}/ready_for_review`` and ``.../convert_to_draft``
  (GitHub has these only in GraphQL, which is also answered, for PyGithub's
  ``mark_ready_for_review()`` / ``convert_to_draft()``, at ``/api/graphql``).
- Repositories always start with ``main`` and one commit holding ``README.md`` (``auto_init`` is
  implied). Files live in each commit as a flat snapshot, changed only through the contents API
  (``repo.create_file`` / ``update_file`` / ``delete_file``, read with ``get_contents``: each write
  is a commit on the branch, a push); git trees and blobs are not emulated (any ``tree`` string is
  accepted by ``POST git/commits``, and such a commit keeps its first parent's files).
- Organizations spring into existence when an authenticated user first names one
  (``GET /orgs/{org}`` or ``POST /orgs/{org}/repos``); that user becomes a member with push rights.
- Check runs accept any token with push access (GitHub: GitHub Apps only).
- An exhausted rate limit answers 403 even to a conditional request that would be a 304.
- ``updated_at`` has GitHub's one-second resolution, but ``sort=updated`` orders by the exact time,
  so the list order is the reliable "most recently updated" order.
- Merges are always possible (no conflicts); ``mergeable`` is ``true`` for open pulls.
"""

from .server import GitHubApiServer, RequestRecord
from .webhooks import Delivery

__all__ = ["Delivery", "GitHubApiServer", "RequestRecord"]
