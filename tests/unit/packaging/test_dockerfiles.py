"""The controller images are labelled, reproducible from constraints.txt and built from a clean context.

No Docker engine runs here, so the Dockerfiles and ignore files are read as text: the OCI labels a
registry shows, the version build argument, every ``pip install`` going through constraints.txt
(with every runtime dependency pinned there), and which files the build context may hold, with
Docker's ``.dockerignore`` rules (last matching pattern wins, ``!`` re-includes, a matched folder
takes its contents with it).
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from shared_data import REPO_ROOT

CONTROLLERS = ("replicator", "service-router")
DISTRIBUTIONS = {
    "replicator": ("controller-common", "replicator"),
    "service-router": ("controller-common", "service-router"),
}
SOURCE_URL = "https://github.com/mercari/pull-request-environments"
OCI_LABELS = ("title", "description", "source", "version", "licenses")
CONSTRAINTS = REPO_ROOT / "constraints.txt"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [rest for name, rest in self.instructions if name == instruction]


def parse_dockerfile(path: Path) -> list[Stage]:
    """Instructions per build stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = rest.split()
            stages.append(Stage(base=words[0], name=words[2] if len(words) > 2 else None))
        else:
            assert stages, f"{path}: {instruction} before FROM"
            stages[-1].instructions.append((instruction, rest.strip()))
    return stages


