"""Admission-time validation: the 422 Invalid and 400 BadRequest answers of kube-apiserver.

Three layers, as in the real server: decoding against the kind's schema (unknown fields and wrong
types are a 400 "cannot be handled as a <Kind>" under ``fieldValidation=Strict``), object metadata
rules (DNS-1123 / DNS-1035 names, label syntax), and per-kind rules (Deployment selector and
template, Service ports and immutable clusterIP, CRD names) answered with 422 and field causes.
Custom resources are checked against their CRD's ``openAPIV3Schema`` through ``openapi``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from . import builtin_schema, cel, defaults
from .errors import ApiError, bad_request, invalid
from .openapi import validate_against_crd_schema
from .resources import ResourceType

Cause = dict[str, str]

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def _q(value: Any) -> str:
    return json.dumps(value)


def _cause(kind: str, field: str, detail: str = "", value: Any = ...) -> Cause:
    cause = {"type": kind, "field": field, "detail": detail}
    if value is not ...:
        cause["value"] = _q(value)
    return cause


def check_dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not re.fullmatch(DNS1123_SUBDOMAIN, value):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            f"validation is '{DNS1123_SUBDOMAIN}')"
        )
    return None


def check_dns1123_label(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not re.fullmatch(DNS1123_LABEL, value):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            f"start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
            f"validation is '{DNS1123_LABEL}')"
        )
    return None


def check_dns1035_label(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not re.fullmatch(DNS1035_LABEL, value):
        return (
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            f"regex used for validation is '{DNS1035_LABEL}')"
        )
    return None


def check_path_segment_name(value: str) -> str | None:
    """RBAC objects' names (``path.IsValidPathSegmentName``): ``system:discovery`` is valid."""
    if value in (".", ".."):
        return f"may not be '{value}'"
    for bad in ("/", "%"):
        if bad in value:
            return f"may not contain '{bad}'"
    return None


NAME_RULES = {
    "services": check_dns1035_label,
    "namespaces": check_dns1123_label,
    **dict.fromkeys(("roles", "rolebindings", "clusterroles", "clusterrolebindings"), check_path_segment_name),
}


def check_qualified_name(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and check_dns1123_subdomain(prefix):
        return "prefix part " + (check_dns1123_subdomain(prefix) or "")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return None


def check_label_value(value: Any) -> str | None:
    if isinstance(value, str) and len(value) > 63:
        return "must be no more than 63 characters"
    if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
        return (
            "a valid label must be an empty string or "
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
            "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )
    return None


def validate_metadata(rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    name = meta.get("name") or ""
    if not name:
        causes.append(_cause("FieldValueRequired", "metadata.name", "name or generateName is required"))
    else:
        problem = NAME_RULES.get(rt.plural, check_dns1123_subdomain)(name)
        if problem:
            causes.append(_cause("FieldValueInvalid", "metadata.name", problem, name))
    for key, value in (meta.get("labels") or {}).items():
        problem = check_qualified_name(key)
        if problem:
            causes.append(_cause("FieldValueInvalid", "metadata.labels", problem, key))
        problem = check_label_value(value)
        if problem:
            causes.append(_cause("FieldValueInvalid", "metadata.labels", problem, value))
    for key in meta.get("annotations") or {}:
        problem = check_qualified_name(key)
        if problem:
            causes.append(_cause("FieldValueInvalid", "metadata.annotations", problem, key))
    if len(json.dumps(meta.get("annotations") or {})) > 256 * 1024:
        causes.append(_cause("FieldValueTooLong", "metadata.annotations", "may not be more than 262144 bytes"))
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        for field in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(field):
                causes.append(
                    _cause(
                        "FieldValueRequired" if field != "uid" else "FieldValueInvalid",
                        f"metadata.ownerReferences[{i}].{field}",
                        "" if field != "uid" else "uid must not be empty",
                    )
                )
    return causes


# --- decoding against the schema (400) --------------------------------------------------------
def loads_json(raw: bytes) -> tuple[Any, list[str]]:
    """Decode a JSON body as Go's decoder does (the last duplicate wins), and name each duplicate
    field by its path, as the strict decoder reports them (``metadata.name``, ``spec.ports[0].port``)."""
    decoded = json.loads(raw or b"null", object_pairs_hook=_Pairs)
    duplicates: list[str] = []
    return _plain(decoded, "", duplicates), duplicates


class _Pairs(list):  # type: ignore[type-arg]
    """An object's key/value pairs, in order and with duplicates, until ``_plain`` walks them."""


def _plain(node: Any, path: str, duplicates: list[str]) -> Any:
    if isinstance(node, _Pairs):
        out: dict[str, Any] = {}
        for key, value in node:
            here = f"{path}.{key}" if path else key
            if key in out and here not in duplicates:
                duplicates.append(here)
            out[key] = _plain(value, here, duplicates)
        return out
    if isinstance(node, list):
        return [_plain(item, f"{path}[{i}]", duplicates) for i, item in enumerate(node)]
    return node


def _strict_fields(rt: ResourceType, unknown: list[str], duplicates: Sequence[str], directive: str) -> list[str]:
    """kube-apiserver's answer to unknown and duplicate fields: Strict is one 400 naming every one of
    them; Warn is one warning each (the caller has pruned the unknown ones); Ignore is silence."""
    problems = [f'duplicate field "{d}"' for d in duplicates] + [f'unknown field "{u}"' for u in unknown]
    if problems and directive == "Strict":
        raise bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
            f"strict decoding error: {', '.join(problems)}"
        )
    return problems if directive == "Warn" else []


def decode_builtin(
    rt: ResourceType, obj: dict[str, Any], directive: str, duplicates: Sequence[str] = ()
) -> tuple[list[Cause], list[str]]:
    """Schema-check a built-in object: returns (422 causes for missing required fields, warnings).

    Unknown and duplicate fields: rejected under Strict (400), pruned (the last duplicate kept) with
    a warning each under Warn, pruned silently under Ignore. Wrong types are always a 400, as they
    fail JSON decoding into the Go types.
    """
    unknown: list[str] = []
    causes: list[Cause] = []
    for error in builtin_schema.schema_errors(obj):
        path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path)
        path = path.replace(".[", "[")
        if error.validator == "additionalProperties":
            extras = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            unknown.extend(f"{path}.{x}" if path else x for x in extras)
            for x in extras:
                if directive != "Strict":
                    del error.instance[x]
        elif error.validator == "required":
            for field in error.validator_value:
                if field not in error.instance:
                    causes.append(_cause("FieldValueRequired", f"{path}.{field}" if path else field, ""))
        elif error.validator == "enum" and path in ("apiVersion", "kind"):
            continue
        else:
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: json: cannot unmarshal '
                f"{type(error.instance).__name__} into Go struct field {path} ({error.message})"
            )
    return causes, _strict_fields(rt, unknown, duplicates, directive)


