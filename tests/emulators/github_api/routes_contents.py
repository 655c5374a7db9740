"""The repository contents API: read, create, update and delete one file, each write a commit.

``GET /repos/{o}/{r}/contents/{path}`` (``?ref=`` a branch or sha; a directory answers the list of
its entries), ``PUT`` (create or update) and ``DELETE``, with GitHub's response shapes: a write
answers ``{"content": <file>, "commit": <git commit>}`` (``content`` is ``null`` after a delete),
201 for a new file and 200 for an update. Every write is a commit on ``branch`` (default: the
default branch) that moves it as a push does, so an open pull request on that branch follows
(``synchronize``). The ``sha`` rules are GitHub's: changing or deleting an existing file needs its
current blob sha — 422 when it is missing, 409 ``<path> does not match <sha>`` when it is stale.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .errors import ApiError, not_found
from .model import Repo, blob_sha, make_sha
from .routing import Ctx, Response, route
from .serializers import Urls
from .serializers_git import git_commit


def _entry(repo: Repo, path: str, ref: str, content: bytes | None, urls: Urls) -> dict[str, Any]:
    """One file (``content`` given) or directory (``None``) as GitHub lists it."""
    api = f"{urls.api}/repos/{repo.full_name}"
    kind = "dir" if content is None else "file"
    sha = blob_sha(content) if content is not None else make_sha("tree", path)
    git_url = f"{api}/git/{'trees' if content is None else 'blobs'}/{sha}"
    html_url = f"{urls.web}/{repo.full_name}/{'tree' if content is None else 'blob'}/{ref}/{path}"
    self_url = f"{api}/contents/{path}?ref={ref}"
    return {
        "type": kind,
        "size": 0 if content is None else len(content),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "url": self_url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": None if content is None else f"{urls.web}/raw/{repo.full_name}/{ref}/{path}",
        "_links": {"self": self_url, "git": git_url, "html": html_url},
    }


def _file(repo: Repo, path: str, ref: str, content: bytes, urls: Urls) -> dict[str, Any]:
    encoded = base64.b64encode(content).decode()
    # GitHub wraps the base64 text at 60 characters, with a trailing newline
    wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
    return {**_entry(repo, path, ref, content, urls), "content": wrapped, "encoding": "base64"}


def _path(ctx: Ctx) -> str:
    return ctx.params.get("path", "").strip("/")


def _branch(ctx: Ctx, repo: Repo) -> str:
    branch: str = ctx.field("branch", required=False) or repo.default_branch
    if branch not in repo.branches:
        raise ApiError(404, f"Branch {branch} not found")
    return branch


@route("GET", "/repos/{owner}/{repo}/contents")
@route("GET", "/repos/{owner}/{repo}/contents/")
@route("GET", "/repos/{owner}/{repo}/contents/{path:path}")
def get_contents(ctx: Ctx) -> Response:
    repo = ctx.repo()
    ref = ctx.query.get("ref") or repo.default_branch
    sha = ctx.store.resolve(repo, ref)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    files = repo.commits[sha].files
    path = _path(ctx)
    if path in files:
        return Response(body=_file(repo, path, ref, files[path], ctx.urls))
    prefix = f"{path}/" if path else ""
    children: dict[str, bytes | None] = {}
    for name, content in files.items():
        if name.startswith(prefix):
            first, _, rest = name[len(prefix) :].partition("/")
            children[prefix + first] = None if rest else content
    if not children:
        raise not_found()
    return Response(body=[_entry(repo, p, ref, c, ctx.urls) for p, c in sorted(children.items())])


def _check_sha(ctx: Ctx, path: str, current: bytes | None) -> None:
    """GitHub's optimistic lock: an existing file changes only with its current blob sha."""
    given = ctx.field("sha", required=False)
    if current is None:
        return
    if given is None:
        raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
    if given != blob_sha(current):
        raise ApiError(409, f"{path} does not match {given}")


def _commit(ctx: Ctx, repo: Repo, branch: str, files: dict[str, bytes]) -> dict[str, Any]:
    me = ctx.me()
    head = repo.branches[branch]
    commit = ctx.store.create_commit(
        repo, message=ctx.field("message"), tree=make_sha("tree"), parents=[head], author=me, files=files
    )
    ctx.store.move_branch(repo, branch, commit.sha, force=False, sender=me)
    return git_commit(commit, repo, ctx.urls)


@route("PUT", "/repos/{owner}/{repo}/contents/{path:path}")
def put_contents(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    path = _path(ctx)
    if not path:
        raise not_found()
    ctx.field("message")
    try:
        content = base64.b64decode(ctx.field("content"), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "content is not valid Base64") from None
    branch = _branch(ctx, repo)
    files = dict(repo.commits[repo.branches[branch]].files)
    if any(name.startswith(f"{path}/") for name in files):
        raise ApiError(422, f"{path} is a directory")
    current = files.get(path)
    _check_sha(ctx, path, current)
    files[path] = content
    commit = _commit(ctx, repo, branch, files)
    body = {"content": _entry(repo, path, branch, content, ctx.urls), "commit": commit}
    return Response(201 if current is None else 200, body)


@route("DELETE", "/repos/{owner}/{repo}/contents/{path:path}")
def delete_contents(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    path = _path(ctx)
    ctx.field("message")
    branch = _branch(ctx, repo)
    files = dict(repo.commits[repo.branches[branch]].files)
    if path not in files:
        raise not_found()
    if ctx.field("sha", required=False) is None:
        raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
    _check_sha(ctx, path, files.pop(path))
    return Response(body={"content": None, "commit": _commit(ctx, repo, branch, files)})
