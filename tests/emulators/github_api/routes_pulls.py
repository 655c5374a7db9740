"""Endpoints for pull requests, their labels and comments (pulls are issues on GitHub).

Draft <-> ready has no REST endpoint on GitHub (only GraphQL's ``markPullRequestReadyForReview`` /
``convertPullRequestToDraft``, which PyGithub's ``mark_ready_for_review()`` / ``convert_to_draft()``
call and ``routes_graphql`` answers). As an emulator extension, ``POST
/repos/{o}/{r}/pulls/{n}/ready_for_review`` and ``.../convert_to_draft`` do the same over REST.
"""

from __future__ import annotations

from typing import Any

from . import serializers as s
from . import serializers_git as g
from .errors import ApiError, not_found
from .model import Comment, now
from .routing import Ctx, Response, route


@route("GET", "/repos/{owner}/{repo}/pulls")
def list_pulls(ctx: Ctx) -> Response:
    repo = ctx.repo()
    q = ctx.query
    state = q.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise ApiError(422, "Validation Failed", errors=[{"resource": "Search", "field": "state", "code": "invalid"}])
    pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
    if "base" in q:
        pulls = [p for p in pulls if p.base_ref == q["base"]]
    if "head" in q:
        owner, _, ref = q["head"].partition(":")
        pulls = [
            p for p in pulls if p.head_repo.owner.login.lower() == owner.lower() and (not ref or p.head_ref == ref)
        ]
    sort = q.get("sort", "created")
    key = {"updated": lambda p: (p.updated_at, p.number)}.get(sort, lambda p: (p.created_at, p.number))
    # GitHub: "desc when sort is created or sort is not specified, otherwise asc"
    descending = q.get("direction", "desc" if sort == "created" else "asc") == "desc"
    pulls.sort(key=key, reverse=descending)
    return ctx.server.page(ctx, pulls, render=lambda p: s.pull_list_item(p, repo, ctx.urls))


