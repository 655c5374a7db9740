"""Repository URLs and image templates, fuzzed: a valid value or a ValueError, never anything else.

A parsed repository spells back to itself (its URL parses to an equal Repository); a template that
validates renders, for any pull request and any origin image, a valid reference or says why.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from unit.fuzz.strategies import any_text, hostile

from replicator.image import _REFERENCE, _TAG, render_image, sanitize_tag, split_image, validate_template
from replicator.pull_request import PullRequest
from replicator.repository import parse_repository

REPOSITORIES = (
    "https://github.com/mercari/echo",
    "https://github.com/mercari/echo.git",
    "http://user:pw@ghe.example:8443/team/app/",
    "git@github.com:mercari/echo.git",
    "ssh://git@ghe.example/team/app.git",
    "mercari/echo",
    "www.github.com/a/b",
)
TEMPLATES = ("{image}:pr-{pr}", "{image}:{short_sha}", "{image}:{branch}-{sha}", "reg:5000/x/{pr}:{tag}", "{image}@{x}")
IMAGES = ("ghcr.io/mercari/echo:1.4.2", "registry.example:5000/team/app", "app@sha256:" + "a" * 64, "", ":", "@")


@given(hostile(*REPOSITORIES))
def test_a_repository_parses_and_spells_back_or_is_refused(text: str) -> None:
    try:
        repository = parse_repository(text)
    except ValueError as exc:
        assert "use one of" in str(exc)
        return
    assert repository.owner and repository.name and repository.host
    assert parse_repository(repository.html_url) == repository
    assert parse_repository(repository.full_name).full_name == repository.full_name


pull_requests = st.builds(
    PullRequest,
    number=st.integers(min_value=1, max_value=10**9),
    head_sha=st.text("0123456789abcdef", min_size=40, max_size=40),
    head_ref=hostile("main", "feature/x", "Feature_X.y-1", "-.leading"),
    base_ref=st.just("main"),
)


@given(hostile(*TEMPLATES), pull_requests, hostile(*IMAGES))
def test_a_template_validates_and_renders_or_is_refused(template: str, pr: PullRequest, image: str) -> None:
    try:
        validate_template(template)
    except ValueError as exc:
        assert str(exc)
        return
    try:
        rendered = render_image(template, origin_image=image, pr=pr)
    except ValueError as exc:
        assert "not a valid image reference" in str(exc)
        return
    assert _REFERENCE.fullmatch(rendered)


@given(any_text | hostile("main"))
def test_any_branch_becomes_a_valid_tag(branch: str) -> None:
    assert _TAG.fullmatch(sanitize_tag(branch))


@given(hostile(*IMAGES))
def test_any_image_reference_splits(image: str) -> None:
    repository, tag, digest = split_image(image)
    assert image.startswith(repository) and "@" not in repository
    assert image == repository + (f":{tag}" if ":" in image[len(repository) : len(repository) + 1] else "") + (
        f"@{digest}" if "@" in image else ""
    )