def validate_custom(
    rt: ResourceType,
    obj: dict[str, Any],
    directive: str,
    duplicates: Sequence[str] = (),
    old: dict[str, Any] | None = None,
) -> tuple[list[Cause], list[str]]:
    """A custom resource against its version's openAPIV3Schema: defaults filled in, unknown fields
    (400, or pruned), field errors and CEL rules (422; ``old`` is the stored object on update, for
    transition rules and ratcheting). ``metadata`` is an ObjectMeta whatever the schema says."""
    if rt.schema:
        defaults.apply_defaults(obj, rt.schema)
    unknown = [f"metadata.{k}" for k in obj.get("metadata") or {} if k not in builtin_schema.object_meta_fields()]
    if not rt.schema:
        for path in unknown:
            _delete_path(obj, path)
        return [], _strict_fields(rt, unknown, duplicates, directive)
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    causes: list[Cause] = []
    for message in validate_against_crd_schema(body, rt.schema):
        m = re.fullmatch(r'(.*): unknown field "(.*)"', message)
        if m:
            path = _k8s_path(m.group(1)) if m.group(1) != "<root>" else ""
            unknown.append(f"{path}.{m.group(2)}" if path else m.group(2))
            continue
        field, _, detail = message.partition(": ")
        causes.append(_cause("FieldValueInvalid", _k8s_path(field), detail))
    rule_warnings: list[str] = []
    if not causes:  # CEL rules run only on objects that pass the schema, as on the real server
        checked = cel.check(rt.schema, obj, old)
        causes.extend(checked.causes)
        rule_warnings = checked.warnings
    warnings = _strict_fields(rt, unknown, duplicates, directive) + rule_warnings
    for path in unknown:  # Warn / Ignore: prune like the structural schema pruner
        _delete_path(obj, path)
    return causes, warnings


def _k8s_path(dotted: str) -> str:
    """``spec.http.0.route`` (jsonschema) -> ``spec.http[0].route`` (Kubernetes field paths)."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", dotted)


def _delete_path(obj: dict[str, Any], dotted: str) -> None:
    tokens = re.findall(r"[^.\[\]]+", dotted)
    cur: Any = obj
    for tok in tokens[:-1]:
        cur = cur[int(tok)] if isinstance(cur, list) else cur.get(tok)
        if cur is None:
            return
    if isinstance(cur, dict):
        cur.pop(tokens[-1], None)


def finalizers_forbidden(rt: ResourceType, name: str, added: list[str]) -> ApiError:
    detail = f"no new finalizers can be added if the object is being deleted, found new finalizers {json.dumps(added)}"
    return invalid(
        rt.kind, rt.group, name, [{"type": "FieldValueForbidden", "field": "metadata.finalizers", "detail": detail}]
    )


def raise_if_invalid(rt: ResourceType, obj: dict[str, Any], causes: list[Cause]) -> None:
    if causes:
        raise invalid(rt.kind, rt.group, (obj.get("metadata") or {}).get("name", ""), causes)


def directive_of(value: str | None) -> str:
    if value in (None, ""):
        return "Warn"  # kube-apiserver's default since 1.23: the write succeeds, the field is dropped
    if value not in ("Strict", "Warn", "Ignore"):
        raise ApiError(400, "BadRequest", f"fieldValidation must be one of Ignore, Warn or Strict, got {value!r}")
    return value
