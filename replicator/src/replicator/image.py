"""The image a clone runs: the origin's image reference rewritten by a template.

Templates are ``str.format`` fields restricted to a fixed vocabulary, validated when the
annotation is parsed so a typo is reported on the origin instead of producing a clone that can
only end in ImagePullBackOff. Rendering also checks the result is a well-formed reference.
"""

from __future__ import annotations

import re
import string

from replicator.pull_request import PullRequest
from replicator.repository import quoted

PLACEHOLDERS = ("image", "tag", "pr", "sha", "short_sha", "branch")
"""``{image}`` origin image without tag or digest; ``{tag}`` its tag (``latest`` when none);
``{pr}`` the PR number; ``{sha}``/``{short_sha}`` the head commit (40/7 characters);
``{branch}`` the head branch sanitised to a valid tag."""

PINNED_PLACEHOLDERS = frozenset({"sha", "short_sha"})
"""Placeholders that change with every commit: an image rendered with one is immutable per head."""

TAG_MAX = 128
_NOT_TAG = re.compile(r"[^A-Za-z0-9_.-]+")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# Distribution's reference grammar, simplified: lower-case path components, optional tag/digest.
_REFERENCE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?"
)


def split_image(reference: str) -> tuple[str, str, str]:
    """``(repository, tag, digest)`` of an image reference; a ``:`` before the last ``/`` is a port."""
    rest, _, digest = reference.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest
    return rest, "", digest


def sanitize_tag(value: str) -> str:
    """A valid tag from arbitrary text (a branch name): ``[A-Za-z0-9_.-]``, ≤128, no leading ``.``/``-``."""
    cleaned = _NOT_TAG.sub("-", value).lstrip(".-")[:TAG_MAX]
    return cleaned or "unnamed"


def template_fields(template: str) -> frozenset[str]:
    """The placeholders a template uses; ``ValueError`` on bad syntax or an unknown placeholder."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"image template {quoted(template)} is malformed ({exc}); write literal braces as {{{{ }}}}"
        ) from exc
    used: set[str] = set()
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise ValueError(
                f"image template {quoted(template)} uses unknown placeholder {{{field}}}; "
                f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        if spec or conversion:
            raise ValueError(f"image template {quoted(template)}: placeholders take no format spec or conversion")
        used.add(field)
    return frozenset(used)


def validate_template(template: str) -> None:
    """Reject unknown placeholders, bad syntax and templates that cannot render a valid reference."""
    if not template.strip():
        raise ValueError("image template is empty; use for example {image}:pr-{pr}")
    template_fields(template)
    # Render with a tame and a hostile sample: a branch may hold upper case and dots, which are
    # fine in a tag but not in a repository path, so a template must fail now, not on some PR.
    for branch in ("main", "Feature_X.y-1"):
        sample = PullRequest(number=1, head_sha="0" * 40, head_ref=branch, base_ref="main")
        rendered = _render(template, origin_image="registry.example:5000/team/app:1.0", pr=sample)
        if not _REFERENCE.fullmatch(rendered):
            hint = " ({branch} belongs in the tag, after the ':')" if branch != "main" else ""
            raise ValueError(
                f"image template {quoted(template)} does not render a valid image reference "
                f"(got {quoted(rendered)}){hint}"
            )


def is_pinned(template: str) -> bool:
    """True when every commit renders a different reference, so a cached image is never stale."""
    return bool(template_fields(template) & PINNED_PLACEHOLDERS) or "@" in template


def _render(template: str, *, origin_image: str, pr: PullRequest) -> str:
    repository, tag, _digest = split_image(origin_image)
    return template.format(
        image=repository,
        tag=tag or "latest",
        pr=pr.number,
        sha=pr.head_sha,
        short_sha=pr.short_sha,
        branch=sanitize_tag(pr.head_ref),
    )


def render_image(template: str, *, origin_image: str, pr: PullRequest) -> str:
    """Render ``template`` for ``pr``; ``ValueError`` if the template or the result is invalid."""
    template_fields(template)
    rendered = _render(template, origin_image=origin_image, pr=pr)
    if not _REFERENCE.fullmatch(rendered):
        raise ValueError(
            f"image template {quoted(template)} rendered {quoted(rendered)}, which is not a valid image reference"
        )
    return rendered
