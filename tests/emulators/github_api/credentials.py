"""Who is calling: personal tokens, GitHub App JWTs and installation access tokens.

- ``add_token(token, login)``: a personal access token acting as that user.
- GitHub Apps (``add_app``) authenticate with an RS256 JWT signed by the app's private key
  (``iss`` = app id, ``exp`` at most 10 minutes ahead, as GitHub checks); a JWT is accepted only on
  the ``/app...`` and ``.../installation`` endpoints, as on GitHub.
- An installation (``install_app``) covers every repository of one account. Its access tokens
  (``POST /app/installations/{id}/access_tokens``) act as the bot user ``<slug>[bot]``, expire
  after ``installation_token_ttl`` seconds (GitHub: one hour) and then answer 401 Bad credentials.

Rate limits are kept per *rate key*: the token itself for personal tokens, ``installation:<id>``
for installation tokens (so refreshing a token does not refill the bucket, as on GitHub), and
``app:<id>`` for JWTs.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from .errors import ApiError
from .model import User, next_id, now
from .store import Store

MAX_JWT_LIFETIME = 600


@dataclass
class App:
    id: int
    slug: str
    public_key: Any
    owner: User
    created_at: float = field(default_factory=now)


@dataclass
class Installation:
    id: int
    app: App
    account: User
    bot: User
    created_at: float = field(default_factory=now)


@dataclass
class Principal:
    """The caller. ``app`` is set only for an app JWT (then ``user`` is None)."""

    user: User | None
    rate_key: str | None
    app: App | None = None
    installation: Installation | None = None


def bad_credentials(message: str = "Bad credentials") -> ApiError:
    return ApiError(401, message)


class Credentials:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.tokens: dict[str, str] = {}
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.installation_tokens: dict[str, tuple[Installation, float]] = {}
        self.installation_token_ttl: float = 3600.0

    def add_token(self, token: str, login: str) -> None:
        self.store.user(login)
        self.tokens[token] = login

    def add_app(self, app_id: int, public_key_pem: str | bytes, *, slug: str, owner: str) -> App:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        app = App(app_id, slug, load_pem_public_key(pem), self.store.user(owner))
        self.apps[app_id] = app
        return app

    def install(self, app_id: int, account: str) -> Installation:
        app = self.apps[app_id]
        owner = self.store.users.get(account.lower()) or self.store.user(account)
        bot = self.store.user(f"{app.slug}[bot]", type="Bot")
        owner.members.add(bot.login)  # the installation covers every repository of the account
        installation = Installation(next_id(), app, owner, bot)
        self.installations[installation.id] = installation
        return installation

    def uninstall(self, installation_id: int) -> None:
        installation = self.installations.pop(installation_id)
        if not any(
            i.account is installation.account and i.bot is installation.bot for i in self.installations.values()
        ):
            installation.account.members.discard(installation.bot.login)
        for token, (inst, _) in list(self.installation_tokens.items()):
            if inst is installation:
                del self.installation_tokens[token]

    def mint(self, installation: Installation) -> tuple[str, float]:
        token = "ghs_" + secrets.token_urlsafe(27)[:36]
        expires = time.time() + self.installation_token_ttl
        self.installation_tokens[token] = (installation, expires)
        return token, expires

    def installation_for(self, account: User) -> Installation | None:
        return next((i for i in self.installations.values() if i.account is account), None)

    def authenticate(self, token: str | None) -> Principal:
        if token is None:
            return Principal(None, None)
        if token in self.tokens:
            return Principal(self.store.user(self.tokens[token]), token)
        if token in self.installation_tokens:
            installation, expires = self.installation_tokens[token]
            if time.time() >= expires:
                raise bad_credentials()
            return Principal(installation.bot, f"installation:{installation.id}", installation=installation)
        if token.count(".") == 2:
            app = self._verify_jwt(token)
            return Principal(None, f"app:{app.id}", app=app)
        raise bad_credentials()

    def _verify_jwt(self, token: str) -> App:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app = self.apps.get(int(claims["iss"]))
        except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
            raise bad_credentials("A JSON web token could not be decoded") from None
        if app is None:
            raise bad_credentials("Integration not found")
        try:
            claims = jwt.decode(
                token, app.public_key, algorithms=["RS256"], leeway=60, options={"require": ["exp", "iat"]}
            )
        except jwt.ExpiredSignatureError:
            raise bad_credentials("'Expiration time' claim ('exp') must be a numeric value in the future") from None
        except jwt.InvalidTokenError:
            raise bad_credentials("A JSON web token could not be decoded") from None
        if claims["exp"] - time.time() > MAX_JWT_LIFETIME + 60:
            raise bad_credentials("'Expiration time' claim ('exp') is too far in the future")
        return app
