"""Header propagation: the shipped Lua filter under LuaJIT and its Python twin, requests per second.

The Lua source is the one inside the shipped sidecar EnvoyFilter manifest, run by the test
harness's Envoy stub (``tests/unit/propagation``). Two Lua figures: the whole loop inside LuaJIT
(a fresh request handle per request, then ``envoy_on_request``: close to what one Envoy worker
pays, stub included), and one call per request from Python through lupa (adds the Python <-> Lua
crossings; what the tests pay). The Python figure is ``propagation.rewrite_headers`` with the
manifest's configuration. Each case is checked first — the headers set must be the expected
overrides — so a figure is never that of a filter that silently did nothing.
"""

from __future__ import annotations

from typing import Any

from unit.propagation.lua_harness import LuaFilter, header_value, lua_config, shipped_lua

from benchmarks.measure import Table, repeat
from service_router.propagation import rewrite_headers

NAME = "header-propagation"
TITLE = "3. Header propagation (per request, sidecar filter configuration)"

COMMON_HEADERS = [
    (":method", "GET"),
    (":path", "/api/v1/orders?limit=20"),
    (":authority", "checkout.default.svc.cluster.local"),
    ("user-agent", "okhttp/4.12.0"),
    ("accept", "application/json"),
    ("x-request-id", "0f0c4f3e-0d52-4a53-9b6e-5b7a5c1b9f11"),
    ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
]
OVERRIDES = {
    "service-router-checkout-default": "checkout-pr12.default",
    "service-router-payment-default": "payment-pr7.default",
    "service-router-catalog-shop": "catalog-pr301.shop",
}
JWT_CLAIMS = {
    "sub": "qa@example.com",
    "iss": "https://auth.example.com",
    "aud": "mesh",
    "exp": 4102444800,
    "service_routers": OVERRIDES,
}
BAGGAGE = "userId=alice,sessionId=7d1f,service-router-checkout-default=checkout-pr12.default;ttl=60,plan=gold"

CASES: list[tuple[str, list[tuple[str, str]], dict[str, str]]] = [
    ("no JWT, no baggage (common case)", COMMON_HEADERS, {}),
    (
        "JWT with 3 overrides",
        [*COMMON_HEADERS, ("authorization", header_value({"jwt": JWT_CLAIMS}))],
        OVERRIDES,
    ),
    (
        "baggage with 1 override in 4 members",
        [*COMMON_HEADERS, ("baggage", BAGGAGE)],
        {"service-router-checkout-default": "checkout-pr12.default"},
    ),
]

LUA_LOOP = """
return function(new_handle, on_request, entries, n)
  for i = 1, n do
    on_request(new_handle(entries, false, false))
  end
end
"""


def _routing(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("service-router-")}


def run(*, quick: bool = False) -> list[Table]:
    source = shipped_lua("sidecar")
    lua = LuaFilter(source)
    loop: Any = lua.lua.execute(LUA_LOOP)
    config = lua_config(source)
    batch = 200 if quick else 2000
    runs = {"min_runs": 3, "max_runs": 1000, "min_seconds": 0.1 if quick else 0.5}
    table = Table(
        TITLE,
        [
            "request",
            "headers set",
            "Lua in LuaJIT req/s",
            "Lua µs/req p95",
            "Lua via lupa req/s",
            "Python req/s",
            "Python µs/req p95",
        ],
    )
    for label, headers, expected in CASES:
        lua_out = _routing(lua.run(headers).as_dict())
        python_out = _routing(rewrite_headers(dict(headers), config)[0])
        if lua_out != expected or python_out != expected:
            raise AssertionError(f"{label}: Lua set {lua_out}, Python set {python_out}, expected {expected}")
        entries = lua.lua.table_from([lua.lua.table_from([k, v]) for k, v in headers])
        in_lua = repeat(lambda e=entries: loop(lua.new_handle, lua.on_request, e, batch), ops=batch, **runs)
        via_lupa = repeat(lambda h=headers: lua.run(h), **runs)
        as_dict = dict(headers)
        python = repeat(lambda h=as_dict: [rewrite_headers(h, config) for _ in range(batch)], ops=batch, **runs)
        table.add(
            label,
            len(expected),
            in_lua.per_second,
            in_lua.p95 * 1e6,
            via_lupa.per_second,
            python.per_second,
            python.p95 * 1e6,
        )
    table.notes += [
        f"{len(COMMON_HEADERS)} ordinary request headers in every case; the JWT is HS256 from PyJWT"
        " (the filter never verifies signatures: Istio's RequestAuthentication does).",
        f"Lua in LuaJIT / Python: batches of {batch} requests, median per request (p95 of the batch means);"
        " Lua via lupa: one Python call per request, including building the Lua tables and reading the result.",
        "Lua = the inline source of manifests/istio/envoyfilter-sidecar.yaml; Python = service_router.propagation.",
    ]
    return [table]
