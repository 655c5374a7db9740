"""The contract between users, the replicator and the service-router, in one place.

Every annotation, label, header and name format that crosses a process boundary is defined
here and only here, so the README table, the two controllers and the tests cannot drift apart.
Changing a value is a breaking change for running clusters: add, never rename.
"""

from __future__ import annotations

import hashlib
import re

CONTRACT_VERSION = "v1"

# --- what a user writes on an origin Deployment --------------------------------------------
REPLICATION_PREFIX = "mercari.com/pull-request-replication-"
REPOSITORY_ANNOTATION = REPLICATION_PREFIX + "repository"
"""Opt-in: the GitHub repository whose pull requests get environments (URL, ``git@`` or ``owner/repo``)."""
IMAGE_TEMPLATE_ANNOTATION = REPLICATION_PREFIX + "image-template"
CONTAINERS_ANNOTATION = REPLICATION_PREFIX + "containers"
REQUIRED_LABELS_ANNOTATION = REPLICATION_PREFIX + "required-labels"
EXCLUDED_LABELS_ANNOTATION = REPLICATION_PREFIX + "excluded-labels"
INCLUDE_DRAFTS_ANNOTATION = REPLICATION_PREFIX + "include-drafts"
INCLUDE_FORKS_ANNOTATION = REPLICATION_PREFIX + "include-forks"
BASE_BRANCHES_ANNOTATION = REPLICATION_PREFIX + "base-branches"
MAX_ENVIRONMENTS_ANNOTATION = REPLICATION_PREFIX + "max-environments"
IDLE_EXPIRY_ANNOTATION = REPLICATION_PREFIX + "idle-expiry"
KEEP_LABEL_ANNOTATION = REPLICATION_PREFIX + "keep-label"
REPLICAS_ANNOTATION = REPLICATION_PREFIX + "replicas"
ENV_ANNOTATION = REPLICATION_PREFIX + "env"
IMAGE_GATE_ANNOTATION = REPLICATION_PREFIX + "image-gate"

# --- what the replicator writes on clones ---------------------------------------------------
ORIGIN_SERVICE_ANNOTATION = "mercari.com/service-router-origin-service"
"""On a clone Service: the name of the origin Service it stands in for. The router's only input."""

CLONE_REPOSITORY_ANNOTATION = REPLICATION_PREFIX + "source-repository"
CLONE_HEAD_SHA_ANNOTATION = REPLICATION_PREFIX + "head-sha"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
REPLICATOR_MANAGER = "replicator"
SERVICE_ROUTER_MANAGER = "service-router"
ORIGIN_LABEL = "pull-request-replication.mercari.com/origin"
PULL_REQUEST_LABEL = "pull-request-replication.mercari.com/pull-request"
CLONE_LABEL = "pull-request-replication.mercari.com/clone"
"""Pod-template label carrying the clone's name: clone Services select on it, origins never do."""

DEFAULT_IMAGE_TEMPLATE = "{image}:pr-{pr}"

# --- what the service-router writes ---------------------------------------------------------
MANAGED_ROUTE_PREFIX = "service-router--"
"""Name prefix of every http route the router owns inside a VirtualService."""

ROUTER_FINALIZER = "service-router.mercari.com/route"
VIRTUAL_SERVICE_OPT_OUT_ANNOTATION = "mercari.com/service-router-ignore"
"""On a VirtualService: ``"true"`` keeps the router away from it entirely."""
GATEWAY_OPT_IN_ANNOTATION = "mercari.com/service-router-gateway-routes"
"""On a VirtualService bound to gateways: ``"true"`` lets the router add PR routes to it too."""

HEADER_PREFIX = "service-router-"
JWT_CLAIM = "service_routers"
"""JWT claim: an object of routing header name to value, read by the EnvoyFilter."""
BAGGAGE_KEY_PREFIX = HEADER_PREFIX

DNS1123_LABEL_MAX = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def routing_header(origin_service: str, namespace: str) -> str:
    """Header name that selects a clone of ``origin_service`` in ``namespace`` (lower case)."""
    return f"{HEADER_PREFIX}{origin_service}-{namespace}".lower()


def routing_value(clone_service: str, namespace: str) -> str:
    """Header value that names one clone: ``<clone>.<namespace>``."""
    return f"{clone_service}.{namespace}".lower()


def service_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def managed_route_name(clone_service: str) -> str:
    return f"{MANAGED_ROUTE_PREFIX}{clone_service}"


def clone_name(origin_name: str, pr_number: int, *, max_length: int = DNS1123_LABEL_MAX) -> str:
    """``<origin>-pr<N>``, shortened with a stable hash when it would exceed ``max_length``.

    The hash is taken over the full untruncated name, so two long origins that share a prefix
    still get different clone names, and the same input always yields the same name.
    """
    suffix = f"-pr{pr_number}"
    full = f"{origin_name}{suffix}"
    if len(full) <= max_length:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    keep = max_length - len(suffix) - len(digest) - 1
    stem = origin_name[:keep].rstrip("-")
    return f"{stem}-{digest}{suffix}"


# --- appended by the replicator's pure core -------------------------------------------------
CLONE_SPEC_HASH_ANNOTATION = REPLICATION_PREFIX + "spec-hash"
"""On a clone: hash of the object the replicator last wrote, so a change of intent is an update
while server defaulting never is."""


def label_value(text: str) -> str:
    """``text`` as a label value (≤ 63 characters), shortened with a stable hash when longer.

    Used for the origin label: Deployment names may be 253 characters, label values may not.
    """
    if len(text) <= DNS1123_LABEL_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    stem = text[: DNS1123_LABEL_MAX - len(digest) - 1].rstrip("-_.")
    return f"{stem}-{digest}"


CLONE_ORIGIN_ANNOTATION = REPLICATION_PREFIX + "origin"
"""On a clone: the origin Deployment's full name (the origin label may be hashed to fit 63)."""


# --- appended by the replicator's feedback on GitHub ------------------------------------------
PR_COMMENT_MARKER = "<!-- pull-request-replication:environments -->"
"""Hidden first line of the replicator's one sticky comment per pull request: how it is found again."""


def github_environment(pr_number: int, origin_name: str) -> str:
    """The GitHub Deployments environment of one clone: ``pr-<N>/<origin>``."""
    return f"pr-{pr_number}/{origin_name}"


# --- appended by the replicator's webhook receiver (one leader receives) ------------------------
WEBHOOK_RECEIVER_LABEL = "pull-request-replication.mercari.com/webhook-receiver"
"""On the replicator's own Pod: ``"true"`` while it holds the Lease and so runs the webhook receiver;
the ``replicator-webhook`` Service selects it, so GitHub's deliveries never reach a standby."""
WEBHOOK_RECEIVER_SHARD_LABEL = "pull-request-replication.mercari.com/webhook-receiver-shard"
"""Sharded (``--shard-count`` > 1), next to :data:`WEBHOOK_RECEIVER_LABEL`: the shard index of the
leader that labelled the Pod. Every shard's leader receives (each refreshes only the repositories
its own origins name); a leader clears stale labels only from Pods of its own shard."""
