"""What the repository poller asks of the origin Deployments: which repositories, needing what.

These run on every poll cycle over every opted-in Deployment, so they are where one origin's bad
annotation could stop GitHub polling for all of them. Each origin is read behind its own
boundary: whatever its annotations hold, it is either counted or left out (the reconcile of that
origin reports why, on its Warning Event), and every other origin is unaffected. Repositories on
hosts the flags did not configure are left out too, so the poller never contacts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import structlog

from controller_common import contract, objects
from replicator.github_hosts import GitHubHosts
from replicator.origin_config import is_opted_in, parse_origin_config
from replicator.repository import Repository, parse_repository
from replicator.repository_poller import Requirements

log = structlog.get_logger(__name__)

OPTED_IN_INDEX = "opted-in"
"""Informer index of opted-in origin Deployments: by namespace, and all of them under :data:`ALL`."""
ALL = "*"  # never a namespace name


def opted_in_index(deployment: Mapping[str, Any]) -> list[str]:
    """The values of ``deployment`` in :data:`OPTED_IN_INDEX`; none unless it is an origin."""
    try:
        opted_in = is_opted_in(deployment)
    except Exception:  # a malformed object is nobody's origin
        return []
    return [ALL, objects.namespace(deployment) or ""] if opted_in else []


def _opted_in(deployments: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for deployment in deployments:
        try:
            if is_opted_in(deployment):
                yield deployment
        except Exception as exc:  # a malformed object from the cache: leave it to its reconcile
            log.debug("origin left out of polling", origin=objects.object_key(deployment), error=repr(exc)[:200])


def origins_by_repository(
    deployments: Iterable[dict[str, Any]], hosts: GitHubHosts
) -> Mapping[Repository, Sequence[str]]:
    """Which origins name which (trusted) repository; an unparsable annotation is left to reconcile."""
    result: dict[Repository, list[str]] = {}
    for deployment in _opted_in(deployments):
        try:
            repository = parse_repository(objects.annotations(deployment)[contract.REPOSITORY_ANNOTATION])
        except Exception as exc:
            log.debug("origin left out of polling", origin=objects.object_key(deployment), error=str(exc)[:200])
            continue
        if hosts.api_url_for(repository) is None:
            continue
        result.setdefault(repository, []).append(objects.object_key(deployment))
    return result


def requirements_by_repository(
    deployments: Iterable[dict[str, Any]], hosts: GitHubHosts
) -> Mapping[Repository, Requirements]:
    """What the origins of each repository need fetched beyond the list: commit dates, image gates."""
    result: dict[Repository, Requirements] = {}
    for deployment in _opted_in(deployments):
        try:
            config = parse_origin_config(deployment)
        except Exception as exc:  # AnnotationError, or anything a parser missed: never the whole cycle
            log.debug("origin left out of polling", origin=objects.object_key(deployment), error=str(exc)[:200])
            continue
        if hosts.api_url_for(config.repository) is None:
            continue
        had = result.get(config.repository, Requirements())
        result[config.repository] = Requirements(
            commit_dates=had.commit_dates or config.idle_expiry is not None,
            gates=had.gates | ({config.image_gate} if config.image_gate else set()),
        )
    return result
