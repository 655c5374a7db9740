"""JSON shapes of GitHub's objects, copied key for key from real payloads.

The reference is ``../shared/fixtures/github/webhooks/pull_request/*.json``: every key of the real
``pull_request``, ``repository``, ``user`` and ``label`` objects is produced here with the same
JSON type, and every URL points at the emulator (``Urls``) so that clients following ``url``
fields (PyGithub's lazy completion, ``Link`` headers) stay on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Comment, Label, Pull, Repo, User, iso, node_id


@dataclass(frozen=True)
class Urls:
    """``api`` is like ``http://127.0.0.1:8080/api/v3``; ``web`` is the html root."""

    api: str
    web: str


def user(u: User, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/users/{u.login}"
    return {
        "login": u.login,
        "id": u.id,
        "node_id": node_id("Organization" if u.type == "Organization" else "User", u.id),
        "avatar_url": f"{urls.web}/avatars/u/{u.id}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/{u.login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": u.type,
        "site_admin": False,
    }


def organization(o: User, urls: Urls) -> dict[str, Any]:
    """``GET /orgs/{org}``: unlike an owner object, its ``url`` is under ``/orgs``."""
    api = f"{urls.api}/orgs/{o.login}"
    return {
        "login": o.login,
        "id": o.id,
        "node_id": node_id("Organization", o.id),
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": f"{urls.web}/avatars/u/{o.id}?v=4",
        "description": None,
        "html_url": f"{urls.web}/{o.login}",
        "type": "Organization",
    }


_REPO_URLS = [
    ("forks_url", "/forks"),
    ("keys_url", "/keys{/key_id}"),
    ("collaborators_url", "/collaborators{/collaborator}"),
    ("teams_url", "/teams"),
    ("hooks_url", "/hooks"),
    ("issue_events_url", "/issues/events{/number}"),
    ("events_url", "/events"),
    ("assignees_url", "/assignees{/user}"),
    ("branches_url", "/branches{/branch}"),
    ("tags_url", "/tags"),
    ("blobs_url", "/git/blobs{/sha}"),
    ("git_tags_url", "/git/tags{/sha}"),
    ("git_refs_url", "/git/refs{/sha}"),
    ("trees_url", "/git/trees{/sha}"),
    ("statuses_url", "/statuses/{sha}"),
    ("languages_url", "/languages"),
    ("stargazers_url", "/stargazers"),
    ("contributors_url", "/contributors"),
    ("subscribers_url", "/subscribers"),
    ("subscription_url", "/subscription"),
    ("commits_url", "/commits{/sha}"),
    ("git_commits_url", "/git/commits{/sha}"),
    ("comments_url", "/comments{/number}"),
    ("issue_comment_url", "/issues/comments{/number}"),
    ("contents_url", "/contents/{+path}"),
    ("compare_url", "/compare/{base}...{head}"),
    ("merges_url", "/merges"),
    ("archive_url", "/{archive_format}{/ref}"),
    ("downloads_url", "/downloads"),
    ("issues_url", "/issues{/number}"),
    ("pulls_url", "/pulls{/number}"),
    ("milestones_url", "/milestones{/number}"),
    ("notifications_url", "/notifications{?since,all,participating}"),
    ("labels_url", "/labels{/name}"),
    ("releases_url", "/releases{/id}"),
    ("deployments_url", "/deployments"),
]


def repo(r: Repo, urls: Urls, *, with_parent: bool = True) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}"
    html = f"{urls.web}/{r.full_name}"
    open_pulls = sum(1 for p in r.pulls.values() if p.state == "open")
    host = urls.web.split("://", 1)[-1]
    out: dict[str, Any] = {
        "id": r.id,
        "node_id": node_id("Repository", r.id),
        "name": r.name,
        "full_name": r.full_name,
        "private": r.private,
        "owner": user(r.owner, urls),
        "html_url": html,
        "description": r.description,
        "fork": r.parent is not None,
        "url": api,
    }
    out.update({key: api + suffix for key, suffix in _REPO_URLS})
    out.update(
        {
            "created_at": iso(r.created_at),
            "updated_at": iso(r.updated_at),
            "pushed_at": iso(r.pushed_at),
            "git_url": f"git://{host}/{r.full_name}.git",
            "ssh_url": f"git@{host.split(':')[0]}:{r.full_name}.git",
            "clone_url": f"{html}.git",
            "svn_url": html,
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "forks_count": len(r.forks),
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_pulls,
            "license": None,
            "forks": len(r.forks),
            "open_issues": open_pulls,
            "watchers": 0,
            "default_branch": r.default_branch,
            "is_template": False,
            "topics": [],
            "visibility": "private" if r.private else "public",
            "web_commit_signoff_required": False,
            "custom_properties": {},
        }
    )
    if with_parent and r.parent is not None:
        out["parent"] = repo(r.parent, urls, with_parent=False)
        out["source"] = out["parent"]
    return out


def label(lb: Label, r: Repo, urls: Urls) -> dict[str, Any]:
    return {
        "id": lb.id,
        "node_id": node_id("Label", lb.id),
        "url": f"{urls.api}/repos/{r.full_name}/labels/{lb.name}",
        "name": lb.name,
        "color": lb.color,
        "default": lb.default,
        "description": lb.description,
    }


