"""``application/vnd.kubernetes.protobuf``: the wire format kubectl's typed commands speak.

kubectl 1.32 and later send and ask for protobuf for built-in kinds (``kubectl create namespace``,
``create deployment``, ``run``, ``expose``, ``auth can-i``), as client-go does. The messages are
Kubernetes' own ``generated.proto`` files, which the project does not ship: they come from the
shared data (``../shared/schemas/kubernetes-proto`` or ``$SHARED_DIR``) and are compiled with
``grpcio-tools`` on first use into a descriptor set cached under the temp directory, keyed by a
hash of the files (so a second run, or a second server, pays nothing). Without them
:func:`codec` is ``None`` and the server answers protobuf bodies with 415 saying why, and
serves JSON to clients that accept it.

The conversion is generic, through the message descriptors, between protobuf messages and the
emulator's JSON dicts, with the types whose JSON form differs from their message: Time and
MicroTime (RFC 3339), Duration, IntOrString, Quantity, RawExtension and FieldsV1 (embedded JSON),
bytes (base64), maps, messages that are a JSON list (``Verbs``, ``ExtraValue``), and Go's inline
structs (``Volume.volumeSource``, ``Probe.handler``, ...). Decoding drops empty strings, zero
numbers and false (Go writes non-pointer fields even when zero, JSON omits them), except in a
list of pointer fields where zero is a choice (``replicas: 0``, ``automountServiceAccountToken``).
The envelope is the 4-byte magic ``k8s\\x00`` and a ``runtime.Unknown`` holding ``typeMeta`` and
the message bytes; watch frames are a 4-byte big-endian length and a
bare ``WatchEvent`` whose object is an enveloped message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_RUNTIME = "k8s.io.apimachinery.pkg.runtime"
_TIME = {f"{_META}.Time", f"{_META}.MicroTime"}
_EMBEDDED_JSON = {f"{_RUNTIME}.RawExtension": "raw", f"{_META}.FieldsV1": "Raw"}
_QUANTITY = {"k8s.io.apimachinery.pkg.api.resource.Quantity", "k8s.io.apimachinery.pkg.api.resource.QuantityValue"}
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_DURATION = f"{_META}.Duration"
# Go structs embedded with `json:",inline"`: their fields sit in the parent's JSON object
_INLINE = {
    ("Volume", "volumeSource"),
    ("PersistentVolumeSpec", "persistentVolumeSource"),
    ("Probe", "handler"),
    ("EphemeralContainer", "ephemeralContainerCommon"),
    ("IngressRule", "ingressRuleValue"),
    ("NamedRuleWithOperations", "ruleWithOperations"),
    ("RuleWithOperations", "rule"),
    ("DeviceAllocationConfiguration", "deviceConfiguration"),
    ("DeviceClaimConfiguration", "deviceConfiguration"),
    ("DeviceClassConfiguration", "deviceConfiguration"),
    *((owner, "localObjectReference") for owner in ("ConfigMapEnvSource", "ConfigMapKeySelector")),
    *((owner, "localObjectReference") for owner in ("ConfigMapProjection", "ConfigMapVolumeSource")),
    *((owner, "localObjectReference") for owner in ("SecretEnvSource", "SecretKeySelector", "SecretProjection")),
}
# Go's protobuf marshalling writes every non-pointer field, zero or not, and only set pointer fields;
# JSON omits the zero ones (omitempty). The descriptors cannot tell the two apart, so a decoded zero
# number or false is dropped, except in these pointer fields, where 0 or false is a choice.
_MEANINGFUL_ZERO = frozenset(
    {
        "replicas",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
        "minReadySeconds",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "automountServiceAccountToken",
        "enableServiceLinks",
        "shareProcessNamespace",
        "hostUsers",
        "setHostnameAsFQDN",
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "fsGroup",
        "privileged",
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "immutable",
        "optional",
        "defaultMode",
        "mode",
        "backoffLimit",
        "parallelism",
        "completions",
        "suspend",
        "ttlSecondsAfterFinished",
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "leaseDurationSeconds",
        "leaseTransitions",
        "allocateLoadBalancerNodePorts",
        "publishNotReadyAddresses",
        "unhealthyPodEvictionPolicy",
        "timeoutSeconds",
        "expirationSeconds",
        "seconds",
        "nanos",
        "intVal",
        "type",
        "count",
        "code",
    }
)
_REPO_ROOT = Path(__file__).resolve().parents[3]


class ProtobufError(ValueError):
    """A body that is not a valid Kubernetes protobuf message."""


def proto_dir() -> Path | None:
    """Where Kubernetes' ``.proto`` files are, if this checkout has the shared data beside it."""
    shared = Path(os.environ.get("SHARED_DIR") or _REPO_ROOT.parent / "shared")
    candidate = shared / "schemas" / "kubernetes-proto"
    return candidate if (candidate / "k8s.io").is_dir() else None


