"""Everything a user configures on an origin Deployment, parsed and validated in one place.

An origin opts in with ``mercari.com/pull-request-replication-repository``; every other
``mercari.com/pull-request-replication-*`` annotation tunes it. Parsing is strict: a malformed
value, or an unknown key under the prefix (a typo would otherwise be silently ignored), raises
:class:`AnnotationError` naming the annotation, what is wrong and how to fix it, so the
controller can put that on a Warning Event and keep reconciling every other origin.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from controller_common import contract, objects
from replicator.image import split_image, validate_template
from replicator.repository import Repository, parse_repository

RESERVED_ENV = ("PR_NUMBER", "PR_HEAD_SHA", "PR_BRANCH")
"""Variables the replicator always sets on cloned containers; configured extras may not override them."""

MAX_REPLICAS = 10
"""A clone is a test environment: more than a handful of replicas is almost certainly a mistake."""

MAX_ENVIRONMENTS_LIMIT = 1000
"""``max-environments`` above this is a typo, not a plan: one origin with a thousand clones fills a cluster."""

MIN_IDLE_EXPIRY = timedelta(minutes=1)
MAX_IDLE_EXPIRY = timedelta(days=365)
"""An environment idle for a year is not idle-expired; beyond this the expiry arithmetic would overflow."""

MAX_VALUE_CHARS = 16 * 1024
"""Longest value any replication annotation may hold (Kubernetes allows 256 KiB for all of them)."""

MAX_NAME_CHARS = 256
"""Longest label, branch pattern, container, keep-label or gate name (GitHub's own are shorter)."""

USER_ANNOTATIONS = frozenset(
    {
        contract.REPOSITORY_ANNOTATION,
        contract.IMAGE_TEMPLATE_ANNOTATION,
        contract.CONTAINERS_ANNOTATION,
        contract.REQUIRED_LABELS_ANNOTATION,
        contract.EXCLUDED_LABELS_ANNOTATION,
        contract.INCLUDE_DRAFTS_ANNOTATION,
        contract.INCLUDE_FORKS_ANNOTATION,
        contract.BASE_BRANCHES_ANNOTATION,
        contract.MAX_ENVIRONMENTS_ANNOTATION,
        contract.IDLE_EXPIRY_ANNOTATION,
        contract.KEEP_LABEL_ANNOTATION,
        contract.REPLICAS_ANNOTATION,
        contract.ENV_ANNOTATION,
        contract.IMAGE_GATE_ANNOTATION,
    }
)
WRITTEN_ANNOTATIONS = frozenset(
    {
        contract.CLONE_REPOSITORY_ANNOTATION,
        contract.CLONE_HEAD_SHA_ANNOTATION,
        contract.CLONE_ORIGIN_ANNOTATION,
        contract.CLONE_SPEC_HASH_ANNOTATION,
    }
)
"""Keys under the prefix that the replicator itself writes on clones: never a typo."""

_DURATION = re.compile(r"(?:(?P<d>\d{1,9})d)?(?:(?P<h>\d{1,9})h)?(?:(?P<m>\d{1,9})m)?(?:(?P<s>\d{1,9})s)?")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


class AnnotationError(ValueError):
    """A replication annotation on an origin is malformed. ``annotation`` is the offending key."""

    def __init__(self, annotation: str, message: str) -> None:
        super().__init__(f"{annotation}: {message}")
        self.annotation = annotation
        self.reason = message


@dataclass(frozen=True)
class OriginConfig:
    repository: Repository
    image_template: str = contract.DEFAULT_IMAGE_TEMPLATE
    containers: tuple[str, ...] = ()
    """Containers whose image is replaced (already resolved: explicit list or the default rule)."""
    required_labels: frozenset[str] = frozenset()
    """A PR needs at least one of these (case-insensitive); empty means no requirement."""
    excluded_labels: frozenset[str] = frozenset()
    include_drafts: bool = False
    include_forks: bool = False
    base_branches: tuple[str, ...] = ()
    """Glob patterns (``fnmatch``) for the base branch; empty means any."""
    max_environments: int | None = None
    idle_expiry: timedelta | None = None
    keep_label: str | None = None
    replicas: int = 1
    env: tuple[tuple[str, str], ...] = ()
    """Extra environment for cloned containers, in the order given."""
    image_gate: str | None = None
    """Name of a check run or commit status that must succeed on the head before its image is used."""


def is_opted_in(deployment: Mapping[str, Any]) -> bool:
    """An origin carries a non-empty repository annotation and is not itself one of our clones."""
    if objects.labels(deployment).get(contract.MANAGED_BY_LABEL) == contract.REPLICATOR_MANAGER:
        return False
    return bool(str(objects.annotations(deployment).get(contract.REPOSITORY_ANNOTATION) or "").strip())


def parse_duration(text: str, *, minimum: timedelta | None = None, maximum: timedelta | None = None) -> timedelta:
    """``90m``, ``72h``, ``3d``, ``1d12h``, ``30s`` as a positive :class:`timedelta`, within the bounds given."""
    compact = text.strip().replace(" ", "")
    match = _DURATION.fullmatch(compact) if len(compact) <= 64 else None
    if not compact or match is None or not any(match.groupdict().values()):
        raise ValueError(f"{_shown(text)} is not a duration; write e.g. 90m, 72h, 3d or 1d12h")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    # Summed in seconds: at most 4 x 9 digits, so never beyond what timedelta holds.
    seconds = parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    if seconds <= 0:
        raise ValueError(f"{_shown(text)} is not a positive duration")
    if (minimum is not None and seconds < minimum.total_seconds()) or (
        maximum is not None and seconds > maximum.total_seconds()
    ):
        raise ValueError(
            f"{_shown(text)} is out of range; use a duration between {_human(minimum)} and {_human(maximum)}"
        )
    return timedelta(seconds=seconds)


def _human(bound: timedelta | None) -> str:
    if bound is None:
        return "any"
    seconds = int(bound.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _shown(text: str, limit: int = 40) -> str:
    """A value quoted for a message, cut so an Event never carries kilobytes of someone's input."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _load_json(text: str) -> Any:
    """``json.loads`` whose every failure is a ValueError: nesting too deep is not a crash."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply (a flat list or object is expected)") from None


def _containers_of(deployment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(spec.get("containers") or [])


def default_containers(deployment: Mapping[str, Any]) -> tuple[str, ...]:
    """Every container whose image repository is the first container's (sidecars keep theirs)."""
    containers = _containers_of(deployment)
    if not containers:
        return ()
    first_repository = split_image(str(containers[0].get("image") or ""))[0]
    return tuple(str(c["name"]) for c in containers if split_image(str(c.get("image") or ""))[0] == first_repository)


def _list(value: str) -> tuple[str, ...]:
    """A comma-separated list, or a JSON array of strings (for values containing commas)."""
    text = value.strip()
    if text.startswith("["):
        items = _load_json(text)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("a JSON list must hold only strings")
        chosen = tuple(i.strip() for i in items if i.strip())
    else:
        chosen = tuple(i.strip() for i in text.split(",") if i.strip())
    for item in chosen:
        if len(item) > MAX_NAME_CHARS:
            raise ValueError(f"{_shown(item)} is longer than {MAX_NAME_CHARS} characters")
    return chosen


def _name(value: str) -> str:
    name = value.strip()
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"{_shown(name)} is longer than {MAX_NAME_CHARS} characters")
    return name


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(f'{_shown(value)} is not a boolean; write "true" or "false"')


def _positive_int(value: str, *, minimum: int, maximum: int) -> int:
    text = value.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"{_shown(value)} is not a whole number")
    # Compared as text first: int() of thousands of digits is slow and refused by Python itself.
    number = int(text) if len(text.lstrip("+-").lstrip("0")) <= len(str(maximum)) else None
    if number is None or number < minimum or number > maximum:
        raise ValueError(f"{_shown(text)} is out of range; use a number between {minimum} and {maximum}")
    return number


