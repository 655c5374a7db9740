"""Endpoints for accounts, repositories, forks, branches, commits, refs and hooks.

Moving a branch (``PATCH .../git/refs/heads/{branch}``) is how a test "pushes": the store moves
the head of every open pull request on that branch and announces ``synchronize``.
"""

from __future__ import annotations

from datetime import datetime

from . import serializers as s
from . import serializers_git as g
from .errors import ApiError, not_found, validation
from .model import Hook
from .routing import Ctx, Response, route


@route("GET", "/user")
def get_me(ctx: Ctx) -> Response:
    return Response(body=s.user(ctx.me(), ctx.urls))


@route("GET", "/users/{login}")
def get_user(ctx: Ctx) -> Response:
    found = ctx.store.users.get(ctx.params["login"].lower())
    if found is None:
        raise not_found()
    return Response(body=s.user(found, ctx.urls))


@route("GET", "/orgs/{org}")
def get_org(ctx: Ctx) -> Response:
    """Organizations spring into existence when an authenticated user first names one (GitHub has
    no public API to create one); that user becomes a member."""
    found = ctx.store.users.get(ctx.params["org"].lower())
    if found is None and ctx.user is not None:
        found = ctx.store.org_for(ctx.params["org"], ctx.user)
    if found is None or found.type != "Organization":
        raise not_found()
    return Response(body=s.organization(found, ctx.urls))


def _create_repo(ctx: Ctx, owner_login: str | None) -> Response:
    me = ctx.me()
    owner = me if owner_login is None else ctx.store.org_for(owner_login, me)
    repo = ctx.store.create_repo(
        owner,
        ctx.field("name"),
        creator=me,
        private=bool(ctx.field("private", bool, required=False)),
        description=ctx.field("description", required=False),
    )
    return Response(201, s.repo(repo, ctx.urls))


@route("POST", "/user/repos")
def create_user_repo(ctx: Ctx) -> Response:
    return _create_repo(ctx, None)


@route("POST", "/orgs/{org}/repos")
def create_org_repo(ctx: Ctx) -> Response:
    """Organizations are created on first use (GitHub has no public API to create one)."""
    return _create_repo(ctx, ctx.params["org"])


@route("GET", "/user/repos")
def list_my_repos(ctx: Ctx) -> Response:
    me = ctx.me()
    repos = [r for r in ctx.store.repos.values() if r.can_push(me.login)]
    return ctx.server.page(ctx, [s.repo(r, ctx.urls) for r in repos])


@route("GET", "/repos/{owner}/{repo}")
def get_repo(ctx: Ctx) -> Response:
    repo = ctx.repo()
    return Response(body=s.repo(repo, ctx.urls), last_modified=repo.updated_at)


@route("POST", "/repos/{owner}/{repo}/forks")
def create_fork(ctx: Ctx) -> Response:
    parent = ctx.repo()
    org = ctx.field("organization", required=False)
    owner = ctx.me() if org is None else ctx.store.org_for(org, ctx.me())
    return Response(202, s.repo(ctx.store.fork(parent, owner), ctx.urls))


@route("GET", "/repos/{owner}/{repo}/forks")
def list_forks(ctx: Ctx) -> Response:
    repo = ctx.repo()
    forks = [f for f in repo.forks if f.can_read(ctx.login)]
    return ctx.server.page(ctx, [s.repo(f, ctx.urls) for f in forks])


@route("GET", "/repos/{owner}/{repo}/branches")
def list_branches(ctx: Ctx) -> Response:
    repo = ctx.repo()
    items = [
        {
            "name": name,
            "commit": {"sha": sha, "url": f"{ctx.urls.api}/repos/{repo.full_name}/commits/{sha}"},
            "protected": False,
        }
        for name, sha in sorted(repo.branches.items())
    ]
    return ctx.server.page(ctx, items)


@route("GET", "/repos/{owner}/{repo}/branches/{branch:path}")
def get_branch(ctx: Ctx) -> Response:
    repo = ctx.repo()
    if ctx.params["branch"] not in repo.branches:
        raise ApiError(404, "Branch not found")
    return Response(body=g.branch(repo, ctx.params["branch"], ctx.urls))


@route("GET", "/repos/{owner}/{repo}/commits")
def list_commits(ctx: Ctx) -> Response:
    repo = ctx.repo()
    ref = ctx.query.get("sha") or repo.default_branch
    sha = ctx.store.resolve(repo, ref)
    if sha is None:
        raise not_found()
    return ctx.server.page(ctx, repo.history(sha), render=lambda c: g.commit(c, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}")
def get_commit(ctx: Ctx) -> Response:
    repo = ctx.repo()
    sha = ctx.store.resolve(repo, ctx.params["ref"])
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ctx.params['ref']}")
    return Response(body=g.commit(repo.commits[sha], repo, ctx.urls))


