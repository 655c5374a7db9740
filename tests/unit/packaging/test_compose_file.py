"""docker-compose.test.yml is a valid Compose file (no Docker engine runs in CI to try it)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from shared_data import REPO_ROOT


def test_compose_file_validates_against_the_compose_specification(shared_dir: Path) -> None:
    schema = json.loads((shared_dir / "schemas" / "compose" / "compose-spec.json").read_text())
    document = yaml.safe_load((REPO_ROOT / "docker-compose.test.yml").read_text())
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(document)]
    assert errors == []


def test_compose_file_builds_each_controller_from_its_own_dockerfile() -> None:
    services = yaml.safe_load((REPO_ROOT / "docker-compose.test.yml").read_text())["services"]
    for controller in ("replicator", "service-router"):
        assert services[controller]["build"]["dockerfile"] == f"{controller}/Dockerfile"
        assert (REPO_ROOT / controller / "Dockerfile").is_file()
