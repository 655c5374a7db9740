"""Endpoints for commit statuses, check runs and deployments (an image gate and PR feedback).

Rules kept from GitHub: status ``state`` is one of error/failure/pending/success; the combined
state is failure if any latest-per-context status failed or errored, pending if any is pending or
there is none, else success; a deployment without ``required_contexts`` is refused (409) unless
every commit status on its sha is a success; a deployment status with ``auto_inactive`` (the
default) marks earlier successful deployments of the same environment inactive. Check runs
require a GitHub App on real GitHub; here any token may write them.
"""

from __future__ import annotations

from typing import Any

from . import serializers as s
from . import serializers_git as g
from .errors import ApiError, not_found, validation
from .model import CheckRun, Deployment, DeploymentStatus, Repo, Status, now
from .routing import Ctx, Response, route

STATUS_STATES = ("error", "failure", "pending", "success")
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
CHECK_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)


def _sha(ctx: Ctx, repo: Repo, ref: str) -> str:
    sha = ctx.store.resolve(repo, ref)
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    return sha


@route("POST", "/repos/{owner}/{repo}/statuses/{sha}")
def create_status(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    sha = _sha(ctx, repo, ctx.params["sha"])
    state = ctx.field("state")
    if state not in STATUS_STATES:
        raise validation("Status", "state")
    status = Status(
        state=state,
        context=ctx.field("context", required=False) or "default",
        description=ctx.field("description", required=False),
        target_url=ctx.field("target_url", required=False),
        creator=ctx.me(),
    )
    repo.statuses.setdefault(sha, []).append(status)
    return Response(201, g.status(status, repo, sha, ctx.urls))


def _latest_per_context(repo: Repo, sha: str) -> list[Status]:
    latest: dict[str, Status] = {}
    for status in repo.statuses.get(sha, []):
        latest[status.context] = status
    return sorted(latest.values(), key=lambda st: st.id, reverse=True)


def combined_state(statuses: list[Status]) -> str:
    states = {st.state for st in statuses}
    if states & {"error", "failure"}:
        return "failure"
    if not statuses or "pending" in states:
        return "pending"
    return "success"


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}/status")
def combined_status(ctx: Ctx) -> Response:
    repo = ctx.repo()
    sha = _sha(ctx, repo, ctx.params["ref"])
    statuses = _latest_per_context(repo, sha)
    api = f"{ctx.urls.api}/repos/{repo.full_name}"
    return Response(
        body={
            "state": combined_state(statuses),
            "statuses": [g.status(st, repo, sha, ctx.urls) for st in statuses],
            "sha": sha,
            "total_count": len(statuses),
            "repository": s.repo(repo, ctx.urls, with_parent=False),
            "commit_url": f"{api}/commits/{sha}",
            "url": f"{api}/commits/{sha}/status",
        }
    )


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}/statuses")
def list_statuses(ctx: Ctx) -> Response:
    repo = ctx.repo()
    sha = _sha(ctx, repo, ctx.params["ref"])
    statuses = sorted(repo.statuses.get(sha, []), key=lambda st: st.id, reverse=True)
    return ctx.server.page(ctx, [g.status(st, repo, sha, ctx.urls) for st in statuses])


def _apply_check(run: CheckRun, body: dict[str, Any]) -> None:
    if "status" in body:
        if body["status"] not in CHECK_STATUSES:
            raise validation("CheckRun", "status")
        run.status = body["status"]
    if body.get("conclusion") is not None:
        if body["conclusion"] not in CONCLUSIONS:
            raise validation("CheckRun", "conclusion")
        run.conclusion = body["conclusion"]
        run.status = "completed"
    if run.status == "completed" and run.conclusion is None:
        raise ApiError(422, 'Invalid request.\n\nNo subschema in "anyOf" matched.\n"conclusion" wasn\'t supplied.')
    if run.status == "completed" and run.completed_at is None:
        run.completed_at = now()
    for key in ("name", "details_url", "external_id"):
        if key in body:
            setattr(run, key, body[key])
    if isinstance(body.get("output"), dict):
        run.output = dict(body["output"])


@route("POST", "/repos/{owner}/{repo}/check-runs")
def create_check_run(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    head_sha = ctx.field("head_sha")
    if head_sha not in repo.commits:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[{"resource": "CheckRun", "field": "head_sha", "code": "invalid"}],
        )
    run = CheckRun(
        name=ctx.field("name"),
        head_sha=head_sha,
        status="queued",
        conclusion=None,
        details_url=None,
        external_id=None,
        output={},
    )
    _apply_check(run, ctx.body)
    repo.check_runs[run.id] = run
    return Response(201, g.check_run(run, repo, ctx.urls))


def _check_run(ctx: Ctx, repo: Repo) -> CheckRun:
    rid = ctx.params["check_run_id"]
    run = repo.check_runs.get(int(rid)) if rid.isdigit() else None
    if run is None:
        raise not_found()
    return run


