"""The CEL rules Istio's CRDs use, recognised by their text and evaluated like CEL would."""

from __future__ import annotations

from typing import Any

import pytest

from emulators.kube_api.cel import check, parse_duration


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


def rule(text: str, kind: str = "string") -> dict[str, Any]:
    return {"type": kind, "x-kubernetes-validations": [{"rule": text, "message": "nope"}]}


@pytest.mark.parametrize(
    ("schema", "value", "ok"),
    [
        (rule('!self.contains("*")'), "a.example.com", True),
        (rule('!self.contains("*")'), "*.example.com", False),
        (rule('self.all(key, !key.contains("*"))', "object"), {"a": "1"}, True),
        (rule('self.all(key, !key.contains("*"))', "object"), {"*": "1"}, False),
        (rule("0 < self && self <= 65535", "integer"), 80, True),
        (rule("0 < self && self <= 65535", "integer"), 0, False),
        (rule('url(self).getScheme() in ["http", "https"]'), "https://x/jwks", True),
        (rule('url(self).getScheme() in ["http", "https"]'), "ftp://x", False),
        (rule("self.size() == 0"), "", True),
        (rule("has(self.a) || has(self.b)", "object"), {}, True),  # unknown rules are skipped, not guessed
    ],
)
def test_known_rules(schema: dict[str, Any], value: Any, ok: bool) -> None:
    assert (check(schema, value, "spec.x") == []) is ok


def test_rules_are_found_in_nested_properties_and_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "http": {
                "type": "array",
                "items": {"type": "object", "properties": {"timeout": rule("duration(self) >= duration('1ms')")}},
            }
        },
    }
    causes = check(schema, {"http": [{"timeout": "1s"}, {"timeout": "1"}]}, "spec")
    assert causes == [
        {"type": "FieldValueInvalid", "field": "spec.http[1].timeout", "value": '"string"', "detail": "nope"}
    ]
