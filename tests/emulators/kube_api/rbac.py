"""Authentication and RBAC authorization, with kube-apiserver's semantics (opt-in).

``KubeApiServer(authorization="rbac")`` turns this on; the default ``"allow-all"`` accepts every
token as its own user name, as before.

Authentication (``Authenticator``): a bearer token registered with
``add_service_account_token`` is the ServiceAccount's user ``system:serviceaccount:<ns>:<name>``
(groups ``system:serviceaccounts``, ``system:serviceaccounts:<ns>``, ``system:authenticated``) as
long as that ServiceAccount exists, like a bound token; ``add_user_token`` registers any user and
groups; the admin token (``write_kubeconfig``'s default) is ``system:admin`` in ``system:masters``.
No ``Authorization`` header is ``system:anonymous`` (group ``system:unauthenticated``); an
unknown token or a token of a deleted ServiceAccount is 401 Unauthorized.

Authorization: ``system:masters`` is always allowed (kube-apiserver's privileged-group
authorizer, before RBAC). Everyone else is decided by the RBAC objects in the store, exactly as
the RBAC authorizer does (``plugin/pkg/auth/authorizer/rbac``): ClusterRoleBindings grant their
ClusterRole everywhere, RoleBindings grant their Role or ClusterRole in their namespace only;
subjects are Users, Groups and ServiceAccounts; a rule matches on verbs, apiGroups, resources
(``resource/subresource``, ``*``, ``*/subresource``) and resourceNames; non-resource requests
match ``nonResourceURLs`` (exact, ``prefix*`` or ``*``) with the lowercase HTTP method as verb.
resourceNames only ever match a request that names an object: get, update, patch, delete, and a
list or watch with the field selector ``metadata.name=<name>`` (the real RequestInfo takes the name
from it); a create or a plain list is never allowed by a rule with resourceNames. The bootstrap
policy the real server creates for this is created too (``cluster-admin``, ``system:discovery``,
``system:public-info-viewer``, ``system:basic-user`` and their bindings), so authenticated users
may read discovery (``/api``, ``/apis``, ``/apis/<group>[/<version>]``, ``/openapi/*``,
``/version``) and everyone the health endpoints and ``/version``.

A denial is 403 Forbidden with the real message, e.g. ``deployments.apps "x" is forbidden: User
"system:serviceaccount:ns:sa" cannot update resource "deployments" in API group "apps" in the
namespace "default"``, followed by ``: RBAC: ...`` when a binding names a role that does not exist.

Not emulated: aggregated ClusterRoles (``aggregationRule``), escalation prevention on writes of
RBAC objects (the ``escalate``/``bind`` verbs), impersonation, and the other default roles.

The decision is a pure function over plain objects (:func:`decide`, :func:`rule_allows`,
:func:`subject_applies`), so it can be tested table-driven without a server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .routing import RequestInfo

RBAC_GROUP = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
ADMIN = "system:admin"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

Obj = dict[str, Any]


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    # a ServiceAccount's (namespace, name), checked to still exist when the token is used
    service_account: tuple[str, str] | None = None


def service_account_user(namespace: str, name: str) -> UserInfo:
    return UserInfo(
        f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
        (namespace, name),
    )


ANONYMOUS_USER = UserInfo(ANONYMOUS, (UNAUTHENTICATED,))
ADMIN_USER = UserInfo(ADMIN, (MASTERS, AUTHENTICATED))


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


@dataclass(frozen=True)
class Attributes:
    """What is asked: kube-apiserver's ``authorizer.Attributes`` for one request."""

    verb: str
    is_resource: bool = True
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @classmethod
    def of(cls, info: RequestInfo) -> Attributes:
        if not info.is_resource:
            return cls(verb=info.method.lower(), is_resource=False, path=info.path)
        name = info.name
        if info.verb in ("list", "watch") and not name:
            name = _name_from_field_selector(info.query.get("fieldSelector", ""))
        return cls(
            verb=info.verb,
            group=info.group,
            version=info.version,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            name=name,
            path=info.path,
        )


def _name_from_field_selector(selector: str) -> str:
    """``metadata.name=x`` (alone, or ``==``) names the object of a list or watch, as in the real RequestInfo."""
    terms = [t for t in selector.split(",") if t]
    if len(terms) != 1:
        return ""
    for op in ("==", "="):
        key, sep, value = terms[0].partition(op)
        if sep and key.strip() == "metadata.name" and "!" not in key:
            return value.strip()
    return ""


