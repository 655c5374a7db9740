"""The end-to-end fixture: a fresh World (both emulators) per test, always torn down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from world import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path).start()
    try:
        yield w
    finally:
        w.stop()
