"""Object metadata helpers shared by the REST layer and the controllers: timestamps, sameness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for server-managed fields: such a write changes nothing and bumps no resourceVersion."""

    def strip(o: dict[str, Any]) -> dict[str, Any]:
        o = dict(o)
        o["metadata"] = {k: v for k, v in o["metadata"].items() if k not in ("resourceVersion", "managedFields")}
        o.pop("apiVersion", None)
        o.pop("kind", None)
        return o

    return strip(a) == strip(b)
