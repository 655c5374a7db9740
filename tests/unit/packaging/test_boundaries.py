"""The architecture's boundaries hold: import-linter's contracts in pyproject.toml are all kept.

The controllers never import each other, the shared library knows neither, and only one module
each talks to the Kubernetes client and to PyGithub.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared_data import REPO_ROOT


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