def _branch_end(r: Repo, ref: str, sha: str, urls: Urls) -> dict[str, Any]:
    return {
        "label": f"{r.owner.login}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user(r.owner, urls),
        "repo": repo(r, urls, with_parent=False),
    }


def pull(p: Pull, r: Repo, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}"
    self_url = f"{api}/pulls/{p.number}"
    html = f"{urls.web}/{r.full_name}/pull/{p.number}"
    issue_url = f"{api}/issues/{p.number}"
    comments_url = f"{issue_url}/comments"
    review_comments_url = f"{self_url}/comments"
    review_comment_url = f"{api}/pulls/comments{{/number}}"
    commits_url = f"{self_url}/commits"
    statuses_url = f"{api}/statuses/{p.head_sha}"
    base_sha = r.branches.get(p.base_ref, "0" * 40)
    if p.merged and p.merge_commit_sha:
        base_sha = r.commits[p.merge_commit_sha].parents[0]  # the base as it was when merged
    author = user(p.user, urls)
    association = "OWNER" if p.user is r.owner else ("COLLABORATOR" if r.can_push(p.user.login) else "NONE")
    return {
        "url": self_url,
        "id": p.id,
        "node_id": node_id("PullRequest", p.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue_url,
        "number": p.number,
        "state": p.state,
        "locked": False,
        "title": p.title,
        "user": author,
        "body": p.body,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "closed_at": iso(p.closed_at),
        "merged_at": iso(p.merged_at),
        "merge_commit_sha": p.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": [label(lb, r, urls) for lb in p.labels],
        "milestone": None,
        "draft": p.draft,
        "commits_url": commits_url,
        "review_comments_url": review_comments_url,
        "review_comment_url": review_comment_url,
        "comments_url": comments_url,
        "statuses_url": statuses_url,
        "head": _branch_end(p.head_repo, p.head_ref, p.head_sha, urls),
        "base": _branch_end(r, p.base_ref, base_sha, urls),
        "_links": {
            "self": {"href": self_url},
            "html": {"href": html},
            "issue": {"href": issue_url},
            "comments": {"href": comments_url},
            "review_comments": {"href": review_comments_url},
            "review_comment": {"href": review_comment_url},
            "commits": {"href": commits_url},
            "statuses": {"href": statuses_url},
        },
        "author_association": association,
        "auto_merge": None,
        "active_lock_reason": None,
        "merged": p.merged,
        "mergeable": None if p.state != "open" else True,
        "rebaseable": None if p.state != "open" else True,
        "mergeable_state": "draft" if p.draft else ("clean" if p.state == "open" else "unknown"),
        "merged_by": user(p.merged_by, urls) if p.merged_by else None,
        "comments": sum(1 for c in r.comments.values() if c.issue_number == p.number),
        "review_comments": 0,
        "maintainer_can_modify": p.maintainer_can_modify,
        "commits": max(1, r.commits_between(base_sha, p.head_sha)),
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    }


# Keys GitHub returns only for a single pull (``GET .../pulls/{n}``) and in webhook payloads, not in
# list items ("pull-request-simple"): code that reads them from a list must fetch the pull first.
DETAIL_ONLY_KEYS = (
    "merged",
    "mergeable",
    "rebaseable",
    "mergeable_state",
    "merged_by",
    "comments",
    "review_comments",
    "maintainer_can_modify",
    "commits",
    "additions",
    "deletions",
    "changed_files",
)


def pull_list_item(p: Pull, r: Repo, urls: Urls) -> dict[str, Any]:
    full = pull(p, r, urls)
    for key in DETAIL_ONLY_KEYS:
        del full[key]
    return full


def issue(p: Pull, r: Repo, urls: Urls) -> dict[str, Any]:
    """A pull request seen through the Issues API (every pull is an issue on GitHub)."""
    full = pull(p, r, urls)
    api = f"{urls.api}/repos/{r.full_name}"
    return {
        "url": full["issue_url"],
        "repository_url": api,
        "labels_url": f"{full['issue_url']}/labels{{/name}}",
        "comments_url": full["comments_url"],
        "events_url": f"{full['issue_url']}/events",
        "html_url": full["html_url"],
        "id": p.id + 1_000_000_000,
        "node_id": node_id("Issue", p.id),
        "number": p.number,
        "title": p.title,
        "user": full["user"],
        "labels": full["labels"],
        "state": p.state,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": full["comments"],
        "created_at": full["created_at"],
        "updated_at": full["updated_at"],
        "closed_at": full["closed_at"],
        "author_association": full["author_association"],
        "draft": p.draft,
        "pull_request": {
            "url": full["url"],
            "html_url": full["html_url"],
            "diff_url": full["diff_url"],
            "patch_url": full["patch_url"],
            "merged_at": full["merged_at"],
        },
        "body": p.body,
        "state_reason": None,
    }


def comment(c: Comment, r: Repo, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/repos/{r.full_name}"
    return {
        "url": f"{api}/issues/comments/{c.id}",
        "html_url": f"{urls.web}/{r.full_name}/pull/{c.issue_number}#issuecomment-{c.id}",
        "issue_url": f"{api}/issues/{c.issue_number}",
        "id": c.id,
        "node_id": node_id("IssueComment", c.id),
        "user": user(c.user, urls),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "author_association": "OWNER" if c.user is r.owner else "NONE",
        "body": c.body,
    }
