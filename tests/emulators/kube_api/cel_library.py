"""Kubernetes' CEL libraries for ``cel-expr-python``: what a CRD rule can call beyond standard CEL.

kube-apiserver compiles ``x-kubernetes-validations`` with cel-go plus its own libraries (lists,
regex, url, quantity, format, ip/cidr) and cel-go's extensions (strings, optional types,
``cel.bind``). ``cel-expr-python`` (the CEL C++ runtime) brings the extensions; this module
declares the Kubernetes libraries with their names, receivers and error texts, so a rule written
for a real cluster compiles and evaluates the same here.

Kubernetes' opaque types (URL, Quantity, Format, IP, CIDR) are small protobuf messages in a private
descriptor pool: the runtime cannot carry Python objects, but it carries messages, so
``type(url(x))`` is its own type and overloads dispatch on it. A library function that fails
raises ``ValueError``; the runtime turns that into the rule's evaluation error, as cel-go does.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import uuid
from collections.abc import Callable
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cel_expr_python import cel
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "kubernetes.cel"
_OPAQUE = {
    "URL": ("value",),
    "Quantity": ("text", "exact"),  # exact: the value as a reduced fraction "n/d", for equality
    "Format": ("name",),
    # optional<list<string>> (format errors) or optional<Format>: the runtime cannot return a real
    # optional from Python, and dispatches on "a message", so both share one message type. It has
    # hasValue() and value(); orValue() stays the optional library's (no overload on messages).
    "Optional": ("present", "errors", "format"),
    "IP": ("value",),
    "CIDR": ("value",),
}


def _pool() -> tuple[descriptor_pool.DescriptorPool, dict[str, Any]]:
    fdp = descriptor_pb2.FileDescriptorProto(name="kubernetes_cel.proto", package=PACKAGE, syntax="proto3")
    field = descriptor_pb2.FieldDescriptorProto
    for name, fields in _OPAQUE.items():
        message = fdp.message_type.add(name=name)
        for number, fname in enumerate(fields, 1):
            if fname == "present":
                message.field.add(name=fname, number=number, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
            elif fname == "errors":
                message.field.add(name=fname, number=number, type=field.TYPE_STRING, label=field.LABEL_REPEATED)
            else:
                message.field.add(name=fname, number=number, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    classes = {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{n}")) for n in _OPAQUE}
    return pool, classes


POOL, _MSG = _pool()
T = {n: cel.Type(f"{PACKAGE}.{n}") for n in _OPAQUE}
STR, INT, BOOL, DBL, DYN = cel.Type.STRING, cel.Type.INT, cel.Type.BOOL, cel.Type.DOUBLE, cel.Type.DYN
LIST_DYN, LIST_STR = cel.Type.List(DYN), cel.Type.List(STR)


# --- lists -------------------------------------------------------------------------------------
def _sum(items: list[Any]) -> Any:
    return sum(items) if items else 0


def _extreme(pick: Callable[..., Any]) -> Callable[[list[Any]], Any]:
    def impl(items: list[Any]) -> Any:
        if not items:
            raise ValueError(f"{pick.__name__}(list) called on an empty list")
        return pick(items)

    return impl


def _index_of(items: list[Any], value: Any) -> int:
    return next((i for i, x in enumerate(items) if x == value), -1)


def _last_index_of(items: list[Any], value: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if items[i] == value), -1)


# --- regex -------------------------------------------------------------------------------------
def _find(text: str, pattern: str) -> str:
    m = re.search(pattern, text)
    return m.group(0) if m else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


# --- url ---------------------------------------------------------------------------------------
def _parse_request_uri(text: str) -> Any:
    """Go's ``url.ParseRequestURI``: absolute URLs or absolute paths, no fragments."""
    parts = urlsplit(text)
    if not (parts.scheme or text.startswith("/")) or " " in text:
        raise ValueError(f"URL parse error during conversion from string: parse {text!r}: invalid URI for request")
    return parts


def _url(text: str) -> Any:
    _parse_request_uri(text)
    return _MSG["URL"](value=text)


