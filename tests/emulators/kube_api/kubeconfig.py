"""A kubeconfig for the emulator, so kubectl and the kubernetes client connect unchanged."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

NAME = "emulator"


def render(server_url: str, token: str, namespace: str = "default", ca_pem: bytes | None = None) -> dict[str, object]:
    cluster: dict[str, str] = {"server": server_url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": cluster}],
        "users": [{"name": NAME, "user": {"token": token}}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": NAME, "namespace": namespace}}],
        "current-context": NAME,
        "preferences": {},
    }


def write(path: str | Path, server_url: str, token: str, ca_pem: bytes | None = None) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")  # readers never see a half-written file
    partial.write_text(yaml.safe_dump(render(server_url, token, ca_pem=ca_pem), sort_keys=False), encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(target)
    return target
