"""The two GraphQL mutations GitHub offers for draft <-> ready, as PyGithub sends them.

PyGithub's ``PullRequest.mark_ready_for_review()`` and ``convert_to_draft()`` POST to
``<base>/graphql`` (``/api/graphql`` on GitHub Enterprise) a mutation named
``markPullRequestReadyForReview`` / ``convertPullRequestToDraft`` with ``input.pullRequestId``
= the pull's ``node_id``. Nothing else of GraphQL is emulated; other queries get a GraphQL error.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ApiError
from .model import node_id
from .routing import Ctx, Response

MUTATIONS = {"markPullRequestReadyForReview": False, "convertPullRequestToDraft": True}


def graphql(ctx: Ctx) -> Response:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    query = body.get("query") or ""
    variables: dict[str, Any] = body.get("variables") or {}
    match = re.search(r"\b(" + "|".join(MUTATIONS) + r")\s*\(", query)
    if match is None:
        return Response(body={"errors": [{"message": "Only draft/ready mutations are emulated"}]})
    me = ctx.me()
    name = match.group(1)
    inp = variables.get("input") or {}
    target = inp.get("pullRequestId")
    for repo in ctx.store.repos.values():
        for pull in repo.pulls.values():
            if node_id("PullRequest", pull.id) == target and repo.can_read(me.login):
                if me is not pull.user and not repo.can_push(me.login):
                    raise ApiError(403, "Resource not accessible by personal access token")
                ctx.store.set_draft(repo, pull, MUTATIONS[name], sender=me)
                result = {
                    "clientMutationId": inp.get("clientMutationId"),
                    "pullRequest": {"isDraft": pull.draft},
                }
                return Response(body={"data": {name: result}})
    return Response(
        body={
            "data": {name: None},
            "errors": [
                {
                    "type": "NOT_FOUND",
                    "message": f"Could not resolve to a node with the global id of '{target}'",
                }
            ],
        }
    )
