"""The scripted demo model: used when no LLM is configured. It is honest canned logic,
not an LLM: it plans the usual first checks for an alert, reads facts out of the tool
results in its prompt (Kubernetes YAML, tables, logs), and writes an analysis from them.

It is stateless — everything it knows comes from the prompt — so one instance serves
any number of concurrent investigations."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from langchain_core.messages import AIMessage

from graph.scripted_model import ModelRequest, ScriptedChatModel, structured, tool_call

try:  # libyaml's parser, where PyYAML has it (its wheels do): several times faster
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader  # type: ignore[assignment]

_FACT = re.compile(r"^- \[(?P<ref>[^\]]+)\] (?P<text>.+)$", re.M)
_MADE = re.compile(r"^- \[T[\d.]+\] (\w+)\((.*)\) → ", re.M)
_TIMESTAMP = re.compile(r"^\S+Z\s+")
_RESULT = re.compile(
    r'<tool_result ref="([^"]+)" tool="([^"]+)" status="(\w+)">\n(.*?)\n</tool_result>', re.S
)


def _between(text: str, tag: str) -> str:
    match = re.search(rf"<{tag}[^>]*>\n(.*?)\n</{tag}>", text, re.S)
    return match.group(1) if match else ""


def _alert(prompt: str) -> dict[str, str]:
    fields = {}
    for line in _between(prompt, "alert").splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _facts(prompt: str) -> list[tuple[str, str]]:
    return [(m["ref"], m["text"]) for m in _FACT.finditer(_between(prompt, "notes"))]


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


# --- reading tool results ------------------------------------------------------------


def _object_facts(obj: dict[str, Any]) -> list[str]:
    kind, meta = obj.get("kind", ""), obj.get("metadata") or {}
    name, status = meta.get("name", "?"), obj.get("status") or {}
    facts = []
    if kind == "Namespace":
        facts.append(
            f"Namespace {name} is in phase {status.get('phase', '?')}"
            + (
                f" (deletion requested {meta['deletionTimestamp']})"
                if meta.get("deletionTimestamp")
                else ""
            )
        )
        for cond in status.get("conditions") or []:
            if cond.get("status") == "True":
                facts.append(f"Condition {cond.get('type')}: {_one_line(cond.get('message'))}")
    elif kind == "Pod":
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if waiting.get("reason") or last:
                facts.append(
                    f"Container {cs.get('name')} of pod {name} is "
                    f"{waiting.get('reason', 'waiting')}"
                    f" after {cs.get('restartCount', 0)} restarts; last exit code "
                    f"{last.get('exitCode', '?')} ({last.get('reason', '?')})"
                )
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                facts.append(
                    f"Pod {name} is {cond.get('reason')}: {_one_line(cond.get('message'))}"
                )
                for c in (obj.get("spec") or {}).get("containers") or []:
                    requests = (c.get("resources") or {}).get("requests") or {}
                    if requests:
                        facts.append(
                            f"Container {c.get('name')} requests "
                            + ", ".join(f"{k} {v}" for k, v in requests.items())
                        )
    if meta.get("deletionTimestamp") and meta.get("finalizers") and kind != "Namespace":
        facts.append(
            f"{kind} {name} is being deleted but keeps finalizers {', '.join(meta['finalizers'])}"
        )
    return facts


def _event_facts(events: list[Any]) -> list[str]:
    facts = []
    for event in events:
        if isinstance(event, dict) and event.get("Type") == "Warning":
            obj = event.get("InvolvedObject") or {}
            facts.append(
                f"Warning event {event.get('Reason')} on {obj.get('Kind')} "
                f"{obj.get('Name')}: {_one_line(event.get('Message'))}"
            )
    return facts[:4]


def _table_facts(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0].split() if lines else []
    if "KIND" not in header or "NAME" not in header:
        return []
    facts = []
    for line in lines[1:]:
        row = dict(zip(header, line.split(), strict=False))
        where = f"{row['NAMESPACE']}/{row['NAME']}" if "NAMESPACE" in row else row["NAME"]
        managed = re.search(r"managed-by=([\w.-]+)", row.get("LABELS", ""))
        if row.get("KIND") == "Deployment" and row.get("READY") == "0/0":
            facts.append(f"Deployment {where} is scaled to zero replicas (READY 0/0)")
        elif row.get("KIND") not in ("Deployment", "Pod") or managed:
            facts.append(
                f"{row['KIND']} {where} still exists"
                + (f", managed by {managed.group(1)}" if managed else "")
            )
        elif row.get("KIND") == "Pod" and row.get("STATUS") not in ("Running", "Completed"):
            facts.append(f"Pod {where} is {row.get('STATUS')}")
    return facts[:6]


def _log_facts(text: str) -> list[str]:
    wanted = [
        line
        for line in text.splitlines()
        if re.search(r"\b(FATAL|ERROR|panic)\b|not set|unknown setting", line)
    ]
    return ["Log: " + _TIMESTAMP.sub("", line).strip() for line in wanted[-4:]]


def read_result(tool: str, content: str) -> list[str]:
    """Facts found in one tool result."""
    if tool == "pods_log":
        return _log_facts(content)
    facts = _table_facts(content)
    if facts:
        return facts
    body = "\n".join(line for line in content.splitlines() if not line.startswith("#"))
    try:
        data = yaml.load(body, Loader=SafeLoader)
    except yaml.YAMLError:
        return []
    if isinstance(data, dict):
        return _object_facts(data)
    if isinstance(data, list):
        return _event_facts(data)
    return []


# --- planning ------------------------------------------------------------------------


def _plan(alert: dict[str, str], facts: list[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    ns, pod = alert.get("namespace", ""), alert.get("pod", "")
    text = "\n".join(t for _, t in facts)
    plan: list[tuple[str, dict[str, Any]]] = []
    if alert.get("alert_type") == "NamespaceTerminating" and ns:
        plan += [
            ("resources_get", {"apiVersion": "v1", "kind": "Namespace", "name": ns}),
            ("events_list", {"namespace": ns}),
        ]
        remaining = re.search(r"Some resources are remaining: (\w+?)s?\.([\w.-]+) has", text)
        if remaining:
            kind = remaining.group(1).capitalize()
            plan += [
                (
                    "resources_list",
                    {"apiVersion": f"{remaining.group(2)}/v1", "kind": kind, "namespace": ns},
                ),
                ("resources_list", {"apiVersion": "apps/v1", "kind": "Deployment"}),
            ]
    elif pod and ns:
        plan += [("pods_get", {"name": pod, "namespace": ns}), ("events_list", {"namespace": ns})]
        if "restarts" in text:
            plan.append(("pods_log", {"name": pod, "namespace": ns, "previous": True}))
    elif ns:
        plan += [("pods_list_in_namespace", {"namespace": ns}), ("events_list", {"namespace": ns})]
    return plan


def _remaining(
    prompt: str, facts: list[tuple[str, str]], available: set[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Planned calls not made yet (and, when known, whose tool is available)."""
    made = set(_MADE.findall(prompt))
    return [
        (name, args)
        for name, args in _plan(_alert(prompt), facts)
        if (available is None or name in available)
        and (name, json.dumps(args, ensure_ascii=False, separators=(", ", ": "))) not in made
    ]


