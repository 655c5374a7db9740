"""``replicator``: wire the sources, the work queue and the reconciler into one process.

Sources only enqueue keys (``namespace/origin``): the Deployment informer (an origin changed, or a
clone was touched by someone else), the Service informer (a Service the clones copy changed), the
repository poller (a pull-request list changed) and, when enabled, the webhook receiver (asks the
poller for an immediate refresh). One reconciler converges each key. With ``--github-deployments``
or ``--github-pr-comment``, a second controller (its own queue, keyed ``<repository URL>#<PR>``,
fed by clone changes) converges what GitHub shows (:mod:`replicator.feedback`). The poller, the
webhook receiver and both controllers run only on the Lease holder, whose Pod alone carries the
label the webhook Service selects (:mod:`replicator.leader_pod`).

Sharded (``--shard-count``), a process reconciles and polls for the origins of the namespaces its
shard owns, and publishes feedback for the repositories its shard owns (by the same stable hash):
every shard's leader receives webhooks and refreshes only the repositories its origins name.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from controller_common import events, metrics, objects
from controller_common.engine import Controller
from controller_common.health import parse_bind_address
from controller_common.kube import DEPLOYMENTS, SERVICES, KubeClient
from controller_common.logging import configure_logging
from controller_common.manager import Manager
from controller_common.sharding import Shard
from controller_common.startup import (
    EXIT_GITHUB_CREDENTIALS,
    StartupError,
    check_listen_addresses,
    kube_client,
    run_main,
)
from controller_common.workqueue import WorkQueue
from replicator import __version__
from replicator.feedback import FeedbackReconciler, feedback_key_of_clone
from replicator.github_source import AppCredentials, GitHubError, GitHubSource, RateLimited
from replicator.leader_pod import PodRef, WebhookReceiverLabel, label_failures_counter
from replicator.metrics import PREFIX, ReplicatorMetrics
from replicator.origin_config import is_opted_in
from replicator.origin_index import (
    ALL,
    OPTED_IN_INDEX,
    opted_in_index,
    origins_by_repository,
    requirements_by_repository,
)
from replicator.pull_request import pull_request_from_api
from replicator.reconcile import CLONES_OF_INDEX, CloneReconciler, clones_of_index, origin_key_of_clone
from replicator.repository import GITHUB_COM, Repository
from replicator.repository_poller import RepositoryPoller
from replicator.settings import Settings, parse_settings
from replicator.webhook import WebhookServer

log = structlog.get_logger("replicator")


def run(settings: Settings) -> int:
    library = metrics.configure(PREFIX)
    library.build_info(__version__)
    domain = ReplicatorMetrics.create(library)
    process = settings.process
    client = kube_client(process)
    manager = Manager.from_settings(name="replicator", client=client, metrics=library, process=process)
    deployments = manager.informer(DEPLOYMENTS)
    services = manager.informer(SERVICES)
    deployments.add_index(OPTED_IN_INDEX, opted_in_index)
    for cache in (deployments, services):
        cache.add_index(CLONES_OF_INDEX, clones_of_index)
    queue = manager.work_queue("replicator")
    shard = process.shard

    def owned_origins() -> list[dict[str, Any]]:
        # Only the repositories named by this shard's origins are polled (and so refreshed by webhooks).
        return [d for d in deployments.by_index(OPTED_IN_INDEX, ALL) if shard.owns(objects.namespace(d) or "")]

    def on_github_response(endpoint: str, status: int) -> None:
        domain.github_requests.labels(endpoint=endpoint, status=str(status)).inc()
        limit = github.rate_limit
        if limit.remaining is not None:
            domain.github_rate_limit_remaining.set(limit.remaining)
        if limit.reset_epoch is not None:
            domain.github_rate_limit_reset.set(limit.reset_epoch)

    def count_rate_limit_pause(error: GitHubError | None) -> None:
        if isinstance(error, RateLimited):
            domain.github_rate_limit_pauses.labels(limit="secondary" if error.secondary else "primary").inc()

    app = (
        AppCredentials(settings.github_app_id, settings.github_app_private_key)
        if settings.github_app_id is not None and settings.github_app_private_key
        else None
    )
    github = GitHubSource(
        api_url=settings.github_api_url,
        token=settings.github_token,
        app=app,
        enterprise_api_urls=settings.github_enterprise_api_urls,
        write_interval=settings.github_write_interval_seconds,
        read_interval=settings.github_read_interval_seconds,
        on_response=on_github_response,
    )
    check_github_credentials(github, settings)

    poller = RepositoryPoller(
        source=github,
        interval=settings.poll_interval_seconds,
        origins_by_repository=lambda: origins_by_repository(owned_origins(), github.hosts),
        requirements=lambda: requirements_by_repository(owned_origins(), github.hosts),
        enqueue=queue.add,
        on_fetch=lambda _repository, _listing, error: count_rate_limit_pause(error),
    )

    reconciler = CloneReconciler(
        client=client,
        deployments=deployments,
        services=services,
        poller=poller,
        hosts=github.hosts,
        record_event=events.recorder_for(client, "replicator"),
        metrics=domain,
        dry_run=process.dry_run,
    )

    feedback_queue: WorkQueue | None = None
    if settings.github_deployments or settings.github_pr_comment:
        # Keyed by repository, not namespace: one shard publishes for all of a pull request's clones.
        feedback_queue = manager.work_queue("replicator-feedback", owner=_repository_of_feedback_key)
        feedback = FeedbackReconciler(
            publisher=github,
            deployments=deployments,
            services=services,
            github_deployments=settings.github_deployments,
            pr_comment=settings.github_pr_comment,
            dry_run=process.dry_run,
        )
        manager.add_controller(Controller("replicator-feedback", reconcile=feedback, queue=feedback_queue, workers=1))
        # Once the caches are in: pull requests whose environments GitHub still shows as active,
        # whatever happened to their clones while no replicator ran, get looked at too.
        sweep_into = feedback_queue.add
        manager.add_runnable(
            "feedback-sweep",
            lambda _stop: feedback.sweep(
                origins_by_repository(deployments.by_index(OPTED_IN_INDEX, ALL), github.hosts), sweep_into
            ),
        )

    def on_clone(obj: dict[str, Any]) -> None:
        key = feedback_key_of_clone(obj) if feedback_queue is not None else None
        if key and feedback_queue is not None:
            feedback_queue.add(key)

    def on_deployment(_event: str, deployment: dict[str, Any]) -> None:
        if is_opted_in(deployment):
            queue.add(objects.object_key(deployment))
        origin_key = origin_key_of_clone(deployment)
        if origin_key:
            queue.add(origin_key)
            on_clone(deployment)

    def on_deployment_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        # An origin that just lost its opt-in must be reconciled now (its clones go), not at the
        # next resync; after a restart its clones' own events enqueue it instead.
        if is_opted_in(old) and not is_opted_in(new):
            queue.add(objects.object_key(new))
        if objects.changed_beyond_status(old, new):
            on_deployment("MODIFIED", new)
        elif origin_key_of_clone(new):
            # A rollout's status (Pods becoming ready) changes nothing a reconcile plans from, but
            # it is what GitHub's deployment status reports.
            on_clone(new)

    def on_service(_event: str, service: dict[str, Any]) -> None:
        namespace = objects.namespace(service) or ""
        origin_key = origin_key_of_clone(service)
        if origin_key:
            queue.add(origin_key)
            on_clone(service)
            return
        for deployment in deployments.by_index(OPTED_IN_INDEX, namespace):
            queue.add(objects.object_key(deployment))

    deployments.add_handler(
        on_add=lambda d: on_deployment("ADDED", d),
        on_update=on_deployment_update,
        on_delete=lambda d: on_deployment("DELETED", d),
    )
    services.on_change(on_service)
    manager.add_controller(Controller("replicator", reconcile=reconciler, queue=queue, workers=process.workers))
    manager.add_runnable("repository-poller", poller.run)

    webhook_address = parse_bind_address(settings.webhook_bind_address)
    secret = settings.webhook_secret
    if webhook_address is not None and secret:
        address: tuple[str, int] = webhook_address

        def apply_delivered_pull_request(repository: Repository, payload: dict[str, Any]) -> None:
            try:
                pull_request = pull_request_from_api(payload)
            except Exception:  # signed but not the shape we know: fall back to a list fetch
                log.info("webhook pull request unreadable; refreshing the list", repository=repository.full_name)
                poller.request_refresh(repository)
                return
            poller.apply_pull_request(repository, pull_request)

        def serve_webhooks(stop: threading.Event) -> None:
            # Only where the poller runs (the Lease holder): a standby refuses deliveries visibly
            # (GitHub shows the failure) instead of accepting what it could not act on.
            webhook = WebhookServer(
                bind_address=address,
                path=settings.webhook_path,
                secret=secret,
                on_repository=poller.request_refresh,
                on_pull_request=apply_delivered_pull_request,
                on_delivery=lambda event, result: domain.webhook_deliveries.labels(event=event, result=result).inc(),
                api_hosts={
                    settings.github_api_url: GITHUB_COM,
                    **{url: host for host, url in settings.github_enterprise_api_urls.items()},
                },
            ).start()
            log.info("webhook receiver listening", port=webhook.port, path=settings.webhook_path)
            stop.wait()
            webhook.stop()

        manager.add_runnable("webhook-receiver", serve_webhooks)
        receiver_label = _webhook_receiver_label(client, library, os.environ, shard)
        if receiver_label is not None:
            # Unlabel our Pod now (every replica), label it while we lead, unlabel it before the
            # Lease is released: the webhook Service then reaches the leader only.
            receiver_label.start()
            manager.add_runnable("webhook-receiver-label", receiver_label.while_leading)
    else:
        receiver_label = None
    try:
        return int(manager.run())
    finally:
        if receiver_label is not None:
            receiver_label.close()


def _repository_of_feedback_key(key: str) -> str:
    """``<repository URL>#<PR>`` (:func:`replicator.feedback.feedback_key`) -> the URL: its shard's name."""
    return key.rpartition("#")[0]


