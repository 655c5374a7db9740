"""Which GitHub repository an origin names, however the user spelled it.

Users paste whatever their clone button gave them: an HTTPS URL, an SSH URL, scp-like
``git@host:org/repo.git`` or plain ``org/repo``. All of them normalise to one
:class:`Repository`, so two origins naming the same repository differently share one fetch
(``Repository`` is hashable and compares equal). Anything else is rejected with a message that
lists the accepted forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GITHUB_COM = "github.com"

ACCEPTED_FORMS = (
    "https://github.com/<owner>/<repo>, https://github.com/<owner>/<repo>.git, "
    "https://<enterprise-host>/<owner>/<repo>, git@github.com:<owner>/<repo>.git, "
    "ssh://git@<host>/<owner>/<repo>.git or <owner>/<repo>"
)

# GitHub's own rules: owners are alphanumerics and single hyphens; repositories also allow . and _.
_OWNER = r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))"
_NAME = r"(?P<name>[A-Za-z0-9._-]{1,100}?)"
_HOST = r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?)"
_TAIL = rf"{_OWNER}/{_NAME}(?:\.git)?/?"

_FORMS = (
    re.compile(rf"https?://(?:[^@/\s]+@)?{_HOST}/{_TAIL}"),
    re.compile(rf"ssh://(?:[A-Za-z0-9._-]+@)?{_HOST}/{_TAIL}"),
    re.compile(rf"[A-Za-z0-9._-]+@{_HOST}:{_TAIL}"),
    re.compile(rf"(?P<host>){_TAIL}"),
)


@dataclass(frozen=True, eq=False)
class Repository:
    """A repository on one GitHub host. Equality and hashing ignore case, as GitHub does."""

    host: str
    owner: str
    name: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.host.lower(), self.owner.lower(), self.name.lower())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Repository) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def is_github_com(self) -> bool:
        return self.host == GITHUB_COM

    @property
    def api_url(self) -> str:
        """REST base URL: ``https://api.github.com``, or ``https://<host>/api/v3`` for Enterprise."""
        return "https://api.github.com" if self.is_github_com else f"https://{self.host}/api/v3"

    @property
    def html_url(self) -> str:
        return f"https://{self.host}/{self.full_name}"

    def __str__(self) -> str:
        return self.html_url


def parse_repository(text: str) -> Repository:
    """Parse any accepted spelling of a repository; ``ValueError`` names the accepted forms."""
    candidate = text.strip() if isinstance(text, str) else ""
    for form in _FORMS:
        match = form.fullmatch(candidate)
        if match is None:
            continue
        host = (match.group("host") or GITHUB_COM).lower()
        if host in ("www.github.com", "api.github.com"):
            host = GITHUB_COM
        name = match.group("name")
        if name in (".", "..") or name.endswith(".git"):
            break
        return Repository(host=host, owner=match.group("owner"), name=name)
    raise ValueError(f"{quoted(text)} is not a GitHub repository; use one of: {ACCEPTED_FORMS}")


def quoted(text: object, limit: int = 40) -> str:
    """A value quoted for an error message, cut: the message ends on an Event (at most 1,024
    characters), which must still show the hint that follows the value, not kilobytes of input."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(str(text))} characters)"
