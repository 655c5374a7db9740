"""GitHub App endpoints: the app itself, its installations, and installation access tokens.

All of them need the app's JWT (``Authorization: Bearer <jwt>``), as on GitHub; a personal or
installation token gets 401 "A JSON web token could not be decoded".
"""

from __future__ import annotations

from typing import Any

from . import serializers as s
from .credentials import App, Installation
from .errors import ApiError, not_found
from .model import iso, node_id
from .routing import Ctx, Response, route


def _app(ctx: Ctx) -> App:
    if ctx.app is None:
        raise ApiError(401, "A JSON web token could not be decoded")
    return ctx.app


def app_shape(app: App, ctx: Ctx) -> dict[str, Any]:
    return {
        "id": app.id,
        "slug": app.slug,
        "node_id": node_id("App", app.id),
        "owner": s.user(app.owner, ctx.urls),
        "name": app.slug,
        "description": "",
        "external_url": ctx.urls.web,
        "html_url": f"{ctx.urls.web}/apps/{app.slug}",
        "created_at": iso(app.created_at),
        "updated_at": iso(app.created_at),
        "permissions": {
            "pull_requests": "write",
            "statuses": "write",
            "checks": "write",
            "deployments": "write",
            "issues": "write",
            "metadata": "read",
        },
        "events": ["pull_request"],
        "installations_count": 0,
    }


def installation_shape(inst: Installation, ctx: Ctx) -> dict[str, Any]:
    api = f"{ctx.urls.api}/app/installations/{inst.id}"
    return {
        "id": inst.id,
        "account": s.user(inst.account, ctx.urls),
        "repository_selection": "all",
        "access_tokens_url": f"{api}/access_tokens",
        "repositories_url": f"{ctx.urls.api}/installation/repositories",
        "html_url": f"{ctx.urls.web}/settings/installations/{inst.id}",
        "app_id": inst.app.id,
        "app_slug": inst.app.slug,
        "target_id": inst.account.id,
        "target_type": inst.account.type,
        "permissions": app_shape(inst.app, ctx)["permissions"],
        "events": ["pull_request"],
        "created_at": iso(inst.created_at),
        "updated_at": iso(inst.created_at),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


@route("GET", "/app")
def get_app(ctx: Ctx) -> Response:
    return Response(body=app_shape(_app(ctx), ctx))


@route("GET", "/app/installations")
def list_installations(ctx: Ctx) -> Response:
    app = _app(ctx)
    items = [i for i in ctx.server.credentials.installations.values() if i.app is app]
    return ctx.server.page(ctx, items, render=lambda i: installation_shape(i, ctx))


def _installation_of(ctx: Ctx, account_login: str) -> Response:
    app = _app(ctx)
    for inst in ctx.server.credentials.installations.values():
        if inst.app is app and inst.account.login.lower() == account_login.lower():
            return Response(body=installation_shape(inst, ctx))
    raise not_found()


@route("GET", "/repos/{owner}/{repo}/installation")
def repo_installation(ctx: Ctx) -> Response:
    repo = ctx.store.repos.get((ctx.params["owner"].lower(), ctx.params["repo"].lower()))
    if repo is None:
        _app(ctx)
        raise not_found()
    return _installation_of(ctx, repo.owner.login)


@route("GET", "/orgs/{org}/installation")
def org_installation(ctx: Ctx) -> Response:
    return _installation_of(ctx, ctx.params["org"])


@route("GET", "/users/{login}/installation")
def user_installation(ctx: Ctx) -> Response:
    return _installation_of(ctx, ctx.params["login"])


@route("POST", "/app/installations/{installation_id}/access_tokens")
def create_access_token(ctx: Ctx) -> Response:
    app = _app(ctx)
    iid = ctx.params["installation_id"]
    inst = ctx.server.credentials.installations.get(int(iid)) if iid.isdigit() else None
    if inst is None or inst.app is not app:
        raise not_found()
    token, expires = ctx.server.credentials.mint(inst)
    body = {
        "token": token,
        "expires_at": iso(expires),
        "permissions": installation_shape(inst, ctx)["permissions"],
        "repository_selection": "all",
    }
    return Response(201, body)
