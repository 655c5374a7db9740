"""An emulated Kubernetes API server for tests and the demo: ``KubeApiServer``.

Real HTTP, real clients (``kubernetes`` typed and dynamic, ``kubectl``), strict where
kube-apiserver is strict. See ``cluster.KubeApiServer`` for the public API.
"""

from .cluster import KubeApiServer
from .crds import BUNDLED_VIRTUAL_SERVICE_CRD
from .errors import ApiError
from .server import RequestRecord

__all__ = ["BUNDLED_VIRTUAL_SERVICE_CRD", "ApiError", "KubeApiServer", "RequestRecord"]
