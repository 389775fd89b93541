"""API resource types known to the fixture cluster, and the discovery documents for them.

Built-in kinds (core/v1, apps/v1, batch/v1, ...) come from a static catalogue; custom
resources come from ``CustomResourceDefinition`` objects in the scenario or, failing
that, from the objects themselves (plural = lowercased kind + ``"s"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALL_VERBS",
    "BUILTIN",
    "READ_ONLY_REVIEWS",
    "ResourceRegistry",
    "ResourceType",
    "split_api_version",
]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NO_COLLECTION = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One API resource (e.g. ``pods`` in core/v1) or subresource (``pods/log``)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()
    served: bool = True  # False for subresources and create-only review APIs
    crd: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``plural.group`` as used in Kubernetes error messages (``invoices.billing.x``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` → ``("apps", "v1")``; ``"v1"`` → ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


def _rt(
    api_version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    categories: tuple[str, ...] = (),
    served: bool = True,
) -> ResourceType:
    group, version = split_api_version(api_version)
    singular = "" if "/" in plural else kind.lower()
    return ResourceType(
        group, version, kind, plural, namespaced, singular, short, verbs, categories, served
    )


def _sub(api_version: str, kind: str, name: str, verbs: tuple[str, ...]) -> ResourceType:
    return _rt(api_version, kind, name, True, verbs=verbs, served=False)


_ALL = ("all",)

BUILTIN: tuple[ResourceType, ...] = (
    # core/v1
    _rt("v1", "Binding", "bindings", verbs=("create",), served=False),
    _rt("v1", "ComponentStatus", "componentstatuses", False, ("cs",), ("get", "list")),
    _rt("v1", "ConfigMap", "configmaps", short=("cm",)),
    _rt("v1", "Endpoints", "endpoints", short=("ep",)),
    _rt("v1", "Event", "events", short=("ev",)),
    _rt("v1", "LimitRange", "limitranges", short=("limits",)),
    _rt("v1", "Namespace", "namespaces", False, ("ns",), _NO_COLLECTION),
    _sub("v1", "Namespace", "namespaces/finalize", ("update",)),
    _sub("v1", "Namespace", "namespaces/status", ("get", "patch", "update")),
    _rt("v1", "Node", "nodes", False, ("no",)),
    _sub("v1", "NodeProxyOptions", "nodes/proxy", ("create", "delete", "get", "patch", "update")),
    _sub("v1", "Node", "nodes/status", ("get", "patch", "update")),
    _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",)),
    _sub("v1", "PersistentVolumeClaim", "persistentvolumeclaims/status", ("get", "patch")),
    _rt("v1", "PersistentVolume", "persistentvolumes", False, ("pv",)),
    _rt("v1", "Pod", "pods", short=("po",), categories=_ALL),
    _sub("v1", "Pod", "pods/eviction", ("create",)),
    _sub("v1", "PodExecOptions", "pods/exec", ("create", "get")),
    _sub("v1", "Pod", "pods/log", ("get",)),
    _sub("v1", "Pod", "pods/status", ("get", "patch", "update")),
    _rt("v1", "PodTemplate", "podtemplates"),
    _rt("v1", "ReplicationController", "replicationcontrollers", short=("rc",), categories=_ALL),
    _rt("v1", "ResourceQuota", "resourcequotas", short=("quota",)),
    _rt("v1", "Secret", "secrets"),
    _rt("v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _sub("v1", "TokenRequest", "serviceaccounts/token", ("create",)),
    _rt("v1", "Service", "services", short=("svc",), categories=_ALL),
    _sub("v1", "Service", "services/status", ("get", "patch", "update")),
    # apps/v1
    _rt("apps/v1", "ControllerRevision", "controllerrevisions"),
    _rt("apps/v1", "DaemonSet", "daemonsets", short=("ds",), categories=_ALL),
    _rt("apps/v1", "Deployment", "deployments", short=("deploy",), categories=_ALL),
    _sub("apps/v1", "Scale", "deployments/scale", ("get", "patch", "update")),
    _sub("apps/v1", "Deployment", "deployments/status", ("get", "patch", "update")),
    _rt("apps/v1", "ReplicaSet", "replicasets", short=("rs",), categories=_ALL),
    _sub("apps/v1", "Scale", "replicasets/scale", ("get", "patch", "update")),
    _rt("apps/v1", "StatefulSet", "statefulsets", short=("sts",), categories=_ALL),
    _sub("apps/v1", "Scale", "statefulsets/scale", ("get", "patch", "update")),
    # batch/v1
    _rt("batch/v1", "CronJob", "cronjobs", short=("cj",), categories=_ALL),
    _rt("batch/v1", "Job", "jobs", categories=_ALL),
    # autoscaling/v2
    _rt(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        categories=_ALL,
    ),
    # policy/v1
    _rt("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",)),
    # networking.k8s.io/v1
    _rt("networking.k8s.io/v1", "Ingress", "ingresses", short=("ing",)),
    _rt("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
    _rt("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    # discovery.k8s.io/v1
    _rt("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
    # events.k8s.io/v1 (served as a view of the core/v1 events)
    _rt("events.k8s.io/v1", "Event", "events", short=("ev",)),
    # storage.k8s.io/v1
    _rt("storage.k8s.io/v1", "StorageClass", "storageclasses", False, ("sc",)),
    _rt("storage.k8s.io/v1", "CSIDriver", "csidrivers", False),
    _rt("storage.k8s.io/v1", "VolumeAttachment", "volumeattachments", False),
    # rbac.authorization.k8s.io/v1
    _rt("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _rt("rbac.authorization.k8s.io/v1", "Role", "roles"),
    # authorization.k8s.io/v1 (reviews are create-only; answered, never stored)
    _rt(
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        verbs=("create",),
        served=False,
    ),
    _rt(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
        served=False,
    ),
    _rt(
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        False,
        verbs=("create",),
        served=False,
    ),
    _rt(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        False,
        verbs=("create",),
        served=False,
    ),
    # coordination.k8s.io/v1
    _rt("coordination.k8s.io/v1", "Lease", "leases"),
    # scheduling.k8s.io/v1
    _rt("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    # apiextensions.k8s.io/v1
    _rt(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
    ),
    _rt(
        "apiregistration.k8s.io/v1",
        "APIService",
        "apiservices",
        False,
        categories=("api-extensions",),
    ),
)


def _crd_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    kind = names.get("kind")
    plural = names.get("plural") or (kind.lower() + "s" if kind else None)
    if not group or not kind or not plural:
        return []
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True) or not version.get("name"):
            continue
        types.append(
            ResourceType(
                group=group,
                version=version["name"],
                kind=kind,
                plural=plural,
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or kind.lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                crd=crd,
            )
        )
    return types


class ResourceRegistry:
    """All resource types of the fixture cluster, indexed for routing and discovery."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        types = list(BUILTIN)
        known = {(t.group, t.version, t.kind) for t in types}
        objects = list(objects)
        for obj in objects:
            if obj.get("kind") == "CustomResourceDefinition":
                for crd_type in _crd_types(obj):
                    if (crd_type.group, crd_type.version, crd_type.kind) not in known:
                        types.append(crd_type)
                        known.add((crd_type.group, crd_type.version, crd_type.kind))
        for obj in objects:
            group, version = split_api_version(obj["apiVersion"])
            kind = obj["kind"]
            if (group, version, kind) in known:
                continue
            known.add((group, version, kind))
            types.append(
                ResourceType(
                    group=group,
                    version=version,
                    kind=kind,
                    plural=kind.lower() + "s",
                    namespaced=bool((obj.get("metadata") or {}).get("namespace")),
                    singular=kind.lower(),
                )
            )
        self.types: tuple[ResourceType, ...] = tuple(types)
        self._by_path = {(t.group, t.version, t.plural): t for t in types}
        self._by_kind = {(t.group, t.version, t.kind): t for t in types if "/" not in t.plural}

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The (sub)resource served at ``/apis/<group>/<version>/.../<plural>``."""
        return self._by_path.get((group, version, plural))

    def for_object(self, obj: Mapping[str, Any]) -> ResourceType:
        group, version = split_api_version(obj["apiVersion"])
        return self._by_kind[(group, version, obj["kind"])]

    def group_versions(self) -> dict[str, list[str]]:
        """Group name → versions (core group is ``""``), in discovery order."""
        result: dict[str, list[str]] = {}
        for t in self.types:
            versions = result.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
        return result

    # Discovery documents -------------------------------------------------------------

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not group or not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = [self.api_group(g) for g in self.group_versions() if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        entries = [
            t.discovery_entry() for t in self.types if t.group == group and t.version == version
        ]
        if not entries:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": entries,
        }


READ_ONLY_REVIEWS = frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews"})
"""Create-only resources whose POSTs are reads (they ask "may I?")."""
