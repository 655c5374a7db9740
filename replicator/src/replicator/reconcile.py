"""Converge one origin Deployment's clones on its repository's open pull requests.

The key is ``<namespace>/<origin deployment>``. Everything is read from caches — the Deployment
and Service informers and the repository poller's last list — so a reconcile costs no GitHub
request. The pure steps decide (:mod:`replicator.origin_config`, :mod:`replicator.policy`,
:mod:`replicator.desired`, :mod:`replicator.plan`); this module only executes the plan.

Safety rules: a malformed annotation, an unreadable repository or an origin that cannot be
cloned safely leaves every existing clone untouched (an error is never an empty desired state);
clones are deleted only when their pull request, their origin or its opt-in is really gone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol

import structlog

from controller_common import contract, errors, objects
from controller_common.kube import DEPLOYMENTS, SERVICES, KubeClient, Resource
from replicator.desired import deployed_pull_requests, desired_clones
from replicator.github_hosts import GitHubHosts
from replicator.github_source import GitHubError
from replicator.isolation import CloneError, origin_services
from replicator.metrics import ReplicatorMetrics
from replicator.origin_config import AnnotationError, OriginConfig, is_opted_in, parse_origin_config
from replicator.plan import Plan, is_managed_clone, origin_name_of, plan
from replicator.policy import (
    Hold,
    Skip,
    SkipReason,
    apply_image_gate,
    is_kept,
    last_activity,
    select_pull_requests,
)
from replicator.pull_request import PullRequest
from replicator.repository_poller import RepositoryPoller, RepositoryState

log = structlog.get_logger(__name__)

RESOURCES: dict[str, Resource] = {"Deployment": DEPLOYMENTS, "Service": SERVICES}


class Cache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def list_namespace(self, namespace: str) -> list[dict[str, Any]]: ...

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]: ...


CLONES_OF_INDEX = "clones-of"
"""Informer index of clone Deployments and Services by their origin's key (``clones_of_index``)."""


def clones_of_index(obj: Mapping[str, Any]) -> list[str]:
    """The index values of ``obj`` in :data:`CLONES_OF_INDEX`: its origin's key when it is a clone."""
    key = origin_key_of_clone(obj)
    return [key] if key else []


EventRecorder = Callable[..., None]
"""``record(involved, reason=..., message=..., event_type=...)``: never raises."""


def with_commit_dates(prs: Iterable[PullRequest], dates: Mapping[str, datetime | None]) -> tuple[PullRequest, ...]:
    """The pull requests with ``last_commit_at`` set from the head commits the poller fetched."""
    return tuple(replace(pr, last_commit_at=dates[pr.head_sha]) if dates.get(pr.head_sha) else pr for pr in prs)


def next_expiry(prs: Iterable[PullRequest], config: OriginConfig, *, now: datetime) -> float | None:
    """Seconds until the first selected environment goes idle (so it is removed on time), else None."""
    if config.idle_expiry is None:
        return None
    waits = []
    for pr in prs:
        active = last_activity(pr)
        if active is None or is_kept(pr, config):
            continue
        waits.append((active + config.idle_expiry - now).total_seconds())
    return max(1.0, min(waits) + 1.0) if waits else None


def unavailable(config: OriginConfig, error: GitHubError | None) -> str:
    """Why the pull requests of ``config.repository`` cannot be listed, and what to do about it."""
    name = config.repository.full_name
    status = error.status if error is not None else 0
    if status == 404:
        fix = (
            f"GitHub answers 404 both when {name} does not exist and when the replicator's token or "
            "GitHub App cannot read it: check the repository annotation, then the token's access "
            "(or the App's installation on that repository)"
        )
    elif status == 401:
        fix = "GitHub rejected the replicator's credentials: renew --github-token-file (or the App key)"
    elif status == 403:
        fix = "the replicator's credentials may not read it: grant Pull requests read access to the token or App"
    else:
        fix = "GitHub is unreachable or failing; the replicator keeps retrying with backoff and nothing was changed"
    return f"cannot list the pull requests of {name} ({status or 'no answer'}): {fix}"


def origin_key_of_clone(obj: Mapping[str, Any]) -> str | None:
    """The origin key a clone belongs to (so a hand-deleted clone is recreated), else None."""
    origin = origin_name_of(obj)
    return f"{objects.namespace(obj)}/{origin}" if origin else None