UNAVAILABLE = (
    "protobuf is not served by this emulator: Kubernetes' .proto files (../shared/schemas/kubernetes-proto "
    "or $SHARED_DIR) are absent"
)


def _compile(root: Path) -> bytes:
    """A FileDescriptorSet of every ``.proto`` under ``root``, compiled once per content hash."""
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.proto"))
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    cached = Path(tempfile.gettempdir()) / f"kube-api-emulator-proto-{digest.hexdigest()[:16]}.pb"
    if cached.exists():
        return cached.read_bytes()
    well_known = resources.files("grpc_tools").joinpath("_proto")
    with tempfile.TemporaryDirectory() as out:
        target = Path(out) / "set.pb"
        args = [f"-I{root}", f"-I{well_known}", "--include_imports", f"--descriptor_set_out={target}", *files]
        # a child process: protoc's warnings (unused imports in Kubernetes' files) stay out of our output
        done = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"protoc failed on {root}: {done.stderr}")
        data = target.read_bytes()
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, cached)  # atomic: concurrent servers never read half a file
    return data


class Codec:
    """JSON dicts <-> Kubernetes protobuf, for every message in the compiled descriptor set."""

    def __init__(self, descriptor_set: bytes) -> None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        self._pool = descriptor_pool.DescriptorPool()
        for file in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file:
            self._pool.Add(file)
        self._factory = message_factory
        self._unknown = self._class(f"{_RUNTIME}.Unknown")
        self._watch_event = self._class(f"{_META}.WatchEvent")

    def _class(self, full_name: str) -> Any:
        return self._factory.GetMessageClass(self._pool.FindMessageTypeByName(full_name))

    def message_name(self, api_version: str, kind: str) -> str | None:
        """The message of a kind (``apps/v1`` ``Deployment``), or None (custom resources, unknown kinds)."""
        group, _, version = api_version.rpartition("/")
        package = group.split(".")[0] if group else "core"
        candidates = [f"k8s.io.api.{package}.{version}.{kind}"]
        if version == "v1" and group in ("", "meta.k8s.io"):
            candidates.append(f"{_META}.{kind}")
        for name in candidates:
            try:
                self._pool.FindMessageTypeByName(name)
            except KeyError:
                continue
            return name
        return None

    # --- the envelope ------------------------------------------------------------------------
    def encode(self, obj: dict[str, Any]) -> bytes | None:
        """``k8s\\x00`` + runtime.Unknown for ``obj`` (with apiVersion and kind), or None when it has no message."""
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        name = self.message_name(api_version, kind)
        if name is None:
            return None
        message = self._class(name)()
        self._fill(message, obj)
        unknown = self._unknown()
        unknown.typeMeta.apiVersion = api_version
        unknown.typeMeta.kind = kind
        unknown.raw = message.SerializeToString(deterministic=True)
        return MAGIC + unknown.SerializeToString(deterministic=True)

    def decode(self, data: bytes) -> dict[str, Any]:
        if not data.startswith(MAGIC):
            raise ProtobufError("provided object is not a Kubernetes protobuf message: the k8s\\x00 prefix is missing")
        try:
            unknown = self._unknown.FromString(data[len(MAGIC) :])
        except Exception as exc:  # the protobuf runtime's DecodeError
            raise ProtobufError(f"invalid protobuf envelope: {exc}") from None
        api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
        name = self.message_name(api_version, kind)
        if name is None:
            raise ProtobufError(f"no kind {kind!r} is registered for version {api_version!r}")
        try:
            message = self._class(name).FromString(unknown.raw)
        except Exception as exc:
            raise ProtobufError(f"invalid {kind}: {exc}") from None
        return {"apiVersion": api_version, "kind": kind, **self._dict(message)}

    def watch_frame(self, event_type: str, obj: dict[str, Any]) -> bytes | None:
        encoded = self.encode(obj)
        if encoded is None:
            return None
        event = self._watch_event(type=event_type)
        event.object.raw = encoded
        data = event.SerializeToString(deterministic=True)
        return struct.pack(">I", len(data)) + data

    def read_watch_frames(self, stream: bytes) -> list[tuple[str, dict[str, Any]]]:
        """Split a protobuf watch stream into ``(type, object)`` events (for tests)."""
        events, offset = [], 0
        while offset + 4 <= len(stream):
            (size,) = struct.unpack(">I", stream[offset : offset + 4])
            event = self._watch_event.FromString(stream[offset + 4 : offset + 4 + size])
            events.append((event.type, self.decode(event.object.raw)))
            offset += 4 + size
        return events

    # --- dict -> message ---------------------------------------------------------------------
    def _fill(self, message: Any, value: Any) -> None:
        desc = message.DESCRIPTOR
        if desc.full_name in _TIME:
            if value:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                message.seconds = int(moment.timestamp())
                message.nanos = moment.microsecond * 1000
            return
        if desc.full_name in _EMBEDDED_JSON:
            setattr(message, _EMBEDDED_JSON[desc.full_name], json.dumps(value, separators=(",", ":")).encode())
            return
        if desc.full_name in _QUANTITY:
            message.string = str(value)
            return
        if desc.full_name == _INT_OR_STRING:
            if isinstance(value, int):
                message.type, message.intVal = 0, value
            else:
                message.type, message.strVal = 1, str(value)
            return
        if desc.full_name == _DURATION:
            message.duration = _parse_duration(str(value))
            return
        if _is_list_message(desc):
            message.items.extend(value or [])
            return
        if not isinstance(value, dict):
            raise ProtobufError(f"{desc.full_name}: expected an object, got {type(value).__name__}")
        for field in desc.fields:
            if (desc.name, field.name) in _INLINE:
                self._fill(getattr(message, field.name), value)
                continue
            item = value.get(field.json_name)
            if item is None:
                continue
            self._set(message, field, item)

    def _set(self, message: Any, field: Any, item: Any) -> None:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target = getattr(message, field.name)
            value_field = field.message_type.fields_by_name["value"]
            for key, val in item.items():
                if val is None:
                    continue
                if value_field.message_type is not None:
                    self._fill(target[key], val)
                else:
                    target[key] = self._scalar_in(value_field, val)
            return
        if field.is_repeated:
            target = getattr(message, field.name)
            for element in item:
                if field.message_type is not None:
                    self._fill(target.add(), element)
                else:
                    target.append(self._scalar_in(field, element))
            return
        if field.message_type is not None:
            sub = getattr(message, field.name)
            sub.SetInParent()
            self._fill(sub, item)
            return
        setattr(message, field.name, self._scalar_in(field, item))

    @staticmethod
    def _scalar_in(field: Any, value: Any) -> Any:
        if field.type == field.TYPE_BYTES:
            return base64.b64decode(value)
        if field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
            return float(value)
        if field.type == field.TYPE_BOOL:
            return bool(value)
        if field.type == field.TYPE_STRING:
            return str(value)
        return int(value)

    # --- message -> dict ---------------------------------------------------------------------
    def _value(self, message: Any) -> Any:
        desc = message.DESCRIPTOR
        if desc.full_name in _TIME:
            if not message.seconds and not message.nanos:
                return None  # Go's zero time marshals as null
            moment = datetime.fromtimestamp(message.seconds, UTC).replace(microsecond=message.nanos // 1000)
            if desc.name == "MicroTime":
                return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if desc.full_name in _EMBEDDED_JSON:
            raw = getattr(message, _EMBEDDED_JSON[desc.full_name])
            return json.loads(raw) if raw else None
        if desc.full_name in _QUANTITY:
            return message.string
        if desc.full_name == _INT_OR_STRING:
            return message.intVal if message.type == 0 else message.strVal
        if desc.full_name == _DURATION:
            return _format_duration(message.duration)
        if _is_list_message(desc):
            return list(message.items)
        return self._dict(message)

    def _dict(self, message: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        desc = message.DESCRIPTOR
        for field in desc.fields:
            if (desc.name, field.name) in _INLINE:
                if message.HasField(field.name):
                    out.update(self._dict(getattr(message, field.name)))
                continue
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                items = getattr(message, field.name)
                if items:
                    value_field = field.message_type.fields_by_name["value"]
                    out[field.json_name] = {
                        k: self._value(v) if value_field.message_type is not None else self._scalar_out(value_field, v)
                        for k, v in items.items()
                    }
                continue
            if field.is_repeated:
                items = getattr(message, field.name)
                if items:
                    out[field.json_name] = [
                        self._value(v) if field.message_type is not None else self._scalar_out(field, v) for v in items
                    ]
                continue
            if not message.HasField(field.name):
                continue
            value = getattr(message, field.name)
            if field.message_type is not None:
                out[field.json_name] = self._value(value)
            elif value not in ("", 0, False) or (field.json_name in _MEANINGFUL_ZERO and value != ""):
                out[field.json_name] = self._scalar_out(field, value)
        return out

    @staticmethod
    def _scalar_out(field: Any, value: Any) -> Any:
        if field.type == field.TYPE_BYTES:
            return base64.b64encode(value).decode()
        return value


def _is_list_message(desc: Any) -> bool:
    """``Verbs``, ``ExtraValue``: a message whose JSON form is the list it wraps."""
    return len(desc.fields) == 1 and desc.fields[0].name == "items" and desc.fields[0].is_repeated


_DURATION_UNITS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "µs": 10**3, "ns": 1}


def _parse_duration(text: str) -> int:
    parts = re.findall(r"([0-9.]+)(h|ms|m|s|us|µs|ns)", text)
    if not parts and text not in ("0", ""):
        raise ProtobufError(f"time: invalid duration {text!r}")
    return int(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def _format_duration(nanos: int) -> str:
    if nanos == 0:
        return "0s"
    hours, rest = divmod(nanos, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = rest / 10**9
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return text + (f"{seconds:g}s" if seconds or not text else "0s")


_codec: Codec | None = None
_codec_lock = threading.Lock()


def codec() -> Codec | None:
    """The process's codec, compiled on first use; None when the ``.proto`` files are absent."""
    global _codec
    with _codec_lock:
        if _codec is None:
            root = proto_dir()
            if root is None:
                return None
            _codec = Codec(_compile(root))
        return _codec


def prefers_protobuf(accept: str) -> bool:
    """Whether the client's ``Accept`` puts plain protobuf (no ``as=Table``) before any JSON."""
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        if media == MEDIA_TYPE:
            return not any(p.startswith("as=") for p in params)
        if media in ("application/json", "application/yaml", "*/*", "application/*"):
            return False
    return False


def accepts_json(accept: str) -> bool:
    if not accept.strip():
        return True
    return any(
        part.split(";")[0].strip() in ("application/json", "application/yaml", "*/*", "application/*")
        for part in accept.split(",")
    )
