"""Builders for the replicator's unit tests: an origin Deployment and its namespace's Services."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from controller_common import contract

Obj = dict[str, Any]


def make_origin(**annotations: str) -> Obj:
    """A Deployment as the server returns it: status, uid, managedFields, revision and all."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "echo",
            "namespace": "shop",
            "uid": "0b6e7a52-0000-4000-8000-000000000001",
            "resourceVersion": "1234",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "selfLink": "/apis/apps/v1/namespaces/shop/deployments/echo",
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "x", "uid": "r-1"}],
            "finalizers": ["example.com/keep"],
            "labels": {"app": "echo", "team": "payments", "app.kubernetes.io/instance": "shop"},
            "annotations": {
                contract.REPOSITORY_ANNOTATION: "https://github.com/org/repo",
                "deployment.kubernetes.io/revision": "7",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/echo",
                "team.example.com/owner": "payments",
                **annotations,
            },
        },
        "spec": {
            "replicas": 12,
            "paused": False,
            "selector": {"matchLabels": {"app": "echo", "tier": "web"}},
            "template": {
                "metadata": {
                    "creationTimestamp": None,
                    "labels": {"app": "echo", "tier": "web", "team": "payments", "version": "v1"},
                    "annotations": {"sidecar.istio.io/inject": "true"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example.com:5000/shop/echo:1.4.2",
                            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PR_BRANCH", "value": "x"}],
                            "ports": [{"name": "http", "containerPort": 8080}],
                        },
                        {"name": "worker", "image": "registry.example.com:5000/shop/echo:1.4.2"},
                        {"name": "cloudsql-proxy", "image": "gcr.io/cloudsql-docker/gce-proxy:1.33"},
                    ]
                },
            },
        },
        "status": {"replicas": 12, "availableReplicas": 12, "observedGeneration": 3},
    }


def make_service(name: str, selector: dict[str, str] | None, **spec: Any) -> Obj:
    svc: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "resourceVersion": "99",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "echo", "app.kubernetes.io/instance": "shop"},
            "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                "networking.istio.io/exportTo": ".",
            },
        },
        "spec": {
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None",
            "type": "ClusterIP",
            **spec,
        },
    }
    if selector is not None:
        svc["spec"]["selector"] = selector
    return svc


def namespace_services() -> list[Obj]:
    """Every kind of Service a real namespace holds next to an origin."""
    return [
        make_service("echo", {"app": "echo", "tier": "web"}),
        make_service("echo-by-team", {"team": "payments"}),
        make_service("unrelated", {"app": "cart"}),
        make_service("echo-headless", {"app": "echo"}, clusterIP="None", clusterIPs=["None"]),
        make_service(
            "echo-public",
            {"app": "echo"},
            type="LoadBalancer",
            ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31000, "protocol": "TCP"}],
            externalTrafficPolicy="Local",
            healthCheckNodePort=32000,
            loadBalancerIP="1.2.3.4",
            loadBalancerSourceRanges=["10.0.0.0/8"],
            allocateLoadBalancerNodePorts=True,
            externalIPs=["5.6.7.8"],
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
        ),
        make_service(
            "echo-nodeport",
            {"app": "echo"},
            type="NodePort",
            ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31001, "protocol": "TCP"}],
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
        ),
        make_service("external", None, type="ExternalName", externalName="db.example.com", clusterIP=None),
        make_service("manual-endpoints", None),
        make_service("other-namespace", {"app": "echo"}) | {"metadata": {"name": "x", "namespace": "other"}},
    ]


@pytest.fixture
def origin() -> Callable[..., Obj]:
    return lambda **annotations: copy.deepcopy(make_origin(**annotations))


@pytest.fixture
def services() -> list[Obj]:
    return namespace_services()
