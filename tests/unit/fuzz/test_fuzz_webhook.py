"""Webhook deliveries, fuzzed through the receiver's pure handler and its Content-Length check.

Anyone who reaches the port can send anything; anyone holding the secret can sign anything. Either
way the answer is one of the documented (status, result) pairs, the repository callback runs only
for an accepted ``pull_request`` delivery, and nothing raises or takes long.
"""

from __future__ import annotations

import json
import urllib.parse
from email.message import Message
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from unit.fuzz.strategies import any_text, hostile, json_values, nested_json

from replicator.repository import Repository
from replicator.webhook import (
    MAX_BODY_BYTES,
    PULL_REQUEST_ACTIONS,
    Refused,
    announced_length,
    handle_delivery,
    signature_for,
)

SECRET = b"webhook-secret"
API_HOSTS = {"https://ghe.example/api/v3": "ghe.example", "http://127.0.0.1:9/api/v3": "github.com"}
ANSWERS = {
    (401, "bad-signature"),
    (401, "missing-signature"),
    (400, "malformed"),
    (202, "ping"),
    (202, "ignored"),
    (202, "accepted"),
}

repository_objects = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "url": hostile("https://ghe.example/api/v3/repos/team/app", "http://127.0.0.1:9/api/v3/repos/a/b")
            | json_values,
            "html_url": hostile("https://github.com/mercari/echo", "https://ghe.example/team/app") | json_values,
            "full_name": hostile("mercari/echo") | json_values,
        },
    ),
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(sorted(PULL_REQUEST_ACTIONS)) | json_values,
        "repository": repository_objects,
        "pull_request": json_values,
    },
)


def _form(text: str) -> bytes:
    return urllib.parse.urlencode({"payload": text}).encode()


bodies = st.one_of(
    payloads.map(lambda p: json.dumps(p).encode()),
    payloads.map(lambda p: _form(json.dumps(p))),
    json_values.map(lambda v: json.dumps(v).encode()),
    nested_json().map(str.encode),
    nested_json().map(_form),
    st.binary(max_size=200),
    hostile("payload=", "payload=%7B%7D", "a=b&payload=1").map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.tuples(st.binary(min_size=1, max_size=8), st.integers(1, 3_000_000)).map(lambda t: t[0] * (t[1] // len(t[0]))),
)
content_types = st.one_of(
    st.none(),
    st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8"]
    ),
    any_text,
)
events = st.one_of(st.none(), st.sampled_from(["pull_request", "ping", "push", "PULL_REQUEST"]), any_text)


def _signed_junk(payload: dict[str, Any]) -> dict[str, Any]:
    return {"body": json.dumps(payload).encode(), "event": "pull_request", "content_type": None, "signed": True}


@given(body=bodies, event=events, content_type=content_types, signed=st.booleans(), forged=any_text)
# Found by the fuzzer: an unhashable action was looked up in a set (TypeError, answered 500).
@example(**_signed_junk({"action": [], "repository": {}}), forged="")
# A repository URL from a configured API host named an empty owner (or "..").
@example(
    **_signed_junk({"action": "opened", "repository": {"url": "https://ghe.example/api/v3/repos//app"}}), forged=""
)
@example(
    **_signed_junk({"action": "opened", "repository": {"url": "https://ghe.example/api/v3/repos/../z"}}), forged=""
)
def test_any_delivery_gets_a_documented_answer(
    body: bytes, event: str | None, content_type: str | None, signed: bool, forged: str
) -> None:
    seen: list[Any] = []
    signature = signature_for(SECRET, body) if signed else (forged or None)
    answer = handle_delivery(
        secret=SECRET,
        event=event,
        signature=signature,
        body=body,
        on_repository=seen.append,
        content_type=content_type,
        api_hosts=API_HOSTS,
    )
    assert answer in ANSWERS
    if not signed:
        assert answer[0] == 401
    assert bool(seen) == (answer == (202, "accepted"))
    for repository in seen:
        assert isinstance(repository, Repository) and repository.owner and repository.name


header_values = hostile("0", "17", str(MAX_BODY_BYTES), str(MAX_BODY_BYTES + 1), "+5", " 5", "1_0", "٣", "-1")


@given(lengths=st.lists(header_values, max_size=3), chunked=st.booleans())
def test_any_content_length_is_a_number_within_the_limit_or_refused(lengths: list[str], chunked: bool) -> None:
    headers = Message()
    for value in lengths:
        headers["Content-Length"] = value.replace("\n", " ").replace("\r", " ")
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    try:
        length = announced_length(headers)
    except Refused as refused:
        assert (refused.status, refused.result) in {(411, "length-required"), (400, "malformed"), (413, "too-large")}
        return
    assert 0 <= length <= MAX_BODY_BYTES
