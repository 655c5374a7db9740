"""Fixtures for header propagation (helpers in ``lua_harness.py``)."""

from __future__ import annotations

import pytest
from unit.propagation.lua_harness import MANIFESTS, LuaFilter, shipped_lua


@pytest.fixture(scope="session")
def lua_filters() -> dict[str, LuaFilter]:
    """One LuaJIT state per shipped manifest, loaded with that manifest's exact inline source."""
    return {variant: LuaFilter(shipped_lua(variant)) for variant in MANIFESTS}