def _is_url(text: str) -> bool:
    try:
        _parse_request_uri(text)
    except ValueError:
        return False
    return True


def _netloc_host(u: Any) -> str:
    netloc = urlsplit(u.value).netloc
    return netloc.rpartition("@")[2]


def _get_hostname(u: Any) -> str:
    host = _netloc_host(u)
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rpartition(":")[0] if ":" in host else host


def _get_port(u: Any) -> str:
    host = _netloc_host(u)
    tail = host[host.find("]") + 1 :] if host.startswith("[") else host
    return tail.rpartition(":")[2] if ":" in tail else ""


def _get_query(u: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(u.value).query, keep_blank_values=True)


# --- quantity ----------------------------------------------------------------------------------
_SUFFIX = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    **{s: Fraction(1024**i) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)},
}
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)")


def parse_quantity(text: str) -> Fraction:
    """A Kubernetes ``resource.Quantity`` ("500m", "1Gi", "1e3") as an exact fraction."""
    m = _QUANTITY.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number = Fraction(m.group(1))
    if m.group(2):
        number *= Fraction(10) ** int(m.group(2)[1:])
    return number * _SUFFIX[m.group(3) or ""]


def _q(value: Fraction, text: str | None = None) -> Any:
    return _MSG["Quantity"](text=text if text is not None else _format_quantity(value), exact=str(value))


def _format_quantity(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    milli = value * 1000
    return f"{int(milli)}m" if milli.denominator == 1 else str(float(value))


def _qv(q: Any) -> Fraction:
    return Fraction(q.exact)


def _quantity(text: str) -> Any:
    return _q(parse_quantity(text), text)


def _is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except ValueError:
        return False
    return True


def _as_integer(q: Any) -> int:
    value = _qv(q)
    if value.denominator != 1 or not -(2**63) <= value.numerator < 2**63:
        raise ValueError("cannot convert value to integer")
    return value.numerator


def _sign(q: Any) -> int:
    value = _qv(q)
    return (value > 0) - (value < 0)


def _compare(a: Any, b: Any) -> int:
    return (_qv(a) > _qv(b)) - (_qv(a) < _qv(b))


def _operand(other: Any) -> Fraction:
    return Fraction(other) if isinstance(other, int) else _qv(other)


# --- format ------------------------------------------------------------------------------------
def _uuid(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return "does not match the UUID format"
    return None


def _byte(value: str) -> str | None:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return "invalid base64"
    return None


def _date(value: str) -> str | None:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return "invalid date"
    return None


def _datetime(value: str) -> str | None:
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "invalid datetime"
    return None


def _uri(value: str) -> str | None:
    return None if _is_url(value) else "invalid URI"


def _names(check: str, prefix: bool = False) -> Callable[[str], str | None]:
    """kube-apiserver's own name checks (``validation``), imported late: ``validation`` imports us."""

    def impl(value: str) -> str | None:
        from . import validation

        # A prefix (generateName) may end in '-': check it as a name that does not.
        return getattr(validation, check)((value.rstrip("-") or "a") if prefix else value)

    return impl


FORMATS: dict[str, Callable[[str], str | None]] = {
    "dns1123Label": _names("check_dns1123_label"),
    "dns1123Subdomain": _names("check_dns1123_subdomain"),
    "dns1035Label": _names("check_dns1035_label"),
    "qualifiedName": _names("check_qualified_name"),
    "dns1123LabelPrefix": _names("check_dns1123_label", prefix=True),
    "dns1123SubdomainPrefix": _names("check_dns1123_subdomain", prefix=True),
    "dns1035LabelPrefix": _names("check_dns1035_label", prefix=True),
    "labelValue": _names("check_label_value"),
    "uri": _uri,
    "uuid": _uuid,
    "byte": _byte,
    "date": _date,
    "datetime": _datetime,
}


def _validate(fmt: Any, value: str) -> Any:
    problem = FORMATS[fmt.name](value)
    return _MSG["Optional"](present=problem is not None, errors=[problem] if problem else [])


def _format_named(name: str) -> Any:
    return _MSG["Optional"](present=name in FORMATS, format=name if name in FORMATS else "")


def _optional_value(opt: Any) -> Any:
    if not opt.present:
        raise ValueError("optional.none() dereference")
    return _MSG["Format"](name=opt.format) if opt.format else list(opt.errors)


# --- ip / cidr ---------------------------------------------------------------------------------
def _ip(text: str) -> Any:
    if "%" in text:
        raise ValueError(f"IP Address with zone value is not allowed: {text}")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"IP Address {text!r} parse error during conversion from string") from None
    return _MSG["IP"](value=text)


def _is_ip(text: str) -> bool:
    try:
        _ip(text)
    except ValueError:
        return False
    return True


def _cidr(text: str) -> Any:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"network address {text!r} parse error during conversion from string") from None
    return _MSG["CIDR"](value=text)


