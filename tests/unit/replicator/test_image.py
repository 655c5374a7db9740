"""Image templates: each placeholder, registry ports and digests, sanitised branches, rejections."""

from __future__ import annotations

import pytest

from controller_common import contract
from replicator.image import is_pinned, render_image, sanitize_tag, split_image, validate_template
from replicator.pull_request import PullRequest

SHA = "0123456789abcdef0123456789abcdef01234567"
PR = PullRequest(number=42, head_sha=SHA, head_ref="feature/Add-Thing", base_ref="main")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("nginx", ("nginx", "", "")),
        ("nginx:1.25", ("nginx", "1.25", "")),
        ("registry:5000/team/app", ("registry:5000/team/app", "", "")),
        ("registry:5000/team/app:v2", ("registry:5000/team/app", "v2", "")),
        ("ghcr.io/org/app@sha256:" + "a" * 64, ("ghcr.io/org/app", "", "sha256:" + "a" * 64)),
        ("ghcr.io/org/app:v1@sha256:" + "a" * 64, ("ghcr.io/org/app", "v1", "sha256:" + "a" * 64)),
    ],
    ids=["bare", "tag", "port-no-tag", "port-and-tag", "digest", "tag-and-digest"],
)
def test_split_image(reference: str, expected: tuple[str, str, str]) -> None:
    assert split_image(reference) == expected


@pytest.mark.parametrize(
    ("template", "origin_image", "expected"),
    [
        (contract.DEFAULT_IMAGE_TEMPLATE, "registry:5000/team/app:1.0", "registry:5000/team/app:pr-42"),
        ("{image}:{tag}-pr{pr}", "ghcr.io/org/app:1.0", "ghcr.io/org/app:1.0-pr42"),
        ("{image}:{tag}", "ghcr.io/org/app", "ghcr.io/org/app:latest"),
        ("{image}:{sha}", "ghcr.io/org/app@sha256:" + "b" * 64, f"ghcr.io/org/app:{SHA}"),
        ("{image}:{short_sha}", "app:1", "app:0123456"),
        ("{image}:{branch}", "app:1", "app:feature-Add-Thing"),
        ("{image}-previews:pr-{pr}", "reg.io/app:1", "reg.io/app-previews:pr-42"),
        ("other.registry/app:{pr}-{short_sha}", "reg.io/app:1", "other.registry/app:42-0123456"),
    ],
    ids=["default", "tag", "no-tag-is-latest", "sha-from-digest", "short-sha", "branch", "image-suffix", "literal"],
)
def test_render_each_placeholder(template: str, origin_image: str, expected: str) -> None:
    validate_template(template)
    assert render_image(template, origin_image=origin_image, pr=PR) == expected


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("main", "main"),
        ("feature/x y", "feature-x-y"),
        ("..hidden", "hidden"),
        ("-dash", "dash"),
        ("日本語", "unnamed"),
        ("a" * 300, "a" * 128),
        ("v1.2_rc", "v1.2_rc"),
    ],
    ids=["plain", "slash-space", "leading-dots", "leading-dash", "non-ascii", "too-long", "allowed-punctuation"],
)
def test_sanitize_tag(branch: str, expected: str) -> None:
    assert sanitize_tag(branch) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{image}:{tga}", r"unknown placeholder \{tga\}"),
        ("{image}:{pr.real}", r"unknown placeholder"),
        ("{image}:{0}", r"unknown placeholder"),
        ("{image}:{}", r"unknown placeholder"),
        ("{image}:{pr:05d}", "no format spec"),
        ("{image}:{pr!r}", "no format spec"),
        ("{image:pr", "malformed"),
        ("{image}:pr}", "malformed"),
        ("", "empty"),
        ("{image}:{branch}:{pr}", "not render a valid image reference"),
        ("{image} :pr", "not render a valid image reference"),
        ("{image}:{branch}/x", "not render a valid image reference"),
        ("{image}-{branch}:pr-{pr}", r"\{branch\} belongs in the tag"),
    ],
    ids=[
        "typo",
        "attribute",
        "positional",
        "empty-field",
        "format-spec",
        "conversion",
        "unclosed",
        "unopened",
        "empty",
        "two-tags",
        "space",
        "path-after-tag",
        "branch-in-repository-path",
    ],
)
def test_validate_template_rejects(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_template(template)


def test_render_rejects_an_origin_image_that_cannot_be_rewritten() -> None:
    with pytest.raises(ValueError, match="not a valid image reference"):
        render_image("{image}:pr-{pr}", origin_image="Registry/UPPER/App:1", pr=PR)


@pytest.mark.parametrize(
    ("template", "pinned"),
    [
        (contract.DEFAULT_IMAGE_TEMPLATE, False),
        ("{image}:{branch}", False),
        ("{image}:{sha}", True),
        ("{image}:pr-{pr}-{short_sha}", True),
    ],
    ids=["default-mutable", "branch-mutable", "sha", "short-sha"],
)
def test_is_pinned(template: str, pinned: bool) -> None:
    assert is_pinned(template) is pinned