def parse_env(value: str) -> tuple[tuple[str, str], ...]:
    """A JSON object (``{"QUEUE_ENABLED": "false"}``) or ``K=V,K2=V2``; names checked, PR_* reserved."""
    text = value.strip()
    pairs: list[tuple[str, str]] = []
    if text.startswith("{"):
        loaded = _load_json(text)
        if not isinstance(loaded, dict):
            raise ValueError("a JSON value must be an object of names to values")
        for key, item in loaded.items():
            if isinstance(item, bool):
                pairs.append((key, "true" if item else "false"))
            elif isinstance(item, str | int | float):
                pairs.append((key, str(item)))
            else:
                raise ValueError(f"value of {_shown(key)} must be a string, number or boolean")
    else:
        for chunk in text.split(","):
            if not chunk.strip():
                continue
            key, sep, item = chunk.partition("=")
            if not sep:
                raise ValueError(f"{_shown(chunk.strip())} has no '='; write K=V,K2=V2 or a JSON object")
            pairs.append((key.strip(), item.strip()))
    seen: set[str] = set()
    for key, _ in pairs:
        if len(key) > MAX_NAME_CHARS or not _ENV_NAME.fullmatch(key):
            raise ValueError(f"{_shown(key)} is not a valid environment variable name")
        if key in RESERVED_ENV:
            raise ValueError(f"{key} is set by the replicator itself; remove it")
        if key in seen:
            raise ValueError(f"{key} is given twice")
        seen.add(key)
    return tuple(pairs)


