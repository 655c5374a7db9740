"""Hostile text for the fuzz tests: what a person, a script or an attacker may put in outside input.

Unicode of every category (control characters, bidi marks, combining characters, astral planes),
values near and far beyond the parsers' bounds (built by repetition, so huge values cost
hypothesis nothing to generate), deep JSON nesting, and fragments of valid input to splice into.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

CONTROL = st.sampled_from(["\x00", "\x01", "\x1b", "\x7f", "\u200b", "\u202e", "\ufeff", "\r\n", "\t", "\u2028"])

any_text = st.text(max_size=40)
"""Any Unicode (surrogates aside), control characters included."""


MAX_ANNOTATIONS_BYTES = 256 * 1024
"""The API server's bound on all annotations of an object together: nothing larger ever arrives."""


def repeated(pieces: st.SearchStrategy[str], *, limit: int = MAX_ANNOTATIONS_BYTES) -> st.SearchStrategy[str]:
    """A piece repeated up to ``limit`` characters: huge values without huge generation costs."""
    return st.tuples(pieces.filter(bool), st.integers(min_value=1, max_value=limit)).map(
        lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]]
    )


def nested_json(*, most: int = 60_000) -> st.SearchStrategy[str]:
    """``[[[...]]]`` / ``{"a":{...}}`` deep enough to exhaust a recursive parser, closed or not."""
    return st.tuples(
        st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"a":[', "]}")]),
        st.integers(min_value=1, max_value=most),
        st.booleans(),
    ).map(lambda t: t[0][0] * t[1] + (t[0][1] * t[1] if t[2] else ""))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
json_text = json_values.map(json.dumps)


def spliced(base: str, pieces: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``base`` with up to three spans replaced by, or extended with, other pieces."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        text = base
        for _ in range(draw(st.integers(0, 3))):
            i = draw(st.integers(0, len(text)))
            j = draw(st.integers(i, min(len(text), i + 4)))
            text = text[:i] + draw(pieces) + text[j:]
        return text

    return build()


def hostile(*valid: str) -> st.SearchStrategy[str]:
    """Valid values, valid values spliced with junk, junk, control characters, huge and nested values."""
    pieces = st.one_of(any_text, CONTROL, st.sampled_from([",", "=", "[", "]", "{", "}", '"', ":", "/", "*", " "]))
    options = [any_text, repeated(any_text | CONTROL), nested_json(), json_text, CONTROL]
    if valid:
        options += [st.sampled_from(valid), st.sampled_from(valid).flatmap(lambda v: spliced(v, pieces))]
    return st.one_of(options)