@dataclass
class CloneReconciler:
    client: KubeClient
    deployments: Cache
    services: Cache
    poller: RepositoryPoller
    record_event: EventRecorder
    metrics: ReplicatorMetrics
    hosts: GitHubHosts = field(default_factory=GitHubHosts)
    """The GitHub hosts the flags configured; an origin naming another host is refused here."""
    dry_run: bool = False
    clock: Callable[[], float] = time.time
    _reported: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _repositories: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __call__(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        origin = self.deployments.get(key)
        services = self.services.list_namespace(namespace)
        # The clones by index, not by scanning the namespace; is_managed_clone stays the rule.
        indexed = [*self.deployments.by_index(CLONES_OF_INDEX, key), *self.services.by_index(CLONES_OF_INDEX, key)]
        existing = [obj for obj in indexed if is_managed_clone(obj, name)]
        if origin is None or not is_opted_in(origin) or objects.is_being_deleted(origin):
            # The origin or its opt-in is gone: its clones must go, even those of a previous run.
            self._execute(plan([], existing, origin_name=name), origin=None, key=key)
            self.forget(key)
            return

        config = self._config(origin)
        refusal = self.hosts.refusal(config.repository)
        if refusal is not None:
            self._refuse(origin, "UntrustedRepositoryHost", refusal, reason="repository-host")
        state = self.poller.state(config.repository)
        if state is None:
            self.poller.request_refresh(config.repository)
            log.info("waiting for first pull-request list", repository=config.repository.full_name)
            return
        if state.pull_requests is None:
            self._refuse(origin, "RepositoryUnavailable", unavailable(config, state.error), reason="github")

        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        prs = with_commit_dates(state.pull_requests, state.commit_dates)
        if self._details_missing(config, prs, state):
            # A new origin (or a new gate) on a repository already polled: fetch the details now.
            self.poller.request_refresh(config.repository)
        selection = select_pull_requests(prs, config, now=now)
        gated = apply_image_gate(
            selection.selected,
            config,
            gate={pr.head_sha: state.gates.get((config.image_gate, pr.head_sha)) for pr in prs if config.image_gate},
            deployed=deployed_pull_requests(existing, name),
        )
        skipped = tuple(sorted((*selection.skipped, *gated.skipped), key=lambda s: s.number))
        self._report_skips(origin, skipped, gated.held)
        clone_uids = {
            objects.name(d): objects.uid(d) or "" for d in existing if d.get("kind") == "Deployment" and objects.uid(d)
        }
        try:
            clone_sets = desired_clones(origin, services, gated.ready, config, clone_uids=clone_uids)
        except CloneError as exc:
            self._refuse(origin, "CloneUnsafe", f"{exc}; no clone was changed", reason="clone")
        if clone_sets and not origin_services(origin, services):
            self._warn(
                origin,
                "NoService",
                "no Service selects this Deployment's pods, so its clones cannot be routed to; "
                "create a Service whose selector matches the pod template labels",
                reason="no-service",
            )
        desired = [obj for cs in clone_sets for obj in (cs.deployment, *cs.services)]
        holders = self._name_holders(namespace, name, desired)
        the_plan = plan(desired, [*existing, *holders], origin_name=name)
        new_deployments = [o for o in the_plan.creates if o["kind"] == "Deployment"]
        if new_deployments and not self.dry_run and any(o["kind"] == "Service" for o in the_plan.creates):
            # A new clone Deployment's uid exists once it is created: create it first, then plan
            # again so its Services are created complete, owner reference included, in one write
            # each (not a create and then an update for the reference).
            created = self._execute(
                replace(the_plan, creates=tuple(new_deployments), updates=(), deletes=()), origin=origin, key=key
            )
            clone_uids.update({objects.name(d): objects.uid(d) or "" for d in created if objects.uid(d)})
            clone_sets = desired_clones(origin, services, gated.ready, config, clone_uids=clone_uids)
            desired = [obj for cs in clone_sets for obj in (cs.deployment, *cs.services)]
            the_plan = plan(desired, [*existing, *created, *holders], origin_name=name)
        self._execute(the_plan, origin=origin, key=key)
        self.metrics.environments.labels(namespace=namespace, origin=name, repository=config.repository.full_name).set(
            len(clone_sets)
        )
        self._repositories[key] = config.repository.full_name
        expiry = next_expiry(gated.ready, config, now=now)
        if expiry is not None:
            raise errors.RequeueAfter(expiry, "an environment reaches its idle expiry")

    def _details_missing(self, config: OriginConfig, prs: tuple[PullRequest, ...], state: RepositoryState) -> bool:
        heads = {pr.head_sha for pr in prs if pr.is_open}
        if config.idle_expiry is not None and heads - set(state.commit_dates):
            return True
        return config.image_gate is not None and any((config.image_gate, sha) not in state.gates for sha in heads)

    def _config(self, origin: dict[str, Any]) -> OriginConfig:
        try:
            return parse_origin_config(origin)
        except AnnotationError as exc:
            self._refuse(origin, "InvalidAnnotation", f"{exc.annotation}: {exc}", reason="annotation")
        except Exception as exc:  # a case no parser foresaw: this origin's Warning, never a crash loop
            log.exception("origin annotations unreadable", origin=objects.object_key(origin))
            message = f"the replication annotations could not be read ({type(exc).__name__}: {str(exc)[:200]})"
            self._refuse(origin, "InvalidAnnotation", f"{message}; no clone was changed", reason="annotation")

    def _name_holders(self, namespace: str, origin_name: str, desired: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Objects that are not clones of this origin but hold a desired name: the plan reports them."""
        holders = []
        for obj in desired:
            cache = self.deployments if obj["kind"] == "Deployment" else self.services
            found = cache.get(f"{namespace}/{objects.name(obj)}")
            if found is not None and not is_managed_clone(found, origin_name):
                holders.append(found)
        return holders

    def _report_skips(self, origin: dict[str, Any], skipped: tuple[Skip, ...], held: tuple[Hold, ...]) -> None:
        """Metric per reason always; an Event only when what is skipped or held changed."""
        namespace, name = objects.namespace(origin) or "", objects.name(origin)
        counts = {reason.value: 0 for reason in SkipReason}
        for skip in skipped:
            counts[skip.reason.value] += 1
        for reason, count in counts.items():
            self.metrics.policy_skips.labels(namespace=namespace, origin=name, reason=reason).set(count)
        summary = (frozenset((s.number, s.reason.value) for s in skipped), frozenset(held))
        key = objects.object_key(origin)
        if self._reported.get(key) == summary:
            return
        self._reported[key] = summary
        by_reason: dict[str, list[int]] = {}
        for skip in skipped:
            by_reason.setdefault(skip.reason.value, []).append(skip.number)
        over_limit = by_reason.pop(SkipReason.OVER_LIMIT.value, [])
        if over_limit:
            self.record_event(
                origin,
                reason="EnvironmentLimitReached",
                message=f"pull requests without an environment because the limit is reached: "
                f"{', '.join(f'#{n}' for n in over_limit)} (raise {contract.MAX_ENVIRONMENTS_ANNOTATION} "
                "or close pull requests)",
                event_type="Warning",
            )
        if by_reason:
            detail = "; ".join(f"{reason}: {', '.join(f'#{n}' for n in nums)}" for reason, nums in by_reason.items())
            self.record_event(origin, reason="PullRequestsSkipped", message=f"no environment by policy: {detail}")
        for hold in held:
            self.record_event(
                origin,
                reason="ImageNotReady",
                message=f"PR #{hold.number} stays on {hold.serving_sha[:7]}: image gate is {hold.reason.value} "
                f"for head {hold.head_sha[:7]}",
            )

    def forget(self, key: str) -> None:
        """The origin is gone: drop its per-origin metrics and memory."""
        self._reported.pop(key, None)
        repository = self._repositories.pop(key, None)
        namespace, name = key.split("/", 1)
        if repository is not None:
            with contextlib.suppress(KeyError):
                self.metrics.environments.remove(namespace, name, repository)
        for reason in SkipReason:
            with contextlib.suppress(KeyError):
                self.metrics.policy_skips.remove(namespace, name, reason.value)

    def _refuse(self, origin: dict[str, Any], event_reason: str, message: str, *, reason: str) -> NoReturn:
        """This origin cannot be reconciled until someone changes something: say so and end the
        reconcile as a failure (``result=error``, no hot retry); its clones stay as they are and
        its next change, or a changed repository list, brings it back."""
        self._warn(origin, event_reason, message, reason=reason)
        raise errors.PermanentError(f"{event_reason}: {message}")

    def _warn(self, origin: dict[str, Any], event_reason: str, message: str, *, reason: str) -> None:
        log.warning("origin not reconciled", origin=objects.object_key(origin), reason=event_reason, error=message)
        self.metrics.origin_errors.labels(reason=reason).inc()
        self.record_event(origin, reason=event_reason, message=message, event_type="Warning")

    def _execute(self, the_plan: Plan, *, origin: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
        """Write the plan; the objects created, as the server answered (with their uids)."""
        created: list[dict[str, Any]] = []
        for conflict in the_plan.conflicts:
            kind, namespace, name = conflict.key
            message = f"{kind} {namespace}/{name} {conflict.reason}: not touched"
            log.warning("clone name conflict", origin=key, object=f"{kind}/{name}", reason=conflict.reason)
            self.metrics.origin_errors.labels(reason="conflict").inc()
            if origin is not None:
                self.record_event(origin, reason="CloneConflict", message=message, event_type="Warning")
        if the_plan.is_empty:
            return created
        if self.dry_run:
            log.info(
                "dry run: plan not executed",
                origin=key,
                creates=[objects.name(o) for o in the_plan.creates],
                updates=[objects.name(o) for o in the_plan.updates],
                deletes=[objects.name(o) for o in the_plan.deletes],
            )
            return created
        for obj in the_plan.creates:
            with self._reporting_failure(origin, obj, "create"):
                created.append(self.client.create(RESOURCES[obj["kind"]], obj))
            self._written(origin, obj, "create", "Created")
        for obj in the_plan.updates:
            with self._reporting_failure(origin, obj, "update"):
                self.client.replace(RESOURCES[obj["kind"]], obj)
            self._written(origin, obj, "update", "Updated")
        for obj in the_plan.deletes:
            try:
                with self._reporting_failure(origin, obj, "delete"):
                    self.client.delete(
                        RESOURCES[obj["kind"]],
                        objects.namespace(obj),
                        objects.name(obj),
                        preconditions={"uid": objects.uid(obj)},
                    )
            except errors.NotFound:
                continue
            self._written(origin, obj, "delete", "Deleted")
        return created

    @contextlib.contextmanager
    def _reporting_failure(self, origin: dict[str, Any] | None, obj: dict[str, Any], action: str) -> Iterator[None]:
        """A failed write is told on the origin (Warning Event, metric) and re-raised for the queue's backoff.

        Stale writes and creates of names that exist (409) are races with our own cache: they are
        counted and requeued quietly. Vanished objects (404 on delete) are normal, not failures.
        """
        try:
            yield
        except (errors.AlreadyExists, errors.Conflict) as exc:
            # The informer cache is behind the server: a create finds the clone already there, an
            # update carries a stale resourceVersion. Not a failure: re-read the cache and plan again
            # (the plan reports a name held by someone else as a CloneConflict then).
            self.metrics.write_conflicts.labels(kind=obj["kind"], action=action).inc()
            log.info("clone write raced the cache, retrying", action=action, kind=obj["kind"], name=objects.name(obj))
            raise errors.TransientError(f"{action} {obj['kind']} {objects.name(obj)}: {exc.reason}") from exc
        except errors.ApiError as exc:
            if isinstance(exc, errors.NotFound):
                raise
            self.metrics.origin_errors.labels(reason="write").inc()
            log.warning("clone write failed", action=action, kind=obj["kind"], name=objects.name(obj), error=str(exc))
            if origin is not None:
                self.record_event(
                    origin,
                    reason="CloneFailed",
                    message=f"{action} {obj['kind']} {objects.name(obj)} failed: {exc}",
                    event_type="Warning",
                )
            raise

    def _written(self, origin: dict[str, Any] | None, obj: dict[str, Any], action: str, verb: str) -> None:
        kind, name = obj["kind"], objects.name(obj)
        self.metrics.clone_writes.labels(kind=kind, action=action).inc()
        pr = objects.labels(obj).get(contract.PULL_REQUEST_LABEL, "?")
        log.info("clone written", action=action, kind=kind, name=name, pull_request=pr)
        if origin is not None:
            self.record_event(origin, reason=f"Clone{verb}", message=f"{verb.lower()} {kind} {name} for PR #{pr}")
