"""Informer memory and decode time: plain dicts (what our informers keep) against the client's models.

N Deployments as a real API server returns them (managedFields, a last-applied annotation,
status with conditions, two containers with env, probes and resources), each distinct (own
name, uid, resourceVersion). Three ways to fill a cache keyed ``namespace/name``:

* ``json.loads`` per object — as the informer decodes watch events, one line each;
* ``json.loads`` of one list page holding all N — as a LIST decodes (the decoder shares the
  key strings within one document, so this is the cheaper case);
* ``kubernetes.client.ApiClient().deserialize`` per object into ``V1Deployment`` models.

Memory is ``tracemalloc``'s traced growth while the cache is filled, divided by N (the JSON texts
are built beforehand and not counted). Decode time is the median per object over repeated runs
of decoding all N texts, each result dropped at once, with the cyclic garbage collector paused.
DESIGN.md claims models cost ~2.5x the memory and ~10x the decode time of plain dicts.
"""

from __future__ import annotations

import copy
import gc
import inspect
import json
import tracemalloc
from collections.abc import Callable
from typing import Any

from kubernetes.client import ApiClient

from benchmarks.measure import Table, repeat

NAME = "informer-memory"
TITLE = "6. Informer memory and decode time per cached Deployment (plain dicts vs client models)"
FULL_SIZES = (1000,)
QUICK_SIZES = (20,)

_MANAGED_FIELDS = [
    {
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": "2026-10-01T09:12:44Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                "f:labels": {".": {}, "f:app": {}, "f:team": {}},
            },
            "f:spec": {
                "f:progressDeadlineSeconds": {},
                "f:replicas": {},
                "f:revisionHistoryLimit": {},
                "f:selector": {},
                "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:version": {}}},
                    "f:spec": {
                        "f:containers": {'k:{"name":"app"}': {".": {}, "f:env": {}, "f:image": {}, "f:name": {}}},
                        "f:dnsPolicy": {},
                        "f:restartPolicy": {},
                    },
                },
            },
        },
    },
    {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": "2026-11-20T14:03:09Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}},
            "f:status": {
                "f:availableReplicas": {},
                "f:conditions": {".": {}, 'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}},
                "f:observedGeneration": {},
                "f:readyReplicas": {},
                "f:replicas": {},
                "f:updatedReplicas": {},
            },
        },
        "subresource": "status",
    },
]


def deployment(index: int) -> dict[str, Any]:
    """A Deployment as ``kubectl get deployment -o json`` shows one from a real cluster."""
    name = f"service-{index:05d}"
    labels = {"app": name, "team": "payments"}
    probe = {
        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    container = {
        "name": "app",
        "image": f"ghcr.io/mercari/{name}:2.31.{index % 10}",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": f"SETTING_{i}", "value": f"value-{index}-{i}"} for i in range(8)],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "readinessProbe": probe,
        "livenessProbe": probe,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"6c1d2a4e-{index:04x}-4000-8000-{index:012x}",
            "resourceVersion": str(1_000_000 + index),
            "generation": 4,
            "creationTimestamp": "2026-10-01T09:12:44Z",
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/revision": "4",
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels}}
                ),
            },
            "managedFields": copy.deepcopy(_MANAGED_FIELDS),
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": name, "version": "v1"}},
                "spec": {
                    "containers": [
                        container,
                        {
                            "name": "istio-proxy-helper",
                            "image": "gcr.io/cloudsql-docker/gce-proxy:1.33.2",
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent",
                        },
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "securityContext": {},
                    "schedulerName": "default-scheduler",
                },
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": 4,
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "lastUpdateTime": "2026-11-20T14:03:09Z",
                    "lastTransitionTime": "2026-11-20T14:03:09Z",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "lastUpdateTime": "2026-11-20T14:03:09Z",
                    "lastTransitionTime": "2026-10-01T09:12:44Z",
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{name}-7d9f8c6b5d" has successfully progressed.',
                },
            ],
        },
    }


