"""The error taxonomy: statuses map to one class each, and the transient/permanent split is fixed."""

from __future__ import annotations

import json

import pytest

from controller_common import errors


def _status(code: int, reason: str, message: str = "m", **details: object) -> dict[str, object]:
    body: dict[str, object] = {"kind": "Status", "status": "Failure", "code": code, "reason": reason}
    body["message"] = message
    if details:
        body["details"] = details
    return body


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, _status(404, "NotFound"), errors.NotFound),
        (409, _status(409, "Conflict"), errors.Conflict),
        (409, _status(409, "AlreadyExists"), errors.AlreadyExists),
        (409, None, errors.Conflict),
        (410, _status(410, "Expired"), errors.Gone),
        (422, _status(422, "Invalid"), errors.Invalid),
        (403, _status(403, "Forbidden"), errors.Forbidden),
        (415, _status(415, "UnsupportedMediaType"), errors.UnsupportedMediaType),
        (429, _status(429, "TooManyRequests"), errors.TooManyRequests),
        (500, _status(500, "InternalError"), errors.ServerError),
        (503, b"service unavailable", errors.ServerError),
        (418, None, errors.ApiError),
    ],
    ids=[
        "404",
        "409-conflict",
        "409-already-exists",
        "409-no-body",
        "410",
        "422",
        "403",
        "415",
        "429",
        "500",
        "503-non-json",
        "unknown-4xx",
    ],
)
def test_error_from_status_picks_class(status: int, body: object, expected: type[errors.ApiError]) -> None:
    exc = errors.error_from_status(status, body)  # type: ignore[arg-type]
    assert type(exc) is expected
    assert exc.status == status


@pytest.mark.parametrize(
    "body",
    [
        _status(409, "Conflict", "the object has been modified"),
        json.dumps(_status(409, "Conflict", "the object has been modified")),
        json.dumps(_status(409, "Conflict", "the object has been modified")).encode(),
    ],
    ids=["dict", "str", "bytes"],
)
def test_error_from_status_reads_reason_and_message_from_any_body_form(body: object) -> None:
    exc = errors.error_from_status(409, body)  # type: ignore[arg-type]
    assert exc.reason == "Conflict"
    assert exc.message == "the object has been modified"
    assert "409" in str(exc)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "3"}, None, 3.0),
        ({"retry-after": "1.5"}, None, 1.5),
        (None, _status(429, "TooManyRequests", retryAfterSeconds=7), 7.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None, None),
        (None, None, None),
    ],
    ids=["header", "lowercase-header", "status-details", "http-date-ignored", "absent"],
)
def test_retry_after(headers: dict[str, str] | None, body: object, expected: float | None) -> None:
    exc = errors.error_from_status(429, body, headers)  # type: ignore[arg-type]
    assert exc.retry_after == expected


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (errors.ServerError("x", status=503), True),
        (errors.TooManyRequests("x"), True),
        (errors.Conflict("x"), True),
        (errors.ConnectionFailed("x"), True),
        (errors.TransientError("x"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (errors.NotFound("x"), False),
        (errors.AlreadyExists("x"), False),
        (errors.Invalid("x"), False),
        (errors.Forbidden("x"), False),
        (errors.Gone("x"), False),
        (errors.PermanentError("x"), False),
        (ValueError("bug"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert errors.is_transient(exc) is transient


def test_requeue_after_carries_seconds() -> None:
    assert errors.RequeueAfter(2).seconds == 2.0
