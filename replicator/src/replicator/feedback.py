"""Feedback where people look: GitHub deployments and one sticky comment per pull request.

A second, independent controller of the replicator process, keyed by ``<repository URL>#<PR>``.
It reads the clones from the informer caches (what exists, whether the rollout is Available) and
converges what GitHub shows on that, writing only differences:

* one GitHub deployment per pull request and origin (environment ``pr-<N>/<origin>``, or
  ``pr-<N>/<origin>.<namespace>`` when origins of the same name in two namespaces serve it) and head
  commit, with statuses in_progress -> success when the clone Deployment is Available, failure
  with the reason when its rollout failed, inactive once the clone is gone; the description is
  the routing header (``controller_common.headers.deployment_description``);
* one comment, found by a hidden marker, listing the pull request's environments with the
  headers and a curl example (``controller_common.headers.header_instructions``), edited in place.

What was published is remembered per process and, after a restart, read back from GitHub (the
newest status of the deployment, the comment body) before anything is written, so a steady
state and a restart cost no GitHub writes. A new process also reads back, once per pull request,
every environment of ours GitHub still shows as active (``pr-<N>/...``, from the repository's
newest deployments), and :meth:`FeedbackReconciler.sweep` enqueues the pull requests that have
one: so an environment whose clone went away while no replicator ran — or was deleted at start-up
by this one, before it had published anything — is marked inactive, not left ``success``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import structlog

from controller_common import contract, errors, objects
from controller_common.headers import Entry, deployment_description, header_instructions
from replicator.github_source import GitHubError, RateLimited
from replicator.repository import Repository, parse_repository

log = structlog.get_logger(__name__)

IN_PROGRESS, SUCCESS, FAILURE, INACTIVE = "in_progress", "success", "failure", "inactive"


@dataclass(frozen=True)
class Environment:
    """One clone of one origin for one pull request, as GitHub should show it."""

    pr_number: int
    origin: str
    namespace: str
    clone: str
    head_sha: str
    entries: tuple[Entry, ...]
    """(origin Service, clone Service, namespace) for every routable Service of the clone."""
    state: str
    reason: str = ""
    qualified: bool = False
    """Another namespace has an origin of the same name for this PR: the environment names both."""

    @property
    def name(self) -> str:
        origin = f"{self.origin}.{self.namespace}" if self.qualified else self.origin
        return str(contract.github_environment(self.pr_number, origin))

    @property
    def description(self) -> str:
        if self.state == FAILURE:
            return f"Rollout failed: {self.reason}"[:140]
        if not self.entries:
            return f"{self.clone}.{self.namespace} (no Service to route to)"
        return str(deployment_description(self.entries))


def feedback_key(repository_url: str, pr_number: int) -> str:
    return f"{repository_url}#{pr_number}"


def parse_feedback_key(key: str) -> tuple[Repository, int]:
    url, _, number = key.rpartition("#")
    return parse_repository(url), int(number)


def feedback_key_of_clone(obj: Mapping[str, Any]) -> str | None:
    """The feedback key of a clone Deployment or Service (``None`` for anything else)."""
    labels, annotations = objects.labels(obj), objects.annotations(obj)
    if labels.get(contract.MANAGED_BY_LABEL) != contract.REPLICATOR_MANAGER:
        return None
    url, number = annotations.get(contract.CLONE_REPOSITORY_ANNOTATION), labels.get(contract.PULL_REQUEST_LABEL)
    if not url or not number or not number.isdigit():
        return None
    return feedback_key(url, int(number))


def rollout_state(deployment: Mapping[str, Any]) -> tuple[str, str]:
    """(state, reason) of a clone Deployment from its status conditions."""
    status = deployment.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    if progressing.get("status") == "False" or progressing.get("reason") == "ProgressDeadlineExceeded":
        return FAILURE, str(progressing.get("message") or progressing.get("reason") or "rollout stalled")
    failure = conditions.get("ReplicaFailure") or {}
    if failure.get("status") == "True":
        return FAILURE, str(failure.get("message") or failure.get("reason") or "replica failure")
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    current = generation is None or observed == generation
    if current and (conditions.get("Available") or {}).get("status") == "True":
        # ``kubectl rollout status``'s rule: Available alone is also true while the previous
        # commit's Pods serve and the new ones are stuck, e.g. pulling an image that does not exist.
        wanted = (deployment.get("spec") or {}).get("replicas", 1)
        updated = status.get("updatedReplicas") or 0
        old_pods_left = (status.get("replicas") or 0) > updated
        if updated >= wanted and not old_pods_left and (status.get("availableReplicas") or 0) >= updated:
            return SUCCESS, ""
    return IN_PROGRESS, ""


def environments_of(
    key: str, deployments: Sequence[Mapping[str, Any]], services: Sequence[Mapping[str, Any]]
) -> list[Environment]:
    """Every clone of the pull request named by ``key``, across origins and namespaces, by name."""
    result = []
    for deployment in deployments:
        if feedback_key_of_clone(deployment) != key or objects.is_being_deleted(deployment):
            continue
        namespace = objects.namespace(deployment) or ""
        clone = objects.name(deployment)
        annotations = objects.annotations(deployment)
        entries = tuple(
            sorted(
                (objects.annotations(s)[contract.ORIGIN_SERVICE_ANNOTATION], objects.name(s), namespace)
                for s in services
                if objects.namespace(s) == namespace
                and objects.labels(s).get(contract.CLONE_LABEL) == clone
                and contract.ORIGIN_SERVICE_ANNOTATION in objects.annotations(s)
            )
        )
        state, reason = rollout_state(deployment)
        result.append(
            Environment(
                pr_number=int(objects.labels(deployment)[contract.PULL_REQUEST_LABEL]),
                origin=annotations.get(contract.CLONE_ORIGIN_ANNOTATION) or clone,
                namespace=namespace,
                clone=clone,
                head_sha=annotations.get(contract.CLONE_HEAD_SHA_ANNOTATION, ""),
                entries=entries,
                state=state,
                reason=reason,
            )
        )
    names = [e.origin for e in result]
    result = [replace(e, qualified=True) if names.count(e.origin) > 1 else e for e in result]
    return sorted(result, key=lambda e: (e.namespace, e.origin))


_ENVIRONMENT = re.compile(r"pr-([0-9]+)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def _pull_request_of(environment: str) -> int | None:
    """The PR number of one of our environment names (``pr-<N>/<origin>[.<namespace>]``), else None."""
    match = _ENVIRONMENT.fullmatch(environment)
    return int(match[1]) if match else None


_STATE_WORDS = {IN_PROGRESS: "deploying", SUCCESS: "ready", FAILURE: "failed"}


def comment_body(environments: Sequence[Environment]) -> str:
    """The sticky comment: marker, a table of environments, and how to route to them."""
    lines = [contract.PR_COMMENT_MARKER, "### Pull-request environments", ""]
    if not environments:
        lines.append("This pull request has no environment now.")
        return "\n".join(lines) + "\n"
    lines += ["| environment | namespace | commit | state |", "|---|---|---|---|"]
    for env in environments:
        state = _STATE_WORDS.get(env.state, env.state)
        if env.state == FAILURE:
            state += f": {env.reason}"
        lines.append(f"| `{env.clone}` | `{env.namespace}` | `{env.head_sha[:7]}` | {state} |")
    entries = [entry for env in environments for entry in env.entries]
    if entries:
        lines += ["", "```", header_instructions(entries).rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


class FeedbackPublisher(Protocol):
    """The GitHub writes feedback needs (``GitHubSource`` in production)."""

    def find_deployment(self, repository: Repository, environment: str, sha: str) -> int | None: ...

    def latest_deployment_status(self, repository: Repository, deployment_id: int) -> tuple[str, str] | None: ...

    def create_deployment(self, repository: Repository, *, sha: str, environment: str, description: str) -> int: ...

    def create_deployment_status(
        self, repository: Repository, deployment_id: int, *, state: str, description: str
    ) -> None: ...

    def find_comment(self, repository: Repository, number: int, marker: str) -> tuple[int, str] | None: ...

    def recent_deployments(self, repository: Repository) -> list[tuple[int, str, str]]: ...

    def create_comment(self, repository: Repository, number: int, body: str) -> int: ...

    def edit_comment(self, repository: Repository, comment_id: int, body: str) -> None: ...


class Cache(Protocol):
    def list(self) -> list[dict[str, Any]]: ...


@dataclass
class _Published:
    deployment_id: int
    sha: str
    state: str | None
    description: str


@dataclass
class FeedbackReconciler:
    publisher: FeedbackPublisher
    deployments: Cache
    services: Cache
    github_deployments: bool = False
    pr_comment: bool = False
    dry_run: bool = False
    _published: dict[tuple[str, str], _Published] = field(default_factory=dict, init=False, repr=False)
    _comments: dict[str, tuple[int, str] | None] = field(default_factory=dict, init=False, repr=False)
    _read_back: set[str] = field(default_factory=set, init=False, repr=False)
    """Keys whose active environments on GitHub this process has read back."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __call__(self, key: str) -> None:
        repository, number = parse_feedback_key(key)
        environments = environments_of(key, self.deployments.list(), self.services.list())
        try:
            if self.github_deployments:
                self._read_back_active(key, repository, number)
                self._deployments(key, repository, environments)
            if self.pr_comment:
                self._comment(key, repository, number, environments)
        except RateLimited as exc:
            raise errors.RequeueAfter(exc.retry_after or 60, str(exc)) from exc
        except GitHubError as exc:
            if exc.permanent:
                raise errors.PermanentError(f"feedback for {key}: {exc}") from exc
            raise errors.TransientError(f"feedback for {key}: {exc}") from exc

    def sweep(self, repositories: Iterable[Repository], enqueue: Callable[[str], None]) -> None:
        """Enqueue every pull request for which GitHub shows an active environment of ours (start-up).

        Those whose clone is gone get nothing else to enqueue them; their reconcile reads them
        back and marks them inactive. A repository that cannot be read is skipped (logged).
        """
        if not self.github_deployments:
            return
        for repository in repositories:
            try:
                found = self.publisher.recent_deployments(repository)
            except GitHubError as exc:
                log.warning("feedback sweep skipped a repository", repository=repository.full_name, error=str(exc))
                continue
            for number in sorted({n for _, environment, _ in found if (n := _pull_request_of(environment))}):
                enqueue(feedback_key(repository.html_url, number))

    def _read_back_active(self, key: str, repository: Repository, number: int) -> None:
        """Once per key and process: remember the environments of ours GitHub shows as active."""
        with self._lock:
            if key in self._read_back:
                return
        newest: dict[str, tuple[int, str]] = {}
        for deployment_id, environment, sha in self.publisher.recent_deployments(repository):
            if _pull_request_of(environment) == number and environment not in newest:
                newest[environment] = (deployment_id, sha)  # newest first, as GitHub lists them
        for environment, (deployment_id, sha) in newest.items():
            with self._lock:
                if (key, environment) in self._published:
                    continue
            latest = self.publisher.latest_deployment_status(repository, deployment_id)
            state, description = latest if latest else (None, "")
            if state in (INACTIVE, "error"):
                continue
            with self._lock:
                self._published.setdefault((key, environment), _Published(deployment_id, sha, state, description))
        with self._lock:
            self._read_back.add(key)

    def _deployments(self, key: str, repository: Repository, environments: Sequence[Environment]) -> None:
        current = {env.name: env for env in environments}
        with self._lock:
            gone = [(k, p) for k, p in self._published.items() if k[0] == key and k[1] not in current]
        for (_, name), published in gone:
            if published.state != INACTIVE:
                self._status(repository, name, published, INACTIVE, "Environment removed")
            with self._lock:
                self._published.pop((key, name), None)
        for env in environments:
            with self._lock:
                known = self._published.get((key, env.name))
            if known is None or known.sha != env.head_sha:
                known = self._deployment_for(repository, env)
                with self._lock:
                    self._published[(key, env.name)] = known
            published = known
            if (published.state, published.description) != (env.state, env.description):
                self._status(repository, env.name, published, env.state, env.description)

    def _deployment_for(self, repository: Repository, env: Environment) -> _Published:
        found = self.publisher.find_deployment(repository, env.name, env.head_sha)
        if found is not None:
            latest = self.publisher.latest_deployment_status(repository, found)
            state, description = latest if latest else (None, "")
            return _Published(found, env.head_sha, state, description)
        if self.dry_run:
            log.info("dry run: deployment not created", environment=env.name, sha=env.head_sha)
            return _Published(0, env.head_sha, None, "")
        created = self.publisher.create_deployment(
            repository, sha=env.head_sha, environment=env.name, description=env.description
        )
        log.info("github deployment created", environment=env.name, sha=env.head_sha[:7], deployment=created)
        published = _Published(created, env.head_sha, None, "")
        # Every deployment starts in_progress, even when the rollout finished before we looked.
        self._status(repository, env.name, published, IN_PROGRESS, env.description)
        return published

    def _status(self, repository: Repository, name: str, published: _Published, state: str, description: str) -> None:
        if self.dry_run or not published.deployment_id:
            log.info("dry run: deployment status not written", environment=name, state=state)
        else:
            self.publisher.create_deployment_status(
                repository, published.deployment_id, state=state, description=description
            )
            log.info("github deployment status", environment=name, state=state)
        published.state, published.description = state, description

    def _comment(self, key: str, repository: Repository, number: int, environments: Sequence[Environment]) -> None:
        body = comment_body(environments)
        with self._lock:
            known = self._comments.get(key, ...)
        if known is ...:
            known = self.publisher.find_comment(repository, number, contract.PR_COMMENT_MARKER)
        if known is None and not environments:
            return  # never opened a comment just to say there is nothing
        if known is not None and known[1] == body:
            with self._lock:
                if environments:
                    self._comments[key] = known
                else:
                    # Final state (no clone is left to bring this key back): nothing to remember.
                    self._comments.pop(key, None)
            return
        if self.dry_run:
            log.info("dry run: pull-request comment not written", key=key)
            return
        if known is None:
            comment_id = self.publisher.create_comment(repository, number, body)
            log.info("pull-request comment created", key=key, comment=comment_id)
        else:
            comment_id = known[0]
            self.publisher.edit_comment(repository, comment_id, body)
            log.info("pull-request comment updated", key=key, comment=comment_id)
        with self._lock:
            if environments:
                self._comments[key] = (comment_id, body)
            else:
                self._comments.pop(key, None)