def model_decoder() -> Callable[[str], Any]:
    """``ApiClient().deserialize`` into ``V1Deployment``, whichever signature the installed client has."""
    client = ApiClient()
    if "response_text" in inspect.signature(client.deserialize).parameters:  # kubernetes >= 35
        return lambda text: client.deserialize(text, "V1Deployment", "application/json")

    class _Response:
        def __init__(self, data: str) -> None:
            self.data = data

    return lambda text: client.deserialize(_Response(text), "V1Deployment")


def _traced_growth(fill: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated by ``fill``'s result (and what it returned, kept alive until measured)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = fill()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, kept


def _without_gc(fn: Callable[[], object]) -> None:
    gc.disable()
    try:
        fn()
    finally:
        gc.enable()


def _each(decode: Callable[[str], Any], texts: list[str]) -> None:
    for text in texts:
        decode(text)


def run(*, quick: bool = False) -> list[Table]:
    decode_model = model_decoder()
    table = Table(
        TITLE,
        ["cache filled by", "N", "bytes/object", "x dict", "decode µs/object", "x json.loads"],
    )
    for n in QUICK_SIZES if quick else FULL_SIZES:
        objects = [deployment(i) for i in range(n)]
        texts = [json.dumps(o) for o in objects]
        page = json.dumps({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": objects})
        del objects

        def watch_style(t: list[str] = texts) -> dict[str, Any]:
            cache = {}
            for text in t:
                obj = json.loads(text)
                cache[f"default/{obj['metadata']['name']}"] = obj
            return cache

        def list_style(p: str = page) -> dict[str, Any]:
            return {f"default/{o['metadata']['name']}": o for o in json.loads(p)["items"]}

        def models(t: list[str] = texts) -> dict[str, Any]:
            cache = {}
            for text in t:
                model = decode_model(text)
                cache[f"default/{model.metadata.name}"] = model
            return cache

        decode_model(texts[0])  # first use builds the client's caches: not a per-object cost
        dict_bytes, _ = _traced_growth(watch_style)
        list_bytes, _ = _traced_growth(list_style)
        model_bytes, kept = _traced_growth(models)
        assert type(next(iter(kept.values()))).__name__ == "V1Deployment"
        del kept
        # Decode time alone: results dropped at once and the cyclic collector paused, so the
        # collector's passes over whatever else is alive (here: the cache just measured, or a
        # whole list page) do not blur the ratio between decoders.
        runs = {"min_runs": 3, "max_runs": 50, "min_seconds": 0.1 if quick else 0.5}
        dict_time = repeat(lambda t=texts: _without_gc(lambda: _each(json.loads, t)), ops=n, **runs)
        list_time = repeat(lambda p=page: _without_gc(lambda: json.loads(p)), ops=n, **runs)
        model_time = repeat(lambda t=texts: _without_gc(lambda: _each(decode_model, t)), ops=n, **runs)
        table.add("json.loads per object (watch)", n, dict_bytes / n, 1.0, dict_time.median * 1e6, 1.0)
        table.add(
            "json.loads of one list page",
            n,
            list_bytes / n,
            list_bytes / dict_bytes,
            list_time.median * 1e6,
            list_time.median / dict_time.median,
        )
        table.add(
            "ApiClient.deserialize -> V1Deployment",
            n,
            model_bytes / n,
            model_bytes / dict_bytes,
            model_time.median * 1e6,
            model_time.median / dict_time.median,
        )
        table.notes.append(
            f"JSON text per Deployment: {sum(map(len, texts)) / n:,.0f} bytes (with managedFields and status);"
            " 'x dict' and 'x json.loads' are relative to the first row."
        )
    table.notes.append(
        "DESIGN.md claims: models ~2.5x the memory and ~10x the decode time of json.loads. bytes = tracemalloc growth"
        " while filling the cache / N; decode = median per object of decoding all N texts"
        " (results not kept, cyclic GC paused while decoding)."
    )
    return [table]
