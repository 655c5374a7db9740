"""Annotations on an origin parse to an OriginConfig, or fail naming the annotation and the fix."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from controller_common import contract
from replicator.origin_config import AnnotationError, is_opted_in, parse_duration, parse_origin_config
from replicator.repository import Repository

Origin = Callable[..., dict[str, Any]]


def test_defaults(origin: Origin) -> None:
    config = parse_origin_config(origin())
    assert config.repository == Repository("github.com", "org", "repo")
    assert config.image_template == contract.DEFAULT_IMAGE_TEMPLATE
    assert config.containers == ("app", "worker")  # same repository as the first container; not the proxy
    assert (config.include_drafts, config.include_forks, config.replicas) == (False, False, 1)
    assert (config.max_environments, config.idle_expiry, config.keep_label, config.image_gate) == (
        None,
        None,
        None,
        None,
    )
    assert config.required_labels == config.excluded_labels == frozenset()
    assert config.base_branches == config.env == ()


@pytest.mark.parametrize(
    ("key", "value", "attribute", "expected"),
    [
        (contract.IMAGE_TEMPLATE_ANNOTATION, "{image}:{short_sha}", "image_template", "{image}:{short_sha}"),
        (contract.CONTAINERS_ANNOTATION, "worker", "containers", ("worker",)),
        (contract.CONTAINERS_ANNOTATION, "worker, app, worker", "containers", ("worker", "app")),
        (contract.CONTAINERS_ANNOTATION, "*", "containers", ("app", "worker", "cloudsql-proxy")),
        (contract.REQUIRED_LABELS_ANNOTATION, "preview, qa", "required_labels", frozenset({"preview", "qa"})),
        (contract.REQUIRED_LABELS_ANNOTATION, '["needs, env"]', "required_labels", frozenset({"needs, env"})),
        (contract.EXCLUDED_LABELS_ANNOTATION, "wip", "excluded_labels", frozenset({"wip"})),
        (contract.INCLUDE_DRAFTS_ANNOTATION, "TRUE", "include_drafts", True),
        (contract.INCLUDE_FORKS_ANNOTATION, "true", "include_forks", True),
        (contract.BASE_BRANCHES_ANNOTATION, "main,release/*", "base_branches", ("main", "release/*")),
        (contract.MAX_ENVIRONMENTS_ANNOTATION, "5", "max_environments", 5),
        (contract.MAX_ENVIRONMENTS_ANNOTATION, "0", "max_environments", 0),
        (contract.IDLE_EXPIRY_ANNOTATION, "72h", "idle_expiry", timedelta(hours=72)),
        (contract.KEEP_LABEL_ANNOTATION, " keep ", "keep_label", "keep"),
        (contract.REPLICAS_ANNOTATION, "2", "replicas", 2),
        (contract.REPLICAS_ANNOTATION, "0", "replicas", 0),
        (contract.ENV_ANNOTATION, "QUEUE=off, B=1=2", "env", (("QUEUE", "off"), ("B", "1=2"))),
        (
            contract.ENV_ANNOTATION,
            '{"QUEUE": false, "N": 3, "S": "x"}',
            "env",
            (("QUEUE", "false"), ("N", "3"), ("S", "x")),
        ),
        (contract.IMAGE_GATE_ANNOTATION, "build-image", "image_gate", "build-image"),
    ],
    ids=[
        "template",
        "containers-one",
        "containers-dedup-ordered",
        "containers-all",
        "required-labels",
        "required-labels-json",
        "excluded-labels",
        "drafts-case-insensitive",
        "forks",
        "base-branches",
        "max-environments",
        "max-environments-zero-pauses",
        "idle-expiry",
        "keep-label",
        "replicas",
        "replicas-zero",
        "env-pairs",
        "env-json",
        "image-gate",
    ],
)
def test_each_annotation(origin: Origin, key: str, value: str, attribute: str, expected: object) -> None:
    config = parse_origin_config(origin(**{key: value}))
    assert getattr(config, attribute) == expected


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (contract.REPOSITORY_ANNOTATION, "not a repo", "accepted|use one of"),
        (contract.REPOSITORY_ANNOTATION, " ", "missing"),
        (contract.IMAGE_TEMPLATE_ANNOTATION, "{image}:{tga}", r"unknown placeholder \{tga\}"),
        (contract.IMAGE_TEMPLATE_ANNOTATION, "{image", "malformed"),
        (contract.CONTAINERS_ANNOTATION, "app,sidecar", "no container named sidecar"),
        (contract.CONTAINERS_ANNOTATION, ",", "empty"),
        (contract.INCLUDE_DRAFTS_ANNOTATION, "yes", 'write "true" or "false"'),
        (contract.MAX_ENVIRONMENTS_ANNOTATION, "-1", "out of range"),
        (contract.MAX_ENVIRONMENTS_ANNOTATION, "five", "not a whole number"),
        (contract.IDLE_EXPIRY_ANNOTATION, "3 days", "not a duration"),
        (contract.IDLE_EXPIRY_ANNOTATION, "0h", "not a positive duration"),
        (contract.REPLICAS_ANNOTATION, "100", "between 0 and 10"),
        (contract.ENV_ANNOTATION, "QUEUE", "no '='"),
        (contract.ENV_ANNOTATION, "PR_NUMBER=1", "set by the replicator"),
        (contract.ENV_ANNOTATION, "1BAD=x", "not a valid environment variable name"),
        (contract.ENV_ANNOTATION, "A=1,A=2", "given twice"),
        (contract.ENV_ANNOTATION, "{bad json", "invalid JSON"),
        (contract.ENV_ANNOTATION, '{"A": [1]}', "string, number or boolean"),
        (contract.KEEP_LABEL_ANNOTATION, "", "empty"),
        (contract.BASE_BRANCHES_ANNOTATION, " , ", "empty"),
        (contract.IMAGE_GATE_ANNOTATION, "", "empty"),
        (contract.REPLICATION_PREFIX + "max-enviroments", "3", "did you mean " + contract.MAX_ENVIRONMENTS_ANNOTATION),
        (contract.REPLICATION_PREFIX + "zzz", "3", "known keys"),
    ],
    ids=[
        "repository-bad",
        "repository-blank",
        "template-unknown-placeholder",
        "template-syntax",
        "containers-unknown",
        "containers-empty",
        "bool",
        "max-negative",
        "max-not-number",
        "duration-bad",
        "duration-zero",
        "replicas-too-many",
        "env-no-equals",
        "env-reserved",
        "env-bad-name",
        "env-duplicate",
        "env-bad-json",
        "env-non-scalar",
        "keep-label-empty",
        "base-branches-empty",
        "image-gate-empty",
        "typo-suggested",
        "unknown-key",
    ],
)
def test_errors_name_the_annotation_and_the_fix(origin: Origin, key: str, value: str, message: str) -> None:
    with pytest.raises(AnnotationError, match=message) as caught:
        parse_origin_config(origin(**{key: value}))
    assert caught.value.annotation == key
    assert isinstance(caught.value, ValueError)


def test_keys_the_replicator_writes_are_not_typos(origin: Origin) -> None:
    deployment = origin(**{contract.CLONE_HEAD_SHA_ANNOTATION: "a" * 40, contract.CLONE_REPOSITORY_ANNOTATION: "x"})
    assert parse_origin_config(deployment).repository.full_name == "org/repo"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: None, True),
        (lambda d: d["metadata"]["annotations"].pop(contract.REPOSITORY_ANNOTATION), False),
        (lambda d: d["metadata"]["annotations"].update({contract.REPOSITORY_ANNOTATION: "  "}), False),
        (lambda d: d["metadata"]["labels"].update({contract.MANAGED_BY_LABEL: contract.REPLICATOR_MANAGER}), False),
        (lambda d: d["metadata"].pop("annotations"), False),
    ],
    ids=["annotated", "no-annotation", "blank", "our-own-clone", "no-annotations-at-all"],
)
def test_is_opted_in(origin: Origin, mutate: Callable[[dict[str, Any]], object], expected: bool) -> None:
    deployment = origin()
    mutate(deployment)
    assert is_opted_in(deployment) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("72h", timedelta(hours=72)),
        ("3d", timedelta(days=3)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("45s", timedelta(seconds=45)),
    ],
    ids=["minutes", "hours", "days", "combined", "seconds"],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "h", "3w", "1.5h", "-3h", "3h2d"],
    ids=["empty", "unit-only", "weeks", "fraction", "negative", "wrong-order"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


DEEP_LIST = "[" * 1000
DEEP_OBJECT = '{"A": ' * 2000 + "1" + "}" * 2000


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (contract.IDLE_EXPIRY_ANNOTATION, "99999999999d", "not a duration"),
        (contract.IDLE_EXPIRY_ANNOTATION, "3000000d", "between 1m and 365d"),
        (contract.IDLE_EXPIRY_ANNOTATION, "366d", "between 1m and 365d"),
        (contract.IDLE_EXPIRY_ANNOTATION, "30s", "between 1m and 365d"),
        (contract.IDLE_EXPIRY_ANNOTATION, "9" * 20000 + "d", "at most 16384"),
        (contract.MAX_ENVIRONMENTS_ANNOTATION, "1001", "between 0 and 1000"),
        (contract.MAX_ENVIRONMENTS_ANNOTATION, "9" * 5000, "between 0 and 1000"),
        (contract.REPLICAS_ANNOTATION, "1" + "0" * 30, "between 0 and 10"),
        (contract.REQUIRED_LABELS_ANNOTATION, DEEP_LIST, "invalid JSON"),
        (contract.EXCLUDED_LABELS_ANNOTATION, "[" * 5000 + "]" * 5000, "nested too deeply|only strings"),
        (contract.CONTAINERS_ANNOTATION, "[" * 5000 + "]" * 5000, "nested too deeply|only strings"),
        (contract.BASE_BRANCHES_ANNOTATION, "x" * 300, "longer than 256"),
        (contract.ENV_ANNOTATION, DEEP_OBJECT, "nested too deeply"),
        (contract.ENV_ANNOTATION, "[1, 2]", "no '='"),
        (contract.ENV_ANNOTATION, "A" * 20000 + "=1", "at most 16384"),
        (contract.KEEP_LABEL_ANNOTATION, "k" * 300, "longer than 256"),
        (contract.IMAGE_GATE_ANNOTATION, "g" * 300, "longer than 256"),
    ],
    ids=[
        "duration-digits",
        "duration-overflows-dates",
        "duration-over-a-year",
        "duration-under-a-minute",
        "duration-huge-value",
        "max-over-limit",
        "max-thousands-of-digits",
        "replicas-huge",
        "labels-open-brackets",
        "labels-deep",
        "containers-deep",
        "base-branch-long",
        "env-deep",
        "env-list",
        "env-huge",
        "keep-label-long",
        "gate-long",
    ],
)
def test_out_of_range_or_hostile_values_are_an_annotation_error_naming_the_limit(
    origin: Origin, key: str, value: str, message: str
) -> None:
    with pytest.raises(AnnotationError, match=message) as error:
        parse_origin_config(origin(**{key: value}))
    assert error.value.annotation == key
    assert len(str(error.value)) < 600  # the message quotes the value, but never kilobytes of it


@pytest.mark.parametrize(("text", "expected"), [("1m", timedelta(minutes=1)), ("365d", timedelta(days=365))])
def test_idle_expiry_bounds_are_inclusive(origin: Origin, text: str, expected: timedelta) -> None:
    assert parse_origin_config(origin(**{contract.IDLE_EXPIRY_ANNOTATION: text})).idle_expiry == expected
