"""CRD validation rules (``x-kubernetes-validations``) evaluated by a real CEL engine, as kube-apiserver does.

Every rule of a CRD version is compiled once (``validator_for`` caches the compiled tree per
schema; programs are shared by rule text) with ``cel-expr-python``, the CEL C++ runtime, plus the
strings, optional and bindings extensions and Kubernetes' own libraries (``cel_library``). A write
is then checked with kube-apiserver's semantics (apiextensions-apiserver ``schema/cel``):

- ``self`` is the value at the schema node holding the rule; property names that are CEL
  keywords or hold ``.``/``-``/``/``/``__`` are escaped (``__namespace__``, ``__dash__``); at the
  resource root ``self`` also has ``apiVersion``, ``kind`` and ``metadata.name``/``generateName``.
  Null values are not validated.
- Transition rules (those that use ``oldSelf``) run only on update and only where the old value
  can be correlated (object properties, map keys, ``x-kubernetes-list-type: map`` items by key);
  ``optionalOldSelf: true`` runs them on create too, with ``oldSelf`` an optional.
- A false rule reports ``messageExpression`` (if it yields a one-line non-empty string), else
  ``message``, else ``failed rule: <rule>``; ``reason`` picks the cause type (Invalid by default,
  Forbidden, Required, Duplicate) and ``fieldPath`` the field it names. An evaluation error is
  ``<error> evaluating rule: <message or rule>``.
- Ratcheting (CRDValidationRatcheting, on by default since 1.30): on update, a failure of a
  non-transition rule at a node equal to its old value is a warning, not an error.

Not modelled: the cost budget, type-checking rules against the schema when the CRD is written
(rules are checked with ``self`` of dynamic type; a broken rule fails each write with ``rule
compile error``), order-insensitive equality of ``set``/``map`` lists, two-variable comprehensions.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_optional, ext_strings

from . import cel_library
from .errors import render_cause

Cause = dict[str, str]
ROOT_FIELD = "<nil>"  # kube-apiserver validates from a nil field.Path, which prints as "<nil>"
_MAX_MESSAGE = 5000
_RESERVED = {
    *("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function"),
    *("if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"),
}
_ESCAPABLE = re.compile(r"[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*")
_ESCAPES = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
_REASONS = {
    "FieldValueForbidden": "FieldValueForbidden",
    "FieldValueRequired": "FieldValueRequired",
    "FieldValueDuplicate": "FieldValueDuplicate",
}


def _env(variables: dict[str, Any]) -> Any:
    extensions = [
        ext_strings.ExtStrings(),
        ext_optional.ExtOptional(),
        ext_bindings.ExtBindings(),
        cel_library.kubernetes_extension(),
    ]
    return cel.NewEnv(cel_library.POOL, variables=variables, extensions=extensions)


_DYN = cel.Type.DYN
_ENV_SELF = _env({"self": _DYN})  # a rule that compiles here does not use oldSelf
_ENV_OLD = _env({"self": _DYN, "oldSelf": _DYN})
_ENV_OPTIONAL_OLD = _env({"self": _DYN, "__oldSelfValue": _DYN, "__hasOldSelf": cel.Type.BOOL})
_OPTIONAL_OLD_SELF = "cel.bind(oldSelf, __hasOldSelf ? optional.of(__oldSelfValue) : optional.none(), {})"
_COMPILE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4096)
def _compile(text: str, kind: str) -> tuple[Any, bool, str | None]:
    """(program, uses oldSelf, compile error) for a rule or message expression."""
    with _COMPILE_LOCK:
        try:
            return _ENV_SELF.compile(text), False, None
        except RuntimeError as exc:
            if not re.search(r"undeclared reference to 'oldSelf[.']", str(exc)):
                return None, False, _clean(str(exc))
        try:
            if kind == "optional":
                return _ENV_OPTIONAL_OLD.compile(_OPTIONAL_OLD_SELF.format(text)), True, None
            return _ENV_OLD.compile(text), True, None
        except RuntimeError as exc:
            return None, True, _clean(str(exc))


def _clean(error: str) -> str:
    """cel-cpp's status text (``NOT_FOUND: Key not found in map : "b"``) in cel-go's words."""
    error = re.sub(r"\s*\[[A-Z_]+\]$", "", error.strip())
    error = re.sub(r"^[A-Z_]+: ", "", error)
    m = re.fullmatch(r'Key not found in map : "?(.*?)"?', error)
    if m:
        return f"no such key: {m.group(1)}"
    if error.startswith("No matching overloads found"):
        return "no such overload"
    m = re.fullmatch(r"String to (Duration|Timestamp) conversion failed", error)
    if m:
        return f"type conversion error from 'string' to 'google.protobuf.{m.group(1)}'"
    return error


@dataclass
class Rule:
    spec: dict[str, Any]
    program: Any
    uses_old: bool
    optional_old: bool
    error: str | None
    message_program: Any = None
    message_uses_old: bool = False
    field_path: str = ""

    @property
    def error_string(self) -> str:
        """kube-apiserver's ``ruleErrorString``: the message if there is one, else the rule."""
        return str(self.spec.get("message") or self.spec.get("rule") or "").strip()


