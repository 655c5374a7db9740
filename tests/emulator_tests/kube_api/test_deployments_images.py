"""The image registry the emulated kubelet pulls from: canonical names and what a test can say."""

from __future__ import annotations

import pytest

from emulators.kube_api.images import ImageRegistry, canonical


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("ghcr.io/mercari/web:abc", "ghcr.io/mercari/web:abc"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("registry:5000/app:1", "registry:5000/app:1"),
        ("nginx@sha256:" + "a" * 64, "docker.io/library/nginx@sha256:" + "a" * 64),
    ],
    ids=["bare", "tag", "hub-user", "other-registry", "localhost-port", "host-port-tag", "digest"],
)
def test_canonical(reference: str, expected: str) -> None:
    assert canonical(reference) == expected


def test_every_image_exists_by_default() -> None:
    assert ImageRegistry().exists("anything/at:all")


def test_delete_and_push_by_name_in_any_spelling() -> None:
    images = ImageRegistry()
    images.delete("nginx:1.27")
    assert not images.exists("docker.io/library/nginx:1.27")
    images.push("docker.io/library/nginx:1.27")
    assert images.exists("nginx:1.27")


def test_a_predicate_makes_images_missing_until_pushed() -> None:
    images = ImageRegistry()
    images.delete_matching(lambda ref: ref.startswith("ghcr.io/mercari/web:pr-"))
    assert not images.exists("ghcr.io/mercari/web:pr-7")
    assert images.exists("ghcr.io/mercari/web:1.0.0")
    images.push("ghcr.io/mercari/web:pr-7")
    assert images.exists("ghcr.io/mercari/web:pr-7")


def test_allow_only_knows_just_those_images_and_later_pushes() -> None:
    images = ImageRegistry()
    images.allow_only(["nginx:1.27"])
    assert images.exists("nginx:1.27") and not images.exists("nginx:2")
    images.push("nginx:2")
    assert images.exists("nginx:2")
    images.reset()
    assert images.exists("whatever")


def test_pulls_are_recorded_as_written() -> None:
    images = ImageRegistry()
    images.delete("a")
    assert [images.pull("a"), images.pull("b")] == [False, True]
    assert images.pulls == ["a", "b"]
