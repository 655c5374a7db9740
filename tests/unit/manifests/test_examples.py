"""The example origin in ``manifests/examples/`` works with both controllers' real logic.

Beyond schema validity (test_kustomize.py): the replicator accepts its annotations, and the
objects both controllers would write for pull request #7 — the clone Deployment and Service from
the replicator's pure desired-state step, the VirtualService from the router's pure route
planner — are themselves valid against Kubernetes' and Istio's schemas. This is the path a new
user follows: apply the example, open a pull request, send the header.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate

from controller_common import contract
from istio_schema import istio_errors
from replicator.desired import desired_clones
from replicator.origin_config import is_opted_in, parse_origin_config
from replicator.pull_request import PullRequest
from service_router.cloning import Clone
from service_router.routes import plan_virtual_service, select_virtual_service

Render = Callable[[str], list[dict[str, Any]]]
NAMESPACE = "hello-example"
PR = PullRequest(number=7, head_sha="0123456789abcdef0123456789abcdef01234567", head_ref="feature", base_ref="main")


def _example(render: Render) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    objects = render("examples")
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (service,) = [o for o in objects if o["kind"] == "Service"]
    (virtual_service,) = [o for o in objects if o["kind"] == "VirtualService"]
    # What the API server adds on create, and the controllers rely on.
    for uid, obj in enumerate((deployment, service, virtual_service)):
        obj["metadata"].update(uid=f"00000000-0000-0000-0000-00000000000{uid}", resourceVersion="1")
        obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    return deployment, service, virtual_service


def test_the_example_origin_opts_in_with_valid_annotations(render: Render) -> None:
    deployment, _, _ = _example(render)
    assert is_opted_in(deployment)
    config = parse_origin_config(deployment)
    assert config.repository.owner == "example" and config.repository.name == "hello"
    assert config.max_environments == 10 and config.include_drafts is False


def test_the_example_service_and_virtual_service_front_the_origin(render: Render) -> None:
    deployment, service, virtual_service = _example(render)
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    chosen, warnings = select_virtual_service([virtual_service], origin_service="hello", namespace=NAMESPACE)
    assert chosen is virtual_service and warnings == ()


def test_the_objects_both_controllers_write_for_a_pull_request_are_valid(render: Render, shared_dir: Path) -> None:
    deployment, service, virtual_service = _example(render)
    (clone_set,) = desired_clones(deployment, [service], [PR], parse_origin_config(deployment))
    assert clone_set.deployment["metadata"]["name"] == "hello-pr7"
    assert clone_set.deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/hello:pr-7"
    for obj in (clone_set.deployment, *clone_set.services):
        kubernetes_validate.validate(obj, "1.33", strict=True)
    (clone_service,) = clone_set.services
    assert clone_service["metadata"]["annotations"][contract.ORIGIN_SERVICE_ANNOTATION] == "hello"

    plan = plan_virtual_service(
        origin_service="hello",
        namespace=NAMESPACE,
        origin_ports=(80,),
        clones=[
            Clone(service=clone_service["metadata"]["name"], namespace=NAMESPACE, origin_service="hello", ports=(80,))
        ],
        virtual_services=[virtual_service],
        api_version=virtual_service["apiVersion"],
    )
    assert plan.action == "update" and plan.virtual_service is not None
    assert istio_errors(plan.virtual_service, shared_dir) == []
    first, *rest = plan.virtual_service["spec"]["http"]
    assert first["name"] == contract.managed_route_name("hello-pr7")
    header = contract.routing_header("hello", NAMESPACE)
    assert header == "service-router-hello-hello-example"
    assert first["match"][0]["headers"][header]["exact"] == contract.routing_value("hello-pr7", NAMESPACE)
    assert rest[-1]["name"] == "default"
