"""An emulated Kubernetes API server for tests and the demo: ``KubeApiServer``.

Real HTTP (HTTP/1.1, chunked watches, optional TLS), real clients (``kubernetes`` typed and
dynamic, ``kubectl``), strict where kube-apiserver is strict. See ``cluster.KubeApiServer`` for
the public API and each module's docstring for what it guarantees.

Where it differs from kube-apiserver, on purpose or for lack of time:

- ``fieldValidation`` (Warn by default, Strict, Ignore) follows kube-apiserver for create, update,
  every patch type and apply, built-in kinds and custom resources alike; duplicate fields are
  found in JSON bodies of create and update only (not in patch documents or YAML bodies), and
  server-side apply treats unknown fields like the other verbs, where the real one answers
  "field not declared in schema" whatever the directive.
- Protobuf (``protobuf``) for built-in kinds, requests, responses, Status errors and watches, only
  when Kubernetes' ``.proto`` files are beside the checkout (``../shared``); without them protobuf
  bodies get 415 saying so, and clients that also accept JSON get JSON. Zero numbers and false
  decoded from protobuf are dropped outside a list of pointer fields (the descriptors do not say
  which Go fields are pointers). Custom resources are JSON only (406 for protobuf-only Accept).
- ``SelfSubjectAccessReview`` (``kubectl auth can-i``) is answered by the authorizer but is not
  listed in discovery; no SubjectAccessReview, SelfSubjectRulesReview or TokenReview.
- Server-side apply and ``managedFields`` follow the real rules approximately (``apply``,
  ``managed_fields``); no apply on subresources.
- OpenAPI: ``/openapi/v2`` is 404 and ``/openapi/v3`` only declares ``fieldValidation`` support
  (enough for kubectl's server-side validation; ``kubectl explain`` does not work).
- One global event history for watches (like etcd compaction) rather than per-resource caches.
- Controllers: garbage collector, namespace cleanup, and kube-controller-manager's deployment
  and ReplicaSet controllers over an emulated kubelet (``deployments``, ``workloads``): rollouts
  honour surge limits and can fail (an image missing from ``KubeApiServer.images`` ends in
  ``ProgressDeadlineExceeded``); ``time_scale`` shrinks Kubernetes durations. No scheduler,
  no Nodes, no probes beyond their initial delay, no restarts.
- CRD validation rules (``x-kubernetes-validations``) run on a real CEL engine (``cel``, the CEL
  C++ runtime from ``cel-expr-python``) with Kubernetes' libraries (``cel_library``: lists, regex,
  url, quantity, format, ip/cidr), transition rules, ``optionalOldSelf``, ``messageExpression``,
  ``reason``, ``fieldPath`` and ratcheting; CRD ``default:`` values are applied on every write
  (``defaults``). Not modelled: the cost budget; type-checking rules against the schema when the
  CRD is written (a rule that does not compile fails each write with ``rule compile error``);
  order-insensitive equality of ``set``/``map`` lists; two-variable comprehensions; ``orValue()``
  on ``format...validate()`` results; defaults applied when reading old stored objects.
- No admission webhooks, no CRD conversion webhooks (versions share one storage; only
  ``apiVersion`` changes).
- Authorization is allow-all unless ``KubeApiServer(authorization="rbac")``: then tokens map to
  ServiceAccounts and users, and RBAC decides with real semantics (``rbac``); no aggregated
  ClusterRoles, escalation checks or impersonation.
"""

from .cluster import KubeApiServer
from .crds import BUNDLED_VIRTUAL_SERVICE_CRD
from .errors import ApiError
from .server import RequestRecord

__all__ = ["BUNDLED_VIRTUAL_SERVICE_CRD", "ApiError", "KubeApiServer", "RequestRecord"]
