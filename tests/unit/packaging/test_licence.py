"""The project may be adopted: the Apache-2.0 text, a NOTICE, and the licence in every distribution's metadata."""

from __future__ import annotations

import hashlib
import re
import tomllib

import pytest

from shared_data import REPO_ROOT

PROJECTS = ("common", "replicator", "service-router")
# MD5 of https://www.apache.org/licenses/LICENSE-2.0.txt: the text must be the official one, verbatim.
APACHE_2_0_MD5 = "3b83ef96387f14655fc854ddc3c6bd57"


def test_licence_file_is_the_official_apache_2_0_text() -> None:
    text = (REPO_ROOT / "LICENSE").read_bytes()
    assert hashlib.md5(text, usedforsecurity=False).hexdigest() == APACHE_2_0_MD5


def test_notice_names_the_project_and_its_copyright_holders() -> None:
    notice = (REPO_ROOT / "NOTICE").read_text()
    assert notice.splitlines()[0] == "pull-request environments on Kubernetes + Istio"
    assert "Copyright The pull-request environments authors" in notice
    assert "Apache License, Version 2.0" in notice


@pytest.mark.parametrize("project", PROJECTS)
def test_each_distribution_declares_apache_2_0_as_an_spdx_expression(project: str) -> None:
    pyproject = tomllib.loads((REPO_ROOT / project / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    # SPDX strings in `license` need setuptools 77 (PEP 639); older ones reject the file.
    (requirement,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)", requirement)
    assert minimum is not None and int(minimum[1]) >= 77
