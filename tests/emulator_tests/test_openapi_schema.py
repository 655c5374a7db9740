"""The CRD schema validator rejects what kube-apiserver rejects for Istio's real CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from istio_schema import istio_errors, load_crd_schemas


def _vs(api_version: str, spec: dict) -> dict:
    return {
        "apiVersion": api_version,
        "kind": "VirtualService",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": spec,
    }


VALID_SPEC = {
    "hosts": ["echo.default.svc.cluster.local"],
    "http": [
        {
            "name": "pr",
            "match": [{"headers": {"service-router-echo-default": {"exact": "echo-pr1.default"}}}],
            "route": [{"destination": {"host": "echo-pr1.default.svc.cluster.local", "port": {"number": 80}}}],
            "timeout": "5s",
            "retries": {"attempts": 3, "perTryTimeout": "2s"},
        },
        {"route": [{"destination": {"host": "echo.default.svc.cluster.local"}, "weight": 100}]},
    ],
}


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_valid_virtual_service_passes_every_served_version(shared_dir: Path, version: str) -> None:
    assert istio_errors(_vs(f"networking.istio.io/{version}", VALID_SPEC), shared_dir) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"hosts": ["a"], "bogus": 1}, 'unknown field "bogus"'),
        ({"hosts": "a"}, "is not of type 'array'"),
        ({"hosts": ["a"], "http": [{"route": [{"destination": {"hots": "x"}}]}]}, 'unknown field "hots"'),
        ({"hosts": ["a"], "http": [{"route": [{"destination": {"host": "x"}, "weight": "ten"}]}]}, "weight"),
    ],
    ids=["unknown-top-field", "wrong-type", "typo-in-destination", "weight-not-integer"],
)
def test_invalid_virtual_service_is_rejected(shared_dir: Path, spec: dict, expected: str) -> None:
    errors = istio_errors(_vs("networking.istio.io/v1", spec), shared_dir)
    assert any(expected in e for e in errors), errors


def test_every_istio_crd_version_is_loaded(shared_dir: Path) -> None:
    kinds = load_crd_schemas(shared_dir)
    for version in ("v1", "v1beta1", "v1alpha3"):
        assert (f"networking.istio.io/{version}", "VirtualService") in kinds
    assert ("networking.istio.io/v1alpha3", "EnvoyFilter") in kinds