def _webhook_receiver_label(
    client: KubeClient, library: metrics.Metrics, environ: Mapping[str, str], shard: Shard
) -> WebhookReceiverLabel | None:
    pod = PodRef.from_environment(environ)
    if pod is None:
        log.info("no POD_NAME: the webhook receiver label is not kept on any pod")
        return None
    return WebhookReceiverLabel(
        client=client,
        pod=pod,
        failures=label_failures_counter(library.registry, PREFIX),
        shard=str(shard.index) if shard.sharded else None,
    )


def check_github_credentials(github: GitHubSource, settings: Settings) -> None:
    """One request before any worker runs: rejected credentials (401) stop the start; GitHub being
    down or limiting us (a transport error, 403, 429, 5xx) is only a warning, as polling retries."""
    try:
        identity = github.check_credentials()
    except GitHubError as exc:
        if exc.status != 401:
            log.warning("github credentials not checked; polling retries", error=str(exc), status=exc.status)
            return
        if settings.github_app_id is not None:
            raise StartupError(
                EXIT_GITHUB_CREDENTIALS,
                f"--github-app-id={settings.github_app_id} / --github-app-private-key-file: GitHub rejected the App "
                f"({exc}); use the App's id and a current private key of that App (App settings, Private keys)",
            ) from None
        raise StartupError(
            EXIT_GITHUB_CREDENTIALS,
            f"--github-token-file / $GITHUB_TOKEN: GitHub rejected the token ({exc}); put a valid token there "
            "(revoked or expired?), or set neither to run unauthenticated",
        ) from None
    if identity is None:
        log.warning("no GitHub credentials: unauthenticated, 60 requests an hour", api_url=settings.github_api_url)
    else:
        log.info("github credentials accepted", identity=identity, api_url=settings.github_api_url)


def listen_addresses(settings: Settings) -> dict[str, str]:
    return {
        "--metrics-bind-address": settings.process.metrics_bind_address,
        "--health-probe-bind-address": settings.process.health_probe_bind_address,
        "--webhook-bind-address": settings.webhook_bind_address,
    }


def start(argv: Sequence[str] | None) -> int:
    settings = parse_settings(argv)
    configure_logging(
        level=settings.process.log_level,
        json={"auto": None, "json": True, "console": False}[settings.process.log_format],
    )
    log.info("starting", version=__version__, config=settings.redacted())
    check_listen_addresses(listen_addresses(settings))
    return run(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Configuration mistakes found before the workers start end in one log line and their exit code."""
    return int(run_main(lambda: start(argv), name="replicator"))


if __name__ == "__main__":
    sys.exit(main())