@dataclass
class Node:
    """A schema node with its compiled rules and the children that have rules below them."""

    schema: dict[str, Any]
    type: str
    rules: list[Rule] = field(default_factory=list)
    properties: dict[str, Node] = field(default_factory=dict)
    additional: Node | None = None
    items: Node | None = None
    all_of: list[Node] = field(default_factory=list)
    list_map_keys: tuple[str, ...] | None = None
    map_correlatable: bool = True
    root: bool = False

    @property
    def empty(self) -> bool:
        return not (self.rules or self.properties or self.additional or self.items or self.all_of)


def _build(schema: dict[str, Any], *, root: bool = False) -> Node:
    node = Node(
        schema=schema,
        type=str(schema.get("type", "object" if root else "")),
        root=root,
        map_correlatable=schema.get("x-kubernetes-map-type") in (None, "granular", "atomic"),
    )
    if schema.get("x-kubernetes-list-type") == "map":
        node.list_map_keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
    for spec in schema.get("x-kubernetes-validations") or []:
        node.rules.append(_rule(spec, schema))
    for name, child in (schema.get("properties") or {}).items():
        if root and name == "metadata":
            continue  # ObjectMeta is validated by the server, never by the CRD's rules
        built = _build(child)
        if not built.empty:
            node.properties[name] = built
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        built = _build(extra)
        node.additional = None if built.empty else built
    if isinstance(schema.get("items"), dict):
        built = _build(schema["items"])
        node.items = None if built.empty else built
    node.all_of = [n for n in (_build(s) for s in schema.get("allOf") or []) if not n.empty]
    return node


def _rule(spec: dict[str, Any], schema: dict[str, Any]) -> Rule:
    optional_old = bool(spec.get("optionalOldSelf"))
    program, uses_old, error = _compile(str(spec.get("rule", "")), "optional" if optional_old else "plain")
    rule = Rule(spec, program, uses_old, optional_old, error)
    if spec.get("messageExpression"):
        rule.message_program, rule.message_uses_old, _ = _compile(str(spec["messageExpression"]), "plain")
    if spec.get("fieldPath"):
        rule.field_path = _normalize_field_path(str(spec["fieldPath"]), schema)
    return rule


def _normalize_field_path(path: str, schema: dict[str, Any]) -> str:
    """``.spec.hosts`` / ``.labels['a.b']`` as kube-apiserver prints it (``spec.hosts``, ``labels[a.b]``)."""
    out = ""
    for name, quoted in re.findall(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]", path):
        key = name or re.sub(r"\\(.)", r"\1", quoted)
        if key in (schema.get("properties") or {}):
            out += f".{key}" if out else key
            schema = schema["properties"][key]
        else:
            out += f"[{key}]"
            extra = schema.get("additionalProperties")
            schema = extra if isinstance(extra, dict) else {}
    return out


_VALIDATORS: dict[int, tuple[dict[str, Any], Node]] = {}


