"""Per-kind behaviour of the real registry strategies: defaults, generation, immutable fields.

kube-apiserver gives every kind a strategy (PrepareForCreate/Update, Validate, defaulting).
We reproduce what our controllers can observe: Deployment and Service defaults, clusterIP and
nodePort allocation, which changes bump ``metadata.generation``, the fields that may not change,
and the Deployment, Service and CRD validation rules answered with 422.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable
from typing import Any

from .resources import ResourceType
from .validation import Cause, _cause, check_dns1123_label

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
RESERVED_IPS = {"10.96.0.1", "10.96.0.10"}  # kubernetes.default and kube-dns


def has_generation(rt: ResourceType) -> bool:
    return (
        rt.plural in ("deployments", "replicasets", "customresourcedefinitions", "poddisruptionbudgets")
        or not rt.builtin
    )


def next_generation(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> int:
    gen = int(old["metadata"].get("generation") or 1)
    if rt.plural == "deployments":
        # annotations are copied to ReplicaSets, so the real strategy bumps on them too
        changed = old.get("spec") != new.get("spec") or (old["metadata"].get("annotations") or {}) != (
            new["metadata"].get("annotations") or {}
        )
    elif rt.status_subresource:
        changed = _without(old, "metadata", "status") != _without(new, "metadata", "status")
    else:
        changed = _without(old, "metadata") != _without(new, "metadata")
    return gen + 1 if changed else gen


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys and k not in ("apiVersion", "kind")}


# --- defaults -------------------------------------------------------------------------------------
def apply_defaults(
    rt: ResourceType,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    used_ips: Iterable[str],
    used_node_ports: Iterable[int],
) -> None:
    if rt.plural == "deployments":
        _default_deployment(obj)
    elif rt.plural == "services":
        _default_service(obj, old, set(used_ips), set(used_node_ports))
    elif rt.plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif rt.plural == "secrets":
        obj.setdefault("type", "Opaque")
    elif rt.plural == "customresourcedefinitions":
        names = obj.setdefault("spec", {}).setdefault("names", {})
        if names.get("kind"):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
        obj["spec"].setdefault("conversion", {"strategy": "None"})


def _default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        if not isinstance(c, dict):
            continue
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = str(c.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("resources", {})
        for port in c.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
        for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = c.get(probe_name)
            if isinstance(probe, dict):
                for key, value in (
                    ("timeoutSeconds", 1),
                    ("periodSeconds", 10),
                    ("successThreshold", 1),
                    ("failureThreshold", 3),
                ):
                    probe.setdefault(key, value)
                if isinstance(probe.get("httpGet"), dict):
                    probe["httpGet"].setdefault("scheme", "HTTP")
        for env in c.get("env") or []:
            field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
            if isinstance(field_ref, dict):
                field_ref.setdefault("apiVersion", "v1")
    for volume in spec.get("volumes") or []:
        for source in ("configMap", "secret"):
            if isinstance(volume, dict) and isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def _default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        _default_pod_spec(template["spec"])


def _allocate_ip(used: set[str]) -> str:
    for address in SERVICE_CIDR.hosts():
        text = str(address)
        if text not in used and text not in RESERVED_IPS:
            return text
    raise RuntimeError("service CIDR exhausted")


def _default_service(obj: dict[str, Any], old: dict[str, Any] | None, used_ips: set[str], used_ports: set[int]) -> None:
    spec = obj.setdefault("spec", {})
    old_spec = (old or {}).get("spec") or {}
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] == "ExternalName":
        return
    if not spec.get("clusterIP") and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]  # an update that omits it keeps the allocation
        spec.setdefault("clusterIPs", old_spec.get("clusterIPs", [old_spec["clusterIP"]]))
    if not spec.get("clusterIP"):
        spec["clusterIP"] = _allocate_ip(used_ips)
    spec["clusterIPs"] = spec.get("clusterIPs") or [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []}
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        port.setdefault("protocol", "TCP")
        if "port" in port:
            port.setdefault("targetPort", port["port"])
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            previous = old_ports.get((port.get("port"), port["protocol"]), {}).get("nodePort")
            port["nodePort"] = previous or next(p for p in range(30000, 32768) if p not in used_ports)
            used_ports.add(port["nodePort"])
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


# --- kind-specific validation -------------------------------------------------------------------
def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    if rt.plural == "deployments":
        return _validate_deployment(obj, old)
    if rt.plural == "services":
        return _validate_service(obj, old)
    if rt.plural == "customresourcedefinitions":
        return _validate_crd(obj, old)
    if (
        rt.plural in ("rolebindings", "clusterrolebindings")
        and old is not None
        and old.get("roleRef") != obj.get("roleRef")
    ):
        return [_cause("FieldValueInvalid", "roleRef", "cannot change roleRef", obj.get("roleRef"))]
    return []


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(_cause("FieldValueRequired", "spec.selector", ""))
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(
            _cause("FieldValueInvalid", "spec.selector", "empty selector is invalid for deployment", selector)
        )
    elif not _selector_matches(selector, labels):
        causes.append(
            _cause(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                "`selector` does not match template `labels`",
                labels,
            )
        )
    if (spec.get("replicas") or 0) < 0:
        causes.append(
            _cause("FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0", spec.get("replicas"))
        )
    pod_spec = template.get("spec") or {}
    containers = pod_spec.get("containers") or []
    if not containers:
        causes.append(_cause("FieldValueRequired", "spec.template.spec.containers", ""))
    seen: set[str] = set()
    for i, c in enumerate(containers):
        name = c.get("name") or ""
        if not name:
            causes.append(_cause("FieldValueRequired", f"spec.template.spec.containers[{i}].name", ""))
        elif name in seen:
            causes.append(_cause("FieldValueDuplicate", f"spec.template.spec.containers[{i}].name", "", name))
        seen.add(name)
        if not c.get("image"):
            causes.append(_cause("FieldValueRequired", f"spec.template.spec.containers[{i}].image", ""))
    if pod_spec.get("restartPolicy", "Always") != "Always":
        causes.append(
            _cause(
                "FieldValueNotSupported",
                "spec.template.spec.restartPolicy",
                'supported values: "Always"',
                pod_spec.get("restartPolicy"),
            )
        )
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(_cause("FieldValueInvalid", "spec.selector", "field is immutable", selector))
    return causes


def _validate_service(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = obj.get("spec") or {}
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if spec.get("type", "ClusterIP") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(
            _cause(
                "FieldValueNotSupported",
                "spec.type",
                'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
                spec.get("type"),
            )
        )
    if not ports and not headless and spec.get("type") != "ExternalName":
        causes.append(_cause("FieldValueRequired", "spec.ports", ""))
    names: set[str] = set()
    for i, port in enumerate(ports):
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            causes.append(_cause("FieldValueRequired", f"spec.ports[{i}].name", ""))
        elif name and name in names:
            causes.append(_cause("FieldValueDuplicate", f"spec.ports[{i}].name", "", name))
        elif name and check_dns1123_label(name):  # a DNS-1123 label: kubectl names ports "80-8080"
            causes.append(_cause("FieldValueInvalid", f"spec.ports[{i}].name", check_dns1123_label(name) or "", name))
        names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(
                _cause("FieldValueInvalid", f"spec.ports[{i}].port", "must be between 1 and 65535, inclusive", number)
            )
        if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
            causes.append(
                _cause(
                    "FieldValueNotSupported",
                    f"spec.ports[{i}].protocol",
                    'supported values: "SCTP", "TCP", "UDP"',
                    port.get("protocol"),
                )
            )
    ip = spec.get("clusterIP")
    if ip not in (None, "", "None"):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    "spec.clusterIPs[0]",
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ip,
                )
            )
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and ip != old_ip and spec.get("type") != "ExternalName":
            causes.append(_cause("FieldValueInvalid", "spec.clusterIPs[0]", "may not change once set", ip))
    return causes


def _validate_crd(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    if not group:
        causes.append(_cause("FieldValueRequired", "spec.group", ""))
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(_cause("FieldValueRequired", f"spec.names.{field}", ""))
    expected = f"{names.get('plural')}.{group}"
    if names.get("plural") and group and obj["metadata"].get("name") != expected:
        causes.append(
            _cause(
                "FieldValueInvalid",
                "metadata.name",
                'must be spec.names.plural+"."+spec.group',
                obj["metadata"].get("name"),
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            _cause(
                "FieldValueNotSupported", "spec.scope", 'supported values: "Cluster", "Namespaced"', spec.get("scope")
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            _cause("FieldValueRequired", "spec.versions", "must have exactly one version marked as storage version")
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            _cause(
                "FieldValueInvalid", "spec.versions", "must have exactly one version marked as storage version", None
            )
        )
    if old is not None and (old.get("spec") or {}).get("group") != group:
        causes.append(_cause("FieldValueInvalid", "spec.group", "field is immutable", group))
    return causes


def copy_status(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Writes to the main resource ignore status when a status subresource exists."""
    if "status" in old:
        new["status"] = copy.deepcopy(old["status"])
    else:
        new.pop("status", None)
