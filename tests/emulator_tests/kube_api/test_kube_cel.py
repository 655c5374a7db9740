"""CRD validation rules evaluated by a real CEL engine with kube-apiserver's semantics: scoping,
transition rules, messages, reasons, field paths, ratcheting, Kubernetes' CEL libraries, defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer
from emulators.kube_api.cel import _rule as compile_rule
from emulators.kube_api.cel import check, escape, parse_duration
from emulators.kube_api.crds import load_crd_files
from emulators.kube_api.defaults import apply_defaults


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("250ms", 0.25), ("1h2m3s", 3723.0), ("1.5s", 1.5), ("0", 0.0), ("100us", 1e-4), ("-2s", -2.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "1 s", "s", "1d", ""])
def test_malformed_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def on(kind: str, *rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": kind, "x-kubernetes-validations": list(rules), **extra}


def spec_with(field: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": {"f": field}}}}


def failures(schema: dict[str, Any], value: Any, old: Any = None) -> list[str]:
    from emulators.kube_api.errors import render_cause

    obj = {"spec": {"f": value}}
    return [
        render_cause(c) for c in check(spec_with(schema), obj, None if old is None else {"spec": {"f": old}}).causes
    ]


# --- the engine evaluates any rule, not a list of known texts ---------------------------------------
RULE_TABLE = [
    ("lists-all", "self.all(x, x > 0)", "array", [1, 2], [1, 0]),
    ("lists-exists-one", "self.exists_one(x, x == 'a')", "array", ["a", "b"], ["a", "a"]),
    ("lists-filter", "self.filter(x, x.startsWith('p')).size() <= 1", "array", ["pa", "b"], ["pa", "pb"]),
    ("lists-library", "self.isSorted() && self.sum() == 6 && self.max() == 3", "array", [1, 2, 3], [3, 2, 1]),
    ("lists-index", "self.indexOf('b') == 1 && self.lastIndexOf('b') == 2", "array", ["a", "b", "b"], ["b"]),
    ("map-keys", "self.all(k, !k.contains('*'))", "map", {"a": "1"}, {"*": "1"}),
    ("regex-matches", "self.matches('^[a-z]+(-[a-z]+)*$')", "string", "pr-one", "PR_1"),
    ("regex-find", "self.find('[0-9]+') == '42' && self.findAll('[0-9]').size() == 2", "string", "pr-42", "pr-7"),
    ("strings", "self.lowerAscii().split('.').join('-') == 'a-b' && self.endsWith('B')", "string", "A.B", "a.c"),
    (
        "url",
        "isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() == 'x.io'",
        "string",
        "https://x.io:8443/p",
        "http://x.io",
    ),
    (
        "url-port-path",
        "url(self).getPort() == '8443' && url(self).getEscapedPath() == '/p'",
        "string",
        "https://x.io:8443/p",
        "https://x.io/p",
    ),
    ("quantity", "quantity(self).isLessThan(quantity('1Gi')) && isQuantity(self)", "string", "500Mi", "2Gi"),
    ("quantity-math", "quantity(self).add(quantity('500m')).compareTo(quantity('1')) == 0", "string", "0.5", "1"),
    ("format", "!format.dns1123Label().validate(self).hasValue()", "string", "pr-1", "PR_1"),
    (
        "format-named",
        "!format.named('dns1035Label').value().validate(self).hasValue()",
        "string",
        "a1",
        "1a",
    ),
    ("duration", "duration(self) >= duration('1ms') && duration(self) < duration('1h')", "string", "2s", "2h"),
    (
        "ip-cidr",
        "isCIDR(self) && cidr(self).containsIP('10.0.0.7') && cidr(self).prefixLength() == 24",
        "string",
        "10.0.0.0/24",
        "10.1.0.0/24",
    ),
    ("optional", "self.?tier.orValue('free') == 'free'", "object", {"name": "a"}, {"tier": "paid"}),
    ("has", "has(self.a) != has(self.b)", "object", {"a": 1}, {"a": 1, "b": 2}),
    (
        "escaped-property",
        "self.__namespace__ == 'ns' && self.x__dash__y == 1",
        "object",
        {"namespace": "ns", "x-y": 1},
        {"namespace": "other", "x-y": 1},
    ),
    ("istio-port", "0 < self && self <= 65535", "integer", 80, 0),
]


@pytest.mark.parametrize(("rule", "kind", "good", "bad"), [r[1:] for r in RULE_TABLE], ids=[r[0] for r in RULE_TABLE])
def test_rule_is_evaluated_by_the_engine(rule: str, kind: str, good: Any, bad: Any) -> None:
    fields = {
        "a": "integer",
        "b": "integer",
        "x-y": "integer",
        "namespace": "string",
        "tier": "string",
        "name": "string",
    }
    shapes = {
        "object": {"properties": {k: {"type": t} for k, t in fields.items()}},
        "map": {"additionalProperties": {"type": "string"}},
    }
    schema = on("object" if kind == "map" else kind, {"rule": rule, "message": "nope"}, **shapes.get(kind, {}))
    assert failures(schema, good) == []
    shown = "object" if kind == "map" else kind
    assert failures(schema, bad) == [f'spec.f: Invalid value: "{shown}": nope']


def test_escaping_of_property_names() -> None:
    assert [escape(n) for n in ("namespace", "a.b", "x-y", "a/b", "a__b", "ok", "9lives")] == [
        "__namespace__",
        "a__dot__b",
        "x__dash__y",
        "a__slash__b",
        "a__underscores__b",
        "ok",
        None,
    ]


# --- kube-apiserver's reporting -----------------------------------------------------------------
def test_message_defaults_to_failed_rule() -> None:
    assert failures(on("integer", {"rule": "self > 1"}), 0) == [
        'spec.f: Invalid value: "integer": failed rule: self > 1'
    ]


def test_message_expression_wins_over_message() -> None:
    rule = {
        "rule": "self > 1",
        "message": "static",
        "messageExpression": "'got ' + string(self) + ', want more than 1'",
    }
    assert failures(on("integer", rule), 0) == ['spec.f: Invalid value: "integer": got 0, want more than 1']


@pytest.mark.parametrize(
    "expression", ["''", "'two\\nlines'", "1", "self.nothing"], ids=["empty", "newline", "int", "error"]
)
def test_a_useless_message_expression_falls_back_to_message(expression: str) -> None:
    rule = {"rule": "self.size() < 2", "message": "too long", "messageExpression": expression}
    assert failures(on("object", rule), {"a": 1, "b": 2}) == ['spec.f: Invalid value: "object": too long']


@pytest.mark.parametrize(
    ("reason", "rendered"),
    [
        (None, 'spec.f: Invalid value: "integer": odd'),
        ("FieldValueInvalid", 'spec.f: Invalid value: "integer": odd'),
        ("FieldValueForbidden", "spec.f: Forbidden: odd"),
        ("FieldValueRequired", "spec.f: Required value: odd"),
        ("FieldValueDuplicate", 'spec.f: Duplicate value: "integer"'),
    ],
)
def test_reason_picks_the_cause_type(reason: str | None, rendered: str) -> None:
    rule = {"rule": "self % 2 == 0", "message": "odd", **({"reason": reason} if reason else {})}
    assert failures(on("integer", rule), 3) == [rendered]


def test_field_path_names_the_field_the_error_is_about() -> None:
    schema = on(
        "object",
        {"rule": "self.min <= self.max", "message": "min above max", "fieldPath": ".max"},
        {"rule": "!('*' in self.labels)", "message": "no star", "fieldPath": ".labels['*']"},
        properties={
            "min": {"type": "integer"},
            "max": {"type": "integer"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    )
    assert failures(schema, {"min": 2, "max": 1, "labels": {"*": "x"}}) == [
        'spec.f.max: Invalid value: "object": min above max',
        'spec.f.labels[*]: Invalid value: "object": no star',
    ]


def test_evaluation_errors_are_reported_like_kube_apiserver() -> None:
    schema = on(
        "object", {"rule": "self.name.size() > 0", "message": "needs a name"}, properties={"name": {"type": "string"}}
    )
    assert failures(schema, {}) == ['spec.f: Invalid value: "object": no such key: name evaluating rule: needs a name']


def test_root_rules_see_metadata_name_and_report_nil_path() -> None:
    schema = on(
        "object",
        {"rule": "self.metadata.name.startsWith('pr-') && self.kind == 'Thing'"},
        properties={"spec": {"type": "object"}},
    )
    obj = {"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "main", "labels": {"a": "b"}}, "spec": {}}
    causes = check(schema, obj).causes
    assert [(c["field"], c["detail"]) for c in causes] == [
        ("<nil>", "failed rule: self.metadata.name.startsWith('pr-') && self.kind == 'Thing'")
    ]


def test_a_rule_that_does_not_compile_fails_the_write_with_the_compile_error() -> None:
    [message] = failures(on("integer", {"rule": "self >"}), 1)
    assert message.startswith('spec.f: Invalid value: "integer": rule compile error: ')


# --- transition rules, optionalOldSelf, ratcheting ----------------------------------------------
IMMUTABLE = on("string", {"rule": "self == oldSelf", "message": "Value is immutable"})


def test_transition_rule_runs_only_on_update_with_an_old_value() -> None:
    assert failures(IMMUTABLE, "a") == []  # create
    assert failures(IMMUTABLE, "a", old="a") == []
    assert failures(IMMUTABLE, "b", old="a") == ['spec.f: Invalid value: "string": Value is immutable']


def test_optional_old_self_runs_on_create_too() -> None:
    schema = on(
        "integer",
        {
            "rule": "oldSelf.hasValue() ? self >= oldSelf.value() : self == 1",
            "optionalOldSelf": True,
            "message": "grows from 1",
        },
    )
    assert failures(schema, 1) == []
    assert failures(schema, 2) == ['spec.f: Invalid value: "integer": grows from 1']
    assert failures(schema, 3, old=2) == []
    assert failures(schema, 1, old=2) == ['spec.f: Invalid value: "integer": grows from 1']


def test_transition_rules_correlate_map_lists_by_key_only() -> None:
    item = {"type": "object", "properties": {"name": {"type": "string"}, "port": IMMUTABLE | {"type": "integer"}}}
    keyed = {"type": "array", "items": item, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
    atomic = {"type": "array", "items": item}
    old = [{"name": "a", "port": 1}, {"name": "b", "port": 2}]
    swapped = [{"name": "b", "port": 2}, {"name": "a", "port": 3}]
    assert failures(keyed, swapped, old=old) == ['spec.f[1].port: Invalid value: "integer": Value is immutable']
    assert failures(atomic, swapped, old=old) == []  # items of other lists have no old value


def test_unchanged_invalid_values_ratchet_to_warnings() -> None:
    schema = spec_with(on("integer", {"rule": "self < 10", "message": "too big"}))
    old = {"spec": {"f": 11}}
    ratcheted = check(schema, {"spec": {"f": 11}}, old)
    assert (ratcheted.causes, ratcheted.warnings) == ([], ['spec.f: Invalid value: "integer": too big'])
    assert len(check(schema, {"spec": {"f": 12}}, old).causes) == 1


def test_nulls_are_not_validated() -> None:
    assert failures(on("string", {"rule": "self.size() > 3"}, nullable=True), None) == []


# --- defaults ---------------------------------------------------------------------------------
def test_defaults_fill_absent_fields_nested_items_and_non_nullable_nulls() -> None:
    schema = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "default": "never"}}},
            "spec": {
                "type": "object",
                "properties": {
                    "rules": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "matches": {
                                    "type": "array",
                                    "default": [{}],
                                    "items": {
                                        "type": "object",
                                        "properties": {"type": {"type": "string", "default": "PathPrefix"}},
                                    },
                                },
                                "weight": {"type": "integer", "default": 1},
                                "note": {"type": "string", "default": "n", "nullable": True},
                            },
                        },
                    }
                },
            },
        },
    }
    obj = {"metadata": {}, "spec": {"rules": [{"weight": None, "note": None}, {"weight": 5}]}}
    apply_defaults(obj, schema)
    assert obj == {
        "metadata": {},
        "spec": {
            "rules": [
                {"matches": [{"type": "PathPrefix"}], "weight": 1, "note": None},
                {"matches": [{"type": "PathPrefix"}], "weight": 5, "note": "n"},
            ]
        },
    }


# --- end to end through the HTTP API --------------------------------------------------------------
MESSAGE = "'replicas ' + string(self.replicas) + ' above ' + string(self.maxReplicas)"
WIDGETS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.replicas <= self.maxReplicas",
                                        "messageExpression": MESSAGE,
                                        "fieldPath": ".replicas",
                                        "reason": "FieldValueForbidden",
                                    },
                                    {"rule": "self.size == oldSelf.size", "message": "size is immutable"},
                                ],
                                "properties": {
                                    "replicas": {"type": "integer"},
                                    "maxReplicas": {"type": "integer", "default": 3},
                                    "size": {"type": "string", "default": "small"},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_custom_crd_rules_over_http(server: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    server.apply_crd(WIDGETS_CRD)
    args = ("example.com", "v1", "default", "widgets")
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"replicas": 5}}
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*args, body)
    status = json.loads(err.value.body)
    assert status["message"] == 'Widget.example.com "w" is invalid: spec.replicas: Forbidden: replicas 5 above 3'
    assert status["details"]["causes"] == [
        {"reason": "FieldValueForbidden", "message": "Forbidden: replicas 5 above 3", "field": "spec.replicas"}
    ]
    body["spec"]["replicas"] = 2
    stored = custom.create_namespaced_custom_object(*args, body)
    assert stored["spec"] == {"replicas": 2, "maxReplicas": 3, "size": "small"}
    stored["spec"]["size"] = "large"
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(*args, "w", stored)
    assert (
        json.loads(err.value.body)["message"]
        == 'Widget.example.com "w" is invalid: spec: Invalid value: "object": size is immutable'
    )


@pytest.mark.shared
def test_every_rule_of_the_shared_istio_and_gateway_api_crds_compiles(shared_dir: Path) -> None:
    """No rule is skipped any more: each one compiles on the engine (and is evaluated on writes)."""
    paths = sorted((shared_dir / "schemas").glob("*/*.yaml"))
    schemas = [v["schema"]["openAPIV3Schema"] for crd in load_crd_files(paths) for v in crd["spec"]["versions"]]
    found = [spec for schema in schemas for spec in _rules(schema)]
    assert len(found) > 400
    assert [s["rule"] for s in found if compile_rule(s, {}).error is not None] == []


def _rules(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return list(node.get("x-kubernetes-validations") or []) + [r for v in node.values() for r in _rules(v)]
    if isinstance(node, list):
        return [r for v in node for r in _rules(v)]
    return []
