"""Which GitHub hosts may receive the replicator's credentials, and at which REST base URL.

The repository annotation is written by whoever may annotate a Deployment, which is not the
person who configured the replicator's GitHub token or App. If the annotation chose the host,
``https://attacker.example/org/repo`` would make the replicator send its token (or an App
installation token) there. So the hosts are the operator's choice, made with flags, and the
annotation only picks among them:

- ``github.com`` (and its ``www.``/``api.`` spellings) is served by ``--github-api-url``;
- the host of ``--github-api-url`` itself, when that is a GitHub Enterprise Server, by that URL;
- every ``--github-enterprise-api-url HOST=URL`` by its URL.

Any other host is refused before a connection is opened: no request, no credential, a Warning
Event on the origin naming the flag that would allow it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from replicator.repository import GITHUB_COM, Repository

DEFAULT_GITHUB_API_URL = "https://api.github.com"
_GITHUB_COM_API_HOSTS = frozenset({"api.github.com", GITHUB_COM})


@dataclass(frozen=True)
class GitHubHosts:
    """The operator's map from repository host to REST base URL; nothing outside it is contacted."""

    api_url: str = DEFAULT_GITHUB_API_URL
    enterprise: Mapping[str, str] = field(default_factory=dict)
    _by_host: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_host = {host.lower(): url.rstrip("/") for host, url in self.enterprise.items()}
        api_host = urllib.parse.urlsplit(self.api_url).netloc.lower()
        if api_host and api_host not in _GITHUB_COM_API_HOSTS:
            # --github-api-url names an Enterprise Server itself: its repositories are served there.
            by_host.setdefault(api_host, self.api_url.rstrip("/"))
        object.__setattr__(self, "_by_host", by_host)

    def api_url_for(self, repository: Repository) -> str | None:
        """The REST base URL serving ``repository``, or None when its host was never configured."""
        if repository.is_github_com:
            return self.api_url.rstrip("/")
        return self._by_host.get(repository.host.lower())

    def refusal(self, repository: Repository) -> str | None:
        """Why ``repository`` is not fetched (a message naming the fix), or None when it may be."""
        if self.api_url_for(repository) is not None:
            return None
        host = repository.host
        return (
            f"repository {repository} is on {host}, which is not a configured GitHub host, so nothing is "
            f"fetched and no credential is sent there; GitHub credentials go only to --github-api-url "
            f"({self.api_url}, for github.com) and to hosts mapped with --github-enterprise-api-url. If {host} "
            f"is your GitHub Enterprise Server, start the replicator with "
            f"--github-enterprise-api-url={host}=https://{host}/api/v3"
        )
