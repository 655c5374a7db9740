"""Route table and request context shared by the endpoint modules.

Endpoints register with ``@route("GET", "/repos/{owner}/{repo}/pulls/{number}")``; ``{name}``
matches one path segment and ``{name:path}`` the rest of the path (branch names may contain
slashes). A handler gets a ``Ctx`` and returns a ``Response`` or raises ``ApiError``. It runs
with the store's lock held, so it may read and change the state freely.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ApiError, not_found
from .model import Pull, Repo, User
from .serializers import Urls
from .store import Store

if TYPE_CHECKING:
    from .credentials import App
    from .server import GitHubApiServer


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    last_modified: float | None = None


@dataclass
class Ctx:
    server: GitHubApiServer
    store: Store
    urls: Urls
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    token: str | None
    user: User | None
    app: App | None = None  # set when the caller authenticated with a GitHub App JWT
    rate_key: str | None = None

    @property
    def login(self) -> str | None:
        return self.user.login if self.user else None

    def me(self) -> User:
        if self.user is None:
            raise ApiError(401, "Requires authentication")
        return self.user

    def repo(self, *, push: bool = False) -> Repo:
        repo = self.store.find_repo(self.params["owner"], self.params["repo"], self.login)
        if push:
            self.me()
            if not repo.can_push(self.login):
                raise ApiError(403, "Resource not accessible by personal access token")
        return repo

    def pull(self, repo: Repo) -> Pull:
        try:
            number = int(self.params["number"])
        except ValueError:
            raise not_found() from None
        pull = repo.pulls.get(number)
        if pull is None:
            raise not_found()
        return pull

    def field(self, name: str, kind: type | tuple[type, ...] = str, *, required: bool = True) -> Any:
        """A field of the JSON body, 422 when required and missing or of the wrong type."""
        body = self.body if isinstance(self.body, dict) else {}
        if name not in body or body[name] is None:
            if required:
                raise ApiError(422, f'Invalid request.\n\n"{name}" wasn\'t supplied.')
            return None
        value = body[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ApiError(
                422,
                f"Invalid request.\n\nFor '{name}', {value!r} is not a {getattr(kind, '__name__', kind)}.",
            )
        return value


Handler = Callable[[Ctx], Response]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def _compile(template: str) -> re.Pattern[str]:
    def group(m: re.Match[str]) -> str:
        name, _, kind = m.group(1).partition(":")
        return f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"

    return re.compile("^" + re.sub(r"\{([^}]+)\}", group, template) + "$")


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, _compile(template), fn))
        # the most literal template wins: ".../commits/{ref:path}/status" before ".../commits/{ref:path}"
        ROUTES.sort(key=lambda r: -len(re.sub(r"\(\?P<[^>]+>[^)]*\)", "", r[1].pattern)))
        return fn

    return register


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    for m, pattern, fn in ROUTES:
        if m != method:
            continue
        match = pattern.match(path)
        if match:
            return fn, {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
    raise not_found()
