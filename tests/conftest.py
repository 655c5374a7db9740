"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_data import find_shared_dir


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (or ``$SHARED_DIR``); skips the test when a plain clone lacks it."""
    found = find_shared_dir()
    if found is None:
        pytest.skip("../shared is absent (plain clone): Istio CRDs and GitHub payloads unavailable")
    return found