@route("POST", "/repos/{owner}/{repo}/git/commits")
def create_git_commit(ctx: Ctx) -> Response:
    """Trees and blobs are not emulated: any ``tree`` string is accepted as the commit's tree.
    ``committer.date`` (or ``author.date``) sets the commit time, as on GitHub: that is how a test
    makes a branch look idle."""
    repo = ctx.repo(push=True)
    parents = ctx.field("parents", list, required=False) or []
    committed_at = None
    for who in ("committer", "author"):
        person = ctx.field(who, dict, required=False)
        if person and person.get("date"):
            try:
                committed_at = datetime.fromisoformat(str(person["date"]).replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise validation("Commit", f"{who}.date") from None
            break
    commit = ctx.store.create_commit(
        repo,
        message=ctx.field("message"),
        tree=ctx.field("tree"),
        parents=parents,
        author=ctx.me(),
        committed_at=committed_at,
    )
    return Response(201, g.git_commit(commit, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/git/commits/{sha}")
def get_git_commit(ctx: Ctx) -> Response:
    repo = ctx.repo()
    commit = repo.commits.get(ctx.params["sha"])
    if commit is None:
        raise not_found()
    return Response(body=g.git_commit(commit, repo, ctx.urls))


@route("POST", "/repos/{owner}/{repo}/git/refs")
def create_ref(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    ref = ctx.field("ref")
    ctx.store.create_ref(repo, ref, ctx.field("sha"), sender=ctx.me())
    return Response(201, g.ref(repo, ref[len("refs/heads/") :], ctx.urls))


def _branch(ctx: Ctx) -> str:
    return ctx.params["branch"]


@route("GET", "/repos/{owner}/{repo}/git/ref/heads/{branch:path}")
@route("GET", "/repos/{owner}/{repo}/git/refs/heads/{branch:path}")
def get_ref(ctx: Ctx) -> Response:
    repo = ctx.repo()
    if _branch(ctx) not in repo.branches:
        raise not_found()
    return Response(body=g.ref(repo, _branch(ctx), ctx.urls))


@route("GET", "/repos/{owner}/{repo}/git/matching-refs/heads/{prefix:path}")
def matching_refs(ctx: Ctx) -> Response:
    repo = ctx.repo()
    names = sorted(b for b in repo.branches if b.startswith(ctx.params["prefix"]))
    return Response(body=[g.ref(repo, b, ctx.urls) for b in names])


@route("PATCH", "/repos/{owner}/{repo}/git/refs/heads/{branch:path}")
def update_ref(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    force = bool(ctx.field("force", bool, required=False))
    ctx.store.move_branch(repo, _branch(ctx), ctx.field("sha"), force=force, sender=ctx.me())
    return Response(body=g.ref(repo, _branch(ctx), ctx.urls))


@route("DELETE", "/repos/{owner}/{repo}/git/refs/heads/{branch:path}")
def delete_ref(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    ctx.store.delete_branch(repo, _branch(ctx), sender=ctx.me())
    return Response(204)


@route("POST", "/repos/{owner}/{repo}/hooks")
def create_hook(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    config = ctx.field("config", dict)
    url = config.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ApiError(
            422,
            "Validation Failed",
            errors=[{"resource": "Hook", "code": "custom", "message": "Config must contain a valid url"}],
        )
    events = ctx.field("events", list, required=False) or ["push"]
    active = ctx.field("active", bool, required=False)
    hook = Hook(
        url=url,
        secret=config.get("secret") or None,
        content_type=config.get("content_type", "form"),
        events=[str(e) for e in events],
        active=True if active is None else active,
    )
    repo.hooks[hook.id] = hook
    ctx.server.webhooks.ping(hook, repo, ctx.server.hook_urls, ctx.me())
    return Response(201, g.hook(hook, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/hooks")
def list_hooks(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    return ctx.server.page(ctx, [g.hook(h, repo, ctx.urls) for h in repo.hooks.values()])


@route("GET", "/repos/{owner}/{repo}/hooks/{hook_id}")
def get_hook(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    hook = repo.hooks.get(int(ctx.params["hook_id"])) if ctx.params["hook_id"].isdigit() else None
    if hook is None:
        raise not_found()
    return Response(body=g.hook(hook, repo, ctx.urls))


@route("DELETE", "/repos/{owner}/{repo}/hooks/{hook_id}")
def delete_hook(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    hook_id = int(ctx.params["hook_id"]) if ctx.params["hook_id"].isdigit() else -1
    if repo.hooks.pop(hook_id, None) is None:
        raise not_found()
    return Response(204)


@route("GET", "/rate_limit")
def rate_limit(ctx: Ctx) -> Response:
    return Response(body=ctx.server.rate_limiter.overview(ctx.rate_key))