def labels(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for rest in stage.args("LABEL"):
        for word in shlex.split(rest):
            key, _, value = word.partition("=")
            found[key] = value
    return found


def build_args(stage: Stage) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for rest in stage.args("ARG"):
        name, sep, default = rest.partition("=")
        found[name] = default if sep else None
    return found


def pyproject(project: str) -> dict[str, object]:
    return tomllib.loads((REPO_ROOT / project / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


@pytest.fixture(params=CONTROLLERS)
def controller(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def final_stage(controller: str) -> Stage:
    return parse_dockerfile(REPO_ROOT / controller / "Dockerfile")[-1]


def test_image_carries_the_oci_labels_a_registry_shows(controller: str) -> None:
    found = labels(final_stage(controller))
    oci = {key.removeprefix("org.opencontainers.image."): value for key, value in found.items()}
    assert set(OCI_LABELS) <= set(oci), f"missing: {set(OCI_LABELS) - set(oci)}"
    assert oci["title"] == controller
    assert oci["source"] == SOURCE_URL
    assert oci["licenses"] == pyproject(controller)["license"] == "Apache-2.0"
    assert oci["version"] == "${VERSION}"
    assert oci["description"]


def test_version_label_defaults_to_the_project_version(controller: str) -> None:
    stage = final_stage(controller)
    assert build_args(stage).get("VERSION") == pyproject(controller)["version"]
    # The ARG must come before the LABEL that reads it, in the same stage.
    names = [name for name, _ in stage.instructions]
    assert names.index("ARG") < names.index("LABEL")


def test_image_ships_the_licence_and_notice(controller: str) -> None:
    copies = [shlex.split(rest) for rest in final_stage(controller).args("COPY")]
    assert any({"LICENSE", "NOTICE"} <= set(words[:-1]) for words in copies)


PIP_INSTALL = re.compile(r"\bpip\s+install\b")


def test_every_pip_install_goes_through_constraints(controller: str) -> None:
    stages = parse_dockerfile(REPO_ROOT / controller / "Dockerfile")
    runs = [rest for stage in stages for rest in stage.args("RUN") if PIP_INSTALL.search(rest)]
    assert runs, "the image installs the project with pip"
    for run in runs:
        words = shlex.split(run)
        assert "-c" in words and words[words.index("-c") + 1] == "constraints.txt", run
        assert not {"-U", "--upgrade", "--pre", "--index-url", "--extra-index-url"} & set(words), run
    build = stages[0]
    env = " ".join(build.args("ENV"))
    # pip's isolated build environment (setuptools) ignores -c but honours PIP_CONSTRAINT.
    assert "PIP_CONSTRAINT=/src/constraints.txt" in env
    assert build.args("WORKDIR") == ["/src"]
    assert "constraints.txt ./" in build.args("COPY")


def _pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_normalise(name)] = version
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure(roots: tuple[str, ...]) -> set[str]:
    """Every distribution pip installs for ``roots``, following the installed metadata (no extras)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = _normalise(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_every_runtime_dependency_is_pinned_in_constraints(controller: str) -> None:
    ours = {_normalise(d) for d in DISTRIBUTIONS[controller]}
    closure = _runtime_closure(DISTRIBUTIONS[controller]) - ours
    pins = _pinned()
    assert closure, "the controller has dependencies"
    assert sorted(closure - set(pins)) == []
    assert all(re.fullmatch(r"[0-9][0-9a-zA-Z.+!-]*", pins[name]) for name in closure), "pins are exact (==)"


# --- the build context --------------------------------------------------------------------------


def ignore_patterns(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(re-include?, regex) per line of a .dockerignore, in order."""
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.removeprefix("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(glob):
            if glob.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif glob.startswith("**", i):
                regex += ".*"
                i += 2
            elif glob[i] == "*":
                regex += "[^/]*"
                i += 1
            elif glob[i] == "?":
                regex += "[^/]"
                i += 1
            elif glob[i] == "[":
                end = glob.index("]", i)
                regex += glob[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(glob[i])
                i += 1
        patterns.append((negated, re.compile(regex)))
    return patterns


def in_context(patterns: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    included = True
    for negated, regex in patterns:
        if any(regex.fullmatch("/".join(parts[: n + 1])) for n in range(len(parts))):
            included = negated
    return included


ROOT_IGNORE = REPO_ROOT / ".dockerignore"
NEVER = (
    ".git/config",
    ".venv/bin/python",
    ".sandbox/env",
    "common/src/controller_common/__pycache__/kube.cpython-311.pyc",
    "replicator/src/.mypy_cache/3.11/cache.db",
    "service-router/src/service_router.egg-info/PKG-INFO",
    "replicator/build/lib/replicator/__init__.py",
    ".pytest_cache/v/cache/lastfailed",
    ".ruff_cache/CACHEDIR.TAG",
)


@pytest.mark.parametrize("path", NEVER)
def test_root_context_leaves_out_local_and_generated_files(path: str) -> None:
    assert not in_context(ignore_patterns(ROOT_IGNORE), path)


@pytest.mark.parametrize(
    "path",
    [
        "constraints.txt",
        "LICENSE",
        "NOTICE",
        "Makefile",
        "common/pyproject.toml",
        "replicator/src/replicator/__main__.py",
        "service-router/Dockerfile",
        # docker-compose.test.yml's GitHub emulator and test-runner images copy these.
        "tests/emulators/github_api/server.py",
        "tests/integration/test_real_cluster.py",
        "requirements-dev.txt",
    ],
)
def test_root_context_keeps_what_the_compose_images_copy(path: str) -> None:
    assert in_context(ignore_patterns(ROOT_IGNORE), path)


def _shipped_files(folder: str) -> list[str]:
    return [
        str(p.relative_to(REPO_ROOT))
        for p in (REPO_ROOT / folder).rglob("*")
        if p.is_file()
        and not {"__pycache__", ".mypy_cache", "build"} & set(p.parts)
        and not any(part.endswith(".egg-info") for part in p.parts)
        and p.suffix != ".pyc"
    ]


def test_controller_context_holds_exactly_what_the_image_is_built_from(controller: str) -> None:
    patterns = ignore_patterns(REPO_ROOT / controller / "Dockerfile.dockerignore")
    other = next(c for c in CONTROLLERS if c != controller)
    needed = ["constraints.txt", "LICENSE", "NOTICE", *_shipped_files("common"), *_shipped_files(controller)]
    assert [path for path in needed if not in_context(patterns, path)] == []
    for path in (
        *NEVER,
        f"{other}/src/{other.replace('-', '_')}/__init__.py",
        "tests/world.py",
        "manifests/kustomization.yaml",
        "README.md",
        f"{controller}/src/{controller.replace('-', '_')}/__pycache__/settings.cpython-311.pyc",
    ):
        assert not in_context(patterns, path), path


def test_copy_sources_exist_and_name_no_other_controller(controller: str) -> None:
    other = next(c for c in CONTROLLERS if c != controller)
    for stage in parse_dockerfile(REPO_ROOT / controller / "Dockerfile"):
        for rest in stage.args("COPY"):
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            if "--from=" in rest:
                continue
            for source in words[:-1]:
                assert (REPO_ROOT / source).exists(), source
                assert not source.startswith(other), source
