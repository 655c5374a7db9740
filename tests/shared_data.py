"""Where the read-only shared data (Istio CRDs, real GitHub payloads) lives, if anywhere.

CI has it at ``../shared`` next to the repository; a plain clone does not. Tests that need it
use the ``shared_dir`` fixture, which skips with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def find_shared_dir() -> Path | None:
    candidate = Path(os.environ.get("SHARED_DIR", REPO_ROOT.parent / "shared"))
    return candidate if (candidate / "schemas" / "istio").is_dir() else None


def istio_crd_paths() -> list[Path]:
    shared = find_shared_dir()
    if shared is None:
        return []
    return sorted((shared / "schemas" / "istio").glob("*.yaml"))