def _select(request: ModelRequest) -> AIMessage:
    prompt = request.messages[-1].text
    todo = _remaining(prompt, _facts(prompt), set(request.tool_names))
    if not todo:
        return AIMessage(content="The evidence collected so far is enough to conclude.")
    return AIMessage(content="", tool_calls=[tool_call(name, **args) for name, args in todo])


def _partial(request: ModelRequest) -> AIMessage:
    prompt = request.messages[-1].text
    facts = _facts(prompt)
    known = {text for _, text in facts}
    for ref, tool, status, content in _RESULT.findall(prompt):
        if status != "ok":
            facts.append((ref, f"{tool} failed: {_one_line(content)[:200]}"))
            continue
        facts += [(ref, fact) for fact in read_result(tool, content) if fact not in known]
    conclude = not _remaining(prompt, facts)
    notes = "\n".join(f"- [{ref}] {text}" for ref, text in facts) or "- [alert] No facts found."
    return structured("PartialAnalysis", analysis=notes, conclude=conclude)


def _conclusion(alert: dict[str, str], facts: list[tuple[str, str]]) -> tuple[str, list[str], str]:
    text = "\n".join(t for _, t in facts)
    ns, pod = alert.get("namespace", "?"), alert.get("pod", "?")
    remaining = re.search(r"Some resources are remaining: ([\w.-]+) has (\d+)", text)
    finalizer = re.search(r"finalizers remaining: ([\w./-]+) in", text)
    zero = re.findall(r"Deployment ([\w.-]+)/([\w.-]+) is scaled to zero", text)
    managers = set(re.findall(r"managed by ([\w.-]+)", text))
    if remaining and finalizer:
        cause = (
            f"Namespace {ns} cannot finish terminating: {remaining.group(1)} still has "
            f"{remaining.group(2)} resource(s) holding the finalizer {finalizer.group(1)}."
        )
        controller = next(((n, d) for n, d in zero if d in managers), None)
        steps = []
        if controller:
            cause += (
                f" The controller that removes it, Deployment {controller[0]}/"
                f"{controller[1]}, is scaled to 0 replicas, so nothing removes the "
                "finalizer."
            )
            steps.append(
                f"Scale the controller back up: kubectl -n {controller[0]} scale "
                f"deployment {controller[1]} --replicas=1, and watch it release the "
                "resource; the namespace then finishes deleting on its own."
            )
        steps += [
            f"Only if the data behind the remaining resource is confirmed safe to lose, "
            f"remove its finalizer {finalizer.group(1)} by hand (kubectl patch ... "
            '--type=merge -p \'{"metadata":{"finalizers":null}}\'); this skips the '
            "controller's cleanup.",
            f"Do not force-remove the namespace's own 'kubernetes' finalizer; confirm "
            f"with kubectl get ns {ns} that deletion completes.",
        ]
        return cause, steps, "high" if controller else "medium"
    crash = re.search(r"Container (\S+) of pod (\S+) is CrashLoopBackOff.*", text)
    fatal = re.search(r"Log: FATAL (.*)", text) or re.search(r"Log: ERROR (.*)", text)
    if crash:
        cause = crash.group(0) + (f". It exits because: {fatal.group(1)}" if fatal else ".")
        hint = re.search(r"Log: WARN\s+(ignoring unknown setting .*|\S+ is not set.*)", text)
        if hint:
            cause += f" The log also says: {hint.group(1)}"
        return (
            cause,
            [
                f"Fix the configuration the log names for pod {pod} (or roll back the "
                "last rollout), then watch the new pod become Ready.",
                "Check the previous container's log after the fix to confirm the error is gone.",
            ],
            "high" if fatal else "medium",
        )
    unschedulable = re.search(r"Pod (\S+) is Unschedulable: (.*)", text)
    if unschedulable:
        requests = re.search(r"Container \S+ requests (.*)", text)
        cause = f"Pod {unschedulable.group(1)} cannot be scheduled: {unschedulable.group(2)}"
        if requests:
            cause += f" It requests {requests.group(1)}."
        return (
            cause,
            [
                "Lower the pod's resource requests to what the nodes can offer, or add "
                "a node pool large enough for it.",
                "Confirm with kubectl get events that FailedScheduling stops.",
            ],
            "high",
        )
    warning = next((t for _, t in facts if t.startswith("Warning event")), None)
    if warning:
        return warning, ["Investigate the warning above with the runbook."], "low"
    return (
        "The demo model could not determine a root cause from the data collected.",
        ["Configure a real model (LLM_MODEL) for this alert type."],
        "low",
    )


def _final(request: ModelRequest) -> AIMessage:
    prompt = request.messages[-1].text
    facts = _facts(prompt)
    cause, steps, confidence = _conclusion(_alert(prompt), facts)
    evidence = [{"finding": text, "tool_call": ref} for ref, text in facts[:8]]
    summary = (
        f"{_alert(prompt).get('alert_type', 'Alert')}: {cause.split('. ')[0].rstrip('.')}. "
        f"Based on {len({r for r, _ in facts})} tool result(s)."
    )
    return structured(
        "RootCauseAnalysis",
        summary=summary,
        root_cause=cause,
        evidence=evidence,
        remediation=steps,
        confidence=confidence,
    )


def demo_responder(request: ModelRequest) -> AIMessage:
    if request.structured_output == "PartialAnalysis":
        return _partial(request)
    if request.structured_output == "RootCauseAnalysis":
        return _final(request)
    return _select(request)


def demo_model(latency: float = 0.0) -> ScriptedChatModel:
    """A fresh demo model (stateless; it keeps no record of its calls)."""
    return ScriptedChatModel(
        responder=demo_responder, latency=latency, model_name="demo", record=False
    )
