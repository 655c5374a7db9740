"""Every policy annotation of the replicator, fuzzed: an OriginConfig or an AnnotationError, quickly.

Whatever a Deployment's annotations and containers hold (unicode, control characters, values far
beyond the bounds, JSON nested to exhaust the parser, unknown keys under the prefix, keys from
other tools), ``parse_origin_config`` answers with a valid configuration or with the one error
the reconciler turns into a Warning Event: never another exception, never slowly (the profile's
deadline, see ``conftest.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unit.fuzz.strategies import any_text, hostile

from controller_common import contract
from controller_common.events import MAX_MESSAGE_LENGTH as EVENT_MESSAGE_LIMIT
from replicator.origin_config import (
    MAX_ENVIRONMENTS_LIMIT,
    MAX_IDLE_EXPIRY,
    MAX_REPLICAS,
    MIN_IDLE_EXPIRY,
    RESERVED_ENV,
    USER_ANNOTATIONS,
    AnnotationError,
    OriginConfig,
    is_opted_in,
    parse_duration,
    parse_env,
    parse_origin_config,
)

VALID = {
    contract.REPOSITORY_ANNOTATION: ["https://github.com/mercari/echo", "git@github.com:mercari/echo.git", "a/b"],
    contract.IMAGE_TEMPLATE_ANNOTATION: ["{image}:pr-{pr}", "{image}:{short_sha}", "ghcr.io/x/y:{branch}"],
    contract.CONTAINERS_ANNOTATION: ["app", "app,sidecar", '["app"]', "*"],
    contract.REQUIRED_LABELS_ANNOTATION: ["qa", "qa,deploy", '["needs, comma"]'],
    contract.EXCLUDED_LABELS_ANNOTATION: ["wip", '["a","b"]'],
    contract.INCLUDE_DRAFTS_ANNOTATION: ["true", "false", "TRUE"],
    contract.INCLUDE_FORKS_ANNOTATION: ["true", "false"],
    contract.BASE_BRANCHES_ANNOTATION: ["main", "main,release/*", '["release/*"]'],
    contract.MAX_ENVIRONMENTS_ANNOTATION: ["0", "3", "1000", "+7", "007"],
    contract.IDLE_EXPIRY_ANNOTATION: ["90m", "72h", "3d", "1d12h", "30s"],
    contract.KEEP_LABEL_ANNOTATION: ["keep"],
    contract.REPLICAS_ANNOTATION: ["0", "1", "10"],
    contract.ENV_ANNOTATION: ["A=1,B=2", '{"QUEUE": false, "N": 3}', "X="],
    contract.IMAGE_GATE_ANNOTATION: ["build", "ci / image"],
}

keys = st.one_of(
    st.sampled_from(sorted(USER_ANNOTATIONS)),
    st.sampled_from(sorted(USER_ANNOTATIONS)).map(lambda k: k + "s"),  # a typo
    any_text.map(lambda t: contract.REPLICATION_PREFIX + t),
    st.sampled_from(["kubectl.kubernetes.io/last-applied-configuration", "argocd.argoproj.io/sync-wave"]),
)


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    annotations = {key: draw(hostile(*VALID.get(key, ()))) for key in draw(st.lists(keys, max_size=6, unique=True))}
    if draw(st.booleans()):
        annotations[contract.REPOSITORY_ANNOTATION] = draw(hostile(*VALID[contract.REPOSITORY_ANNOTATION]))
    # The API server requires a name and an image on every container; their values are anyone's.
    containers = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["app", "sidecar"]) | any_text,
                    "image": st.sampled_from(["ghcr.io/x/app:1", "envoy:1.30", "registry:5000/a/b@sha256:" + "a" * 64])
                    | any_text,
                }
            ),
            max_size=3,
        )
    )
    return {
        "metadata": {"name": "origin", "namespace": "default", "annotations": annotations},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def _valid(config: OriginConfig, deployment: dict[str, Any]) -> None:
    names = [str(c.get("name")) for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert set(config.containers) <= set(names)
    assert 0 <= config.replicas <= MAX_REPLICAS
    assert config.max_environments is None or 0 <= config.max_environments <= MAX_ENVIRONMENTS_LIMIT
    assert config.idle_expiry is None or MIN_IDLE_EXPIRY <= config.idle_expiry <= MAX_IDLE_EXPIRY
    assert not {name for name, _ in config.env} & set(RESERVED_ENV)
    assert config.repository.owner and config.repository.name


@given(deployments())
def test_any_annotations_give_a_config_or_an_annotation_error(deployment: dict[str, Any]) -> None:
    is_opted_in(deployment)
    try:
        config = parse_origin_config(deployment)
    except AnnotationError as exc:
        assert exc.annotation and str(exc)
        assert len(str(exc)) <= EVENT_MESSAGE_LIMIT, "the Event would lose the hint after the value"
    else:
        _valid(config, deployment)


@given(hostile("90m", "72h", "1d12h", "0s", "999999999d"))
def test_durations_parse_or_say_why(text: str) -> None:
    try:
        parsed = parse_duration(text, minimum=MIN_IDLE_EXPIRY, maximum=MAX_IDLE_EXPIRY)
    except ValueError:
        return
    assert MIN_IDLE_EXPIRY <= parsed <= MAX_IDLE_EXPIRY


@given(hostile("A=1,B=2", '{"A": "1", "B": true}', '{"PR_NUMBER": 1}', "A=1,A=2", '{"a": {"b": 1}}'))
def test_env_parses_or_says_why(text: str) -> None:
    try:
        pairs = parse_env(text)
    except ValueError:
        return
    assert len({name for name, _ in pairs}) == len(pairs)
    assert all(isinstance(name, str) and isinstance(value, str) for name, value in pairs)


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        (contract.REPOSITORY_ANNOTATION, "\x08" * 426, "use one of: https://github.com/<owner>/<repo>"),
        (contract.IMAGE_TEMPLATE_ANNOTATION, "{image}:pr-{pr}" + "{nope}" * 200, "known: {image}"),
        (contract.INCLUDE_DRAFTS_ANNOTATION, "yes" * 400, 'write "true" or "false"'),
        (contract.ENV_ANNOTATION, "A" * 2000, "write K=V,K2=V2 or a JSON object"),
        (contract.ENV_ANNOTATION, '{"' + "k" * 2000 + '": [1]}', "must be a string, number or boolean"),
    ],
    ids=["repository", "image-template", "include-drafts", "env-pair", "env-json"],
)
def test_a_long_bad_value_leaves_the_hint_on_the_event(key: str, value: str, hint: str) -> None:
    """Found by the fuzzer: the value was quoted whole, so the Event (cut at 1,024) lost the fix."""
    deployment = {
        "metadata": {"annotations": {contract.REPOSITORY_ANNOTATION: "mercari/echo", key: value}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1"}]}}},
    }
    with pytest.raises(AnnotationError) as caught:
        parse_origin_config(deployment)
    assert hint in str(caught.value)
    assert len(str(caught.value)) <= EVENT_MESSAGE_LIMIT
