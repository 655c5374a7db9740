"""One error taxonomy for both controllers.

Why this exists: the Kubernetes client, the work queue and every reconcile function have to agree
on what a failure *means* — retry soon, retry later, or give up and tell a human. Mapping HTTP
statuses in one place keeps that decision out of call sites.

Guarantees:

- Every failed API call surfaces as an :class:`ApiError` subclass chosen by status (and, for 409,
  by the Status ``reason``); connection failures are :class:`ConnectionFailed` with status 0.
- :func:`is_transient` is the single classifier the work queue engine uses: server faults,
  throttling, stale writes and transport failures are transient; other 4xx are not.
- Reconcile outcomes are plain exceptions: :class:`TransientError`, :class:`PermanentError`,
  :class:`RequeueAfter`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """A failed Kubernetes API call, decoded from the server's ``Status`` object."""

    status: int = 0
    default_reason: str = ""

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.reason: str = reason if reason is not None else self.default_reason
        self.message: str = message
        self.retry_after: float | None = retry_after
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}".strip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, reason={self.reason!r}, message={self.message!r})"


class BadRequest(ApiError):
    status = 400
    default_reason = "BadRequest"


class Unauthorized(ApiError):
    status = 401
    default_reason = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    default_reason = "Forbidden"


class NotFound(ApiError):
    status = 404
    default_reason = "NotFound"


class MethodNotAllowed(ApiError):
    status = 405
    default_reason = "MethodNotAllowed"


class Conflict(ApiError):
    """409 with reason ``Conflict``: the write carried a stale ``resourceVersion``."""

    status = 409
    default_reason = "Conflict"


class AlreadyExists(ApiError):
    """409 with reason ``AlreadyExists``: a create for a name that is taken."""

    status = 409
    default_reason = "AlreadyExists"


class Gone(ApiError):
    """410: the requested ``resourceVersion`` was compacted; relist."""

    status = 410
    default_reason = "Expired"


class UnsupportedMediaType(ApiError):
    status = 415
    default_reason = "UnsupportedMediaType"


class Invalid(ApiError):
    status = 422
    default_reason = "Invalid"


class TooManyRequests(ApiError):
    status = 429
    default_reason = "TooManyRequests"


class ServerError(ApiError):
    status = 500
    default_reason = "InternalError"


class ConnectionFailed(ApiError):
    """The request never got an HTTP answer (refused, reset, DNS, TLS, read timeout)."""

    status = 0
    default_reason = "ConnectionFailed"


# --- reconcile outcomes ---------------------------------------------------------------------


class TransientError(Exception):
    """Retry the key with per-item exponential backoff."""


class PermanentError(Exception):
    """Retrying will not help: log, count, maybe emit an Event, and forget the key."""


class RequeueAfter(Exception):  # named after controller-runtime's Result.RequeueAfter
    """Not an error: look at this key again after ``seconds`` (e.g. waiting for a rollout)."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"requeue after {seconds}s")
        self.seconds = float(seconds)


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}


def _decode_status(body: bytes | str | Mapping[str, Any] | None) -> dict[str, Any]:
    if body is None:
        return {}
    if isinstance(body, Mapping):
        return dict(body)
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return {"message": text.strip()[:500]}
    return decoded if isinstance(decoded, dict) else {}


def _retry_after(headers: Mapping[str, str] | None, status: Mapping[str, Any]) -> float | None:
    value: Any = None
    if headers:
        # urllib3's HTTPHeaderDict is case-insensitive; a plain dict may not be.
        value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        details = status.get("details")
        if isinstance(details, Mapping):
            value = details.get("retryAfterSeconds")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP-date Retry-After: the rate limiter's own backoff is good enough


def error_from_status(
    status: int,
    body: bytes | str | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ApiError:
    """Map an HTTP status and a Kubernetes ``Status`` body to the matching :class:`ApiError`."""
    decoded = _decode_status(body)
    reason = decoded.get("reason") if isinstance(decoded.get("reason"), str) else None
    message = decoded.get("message") if isinstance(decoded.get("message"), str) else ""
    details = decoded.get("details") if isinstance(decoded.get("details"), Mapping) else None
    cls: type[ApiError]
    if status == 409:
        # Both races share 409; only the reason tells a stale update from a name clash.
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, ApiError)
    return cls(
        message or "",
        status=status,
        reason=reason,
        retry_after=_retry_after(headers, decoded),
        details=details,
    )


def is_transient(exc: BaseException) -> bool:
    """Would retrying the same call later plausibly succeed?

    Transient: 5xx, 429, 409 Conflict (re-read and retry), connection failures and timeouts,
    :class:`TransientError`. Not transient: every other 4xx, :class:`PermanentError`.
    Unknown exceptions are *not* classified here; the engine decides what to do with bugs.
    """
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, PermanentError):
        return False
    if isinstance(exc, ApiError):
        if isinstance(exc, (ConnectionFailed, Conflict, TooManyRequests)):
            return True
        return exc.status == 0 or exc.status >= 500
    return isinstance(exc, (ConnectionError, TimeoutError, socket.timeout))