def validator_for(schema: dict[str, Any]) -> Node:
    """The compiled rules of a CRD version's schema, built once per schema object."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        if len(_VALIDATORS) > 256:
            _VALIDATORS.clear()
        cached = (schema, _build(schema, root=True))
        _VALIDATORS[id(schema)] = cached
    return cached[1]


# --- values ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def escape(name: str) -> str | None:
    """A property name as CEL sees it (``namespace`` -> ``__namespace__``), or None if it cannot."""
    if name in _RESERVED:
        return f"__{name}__"
    if not _ESCAPABLE.fullmatch(name):
        return None
    return re.sub(r"__|[.\-/]", lambda m: _ESCAPES[m.group(0)], name)


def to_cel(value: Any, schema: dict[str, Any] | None) -> Any:
    """``value`` shaped like kube-apiserver's ``UnstructuredToVal``: escaped property names, typed
    strings (``format: date-time``, ``duration``, ``byte``), numbers as doubles."""
    if schema is None:
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None or not isinstance(extra, dict):
            out = {}
            for key, child in value.items():
                if props is not None and key in props:
                    escaped = escape(key)
                    if escaped is not None:
                        out[escaped] = to_cel(child, props[key])
                elif schema.get("x-kubernetes-preserve-unknown-fields") or props is None:
                    out[key] = child
            return out
        return {key: to_cel(child, extra) for key, child in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [to_cel(item, items if isinstance(items, dict) else None) for item in value]
    if isinstance(value, str) and "format" in schema:
        return _typed_string(value, schema["format"])
    if isinstance(value, int) and not isinstance(value, bool) and schema.get("type") == "number":
        return float(value)
    return value


def _typed_string(value: str, fmt: str) -> Any:
    try:
        if fmt == "date-time":
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if fmt == "duration":
            return datetime.timedelta(seconds=parse_duration(value))
        if fmt == "byte":
            return base64.b64decode(value, validate=True)
    except ValueError:
        pass  # the schema's own format check reports it; CEL sees the string
    return value


def _root_value(obj: dict[str, Any], schema: dict[str, Any]) -> Any:
    value = to_cel({k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}, schema)
    for key in ("apiVersion", "kind"):
        if key in obj:
            value[key] = obj[key]
    meta = obj.get("metadata") or {}
    value["metadata"] = {k: meta[k] for k in ("name", "generateName") if k in meta}
    return value


_DURATION = re.compile(r"([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go ``time.Duration`` string ("1.5s", "250ms", "1h2m"); ValueError if malformed."""
    if text == "0":
        return 0.0
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}")
    total = sum(float(n) * _UNIT[u] for n, u in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text))
    return -total if text.startswith("-") else total


# --- evaluation --------------------------------------------------------------------------------
@dataclass
class Result:
    causes: list[Cause] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check(schema: dict[str, Any] | None, obj: Any, old: Any = None, *, path: str = "", root: bool = True) -> Result:
    """Evaluate every rule of ``schema`` against ``obj`` (the whole resource when ``root``), with
    ``old`` the stored object on update. Returns the 422 causes and the ratcheted warnings."""
    result = Result()
    if not isinstance(schema, dict):
        return result
    node = validator_for(schema) if root else _build(schema)
    _walk(node, obj, old, path, correlated=old is not None, parent_unchanged=False, result=result)
    return result


def _walk(
    node: Node, value: Any, old: Any, path: str, *, correlated: bool, parent_unchanged: bool, result: Result
) -> None:
    if value is None:
        return  # null values are not validated; rules on the parent can check them
    unchanged = (old is not None and old == value) if correlated else parent_unchanged
    if node.rules:
        _evaluate(node, value, old if correlated else None, path, unchanged, result)
    for sub in node.all_of:
        _walk(sub, value, old, path, correlated=False, parent_unchanged=unchanged, result=result)
    if isinstance(value, dict):
        old_map = old if correlated and isinstance(old, dict) and node.map_correlatable else None
        for key, child in value.items():
            sub = node.properties.get(key) or node.additional
            if sub is None:
                continue
            here = (f"{path}.{key}" if path else key) if key in node.properties else f"{path}[{key}]"
            _walk(
                sub,
                child,
                None if old_map is None else old_map.get(key),
                here,
                correlated=old_map is not None,
                parent_unchanged=unchanged,
                result=result,
            )
    elif isinstance(value, list) and node.items is not None:
        keyed = _old_items_by_key(node, old if correlated else None)
        for i, item in enumerate(value):
            old_item = None
            if keyed is not None and isinstance(item, dict):
                old_item = keyed.get(tuple(json.dumps(item.get(k), sort_keys=True) for k in node.list_map_keys or ()))
            _walk(
                node.items,
                item,
                old_item,
                f"{path}[{i}]",
                correlated=keyed is not None,
                parent_unchanged=unchanged,
                result=result,
            )


