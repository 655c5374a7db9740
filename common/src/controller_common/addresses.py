"""controller-runtime style bind addresses: ``":8080"``, ``"127.0.0.1:0"``, ``"0"`` (disabled)."""

from __future__ import annotations


def parse_bind_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` for a bind address, or None when serving is disabled (``"0"`` or empty)."""
    address = address.strip()
    if address in ("", "0"):
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bind address {address!r} must look like ':8080' or '127.0.0.1:8080' ('0' disables)")
    return (host.strip("[]") or "0.0.0.0", int(port))
