"""The shipped EnvoyFilters: valid for Istio, in sync with the one Lua source, wired where the router looks."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from unit.propagation.lua_harness import ISTIO_DIR, MANIFESTS, lua_config, shipped_lua, shipped_manifest

from istio_schema import istio_errors
from service_router.propagation import DEFAULT_PAYLOAD_HEADER, FilterConfig

VARIANTS = sorted(MANIFESTS)


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("istio_render", ISTIO_DIR / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("variant", VARIANTS)
def test_envoy_filter_validates_against_istio_crd(variant: str, shared_dir: Path) -> None:
    assert istio_errors(shipped_manifest(variant), shared_dir) == []


def test_example_request_authentication_validates(shared_dir: Path) -> None:
    example = yaml.safe_load((ISTIO_DIR / "gateway" / "requestauthentication-example.yaml").read_text())
    assert istio_errors(example, shared_dir) == []
    assert example["spec"]["jwtRules"][0]["outputPayloadToHeader"] == DEFAULT_PAYLOAD_HEADER


@pytest.mark.parametrize("variant", VARIANTS)
def test_shipped_manifest_is_rendered_from_the_lua_source(variant: str) -> None:
    """Nobody edited the YAML by hand: render.py reproduces it byte for byte from the .lua file."""
    render = _render_module()
    path = MANIFESTS[variant]
    filename = str(path.relative_to(ISTIO_DIR))
    assert path.read_text() == render.render(filename)
    assert render.main(["--check"]) == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_inline_source_differs_from_the_lua_file_only_in_config(variant: str) -> None:
    source = (ISTIO_DIR / "service-router-headers.lua").read_text()
    inline = shipped_lua(variant)

    def outside_config(text: str) -> tuple[str, str]:
        head, _, rest = text.partition("-- BEGIN CONFIG\n")
        return head, rest.partition("-- END CONFIG\n")[2]

    assert outside_config(inline) == outside_config(source)


@pytest.mark.parametrize(
    ("variant", "context", "expected"),
    [
        ("sidecar", "SIDECAR_OUTBOUND", FilterConfig()),
        (
            "gateway",
            "GATEWAY",
            FilterConfig(payload_header=DEFAULT_PAYLOAD_HEADER, strip_client_headers=True),
        ),
    ],
    ids=VARIANTS,
)
def test_filter_sits_before_the_router_with_its_config(variant: str, context: str, expected: FilterConfig) -> None:
    """Inserted before envoy.filters.http.router, so the headers exist when the route is (re)computed."""
    manifest: dict[str, Any] = shipped_manifest(variant)
    (patch,) = manifest["spec"]["configPatches"]
    assert patch["applyTo"] == "HTTP_FILTER"
    assert patch["match"]["context"] == context
    assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == "envoy.filters.http.router"
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    typed = patch["patch"]["value"]["typed_config"]
    assert typed["@type"] == "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
    assert lua_config(shipped_lua(variant)) == expected


@pytest.mark.parametrize(
    ("kustomization", "resources"),
    [
        ("kustomization.yaml", ["envoyfilter-sidecar.yaml"]),
        ("gateway/kustomization.yaml", ["envoyfilter-gateway.yaml"]),
    ],
    ids=["sidecar", "gateway"],
)
def test_kustomizations_list_the_filters(kustomization: str, resources: list[str]) -> None:
    path = ISTIO_DIR / kustomization
    document = yaml.safe_load(path.read_text())
    assert document["resources"] == resources
    assert all((path.parent / resource).is_file() for resource in resources)