def _old_items_by_key(node: Node, old: Any) -> dict[tuple[str, ...], Any] | None:
    """Only ``x-kubernetes-list-type: map`` lists correlate old and new items (by their keys)."""
    if node.list_map_keys is None or not isinstance(old, list):
        return None
    return {
        tuple(json.dumps(item.get(k), sort_keys=True) for k in node.list_map_keys): item
        for item in old
        if isinstance(item, dict)
    }


class _Activations:
    """The variables of one node's rules, converted to CEL once and shared by its rules."""

    def __init__(self, node: Node, value: Any, old: Any) -> None:
        self.convert = (lambda v: _root_value(v, node.schema)) if node.root else (lambda v: to_cel(v, node.schema))
        self.self_value = self.convert(value)
        self.old = old
        self._old_value: Any = None
        self._made: dict[str, Any] = {}

    def get(self, kind: str) -> Any:
        made = self._made.get(kind)
        if made is None:
            if kind != "self" and self.old is not None and self._old_value is None:
                self._old_value = self.convert(self.old)
            # Plain dicts, not Activations: an Activation cannot be shared by two programs that
            # call Python functions (the runtime registers them into it on each evaluation).
            if kind == "self":
                made = {"self": self.self_value}
            elif kind == "old":
                made = {"self": self.self_value, "oldSelf": self._old_value}
            else:
                made = {
                    "self": self.self_value,
                    "__oldSelfValue": self._old_value,
                    "__hasOldSelf": self.old is not None,
                }
            self._made[kind] = made
        return made


def _evaluate(node: Node, value: Any, old: Any, path: str, unchanged: bool, result: Result) -> None:
    here = path or ROOT_FIELD
    shown = json.dumps(node.type)
    activations = _Activations(node, value, old)
    for rule in node.rules:
        if rule.error is not None:
            result.causes.append(_invalid(here, shown, f"rule compile error: {rule.error}"))
            continue
        if rule.uses_old and old is None and not rule.optional_old:
            continue  # transition rules need a comparable old value
        kind = "optional" if rule.optional_old else "old" if rule.uses_old else "self"
        outcome = rule.program.eval(data=activations.get(kind))
        if outcome.type().name() == "ERROR":
            error = _clean(str(outcome.value()))
            if error == "no such overload":
                detail = (
                    f"'{error}': call arguments did not match a supported operator, function or macro "
                    f"signature for rule: {rule.error_string}"
                )
            else:
                detail = f"{error} evaluating rule: {rule.error_string}"
            result.causes.append(_invalid(here, shown, detail))
            continue
        if outcome.type().name() == "BOOL" and outcome.value() is True:
            continue
        if rule.field_path.startswith("[") or not path:
            target = f"{path}{rule.field_path}" if rule.field_path else here
        else:
            target = f"{path}.{rule.field_path}" if rule.field_path else path
        cause = _for_reason(target, shown, _message(rule, activations), rule)
        if unchanged and not rule.uses_old:
            result.warnings.append(render_cause(cause))
        else:
            result.causes.append(cause)


def _message(rule: Rule, activations: _Activations) -> str:
    program, uses_old = rule.message_program, rule.message_uses_old
    if program is not None and not (uses_old and activations.old is None):
        outcome = program.eval(data=activations.get("old" if uses_old else "self"))
        if outcome.type().name() == "STRING":
            text = str(outcome.value()).strip()
            if text and "\n" not in text and len(text) <= _MAX_MESSAGE:
                return text
    message = str(rule.spec.get("message") or "").strip()
    return message or f"failed rule: {rule.error_string}"


def _invalid(path: str, shown: str, detail: str) -> Cause:
    return {"type": "FieldValueInvalid", "field": path, "value": shown, "detail": detail}


def _for_reason(path: str, shown: str, detail: str, rule: Rule) -> Cause:
    """kube-apiserver's ``fieldErrorForReason``: Duplicate shows the type and no message."""
    reason = _REASONS.get(str(rule.spec.get("reason") or ""))
    if reason == "FieldValueDuplicate":
        return {"type": reason, "field": path, "value": shown, "detail": ""}
    if reason is not None:
        return {"type": reason, "field": path, "detail": detail}
    return _invalid(path, shown, detail)