def _is_cidr(text: str) -> bool:
    try:
        _cidr(text)
    except ValueError:
        return False
    return True


def _addr(x: Any) -> Any:
    return ipaddress.ip_address(x.value)


def _net(c: Any) -> Any:
    return ipaddress.ip_network(c.value, strict=False)


def _cidr_contains(c: Any, other: Any) -> bool:
    if isinstance(other, str):
        other = _ip(other) if "/" not in other else _cidr(other)
    if other.DESCRIPTOR.name == "IP":
        return _addr(other) in _net(c)
    inner = _net(other)
    return inner.version == _net(c).version and inner.subnet_of(_net(c))  # type: ignore[arg-type]


# --- declarations ------------------------------------------------------------------------------
def _o(oid: str, ret: Any, params: list[Any], impl: Callable[..., Any], member: bool = False) -> Any:
    return cel.Overload(oid, ret, params, is_member=member, impl=impl)


def _fn(name: str, *overloads: Any) -> Any:
    return cel.FunctionDecl(name, list(overloads))


U, Q, F, IP, CIDR, OPT = T["URL"], T["Quantity"], T["Format"], T["IP"], T["CIDR"], T["Optional"]


def _functions() -> list[Any]:
    url_parts: list[tuple[str, Callable[[Any], Any]]] = [
        ("getScheme", lambda u: urlsplit(u.value).scheme),
        ("getHost", _netloc_host),
        ("getHostname", _get_hostname),
        ("getPort", _get_port),
        ("getEscapedPath", lambda u: urlsplit(u.value).path),
    ]
    ip_parts: list[tuple[str, Any, Callable[[Any], Any]]] = [
        ("family", INT, lambda x: _addr(x).version),
        ("isUnspecified", BOOL, lambda x: _addr(x).is_unspecified),
        ("isLoopback", BOOL, lambda x: _addr(x).is_loopback),
        ("isLinkLocalMulticast", BOOL, lambda x: _addr(x).is_multicast and _addr(x).is_link_local),
        ("isLinkLocalUnicast", BOOL, lambda x: _addr(x).is_link_local and not _addr(x).is_multicast),
        ("isGlobalUnicast", BOOL, lambda x: _addr(x).is_global and not _addr(x).is_multicast),
    ]
    return [
        # lists
        _fn("isSorted", _o("list_is_sorted", BOOL, [LIST_DYN], lambda xs: xs == sorted(xs), True)),
        _fn("sum", _o("list_sum", DYN, [LIST_DYN], _sum, True)),
        _fn("min", _o("list_min", DYN, [LIST_DYN], _extreme(min), True)),
        _fn("max", _o("list_max", DYN, [LIST_DYN], _extreme(max), True)),
        _fn("indexOf", _o("list_index_of", INT, [LIST_DYN, DYN], _index_of, True)),
        _fn("lastIndexOf", _o("list_last_index_of", INT, [LIST_DYN, DYN], _last_index_of, True)),
        # regex
        _fn("find", _o("string_find", STR, [STR, STR], _find, True)),
        _fn(
            "findAll",
            _o("string_find_all", LIST_STR, [STR, STR], _find_all, True),
            _o("string_find_all_n", LIST_STR, [STR, STR, INT], _find_all, True),
        ),
        # url
        _fn("url", _o("string_to_url", U, [STR], _url)),
        _fn("isURL", _o("is_url_string", BOOL, [STR], _is_url)),
        *[_fn(name, _o(f"url_{name}", STR, [U], impl, True)) for name, impl in url_parts],
        _fn("getQuery", _o("url_getQuery", cel.Type.Map(STR, LIST_STR), [U], _get_query, True)),
        # quantity
        _fn("quantity", _o("string_to_quantity", Q, [STR], _quantity)),
        _fn("isQuantity", _o("is_quantity_string", BOOL, [STR], _is_quantity)),
        _fn("isInteger", _o("quantity_is_integer", BOOL, [Q], lambda q: _qv(q).denominator == 1, True)),
        _fn("asInteger", _o("quantity_as_integer", INT, [Q], _as_integer, True)),
        _fn("asApproximateFloat", _o("quantity_as_float", DBL, [Q], lambda q: float(_qv(q)), True)),
        _fn("sign", _o("quantity_sign", INT, [Q], _sign, True)),
        _fn("isGreaterThan", _o("quantity_is_greater_than", BOOL, [Q, Q], lambda a, b: _compare(a, b) > 0, True)),
        _fn("isLessThan", _o("quantity_is_less_than", BOOL, [Q, Q], lambda a, b: _compare(a, b) < 0, True)),
        _fn("compareTo", _o("quantity_compare_to", INT, [Q, Q], _compare, True)),
        _fn(
            "add",
            _o("quantity_add", Q, [Q, Q], lambda a, b: _q(_qv(a) + _operand(b)), True),
            _o("quantity_add_int", Q, [Q, INT], lambda a, b: _q(_qv(a) + _operand(b)), True),
        ),
        _fn(
            "sub",
            _o("quantity_sub", Q, [Q, Q], lambda a, b: _q(_qv(a) - _operand(b)), True),
            _o("quantity_sub_int", Q, [Q, INT], lambda a, b: _q(_qv(a) - _operand(b)), True),
        ),
        # format
        *[
            _fn(f"format.{name}", _o(f"format_{name}", F, [], lambda n=name: _MSG["Format"](name=n)))
            for name in FORMATS
        ],
        _fn("format.named", _o("format_named", OPT, [STR], _format_named)),
        _fn("validate", _o("format_validate", OPT, [F, STR], _validate, True)),
        _fn("hasValue", _o("kubernetes_optional_has_value", BOOL, [OPT], lambda o: o.present, True)),
        _fn("value", _o("kubernetes_optional_value", DYN, [OPT], _optional_value, True)),
        # ip / cidr
        _fn(
            "ip",
            _o("string_to_ip", IP, [STR], _ip),
            _o("cidr_ip", IP, [CIDR], lambda c: _MSG["IP"](value=str(_net(c).network_address)), True),
        ),
        _fn("isIP", _o("is_ip", BOOL, [STR], _is_ip)),
        _fn("cidr", _o("string_to_cidr", CIDR, [STR], _cidr)),
        _fn("isCIDR", _o("is_cidr", BOOL, [STR], _is_cidr)),
        *[_fn(name, _o(f"ip_{name}", ret, [IP], impl, True)) for name, ret, impl in ip_parts],
        _fn(
            "containsIP",
            _o("cidr_contains_ip", BOOL, [CIDR, IP], _cidr_contains, True),
            _o("cidr_contains_ip_string", BOOL, [CIDR, STR], _cidr_contains, True),
        ),
        _fn(
            "containsCIDR",
            _o("cidr_contains_cidr", BOOL, [CIDR, CIDR], _cidr_contains, True),
            _o("cidr_contains_cidr_string", BOOL, [CIDR, STR], _cidr_contains, True),
        ),
        _fn("prefixLength", _o("cidr_prefix_length", INT, [CIDR], lambda c: _net(c).prefixlen, True)),
        _fn("masked", _o("cidr_masked", CIDR, [CIDR], lambda c: _MSG["CIDR"](value=str(_net(c))), True)),
    ]


def kubernetes_extension() -> Any:
    """The Kubernetes libraries as one ``cel-expr-python`` extension."""
    return cel.CelExtension("kubernetes", _functions())