@route("POST", "/repos/{owner}/{repo}/pulls")
def create_pull(ctx: Ctx) -> Response:
    repo = ctx.repo()
    pull = ctx.store.create_pull(
        repo,
        sender=ctx.me(),
        title=ctx.field("title", required=False),
        head=ctx.field("head"),
        base=ctx.field("base"),
        body=ctx.field("body", required=False),
        draft=bool(ctx.field("draft", bool, required=False)),
        maintainer_can_modify=bool(ctx.field("maintainer_can_modify", bool, required=False)),
    )
    return Response(201, s.pull(pull, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/pulls/{number}")
def get_pull(ctx: Ctx) -> Response:
    repo = ctx.repo()
    pull = ctx.pull(repo)
    return Response(body=s.pull(pull, repo, ctx.urls), last_modified=pull.updated_at)


@route("PATCH", "/repos/{owner}/{repo}/pulls/{number}")
def edit_pull(ctx: Ctx) -> Response:
    repo = ctx.repo()
    pull = ctx.pull(repo)
    me = ctx.me()
    if me is not pull.user and not repo.can_push(me.login):
        raise ApiError(403, "Resource not accessible by personal access token")
    changes = {
        k: v for k, v in (ctx.body or {}).items() if k in ("title", "body", "state", "base", "maintainer_can_modify")
    }
    ctx.store.edit_pull(repo, pull, changes, sender=me)
    return Response(body=s.pull(pull, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/pulls/{number}/commits")
def list_pull_commits(ctx: Ctx) -> Response:
    """The pull's commits, oldest first (GitHub caps this list at 250)."""
    repo = ctx.repo()
    pull = ctx.pull(repo)
    if pull.merge_commit_sha:
        base: str | None = repo.commits[pull.merge_commit_sha].parents[0]
    else:
        base = repo.branches.get(pull.base_ref)
    ours = pull.head_repo.reachable(pull.head_sha) - (repo.reachable(base) if base else set())
    commits = [c for c in reversed(pull.head_repo.history(pull.head_sha)) if c.sha in ours][:250]
    return ctx.server.page(ctx, commits, render=lambda c: g.commit(c, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/pulls/{number}/merge")
def is_merged(ctx: Ctx) -> Response:
    repo = ctx.repo()
    if not ctx.pull(repo).merged:
        raise not_found()
    return Response(204)


@route("PUT", "/repos/{owner}/{repo}/pulls/{number}/merge")
def merge_pull(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    pull = ctx.pull(repo)
    method = ctx.field("merge_method", required=False) or "merge"
    if method not in ("merge", "squash", "rebase"):
        raise ApiError(
            422,
            "Validation Failed",
            errors=[{"resource": "PullRequest", "field": "merge_method", "code": "invalid"}],
        )
    sha = ctx.store.merge_pull(
        repo,
        pull,
        sender=ctx.me(),
        sha=ctx.field("sha", required=False),
        message=ctx.field("commit_title", required=False),
        method=method,
    )
    return Response(body={"sha": sha, "merged": True, "message": "Pull Request successfully merged"})


@route("POST", "/repos/{owner}/{repo}/pulls/{number}/ready_for_review")
def ready_for_review(ctx: Ctx) -> Response:
    """Emulator extension (GitHub offers this only over GraphQL)."""
    repo = ctx.repo()
    pull = ctx.pull(repo)
    _require_author_or_push(ctx, repo, pull)
    ctx.store.set_draft(repo, pull, False, sender=ctx.me())
    return Response(body=s.pull(pull, repo, ctx.urls))


@route("POST", "/repos/{owner}/{repo}/pulls/{number}/convert_to_draft")
def convert_to_draft(ctx: Ctx) -> Response:
    """Emulator extension (GitHub offers this only over GraphQL)."""
    repo = ctx.repo()
    pull = ctx.pull(repo)
    _require_author_or_push(ctx, repo, pull)
    ctx.store.set_draft(repo, pull, True, sender=ctx.me())
    return Response(body=s.pull(pull, repo, ctx.urls))


def _require_author_or_push(ctx: Ctx, repo: Any, pull: Any) -> None:
    me = ctx.me()
    if me is not pull.user and not repo.can_push(me.login):
        raise ApiError(403, "Resource not accessible by personal access token")


# -- the Issues side of a pull request -------------------------------------------------------
@route("GET", "/repos/{owner}/{repo}/issues/{number}")
def get_issue(ctx: Ctx) -> Response:
    repo = ctx.repo()
    return Response(body=s.issue(ctx.pull(repo), repo, ctx.urls))


def _label_names(ctx: Ctx) -> list[str]:
    body = ctx.body
    if isinstance(body, dict):
        body = body.get("labels")
    if not isinstance(body, list):
        raise ApiError(422, 'Invalid request.\n\n"labels" wasn\'t supplied.')
    return [lb["name"] if isinstance(lb, dict) else lb for lb in body]


@route("GET", "/repos/{owner}/{repo}/issues/{number}/labels")
def list_labels(ctx: Ctx) -> Response:
    repo = ctx.repo()
    return ctx.server.page(ctx, [s.label(lb, repo, ctx.urls) for lb in ctx.pull(repo).labels])


@route("POST", "/repos/{owner}/{repo}/issues/{number}/labels")
def add_labels(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    pull = ctx.pull(repo)
    ctx.store.add_labels(repo, pull, _label_names(ctx), sender=ctx.me())
    return Response(body=[s.label(lb, repo, ctx.urls) for lb in pull.labels])


@route("PUT", "/repos/{owner}/{repo}/issues/{number}/labels")
def set_labels(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    pull = ctx.pull(repo)
    ctx.store.set_labels(repo, pull, _label_names(ctx), sender=ctx.me())
    return Response(body=[s.label(lb, repo, ctx.urls) for lb in pull.labels])


@route("DELETE", "/repos/{owner}/{repo}/issues/{number}/labels/{name:path}")
def remove_label(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    pull = ctx.pull(repo)
    ctx.store.remove_label(repo, pull, ctx.params["name"], sender=ctx.me())
    return Response(body=[s.label(lb, repo, ctx.urls) for lb in pull.labels])


@route("DELETE", "/repos/{owner}/{repo}/issues/{number}/labels")
def clear_labels(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    pull = ctx.pull(repo)
    ctx.store.set_labels(repo, pull, [], sender=ctx.me())
    return Response(204)


@route("GET", "/repos/{owner}/{repo}/issues/{number}/comments")
def list_comments(ctx: Ctx) -> Response:
    repo = ctx.repo()
    pull = ctx.pull(repo)
    comments = sorted((c for c in repo.comments.values() if c.issue_number == pull.number), key=lambda c: c.id)
    return ctx.server.page(ctx, [s.comment(c, repo, ctx.urls) for c in comments])


@route("POST", "/repos/{owner}/{repo}/issues/{number}/comments")
def create_comment(ctx: Ctx) -> Response:
    repo = ctx.repo()
    pull = ctx.pull(repo)
    comment = Comment(body=ctx.field("body"), user=ctx.me(), issue_number=pull.number)
    repo.comments[comment.id] = comment
    pull.touch()  # a new comment bumps the issue's updated_at on GitHub (an edit does not)
    return Response(201, s.comment(comment, repo, ctx.urls))


def _comment(ctx: Ctx, repo: Any) -> Comment:
    cid = ctx.params["comment_id"]
    comment = repo.comments.get(int(cid)) if cid.isdigit() else None
    if comment is None:
        raise not_found()
    return comment


@route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def get_comment(ctx: Ctx) -> Response:
    repo = ctx.repo()
    return Response(body=s.comment(_comment(ctx, repo), repo, ctx.urls))


@route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def edit_comment(ctx: Ctx) -> Response:
    repo = ctx.repo()
    comment = _comment(ctx, repo)
    if comment.user is not ctx.me() and not repo.can_push(ctx.login):
        raise ApiError(403, "Resource not accessible by personal access token")
    comment.body = ctx.field("body")
    comment.updated_at = now()
    return Response(body=s.comment(comment, repo, ctx.urls))


@route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def delete_comment(ctx: Ctx) -> Response:
    repo = ctx.repo()
    comment = _comment(ctx, repo)
    if comment.user is not ctx.me() and not repo.can_push(ctx.login):
        raise ApiError(403, "Resource not accessible by personal access token")
    del repo.comments[comment.id]
    return Response(204)
