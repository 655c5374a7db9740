"""The REST semantics of one resource: get, list, create, update, patch, delete.

This is kube-apiserver's generic registry store: preconditions and optimistic concurrency on
``resourceVersion``, system metadata (uid, creationTimestamp, generation), per-kind strategies,
validation, status subresources, finalizers and ``deletionTimestamp``, and no-op writes that do
not bump ``resourceVersion``. Every read-modify-write runs under the store's single lock, so
writes are linearizable. HTTP concerns live in ``server``; controllers (garbage collector,
deployment controller) call this module directly, as in-process clients.
"""

from __future__ import annotations

import base64
import builtins
import copy
import json
import random
import uuid
from collections.abc import Sequence
from typing import Any

from . import builtin_schema, crds, deletion, managed_fields, patch, strategies, validation
from .errors import ApiError, already_exists, bad_request, conflict, forbidden, invalid, not_found
from .meta import now, same
from .resources import Registry, ResourceType
from .selectors import object_matches, parse_field_selector, parse_label_selector
from .store import Store, Watcher

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SYSTEM_FINALIZERS = {"orphan", "foregroundDeletion"}


class Api:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    # --- helpers -------------------------------------------------------------------------------
    def out(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        result = copy.deepcopy(obj)
        result["apiVersion"] = rt.api_version
        result["kind"] = rt.kind
        return result

    def _namespace_ok(self, rt: ResourceType, namespace: str, creating: bool = False) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get("namespaces", "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise forbidden(
                f'{rt.kind.lower()}s "{namespace}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                details={"name": namespace, "kind": rt.plural, "group": rt.group},
            )

    def _existing(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        self._namespace_ok(rt, namespace)
        obj = self.store.get(rt.storage_key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def _decode(self, rt: ResourceType, body: Any, namespace: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request could not be decoded as a {rt.kind}")
        obj = copy.deepcopy(body)
        api_version = obj.setdefault("apiVersion", rt.api_version)
        kind = obj.setdefault("kind", rt.kind)
        if kind != rt.kind or api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
                if kind == rt.kind
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _admit(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        directive: str,
        duplicates: Sequence[str] = (),
    ) -> builtins.list[str]:
        """Default, decode-check and validate ``obj`` in place; returns warnings; raises 400/422.

        ``duplicates`` are the paths of fields the request body repeated (``validation.loads_json``).
        """
        if rt.builtin:
            causes, warnings = validation.decode_builtin(rt, obj, directive, duplicates)
        else:
            causes, warnings = validation.validate_custom(rt, obj, directive, duplicates, old)
        others = (
            []
            if rt.plural != "services"
            else [s for s in self.store.list("services") if s["metadata"]["uid"] != obj["metadata"].get("uid")]
        )
        used_ips = {s.get("spec", {}).get("clusterIP", "") for s in others}
        used_ports = {p.get("nodePort") for s in others for p in s.get("spec", {}).get("ports") or []}
        if rt.plural == "services" and old is None and obj.get("spec", {}).get("clusterIP") in used_ips - {"None", ""}:
            ip = obj["spec"]["clusterIP"]
            causes.append(
                {
                    "type": "FieldValueInvalid",
                    "field": "spec.clusterIPs",
                    "value": f'[]string{{"{ip}"}}',
                    "detail": f"failed to allocate IP {ip}: provided IP is already allocated",
                }
            )
        if not causes:
            strategies.apply_defaults(rt, obj, old, used_ips, used_ports)
        causes = validation.validate_metadata(rt, obj) + causes + strategies.validate(rt, obj, old)
        validation.raise_if_invalid(rt, obj, causes)
        return warnings

    # --- reads -------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.store.lock:
            return self.out(rt, self._existing(rt, namespace, name))

    def list(self, rt: ResourceType, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), rt.plural)
        with self.store.lock:  # a list in a missing namespace is empty, not an error, as real
            rv = self.store.resource_version
            items = [o for o in self.store.list(rt.storage_key, namespace or None) if object_matches(o, labels, fields)]
        start = query.get("continue")
        if start:
            try:
                token = json.loads(base64.urlsafe_b64decode(start.encode()))
                after = tuple(token["start"])
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = {"rv": rv, "start": [last.get("namespace", ""), last["name"]]}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        rendered = [self.out(rt, o) for o in items]
        if rt.builtin:  # typed lists carry apiVersion/kind only on the list itself
            for item in rendered:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": rendered}

    # --- writes ------------------------------------------------------------------------------
    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        query: dict[str, str],
        applied: set[tuple[str, ...]] | None = None,
        duplicates: Sequence[str] = (),
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        directive = validation.directive_of(query.get("fieldValidation"))
        obj = self._decode(rt, body, namespace)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        with self.store.lock:
            self._namespace_ok(rt, namespace, creating=True)
            if not meta.get("name") and meta.get("generateName"):
                suffix = "".join(random.choice(_GENERATE_ALPHABET) for _ in range(5))
                meta["name"] = meta["generateName"][:58] + suffix
            for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
                meta.pop(key, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if strategies.has_generation(rt):
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            if rt.status_subresource and rt.plural != "namespaces":
                obj.pop("status", None)
            warnings = self._admit(rt, obj, None, directive, duplicates)
            if rt.plural == "customresourcedefinitions":
                obj["status"] = crds.established_status(obj, now())
            key_ns = namespace if rt.namespaced else ""
            if self.store.get(rt.storage_key, key_ns, meta["name"]) is not None:
                raise already_exists(rt.plural, rt.group, meta["name"])
            self._manage(rt, None, obj, query.get("fieldManager"), "", applied)
            if query.get("dryRun") == "All":
                return self.out(rt, obj), warnings
            stored = self.store.put(rt.storage_key, obj)
            self._after_write(rt, stored)
            return self.out(rt, stored), warnings

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        query: dict[str, str],
        subresource: str = "",
        duplicates: Sequence[str] = (),
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        directive = validation.directive_of(query.get("fieldValidation"))
        obj = self._decode(rt, body, namespace)
        if obj["metadata"].get("name") != name:
            raise bad_request(
                f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})"
            )
        with self.store.lock:
            old = self._existing(rt, namespace, name)
            return self._update_locked(
                rt,
                old,
                obj,
                subresource,
                directive,
                query.get("dryRun") == "All",
                query.get("fieldManager"),
                duplicates=duplicates,
            )

    def _manage(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        manager: str | None,
        subresource: str,
        applied: set[tuple[str, ...]] | None = None,
    ) -> None:
        schema = builtin_schema.kind_schema(rt.kind, rt.api_version) if rt.builtin else rt.schema
        new["metadata"]["managedFields"] = managed_fields.update(
            old,
            new,
            manager=manager or "unknown",
            api_version=rt.api_version,
            subresource=subresource,
            schema=schema,
            builtin=rt.builtin,
            time=now(),
            applied=applied,
        )
        if not new["metadata"]["managedFields"]:
            del new["metadata"]["managedFields"]

    def _update_locked(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        obj: dict[str, Any],
        subresource: str,
        directive: str,
        dry_run: bool = False,
        manager: str | None = None,
        applied: set[tuple[str, ...]] | None = None,
        duplicates: Sequence[str] = (),
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        meta = obj["metadata"]
        name = old["metadata"]["name"]
        unconditional_ok = rt.builtin and rt.plural != "customresourcedefinitions"
        if not meta.get("resourceVersion") and not unconditional_ok:  # their strategies refuse it
            raise invalid(
                rt.kind,
                rt.group,
                name,
                [
                    {
                        "type": "FieldValueInvalid",
                        "field": "metadata.resourceVersion",
                        "value": "0x0",
                        "detail": "must be specified for an update",
                    }
                ],
            )
        if meta.get("resourceVersion") and meta["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old['metadata']['uid']}",
            )
        if subresource == "status" and rt.builtin and rt.plural == "deployments":
            # the Deployment status strategy keeps only spec and labels: annotations may change here
            # (that is how the deployment controller sets deployment.kubernetes.io/revision)
            new = obj
            new["spec"] = copy.deepcopy(old.get("spec"))
            new["metadata"]["labels"] = copy.deepcopy(old["metadata"].get("labels"))
            if new["metadata"]["labels"] is None:
                del new["metadata"]["labels"]
        elif subresource == "status":
            new = copy.deepcopy(old)
            new["apiVersion"], new["kind"] = obj["apiVersion"], obj["kind"]
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        else:
            new = obj
            if rt.status_subresource and rt.plural != "namespaces":
                strategies.copy_status(rt, new, old)
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if key in old["metadata"]:
                new["metadata"][key] = old["metadata"][key]
            else:
                new["metadata"].pop(key, None)
        new["metadata"].pop("managedFields", None)
        if old["metadata"].get("deletionTimestamp"):
            added = [
                f for f in new["metadata"].get("finalizers") or [] if f not in (old["metadata"].get("finalizers") or [])
            ]
            if added:
                raise validation.finalizers_forbidden(rt, name, added)
        warnings = self._admit(rt, new, old, directive, duplicates)
        if strategies.has_generation(rt):
            new["metadata"]["generation"] = strategies.next_generation(rt, old, new)
        if rt.plural == "customresourcedefinitions":
            new["status"] = crds.established_status(new, now()) if subresource != "status" else new.get("status")
        if applied is None:
            if same(new, old):
                return self.out(rt, old), warnings
            self._manage(rt, old, new, manager, subresource)
        else:  # an apply that changes nothing may still change who owns what
            self._manage(rt, old, new, manager, subresource, applied)
            untimed = [
                [{k: v for k, v in e.items() if k != "time"} for e in o["metadata"].get("managedFields") or []]
                for o in (new, old)
            ]
            if same(new, old) and untimed[0] == untimed[1]:
                return self.out(rt, old), warnings
        if dry_run:
            return self.out(rt, new), warnings
        return self.out(rt, self.commit(rt, new)), warnings

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        content_type: str,
        query: dict[str, str],
        subresource: str = "",
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        directive = validation.directive_of(query.get("fieldValidation"))
        ctype = content_type.split(";")[0].strip()
        if ctype not in (patch.MERGE, patch.JSON_PATCH, patch.STRATEGIC) or (
            ctype == patch.STRATEGIC and not rt.builtin
        ):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join([patch.JSON_PATCH, patch.MERGE] + ([patch.STRATEGIC] if rt.builtin else []))
                + ", application/apply-patch+yaml (not on subresources here)",
            )
        try:
            document = json.loads(raw or b"null")
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from None
        with self.store.lock:
            old = self._existing(rt, namespace, name)
            current = self.out(rt, old)
            if ctype == patch.MERGE:
                if not isinstance(document, dict):
                    raise bad_request("json: cannot unmarshal into Go value of type map[string]interface {}")
                result = patch.merge_patch(current, document)
            elif ctype == patch.JSON_PATCH:
                result = patch.json_patch(current, document)
            else:
                from .builtin_schema import kind_schema

                result = patch.strategic_merge(current, document, kind_schema(rt.kind, rt.api_version))
            if not isinstance(result, dict):
                raise bad_request("the patch produced something that is not an object")
            obj = self._decode(rt, result, namespace)
            if obj["metadata"].get("name") != name:
                raise bad_request("metadata.name: the name of the object does not match the name on the URL")
            return self._update_locked(
                rt, old, obj, subresource, directive, query.get("dryRun") == "All", query.get("fieldManager")
            )

    def commit(self, rt: ResourceType, new: dict[str, Any]) -> dict[str, Any]:
        """Store ``new``; an object being deleted whose last finalizer went is removed instead."""
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and rt.plural != "namespaces":
            final = self.store.remove(rt.storage_key, meta.get("namespace", ""), meta["name"])
            assert final is not None
            self._after_delete(rt, final)
            return final
        stored = self.store.put(rt.storage_key, new)
        self._after_write(rt, stored)
        return stored

    def delete(self, rt: ResourceType, namespace: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
        return deletion.delete(self, rt, namespace, name, options)

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, query: dict[str, str], options: dict[str, Any]
    ) -> dict[str, Any]:
        return deletion.delete_collection(self, rt, namespace, query, options)

    def _after_write(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.plural == "customresourcedefinitions" and rt.group == "apiextensions.k8s.io":
            group, versions, types = crds.resource_types(obj)
            if types:
                self.registry.register_crd(group, versions, types)

    def _after_delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.plural == "customresourcedefinitions" and rt.group == "apiextensions.k8s.io":
            key = f"{obj['spec']['names']['plural']}.{obj['spec']['group']}"
            for item in self.store.list(key):
                self.store.remove(key, item["metadata"].get("namespace", ""), item["metadata"]["name"])
            self.store.drop_storage(key)
            self.store.close_watchers(Watcher.CLOSE, key)  # the kind is gone: so are its watches
            self.registry.unregister(key)
