"""The container image registry the emulated kubelet pulls from, controlled by the test.

By default every image exists, so a Deployment rolls out whatever it names. A test makes images
missing by name (``delete``), by a predicate (``delete_matching``: "every PR image of web"), or by
switching to an allow-list (``allow_only``); ``push`` makes an image appear, which is what CI
does when it publishes the image of a commit. A kubelet that retries a pull after its back-off
sees the registry as it is then, so an image pushed late still starts the pod.

References are compared in their canonical form, as container runtimes resolve them:
``nginx`` is ``docker.io/library/nginx:latest`` and ``ghcr.io/o/a:1`` is itself. A digest
reference is its own name; the emulator does not relate digests to tags.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable

Predicate = Callable[[str], bool]


def canonical(reference: str) -> str:
    """``nginx:1.27`` -> ``docker.io/library/nginx:1.27``; a reference without tag or digest gets ``:latest``."""
    name, at, digest = reference.partition("@")
    first, slash, rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}"
        first, _, rest = name.partition("/")
    if first == "docker.io" and "/" not in rest:
        name = f"docker.io/library/{rest}"
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name + (at + digest if at else "")


def image_id(reference: str) -> str:
    """What ``containerStatuses[].imageID`` shows: the repository and a digest stable for the reference."""
    full = canonical(reference)
    if "@" in full:
        return full
    repository = full.rsplit(":", 1)[0] if ":" in full.rsplit("/", 1)[-1] else full
    return f"{repository}@sha256:{hashlib.sha256(full.encode()).hexdigest()}"


class ImageRegistry:
    """Which image references can be pulled; thread-safe, consulted at every pull attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._default = True
        self._pushed: set[str] = set()
        self._deleted: set[str] = set()
        self._missing_when: list[Predicate] = []
        self.pulls: list[str] = []
        """Every pull attempt, in order, as the pod spec named the image."""

    def exists(self, reference: str) -> bool:
        full = canonical(reference)
        with self._lock:
            if full in self._pushed:
                return True
            if full in self._deleted or any(p(reference) or p(full) for p in self._missing_when):
                return False
            return self._default

    def pull(self, reference: str) -> bool:
        """One pull attempt by the kubelet: recorded, and answered from the registry's state now."""
        with self._lock:
            self.pulls.append(reference)
        return self.exists(reference)

    def push(self, *references: str) -> None:
        """These images exist from now on, whatever ``delete``/``delete_matching``/``allow_only`` said."""
        with self._lock:
            for ref in map(canonical, references):
                self._pushed.add(ref)
                self._deleted.discard(ref)

    def delete(self, *references: str) -> None:
        """These images do not exist (until pushed)."""
        with self._lock:
            for ref in map(canonical, references):
                self._deleted.add(ref)
                self._pushed.discard(ref)

    def delete_matching(self, predicate: Predicate) -> None:
        """Images for which ``predicate`` (given the reference as written, then canonical) is true are missing
        unless pushed."""
        with self._lock:
            self._missing_when.append(predicate)

    def allow_only(self, references: Iterable[str]) -> None:
        """Only these images (and those pushed later) exist."""
        with self._lock:
            self._default = False
            self._pushed = {canonical(r) for r in references}
            self._deleted.clear()

    def reset(self) -> None:
        """Back to "every image exists"."""
        with self._lock:
            self._default = True
            self._pushed.clear()
            self._deleted.clear()
            self._missing_when.clear()
