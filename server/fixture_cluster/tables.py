"""Server-side ``Table`` rendering (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``).

Columns follow the kube-apiserver printers (``kubectl get`` output) for common kinds;
custom resources use their CRD's ``additionalPrinterColumns`` or ``Name``/``Age``.
Ages are relative to the cluster's clock (the scenario's reference time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .resources import ResourceType
from .scenario import parse_time

__all__ = ["human_duration", "render_table"]

Obj = Mapping[str, Any]
Column = tuple[str, str, int, str]  # name, type, priority, description
CellFn = Callable[[Obj, datetime], list[Any]]

_NAME: Column = ("Name", "string", 0, "Name must be unique within a namespace.")
_AGE: Column = ("Age", "string", 0, "Time since the object was created.")


def human_duration(seconds: float) -> str:
    """Kubernetes' ``duration.HumanDuration`` (``45s``, ``3m20s``, ``5h``, ``12d``, ...)."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    days = hours // 24
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        years = days // 365
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{days // 365}y"


def _since(value: Any, now: datetime) -> str:
    parsed = parse_time(value)
    return "<unknown>" if parsed is None else human_duration((now - parsed).total_seconds())


def _age(obj: Obj, now: datetime) -> str:
    return _since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for part in path:
        if not isinstance(obj, Mapping) or part not in obj:
            return default
        obj = obj[part]
    return default if obj is None else obj


def _none(value: Any) -> Any:
    return "<none>" if value in (None, "", []) else value


def _containers(obj: Obj, *spec_path: str) -> tuple[str, str]:
    containers = _get(obj, *spec_path, "containers", default=[])
    names = ",".join(c.get("name", "") for c in containers)
    images = ",".join(c.get("image", "") for c in containers)
    return _none(names), _none(images)


def _selector(obj: Obj) -> str:
    labels = _get(obj, "spec", "selector", "matchLabels", default={})
    return _none(",".join(f"{k}={v}" for k, v in labels.items()))


# Pods ----------------------------------------------------------------------------------


def _pod_cells(pod: Obj, now: datetime) -> list[Any]:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    total = len(spec.get("containers") or [])
    ready = 0
    restarts = 0
    last_restart: datetime | None = None
    reason = status.get("reason") or status.get("phase") or "Unknown"

    def note_restart(container_status: Obj) -> None:
        nonlocal last_restart
        finished = parse_time(_get(container_status, "lastState", "terminated", "finishedAt"))
        if finished and (last_restart is None or finished > last_restart):
            last_restart = finished

    initializing = False
    init_specs = spec.get("initContainers") or []
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        note_restart(cs)
        terminated = _get(cs, "state", "terminated")
        waiting = _get(cs, "state", "waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        initializing = True
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        break

    if not initializing:
        restarts = 0
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            note_restart(cs)
            waiting = _get(cs, "state", "waiting")
            terminated = _get(cs, "state", "terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and _get(cs, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            conditions = status.get("conditions") or []
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
            )
            reason = "Running" if pod_ready else "NotReady"

    if _get(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"

    restarts_text = str(restarts)
    if last_restart is not None:
        restarts_text += f" ({human_duration((now - last_restart).total_seconds())} ago)"
    gates = ",".join(g.get("conditionType", "") for g in spec.get("readinessGates") or [])
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(pod, now),
        _none(status.get("podIP")),
        _none(spec.get("nodeName")),
        _none(status.get("nominatedNodeName")),
        _none(gates),
    ]


_POD_COLUMNS: list[Column] = [
    _NAME,
    ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "string", 0, "The aggregate status of the containers in this pod."),
    (
        "Restarts",
        "string",
        0,
        "The number of times the containers in this pod have been restarted.",
    ),
    _AGE,
    ("IP", "string", 1, "IP address allocated to the pod."),
    ("Node", "string", 1, "Name of the Node the pod is assigned to."),
    ("Nominated Node", "string", 1, "Node the scheduler nominated for this pod."),
    ("Readiness Gates", "string", 1, "Pod readiness gates."),
]


# Events --------------------------------------------------------------------------------


def _event_cells(event: Obj, now: datetime) -> list[Any]:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    source = event.get("source") or event.get("deprecatedSource") or {}
    source_text = ", ".join(
        part for part in (source.get("component"), source.get("host")) if part
    ) or event.get("reportingController", "")
    last = (
        event.get("lastTimestamp")
        or event.get("deprecatedLastTimestamp")
        or event.get("eventTime")
        or _get(event, "metadata", "creationTimestamp")
    )
    first = (
        event.get("firstTimestamp")
        or event.get("deprecatedFirstTimestamp")
        or event.get("eventTime")
        or last
    )
    kind = str(involved.get("kind", "")).lower()
    return [
        _since(last, now),
        event.get("type", ""),
        event.get("reason", ""),
        f"{kind}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        source_text,
        event.get("message", event.get("note", "")),
        _since(first, now),
        event.get("count", event.get("deprecatedCount", 1)),
        event["metadata"]["name"],
    ]


_EVENT_COLUMNS: list[Column] = [
    ("Last Seen", "string", 0, "Time since the event was last seen."),
    ("Type", "string", 0, "Type of this event (Normal, Warning)."),
    ("Reason", "string", 0, "Short, machine understandable reason for the event."),
    ("Object", "string", 0, "The object this event is about."),
    ("Subobject", "string", 1, "The part of the object this event is about."),
    ("Source", "string", 1, "The component reporting this event."),
    ("Message", "string", 0, "Human-readable description of the event."),
    ("First Seen", "string", 1, "Time since the event was first seen."),
    ("Count", "integer", 1, "The number of times this event has occurred."),
    ("Name", "string", 1, "Name of the event object."),
]


# Other built-in kinds ------------------------------------------------------------------


def _node_cells(node: Obj, now: datetime) -> list[Any]:
    conditions = _get(node, "status", "conditions", default=[])
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    state = "Unknown"
    if ready is not None:
        state = {"True": "Ready", "False": "NotReady"}.get(ready.get("status"), "Unknown")
    if _get(node, "spec", "unschedulable"):
        state += ",SchedulingDisabled"
    labels = _get(node, "metadata", "labels", default={})
    roles = sorted(
        k.removeprefix("node-role.kubernetes.io/")
        for k in labels
        if k.startswith("node-role.kubernetes.io/")
    )
    addresses = {
        a.get("type"): a.get("address") for a in _get(node, "status", "addresses", default=[])
    }
    info = _get(node, "status", "nodeInfo", default={})
    return [
        node["metadata"]["name"],
        state,
        _none(",".join(roles)),
        _age(node, now),
        info.get("kubeletVersion", ""),
        _none(addresses.get("InternalIP")),
        _none(addresses.get("ExternalIP")),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _deployment_cells(obj: Obj, now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    replicas = _get(obj, "spec", "replicas", default=1)
    names, images = _containers(obj, "spec", "template", "spec")
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{replicas}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj, now),
        names,
        images,
        _selector(obj),
    ]


def _replicaset_cells(obj: Obj, now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    names, images = _containers(obj, "spec", "template", "spec")
    return [
        obj["metadata"]["name"],
        _get(obj, "spec", "replicas", default=1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, now),
        names,
        images,
        _selector(obj),
    ]


def _statefulset_cells(obj: Obj, now: datetime) -> list[Any]:
    names, images = _containers(obj, "spec", "template", "spec")
    ready = _get(obj, "status", "readyReplicas", default=0)
    return [
        obj["metadata"]["name"],
        f"{ready}/{_get(obj, 'spec', 'replicas', default=1)}",
        _age(obj, now),
        names,
        images,
    ]


def _daemonset_cells(obj: Obj, now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    names, images = _containers(obj, "spec", "template", "spec")
    node_selector = _get(obj, "spec", "template", "spec", "nodeSelector", default={})
    return [
        obj["metadata"]["name"],
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        _none(",".join(f"{k}={v}" for k, v in node_selector.items())),
        _age(obj, now),
        names,
        images,
        _selector(obj),
    ]


def _service_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(
        (f"{p.get('port')}:{p['nodePort']}" if p.get("nodePort") else str(p.get("port")))
        + f"/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    ingress = _get(obj, "status", "loadBalancer", "ingress", default=[])
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)
    external = external or ",".join(spec.get("externalIPs") or [])
    if not external:
        external = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    selector = spec.get("selector") or {}
    return [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        external,
        _none(ports),
        _age(obj, now),
        _none(",".join(f"{k}={v}" for k, v in selector.items())),
    ]


_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _pvc_cells(obj: Obj, now: datetime) -> list[Any]:
    modes = _get(obj, "status", "accessModes", default=None) or _get(
        obj, "spec", "accessModes", default=[]
    )
    return [
        obj["metadata"]["name"],
        _get(obj, "status", "phase", default="Pending"),
        _get(obj, "spec", "volumeName", default=""),
        _get(obj, "status", "capacity", "storage", default=""),
        ",".join(_ACCESS_MODES.get(m, m) for m in modes),
        _get(obj, "spec", "storageClassName", default="<unset>"),
        _age(obj, now),
        _get(obj, "spec", "volumeMode", default="Filesystem"),
    ]


def _job_cells(obj: Obj, now: datetime) -> list[Any]:
    conditions = _get(obj, "status", "conditions", default=[])
    state = "Running"
    for condition in conditions:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            state = condition["type"]
    completions = _get(obj, "spec", "completions", default=1)
    names, images = _containers(obj, "spec", "template", "spec")
    return [
        obj["metadata"]["name"],
        state,
        f"{_get(obj, 'status', 'succeeded', default=0)}/{completions}",
        _age(obj, now),
        names,
        images,
    ]


def _cronjob_cells(obj: Obj, now: datetime) -> list[Any]:
    last = _get(obj, "status", "lastScheduleTime")
    return [
        obj["metadata"]["name"],
        _get(obj, "spec", "schedule", default=""),
        _get(obj, "spec", "timeZone", default="<none>"),
        "True" if _get(obj, "spec", "suspend") else "False",
        len(_get(obj, "status", "active", default=[])),
        _since(last, now) if last else "<none>",
        _age(obj, now),
    ]


def _count(obj: Obj, *fields: str) -> int:
    return sum(len(obj.get(f) or {}) for f in fields)


_BUILTIN_TABLES: dict[tuple[str, str], tuple[list[Column], CellFn]] = {
    ("", "Pod"): (_POD_COLUMNS, _pod_cells),
    ("", "Event"): (_EVENT_COLUMNS, _event_cells),
    ("events.k8s.io", "Event"): (_EVENT_COLUMNS, _event_cells),
    ("", "Namespace"): (
        [_NAME, ("Status", "string", 0, "The status of the namespace."), _AGE],
        lambda o, now: [
            o["metadata"]["name"],
            _get(o, "status", "phase", default="Active"),
            _age(o, now),
        ],
    ),
    ("", "Node"): (
        [
            _NAME,
            ("Status", "string", 0, "The status of the node."),
            ("Roles", "string", 0, "The roles of the node."),
            _AGE,
            ("Version", "string", 0, "Kubelet version."),
            ("Internal-IP", "string", 1, "Internal IP of the node."),
            ("External-IP", "string", 1, "External IP of the node."),
            ("OS-Image", "string", 1, "OS image reported by the node."),
            ("Kernel-Version", "string", 1, "Kernel version reported by the node."),
            ("Container-Runtime", "string", 1, "Container runtime reported by the node."),
        ],
        _node_cells,
    ),
    ("apps", "Deployment"): (
        [
            _NAME,
            ("Ready", "string", 0, "Number of ready pods out of the desired replicas."),
            ("Up-to-date", "integer", 0, "Replicas updated to the desired template."),
            ("Available", "integer", 0, "Available replicas."),
            _AGE,
            ("Containers", "string", 1, "Names of each container in the template."),
            ("Images", "string", 1, "Images referenced by each container in the template."),
            ("Selector", "string", 1, "Label selector for pods."),
        ],
        _deployment_cells,
    ),
    ("apps", "ReplicaSet"): (
        [
            _NAME,
            ("Desired", "integer", 0, "Number of desired replicas."),
            ("Current", "integer", 0, "Number of actual replicas."),
            ("Ready", "integer", 0, "Number of ready replicas."),
            _AGE,
            ("Containers", "string", 1, "Names of each container in the template."),
            ("Images", "string", 1, "Images referenced by each container in the template."),
            ("Selector", "string", 1, "Label selector for pods."),
        ],
        _replicaset_cells,
    ),
    ("apps", "StatefulSet"): (
        [
            _NAME,
            ("Ready", "string", 0, "Number of ready pods out of the desired replicas."),
            _AGE,
            ("Containers", "string", 1, "Names of each container in the template."),
            ("Images", "string", 1, "Images referenced by each container in the template."),
        ],
        _statefulset_cells,
    ),
    ("apps", "DaemonSet"): (
        [
            _NAME,
            ("Desired", "integer", 0, "Desired number of scheduled pods."),
            ("Current", "integer", 0, "Currently scheduled pods."),
            ("Ready", "integer", 0, "Ready pods."),
            ("Up-to-date", "integer", 0, "Pods running the desired template."),
            ("Available", "integer", 0, "Available pods."),
            ("Node Selector", "string", 0, "Node selector of the pod template."),
            _AGE,
            ("Containers", "string", 1, "Names of each container in the template."),
            ("Images", "string", 1, "Images referenced by each container in the template."),
            ("Selector", "string", 1, "Label selector for pods."),
        ],
        _daemonset_cells,
    ),
    ("", "Service"): (
        [
            _NAME,
            ("Type", "string", 0, "The type of the service."),
            ("Cluster-IP", "string", 0, "The cluster IP of the service."),
            ("External-IP", "string", 0, "External IPs of the service."),
            ("Port(s)", "string", 0, "Ports exposed by the service."),
            _AGE,
            ("Selector", "string", 1, "Pod selector of the service."),
        ],
        _service_cells,
    ),
    ("", "ConfigMap"): (
        [_NAME, ("Data", "integer", 0, "Number of data entries."), _AGE],
        lambda o, now: [o["metadata"]["name"], _count(o, "data", "binaryData"), _age(o, now)],
    ),
    ("", "Secret"): (
        [
            _NAME,
            ("Type", "string", 0, "The type of the secret."),
            ("Data", "integer", 0, "Number of data entries."),
            _AGE,
        ],
        lambda o, now: [
            o["metadata"]["name"],
            o.get("type", "Opaque"),
            _count(o, "data", "stringData"),
            _age(o, now),
        ],
    ),
    ("", "ServiceAccount"): (
        [_NAME, ("Secrets", "integer", 0, "Number of secrets."), _AGE],
        lambda o, now: [o["metadata"]["name"], len(o.get("secrets") or []), _age(o, now)],
    ),
    ("", "PersistentVolumeClaim"): (
        [
            _NAME,
            ("Status", "string", 0, "Phase of the claim."),
            ("Volume", "string", 0, "Bound persistent volume."),
            ("Capacity", "string", 0, "Capacity of the bound volume."),
            ("Access Modes", "string", 0, "Access modes of the claim."),
            ("StorageClass", "string", 0, "Storage class of the claim."),
            _AGE,
            ("VolumeMode", "string", 1, "Volume mode of the claim."),
        ],
        _pvc_cells,
    ),
    ("batch", "Job"): (
        [
            _NAME,
            ("Status", "string", 0, "Status of the job."),
            ("Completions", "string", 0, "Succeeded pods out of the desired completions."),
            _AGE,
            ("Containers", "string", 1, "Names of each container in the template."),
            ("Images", "string", 1, "Images referenced by each container in the template."),
        ],
        _job_cells,
    ),
    ("batch", "CronJob"): (
        [
            _NAME,
            ("Schedule", "string", 0, "The schedule in Cron format."),
            ("Timezone", "string", 0, "Time zone of the schedule."),
            ("Suspend", "boolean", 0, "Whether scheduling is suspended."),
            ("Active", "integer", 0, "Number of running jobs."),
            ("Last Schedule", "string", 0, "Time since the last schedule."),
            _AGE,
        ],
        _cronjob_cells,
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        [_NAME, ("Created At", "date", 0, "Creation timestamp.")],
        lambda o, now: [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")],
    ),
}


def _jsonpath(obj: Obj, path: str) -> Any:
    """Evaluate the simple ``.a.b.c`` JSONPath used by CRD printer columns."""
    value: Any = obj
    for part in path.strip().lstrip(".").split("."):
        if part.endswith("[0]"):
            part = part[:-3]
            value = _get(value, part)
            value = value[0] if isinstance(value, list) and value else None
        else:
            value = _get(value, part)
        if value is None:
            return None
    return value


def _crd_table(rt: ResourceType) -> tuple[list[Column], CellFn] | None:
    if rt.crd is None:
        return None
    versions = _get(rt.crd, "spec", "versions", default=[])
    version: Mapping[str, Any] = next((v for v in versions if v.get("name") == rt.version), {})
    printer = version.get("additionalPrinterColumns") or []
    if not printer:
        return None
    columns: list[Column] = [_NAME] + [
        (
            c.get("name", ""),
            "string" if c.get("type") == "date" else c.get("type", "string"),
            int(c.get("priority", 0)),
            c.get("description", ""),
        )
        for c in printer
    ]

    def cells(obj: Obj, now: datetime) -> list[Any]:
        row: list[Any] = [obj["metadata"]["name"]]
        for c in printer:
            value = _jsonpath(obj, c.get("jsonPath", ""))
            if c.get("type") == "date":
                value = _since(value, now) if value else "<unknown>"
            row.append(value)
        return row

    return columns, cells


def _table_for(rt: ResourceType) -> tuple[list[Column], CellFn]:
    found = _BUILTIN_TABLES.get((rt.group, rt.kind)) or _crd_table(rt)
    if found:
        return found
    return [_NAME, _AGE], lambda o, now: [o["metadata"]["name"], _age(o, now)]


def _partial_metadata(obj: Obj, api_version: str) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{api_version}",
        "metadata": obj.get("metadata") or {},
    }


def render_table(
    rt: ResourceType,
    objects: list[dict[str, Any]],
    now: datetime,
    *,
    include_object: str = "Metadata",
    resource_version: str = "",
    table_version: str = "v1",
) -> dict[str, Any]:
    """A ``meta.k8s.io`` ``Table`` of ``objects`` (``include_object``: None|Metadata|Object)."""
    columns, cells = _table_for(rt)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = _partial_metadata(obj, table_version)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": description,
                "priority": priority,
            }
            for name, kind, priority, description in columns
        ],
        "rows": rows,
    }