@route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def update_check_run(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    run = _check_run(ctx, repo)
    _apply_check(run, ctx.body if isinstance(ctx.body, dict) else {})
    return Response(body=g.check_run(run, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def get_check_run(ctx: Ctx) -> Response:
    repo = ctx.repo()
    return Response(body=g.check_run(_check_run(ctx, repo), repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}/check-runs")
def list_check_runs(ctx: Ctx) -> Response:
    repo = ctx.repo()
    sha = _sha(ctx, repo, ctx.params["ref"])
    runs = [r for r in repo.check_runs.values() if r.head_sha == sha]
    if "check_name" in ctx.query:
        runs = [r for r in runs if r.name == ctx.query["check_name"]]
    if "status" in ctx.query:
        runs = [r for r in runs if r.status == ctx.query["status"]]
    if ctx.query.get("filter", "latest") == "latest":
        latest: dict[str, CheckRun] = {}
        for run in sorted(runs, key=lambda r: r.id):
            latest[run.name] = run
        runs = list(latest.values())
    runs.sort(key=lambda r: r.id, reverse=True)
    page = ctx.server.page(ctx, [g.check_run(r, repo, ctx.urls) for r in runs])
    page.body = {"total_count": len(runs), "check_runs": page.body}
    return page


# -- deployments ---------------------------------------------------------------------------
@route("POST", "/repos/{owner}/{repo}/deployments")
def create_deployment(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    ref = ctx.field("ref")
    sha = ctx.store.resolve(repo, ref)
    if sha is None:
        raise ApiError(422, f"No ref found for: {ref}")
    required = ctx.field("required_contexts", list, required=False)
    latest = _latest_per_context(repo, sha)
    pending = [st.context for st in latest if st.state != "success" and (required is None or st.context in required)]
    if required is not None:
        present = {st.context for st in latest}
        pending += [c for c in required if c not in present]
    if pending:
        raise ApiError(
            409,
            f"Conflict: Commit status checks failed for {ref}.",
            errors=[
                {
                    "contexts": [{"context": c, "state": "pending"} for c in pending],
                    "resource": "Deployment",
                    "field": "required_contexts",
                    "code": "invalid",
                }
            ],
        )
    environment = ctx.field("environment", required=False) or "production"
    deployment = Deployment(
        sha=sha,
        ref=ref,
        task=ctx.field("task", required=False) or "deploy",
        environment=environment,
        description=ctx.field("description", required=False),
        payload=(ctx.body or {}).get("payload", {}) or {},
        creator=ctx.me(),
        transient_environment=bool(ctx.field("transient_environment", bool, required=False)),
        production_environment=bool(
            ctx.field("production_environment", bool, required=False) or environment == "production"
        ),
    )
    repo.deployments[deployment.id] = deployment
    return Response(201, g.deployment(deployment, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/deployments")
def list_deployments(ctx: Ctx) -> Response:
    repo = ctx.repo()
    items = sorted(repo.deployments.values(), key=lambda d: d.id, reverse=True)
    for key in ("sha", "ref", "task", "environment"):
        if key in ctx.query:
            items = [d for d in items if getattr(d, key) == ctx.query[key]]
    return ctx.server.page(ctx, [g.deployment(d, repo, ctx.urls) for d in items])


def _deployment(ctx: Ctx, repo: Repo) -> Deployment:
    did = ctx.params["deployment_id"]
    deployment = repo.deployments.get(int(did)) if did.isdigit() else None
    if deployment is None:
        raise not_found()
    return deployment


@route("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}")
def get_deployment(ctx: Ctx) -> Response:
    repo = ctx.repo()
    return Response(body=g.deployment(_deployment(ctx, repo), repo, ctx.urls))


@route("DELETE", "/repos/{owner}/{repo}/deployments/{deployment_id}")
def delete_deployment(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    deployment = _deployment(ctx, repo)
    if (deployment.statuses and deployment.statuses[-1].state != "inactive") or (
        not deployment.statuses
        and len([d for d in repo.deployments.values() if d.environment == deployment.environment]) > 1
    ):
        raise ApiError(
            422,
            "We cannot delete an active deployment unless it is the only deployment in a given environment.",
        )
    del repo.deployments[deployment.id]
    return Response(204)


@route("POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
def create_deployment_status(ctx: Ctx) -> Response:
    repo = ctx.repo(push=True)
    deployment = _deployment(ctx, repo)
    state = ctx.field("state")
    if state not in DEPLOYMENT_STATES:
        raise validation("DeploymentStatus", "state")
    status = DeploymentStatus(
        state=state,
        description=ctx.field("description", required=False) or "",
        environment_url=ctx.field("environment_url", required=False) or "",
        log_url=ctx.field("log_url", required=False) or ctx.field("target_url", required=False) or "",
        creator=ctx.me(),
        environment=ctx.field("environment", required=False) or deployment.environment,
    )
    deployment.statuses.append(status)
    deployment.updated_at = now()
    auto_inactive = ctx.field("auto_inactive", bool, required=False)
    if state == "success" and auto_inactive is not False:
        for other in repo.deployments.values():
            if (
                other is not deployment
                and other.environment == deployment.environment
                and not other.transient_environment
                and not other.production_environment
                and other.statuses
                and other.statuses[-1].state == "success"
            ):
                other.statuses.append(DeploymentStatus("inactive", "", "", "", ctx.me(), other.environment))
                other.updated_at = now()
    return Response(201, g.deployment_status(status, deployment, repo, ctx.urls))


@route("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
def list_deployment_statuses(ctx: Ctx) -> Response:
    repo = ctx.repo()
    deployment = _deployment(ctx, repo)
    items = sorted(deployment.statuses, key=lambda st: st.id, reverse=True)
    return ctx.server.page(ctx, [g.deployment_status(st, deployment, repo, ctx.urls) for st in items])


@route("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses/{status_id}")
def get_deployment_status(ctx: Ctx) -> Response:
    repo = ctx.repo()
    deployment = _deployment(ctx, repo)
    found = next((st for st in deployment.statuses if str(st.id) == ctx.params["status_id"]), None)
    if found is None:
        raise not_found()
    return Response(body=g.deployment_status(found, deployment, repo, ctx.urls))
