"""JSON shapes of git objects, commit statuses, check runs, deployments and hooks.

Same rules as ``serializers``: GitHub's keys and JSON types, URLs pointing at the emulator.
"""

from __future__ import annotations

from typing import Any

from .model import CheckRun, Commit, Deployment, DeploymentStatus, Hook, Repo, Status, iso, node_id
from .serializers import Urls, user


def commit(c: Commit, r: Repo, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}"
    person = {"name": c.author, "email": f"{c.author}@users.noreply.emulator", "date": iso(c.created_at)}
    return {
        "sha": c.sha,
        "node_id": node_id("Commit", int(c.sha[:8], 16)),
        "url": f"{api}/commits/{c.sha}",
        "html_url": f"{urls.web}/{r.full_name}/commit/{c.sha}",
        "comments_url": f"{api}/commits/{c.sha}/comments",
        "commit": {
            "url": f"{api}/git/commits/{c.sha}",
            "author": person,
            "committer": person,
            "message": c.message,
            "tree": {"sha": c.tree, "url": f"{api}/git/trees/{c.tree}"},
            "comment_count": 0,
        },
        "author": None,
        "committer": None,
        "parents": [{"sha": p, "url": f"{api}/commits/{p}"} for p in c.parents],
        "stats": {"total": 0, "additions": 0, "deletions": 0},
        "files": [],
    }


def git_commit(c: Commit, r: Repo, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}"
    person = {"name": c.author, "email": f"{c.author}@users.noreply.emulator", "date": iso(c.created_at)}
    return {
        "sha": c.sha,
        "node_id": node_id("Commit", int(c.sha[:8], 16)),
        "url": f"{api}/git/commits/{c.sha}",
        "html_url": f"{urls.web}/{r.full_name}/commit/{c.sha}",
        "author": person,
        "committer": person,
        "message": c.message,
        "tree": {"sha": c.tree, "url": f"{api}/git/trees/{c.tree}"},
        "parents": [{"sha": p, "url": f"{api}/git/commits/{p}", "html_url": ""} for p in c.parents],
        "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
    }


def ref(r: Repo, branch: str, urls: Urls) -> dict[str, Any]:
    sha = r.branches[branch]
    api = f"{urls.api}/repos/{r.full_name}"
    return {
        "ref": f"refs/heads/{branch}",
        "node_id": node_id("Ref", abs(hash((r.id, branch))) % 10**9),
        "url": f"{api}/git/refs/heads/{branch}",
        "object": {"sha": sha, "type": "commit", "url": f"{api}/git/commits/{sha}"},
    }


def branch(r: Repo, name: str, urls: Urls) -> dict[str, Any]:
    sha = r.branches[name]
    return {
        "name": name,
        "commit": commit(r.commits[sha], r, urls),
        "_links": {
            "self": f"{urls.api}/repos/{r.full_name}/branches/{name}",
            "html": f"{urls.web}/{r.full_name}/tree/{name}",
        },
        "protected": False,
    }


def status(s: Status, r: Repo, sha: str, urls: Urls) -> dict[str, Any]:
    return {
        "url": f"{urls.api}/repos/{r.full_name}/statuses/{sha}",
        "avatar_url": None,
        "id": s.id,
        "node_id": node_id("StatusContext", s.id),
        "state": s.state,
        "description": s.description,
        "target_url": s.target_url,
        "context": s.context,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.created_at),
        "creator": user(s.creator, urls),
    }


def check_run(c: CheckRun, r: Repo, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}"
    return {
        "id": c.id,
        "node_id": node_id("CheckRun", c.id),
        "head_sha": c.head_sha,
        "external_id": c.external_id or "",
        "url": f"{api}/check-runs/{c.id}",
        "html_url": f"{urls.web}/{r.full_name}/runs/{c.id}",
        "details_url": c.details_url,
        "status": c.status,
        "conclusion": c.conclusion,
        "started_at": iso(c.started_at),
        "completed_at": iso(c.completed_at),
        "output": {
            "title": c.output.get("title"),
            "summary": c.output.get("summary"),
            "text": c.output.get("text"),
            "annotations_count": 0,
            "annotations_url": f"{api}/check-runs/{c.id}/annotations",
        },
        "name": c.name,
        "check_suite": {"id": c.id},
        "app": None,
        "pull_requests": [],
    }


def deployment(d: Deployment, r: Repo, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}/deployments/{d.id}"
    return {
        "url": api,
        "id": d.id,
        "node_id": node_id("Deployment", d.id),
        "sha": d.sha,
        "ref": d.ref,
        "task": d.task,
        "payload": d.payload,
        "original_environment": d.environment,
        "environment": d.environment,
        "description": d.description,
        "creator": user(d.creator, urls),
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "statuses_url": f"{api}/statuses",
        "repository_url": f"{urls.api}/repos/{r.full_name}",
        "transient_environment": d.transient_environment,
        "production_environment": d.production_environment,
    }


def deployment_status(s: DeploymentStatus, d: Deployment, r: Repo, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}/deployments/{d.id}"
    return {
        "url": f"{api}/statuses/{s.id}",
        "id": s.id,
        "node_id": node_id("DeploymentStatus", s.id),
        "state": s.state,
        "creator": user(s.creator, urls),
        "description": s.description,
        "environment": s.environment,
        "target_url": s.log_url,
        "log_url": s.log_url,
        "environment_url": s.environment_url,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.created_at),
        "deployment_url": api,
        "repository_url": f"{urls.api}/repos/{r.full_name}",
    }


def hook(h: Hook, r: Repo, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}/hooks/{h.id}"
    config = {"content_type": h.content_type, "url": h.url, "insecure_ssl": "0"}
    if h.secret:
        config["secret"] = "********"
    return {
        "type": "Repository",
        "id": h.id,
        "name": "web",
        "active": h.active,
        "events": h.events,
        "config": config,
        "updated_at": iso(h.updated_at),
        "created_at": iso(h.created_at),
        "url": api,
        "test_url": f"{api}/test",
        "ping_url": f"{api}/pings",
        "deliveries_url": f"{api}/deliveries",
        "last_response": {"code": None, "status": "unused", "message": None},
    }
