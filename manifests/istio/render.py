#!/usr/bin/env python3
"""Render the EnvoyFilter manifests from the one Lua source, ``service-router-headers.lua``.

The Lua lives in one file so it can be read, linted and tested as Lua; the manifests embed it
verbatim except for the ``-- BEGIN CONFIG`` / ``-- END CONFIG`` block, which each variant sets.
``python manifests/istio/render.py`` rewrites the manifests; ``--check`` exits 1 when a shipped
manifest differs from what this script renders (the unit tests run the same check).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
LUA_SOURCE = HERE / "service-router-headers.lua"
BEGIN, END = "-- BEGIN CONFIG\n", "-- END CONFIG\n"
FILTER_NAME = "service-router.headers"
LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"

VARIANTS: dict[str, dict[str, Any]] = {
    # Every sidecar's outbound traffic: apps forward the JWT / baggage, the sidecar sets headers.
    "envoyfilter-sidecar.yaml": {
        "name": "service-router-headers",
        "context": "SIDECAR_OUTBOUND",
        "workload_selector": None,
        "config": {
            "PAYLOAD_HEADER": "",
            "READ_BEARER": True,
            "READ_BAGGAGE": True,
            "STRIP_CLIENT_HEADERS": False,
        },
    },
    # The ingress gateway (optional): only propagated context routes, and a verified JWT wins.
    "gateway/envoyfilter-gateway.yaml": {
        "name": "service-router-headers-gateway",
        "context": "GATEWAY",
        "workload_selector": {"istio": "ingressgateway"},
        "config": {
            "PAYLOAD_HEADER": "x-service-router-jwt-payload",
            "READ_BEARER": True,
            "READ_BAGGAGE": True,
            "STRIP_CLIENT_HEADERS": True,
        },
    },
}


def _lua_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    raise ValueError(f"unsupported config value {value!r}")


def lua_source(config: dict[str, Any]) -> str:
    """The Lua source with its CONFIG block set to ``config`` (every key must already be there)."""
    text = LUA_SOURCE.read_text()
    head, _, rest = text.partition(BEGIN)
    block, _, tail = rest.partition(END)
    names = [line.split()[1] for line in block.splitlines() if line.startswith("local ")]
    if sorted(names) != sorted(config):
        raise ValueError(f"config keys {sorted(config)} do not match the Lua CONFIG block {names}")
    lines = "".join(f"local {name} = {_lua_literal(config[name])}\n" for name in names)
    return f"{head}{BEGIN}{lines}{END}{tail}"


def envoy_filter(variant: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if variant["workload_selector"]:
        spec["workloadSelector"] = {"labels": variant["workload_selector"]}
    spec["configPatches"] = [
        {
            "applyTo": "HTTP_FILTER",
            "match": {
                "context": variant["context"],
                "listener": {
                    "filterChain": {
                        "filter": {
                            "name": "envoy.filters.network.http_connection_manager",
                            "subFilter": {"name": "envoy.filters.http.router"},
                        }
                    }
                },
            },
            "patch": {
                "operation": "INSERT_BEFORE",
                "value": {
                    "name": FILTER_NAME,
                    "typed_config": {
                        "@type": LUA_TYPE,
                        "default_source_code": {"inline_string": lua_source(variant["config"])},
                    },
                },
            },
        }
    ]
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {
            "name": variant["name"],
            "namespace": "istio-system",
            "labels": {"app.kubernetes.io/part-of": "service-router"},
        },
        "spec": spec,
    }


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(filename: str) -> str:
    body = yaml.dump(envoy_filter(VARIANTS[filename]), Dumper=_Dumper, sort_keys=False, width=1000)
    return f"# Rendered by manifests/istio/render.py from service-router-headers.lua: do not edit.\n{body}"


def main(argv: list[str]) -> int:
    stale = []
    for filename in VARIANTS:
        path = HERE / filename
        text = render(filename)
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(filename)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for filename in stale:
        print(f"{filename} is stale: run python manifests/istio/render.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
