"""The fixture cluster's object store: scenario objects normalised as an API server would.

Missing ``uid``, ``resourceVersion`` and ``creationTimestamp`` are filled in
deterministically, namespaces referenced by objects (plus the standard ``default``,
``kube-system``, ``kube-public`` and ``kube-node-lease``) exist, and ``events.k8s.io/v1``
events are a converted view of the ``core/v1`` events.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from .resources import ResourceRegistry, ResourceType
from .scenario import Scenario, ScenarioError, format_time

__all__ = ["ObjectStore"]

Obj = dict[str, Any]

STANDARD_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
_UID_NAMESPACE = uuid.UUID("6f1c1c2e-3c55-4c39-9a43-6a2f1f1f0b11")


def _core_to_events_v1(event: Obj) -> Obj:
    source = event.get("source") or {}
    converted: Obj = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": copy.deepcopy(event.get("metadata") or {}),
        "eventTime": event.get("eventTime"),
        "reportingController": event.get("reportingComponent") or source.get("component", ""),
        "reportingInstance": event.get("reportingInstance") or source.get("host", ""),
        "action": event.get("action", ""),
        "reason": event.get("reason", ""),
        "regarding": copy.deepcopy(event.get("involvedObject") or {}),
        "note": event.get("message", ""),
        "type": event.get("type", ""),
    }
    for old, new in (
        ("related", "related"),
        ("series", "series"),
        ("source", "deprecatedSource"),
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
    ):
        if event.get(old) is not None:
            converted[new] = copy.deepcopy(event[old])
    return converted


class ObjectStore:
    """Read-only, normalised objects of a scenario, grouped by resource."""

    def __init__(self, scenario: Scenario, registry: ResourceRegistry) -> None:
        self.registry = registry
        self._by_resource: dict[tuple[str, str], list[Obj]] = {}
        objects = [copy.deepcopy(o) for o in scenario.objects]
        declared = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
        referenced = {str((o.get("metadata") or {}).get("namespace") or "") for o in objects}
        for name in sorted({*STANDARD_NAMESPACES, *referenced} - declared - {""}):
            objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

        created = format_time(scenario.earliest_time)
        seen: set[tuple[str, str, str, str]] = set()
        for index, obj in enumerate(objects):
            rt = registry.for_object(obj)
            meta = obj.setdefault("metadata", {})
            if rt.namespaced:
                meta.setdefault("namespace", "default")
            else:
                meta.pop("namespace", None)
            key = (rt.group, rt.plural, meta.get("namespace", ""), meta["name"])
            if key in seen:
                raise ScenarioError(f"duplicate object {obj['kind']} {key[2]}/{key[3]}")
            seen.add(key)
            meta.setdefault("uid", str(uuid.uuid5(_UID_NAMESPACE, "/".join(key))))
            meta.setdefault("resourceVersion", str(1000 + index))
            meta.setdefault("creationTimestamp", created)
            if obj["kind"] == "Namespace" and rt.group == "":
                labels = meta.setdefault("labels", {})
                labels.setdefault("kubernetes.io/metadata.name", meta["name"])
                obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
                phase = "Terminating" if meta.get("deletionTimestamp") else "Active"
                obj.setdefault("status", {}).setdefault("phase", phase)
            self._by_resource.setdefault((rt.group, rt.plural), []).append(obj)
        for items in self._by_resource.values():
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        self.resource_version = str(1000 + len(objects))

    def list(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        """Objects of ``rt`` (deep copies), optionally only those in ``namespace``."""
        if rt.group == "events.k8s.io":
            source = [_core_to_events_v1(e) for e in self._by_resource.get(("", "events"), [])]
        else:
            source = [copy.deepcopy(o) for o in self._by_resource.get((rt.group, rt.plural), [])]
        result = []
        for obj in source:
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                continue
            obj["apiVersion"] = rt.api_version
            result.append(obj)
        return result

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        for obj in self.list(rt, namespace if rt.namespaced else None):
            if obj["metadata"]["name"] == name:
                return obj
        return None