# --- rule matching (rbacv1helpers) -----------------------------------------------------------


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    """``RuleAllows``: does one PolicyRule allow the request?"""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.is_resource:
        return any(
            url == "*" or url == attrs.path or (url.endswith("*") and attrs.path.startswith(url.rstrip("*")))
            for url in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if not any(
        r == "*" or r == combined or (attrs.subresource and r.startswith("*/") and r[2:] == attrs.subresource)
        for r in rule.get("resources") or []
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def subject_applies(subject: Obj, user: UserInfo, binding_namespace: str) -> bool:
    """``appliesToUser``: does a binding's subject name this user?"""
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        if not namespace:
            return False
        return user.name == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{subject.get('name')}"
    return False


@dataclass
class Policy:
    """The RBAC objects a decision reads (plain dicts as stored)."""

    cluster_roles: list[Obj] = field(default_factory=list)
    cluster_role_bindings: list[Obj] = field(default_factory=list)
    roles: list[Obj] = field(default_factory=list)
    role_bindings: list[Obj] = field(default_factory=list)


def decide(user: UserInfo, attrs: Attributes, policy: Policy) -> tuple[bool, str]:
    """(allowed, reason): the RBAC authorizer's visit of the rules that apply to ``user``."""
    if MASTERS in user.groups:
        return True, ""
    cluster_roles = {o["metadata"]["name"]: o for o in policy.cluster_roles}
    roles = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in policy.roles}
    errors: list[str] = []

    def rules_of(ref: Obj, namespace: str) -> Iterable[Obj]:
        if ref.get("kind") == "ClusterRole":
            role = cluster_roles.get(ref.get("name", ""))
            if role is None:
                errors.append(f'clusterrole.{RBAC_GROUP} "{ref.get("name")}" not found')
                return []
        else:
            role = roles.get((namespace, ref.get("name", "")))
            if role is None:
                errors.append(f'role.{RBAC_GROUP} "{ref.get("name")}" not found')
                return []
        return role.get("rules") or []

    def allowed_by(binding: Obj, namespace: str) -> bool:
        if not any(subject_applies(s, user, namespace) for s in binding.get("subjects") or []):
            return False
        return any(rule_allows(rule, attrs) for rule in rules_of(binding.get("roleRef") or {}, namespace))

    for binding in policy.cluster_role_bindings:
        if allowed_by(binding, ""):
            return True, ""
    if attrs.namespace:
        for binding in policy.role_bindings:
            namespace = binding["metadata"].get("namespace", "")
            if namespace == attrs.namespace and allowed_by(binding, namespace):
                return True, ""
    if not errors:
        return False, ""
    return False, "RBAC: " + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")


def forbidden(user: UserInfo, attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 kube-apiserver answers (``responsewriters.Forbidden`` + ``apierrors.NewForbidden``)."""
    if not attrs.is_resource:
        message = f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        message = f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.group}" {where}'
    if reason:
        message = f"{message}: {reason}"
    details: Obj = {}
    if not attrs.is_resource:
        message = f"forbidden: {message}"
    else:
        qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
        prefix = f'{qualified} "{attrs.name}"' if attrs.name else qualified
        message = f"{prefix} is forbidden: {message}"
        details = {"group": attrs.group, "kind": attrs.resource}
        if attrs.name:
            details["name"] = attrs.name
    return ApiError(403, "Forbidden", message, details=details)


# --- bootstrap policy ------------------------------------------------------------------------

_DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
_PUBLIC_INFO_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def bootstrap_policy() -> list[tuple[str, Obj]]:
    """(plural, object) pairs the real server's RBAC bootstrap creates that matter here."""

    def cluster_role(name: str, rules: list[Obj]) -> tuple[str, Obj]:
        labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
        annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
        meta = {"name": name, "labels": labels, "annotations": annotations}
        return "clusterroles", {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRole",
            "metadata": meta,
            "rules": rules,
        }

    def binding(name: str, groups: list[str]) -> tuple[str, Obj]:
        labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
        annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
        return "clusterrolebindings", {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
        }

    return [
        cluster_role(
            "cluster-admin",
            [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        ),
        cluster_role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
        cluster_role("system:public-info-viewer", [{"nonResourceURLs": _PUBLIC_INFO_URLS, "verbs": ["get"]}]),
        cluster_role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                }
            ],
        ),
        binding("cluster-admin", [MASTERS]),
        binding("system:discovery", [AUTHENTICATED]),
        binding("system:public-info-viewer", [AUTHENTICATED, UNAUTHENTICATED]),
        binding("system:basic-user", [AUTHENTICATED]),
    ]


# --- the server's side -----------------------------------------------------------------------


class Authenticator:
    """Bearer tokens -> users. ``strict`` (RBAC mode) answers 401 to unknown tokens."""

    def __init__(self, strict: bool, service_account_exists: Callable[[str, str], bool]) -> None:
        self.strict = strict
        self._exists = service_account_exists
        self._tokens: dict[str, UserInfo] = {}
        self._lock = threading.Lock()

    def add(self, token: str, user: UserInfo) -> None:
        if not token or any(c.isspace() for c in token):
            raise ValueError("a bearer token is one non-empty word")
        with self._lock:
            self._tokens[token] = user

    def authenticate(self, authorization_header: str) -> UserInfo:
        scheme, _, token = authorization_header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            if self.strict and authorization_header.strip():
                raise unauthorized()  # a header we cannot read is not anonymous
            return ANONYMOUS_USER
        with self._lock:
            user = self._tokens.get(token)
        if user is None:
            if self.strict:
                raise unauthorized()
            return UserInfo(token, (AUTHENTICATED,))  # allow-all: the token is the user, as before
        if user.service_account is not None and self.strict and not self._exists(*user.service_account):
            raise unauthorized()  # the token of a deleted ServiceAccount stops working
        return user


def policy_from_store(list_objects: Callable[[str], list[Obj]]) -> Policy:
    return Policy(
        cluster_roles=list_objects(f"clusterroles.{RBAC_GROUP}"),
        cluster_role_bindings=list_objects(f"clusterrolebindings.{RBAC_GROUP}"),
        roles=list_objects(f"roles.{RBAC_GROUP}"),
        role_bindings=list_objects(f"rolebindings.{RBAC_GROUP}"),
    )


def authorize(user: UserInfo, info: RequestInfo, policy: Callable[[], Policy]) -> None:
    """Raise 403 unless RBAC allows ``user`` the request ``info``."""
    if MASTERS in user.groups:  # no need to read the policy
        return
    attrs = Attributes.of(info)
    allowed, reason = decide(user, attrs, policy())
    if not allowed:
        raise forbidden(user, attrs, reason)
