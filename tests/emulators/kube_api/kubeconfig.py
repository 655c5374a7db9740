"""A kubeconfig for the emulator, so kubectl and the kubernetes client connect unchanged."""

from __future__ import annotations

from pathlib import Path

import yaml

NAME = "emulator"


def render(server_url: str, token: str, namespace: str = "default") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": {"server": server_url}}],
        "users": [{"name": NAME, "user": {"token": token}}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME, "namespace": namespace}}],
        "current-context": NAME,
        "preferences": {},
    }


def write(path: str | Path, server_url: str, token: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")  # readers never see a half-written file
    partial.write_text(yaml.safe_dump(render(server_url, token), sort_keys=False), encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(target)
    return target
