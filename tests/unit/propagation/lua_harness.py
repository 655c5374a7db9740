"""Test support for header propagation: the shipped Lua under LuaJIT, and the shared table of cases.

The Lua source is taken from the shipped EnvoyFilter manifests (what Istio would load), not from
the ``.lua`` file they are rendered from; ``test_lua_manifests.py`` proves the two agree.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import yaml
from lupa import luajit21

from service_router.propagation import FilterConfig

HERE = Path(__file__).resolve().parent
ISTIO_DIR = HERE.parents[2] / "manifests" / "istio"
MANIFESTS = {
    "sidecar": ISTIO_DIR / "envoyfilter-sidecar.yaml",
    "gateway": ISTIO_DIR / "gateway" / "envoyfilter-gateway.yaml",
}
CASES: list[dict[str, Any]] = json.loads((HERE / "cases.json").read_text())["cases"]


def shipped_manifest(variant: str) -> dict[str, Any]:
    return yaml.safe_load(MANIFESTS[variant].read_text())


def shipped_lua(variant: str) -> str:
    patch = shipped_manifest(variant)["spec"]["configPatches"][0]["patch"]
    return patch["value"]["typed_config"]["default_source_code"]["inline_string"]


def lua_config(source: str) -> FilterConfig:
    """The CONFIG block of a Lua source, as the Python model's config."""
    block = source.split("-- BEGIN CONFIG\n", 1)[1].split("-- END CONFIG\n", 1)[0]
    values = dict(re.findall(r"^local (\w+) = (.+)$", block, flags=re.M))
    return FilterConfig(
        payload_header=json.loads(values["PAYLOAD_HEADER"]),
        read_bearer=values["READ_BEARER"] == "true",
        read_baggage=values["READ_BAGGAGE"] == "true",
        strip_client_headers=values["STRIP_CLIENT_HEADERS"] == "true",
    )


@dataclass(frozen=True)
class LuaRun:
    headers: list[tuple[str, str]]
    logs: list[tuple[str, str]]
    route_cache_cleared: int

    def as_dict(self) -> dict[str, str]:
        """One value per name, joined with "," as Envoy's ``get`` does."""
        joined: dict[str, list[str]] = {}
        for name, value in self.headers:
            joined.setdefault(name, []).append(value)
        return {name: ",".join(values) for name, values in joined.items()}

    def warnings(self) -> list[str]:
        return [message for level, message in self.logs if level in ("Warn", "Err", "Critical")]


class LuaFilter:
    """One LuaJIT state holding the stub and the filter, as one Envoy worker would."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lua = luajit21.LuaRuntime(unpack_returned_tuples=True)
        self.new_handle = self.lua.execute((HERE / "envoy_stub.lua").read_text())
        self.lua.execute(source)
        self.on_request = self.lua.globals().envoy_on_request

    def run(self, headers: Sequence[tuple[str, str]], *, old_envoy: bool = False, broken: bool = False) -> LuaRun:
        entries = self.lua.table_from([self.lua.table_from([k, v]) for k, v in headers])
        handle = self.new_handle(entries, old_envoy, broken)
        result = self.on_request(handle)
        assert result is None, "envoy_on_request must not return anything"
        out = [(e[1], e[2]) for e in handle._headers.entries.values()]
        logs = [(e[1], e[2]) for e in handle.logs.values()]
        return LuaRun(out, logs, int(handle.route_cache_cleared))


def b64url(raw: str | bytes) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_value(spec: Any) -> str:
    """A header value from a case: a string, or a recipe for a token.

    ``{"jwt": payload}``          "Bearer " + an HS256 JWT minted by PyJWT (any key: never verified);
                                  ``"scheme"`` replaces "Bearer", ``"pad_bytes": n`` adds a claim of n bytes
    ``{"jwt_payload_text": s}``   "Bearer " + a JWS whose payload segment is base64url(s), verbatim
    ``{"jwt_payload_segment": s}`` "Bearer " + a JWS whose payload segment is s, verbatim
    ``{"b64": payload}``          base64url of the JSON of payload (the verified-payload header);
                                  ``"pad_bytes": n`` adds a claim of n bytes
    ``{"b64_text": s}``           base64url of s, verbatim
    ``{"repeat": s, "times": n, "sep": ","}`` s repeated
    ``{"concat": [spec, ...]}``   the values of the specs, concatenated
    """
    if isinstance(spec, str):
        return spec
    padding = {"padding": "x" * spec["pad_bytes"]} if "pad_bytes" in spec else {}
    if "jwt" in spec:
        token = jwt.encode(
            {**spec["jwt"], **padding}, "any key: the filter never verifies signatures", algorithm="HS256"
        )
        return f"{spec.get('scheme', 'Bearer')} {token}"
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}))
    if "jwt_payload_text" in spec:
        return f"Bearer {head}.{b64url(spec['jwt_payload_text'])}.c2ln"
    if "jwt_payload_segment" in spec:
        return f"Bearer {head}.{spec['jwt_payload_segment']}.c2ln"
    if "b64" in spec:
        return b64url(json.dumps({**spec["b64"], **padding}))
    if "b64_text" in spec:
        return b64url(spec["b64_text"])
    if "repeat" in spec:
        return spec.get("sep", ",").join([spec["repeat"]] * spec["times"])
    if "concat" in spec:
        return "".join(header_value(part) for part in spec["concat"])
    raise ValueError(f"unknown header recipe {spec!r}")


def request_headers(case: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(name, header_value(spec)) for name, spec in case["request"]]