def _check_unknown_keys(annotations: Mapping[str, Any]) -> None:
    known = USER_ANNOTATIONS | WRITTEN_ANNOTATIONS
    for key in sorted(annotations):
        if key.startswith(contract.REPLICATION_PREFIX) and key not in known:
            # Compare what follows the shared prefix, or every key looks close to every other.
            suffixes = sorted(k.removeprefix(contract.REPLICATION_PREFIX) for k in USER_ANNOTATIONS)
            close = difflib.get_close_matches(key.removeprefix(contract.REPLICATION_PREFIX), suffixes, n=1)
            hint = (
                f"did you mean {contract.REPLICATION_PREFIX}{close[0]}?"
                if close
                else f"known keys: {', '.join(sorted(USER_ANNOTATIONS))}"
            )
            raise AnnotationError(key, f"unknown replication annotation; {hint}")


def parse_origin_config(deployment: Mapping[str, Any]) -> OriginConfig:
    """Parse and validate an opted-in origin's annotations; :class:`AnnotationError` on the first problem."""
    annotations: Mapping[str, Any] = objects.annotations(deployment)
    _check_unknown_keys(annotations)

    def raw(key: str) -> str | None:
        value = annotations.get(key)
        if value is None:
            return None
        text = str(value)
        if len(text) > MAX_VALUE_CHARS:
            raise AnnotationError(key, f"the value is {len(text)} characters; at most {MAX_VALUE_CHARS} are allowed")
        return text

    def field(key: str, parse: Any, default: Any) -> Any:
        value = raw(key)
        if value is None:
            return default
        try:
            return parse(value)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # Every parser raises ValueError with a message; the rest are belts for what none foresaw.
            raise AnnotationError(key, str(exc) or type(exc).__name__) from None

    repository_text = raw(contract.REPOSITORY_ANNOTATION)
    if repository_text is None or not repository_text.strip():
        raise AnnotationError(contract.REPOSITORY_ANNOTATION, "missing; set it to https://github.com/<owner>/<repo>")
    repository = field(contract.REPOSITORY_ANNOTATION, parse_repository, None)

    def template(value: str) -> str:
        validate_template(value.strip())
        return value.strip()

    image_template = field(contract.IMAGE_TEMPLATE_ANNOTATION, template, contract.DEFAULT_IMAGE_TEMPLATE)

    names = [str(c.get("name")) for c in _containers_of(deployment)]
    if not names:
        raise AnnotationError(contract.REPOSITORY_ANNOTATION, "the Deployment has no containers to replicate")

    def containers(value: str) -> tuple[str, ...]:
        chosen = _list(value)
        if chosen == ("*",):
            return tuple(names)
        if not chosen:
            raise ValueError("empty; name at least one container, or remove the annotation for the default")
        unknown = [c for c in chosen if c not in names]
        if unknown:
            raise ValueError(f"no container named {', '.join(unknown)}; the Deployment has {', '.join(names)}")
        return tuple(dict.fromkeys(chosen))

    chosen_containers = field(contract.CONTAINERS_ANNOTATION, containers, None) or default_containers(deployment)

    def label_set(value: str) -> frozenset[str]:
        return frozenset(_list(value))

    def base_branches(value: str) -> tuple[str, ...]:
        patterns = _list(value)
        if not patterns:
            raise ValueError("empty; give glob patterns such as main,release/*, or remove the annotation")
        return patterns

    def keep_label(value: str) -> str:
        if not value.strip():
            raise ValueError("empty; name the GitHub label that keeps an environment from idle expiry")
        return _name(value)

    def image_gate(value: str) -> str:
        if not value.strip():
            raise ValueError("empty; name the check run or commit status that marks the image as built")
        return _name(value)

    return OriginConfig(
        repository=repository,
        image_template=image_template,
        containers=chosen_containers,
        required_labels=field(contract.REQUIRED_LABELS_ANNOTATION, label_set, frozenset()),
        excluded_labels=field(contract.EXCLUDED_LABELS_ANNOTATION, label_set, frozenset()),
        include_drafts=field(contract.INCLUDE_DRAFTS_ANNOTATION, _bool, False),
        include_forks=field(contract.INCLUDE_FORKS_ANNOTATION, _bool, False),
        base_branches=field(contract.BASE_BRANCHES_ANNOTATION, base_branches, ()),
        max_environments=field(
            contract.MAX_ENVIRONMENTS_ANNOTATION,
            lambda v: _positive_int(v, minimum=0, maximum=MAX_ENVIRONMENTS_LIMIT),
            None,
        ),
        idle_expiry=field(
            contract.IDLE_EXPIRY_ANNOTATION,
            lambda v: parse_duration(v, minimum=MIN_IDLE_EXPIRY, maximum=MAX_IDLE_EXPIRY),
            None,
        ),
        keep_label=field(contract.KEEP_LABEL_ANNOTATION, keep_label, None),
        replicas=field(contract.REPLICAS_ANNOTATION, lambda v: _positive_int(v, minimum=0, maximum=MAX_REPLICAS), 1),
        env=field(contract.ENV_ANNOTATION, parse_env, ()),
        image_gate=field(contract.IMAGE_GATE_ANNOTATION, image_gate, None),
    )
