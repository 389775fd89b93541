"""Prometheus Alertmanager's webhook (payload version 4): the payload models, the mapping
of an Alertmanager alert to an `Alert`, and deduplication by fingerprint.

Each firing alert of a notification becomes an investigation, unless its fingerprint is
already covered: a session of the same fingerprint is still queued or running, or ended
less than `ALERTMANAGER_DEDUP_WINDOW` seconds ago. Alertmanager re-sends a whole group
whenever it changes and again every `repeat_interval`, so without this every
re-notification would pay for a new investigation. The fingerprint is stored with the
session (so deduplication survives a restart) and kept in memory by the manager (so it
works while the database is down).

Resolved alerts start nothing: they are reported, and the latest session of their
fingerprint gets `alert_resolved_at` in its metadata."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from annotated_types import MaxLen
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graph.alert import Alert
from graph.validation import describe_errors
from server.manager import Investigations, QueueFull
from server.sessions import SessionState, now
from server.store import FINISHED, Store

log = logging.getLogger(__name__)

SOURCE = "alertmanager"  # the alert source in the metrics and in the alert data

_SHORT = 1024
_TEXT = 65_536
# Alerts of one notification looked at; the rest are rejected (webhook_configs' max_alerts
# truncates at the source). Bounds the time to answer, as Alertmanager waits for it.
MAX_ALERTS_PER_NOTIFICATION = 1000


# --- the payload ----------------------------------------------------------------------------


class AlertmanagerLabels(BaseModel):
    """An alert's labels: `alertname` and any others, all strings."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str] = Field(init=False)

    alertname: str = Field(min_length=1)


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: AlertmanagerLabels
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = Field(default="", max_length=_TEXT)
    fingerprint: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Alertmanager's label-set hash; computed the same way when absent.",
    )

    def label_dict(self) -> dict[str, str]:
        return self.labels.model_dump()

    def identity(self) -> str:
        return self.fingerprint or fingerprint(self.label_dict())


class AlertmanagerWebhook(BaseModel):
    """The body Alertmanager POSTs to a webhook receiver (version "4")."""

    model_config = ConfigDict(extra="allow")

    version: str = Field(default="4", max_length=16)
    groupKey: str = Field(default="", max_length=_TEXT)
    truncatedAlerts: int = Field(default=0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = Field(default="", max_length=_SHORT)
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = Field(default="", max_length=_TEXT)
    alerts: list[AlertmanagerAlert]


# --- the response ---------------------------------------------------------------------------

Action = Literal["investigating", "deduplicated", "resolved", "rejected"]


class AlertmanagerAlertResult(BaseModel):
    fingerprint: str
    alertname: str
    status: Literal["firing", "resolved"] = Field(description="The alert's status.")
    action: Action = Field(
        description="investigating: a new investigation was queued; deduplicated: a session "
        "of the same fingerprint covers it; resolved: recorded, not investigated; "
        "rejected: not investigated, see `reason`."
    )
    reason: str | None = None
    alert_id: str | None = None
    session_id: str | None = Field(default=None, description="The session that covers the alert.")
    session_status: str | None = None
    status_url: str | None = None
    events_url: str | None = None
    session_url: str | None = None


class AlertmanagerAccepted(BaseModel):
    receiver: str
    group_key: str
    investigating: int
    deduplicated: int
    resolved: int
    rejected: int
    alerts: list[AlertmanagerAlertResult]


# --- mapping --------------------------------------------------------------------------------


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (prometheus/common `LabelSet.Fingerprint`):
    FNV-1a 64 over the sorted names and values, each followed by a 0xff byte; 16 hex digits."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _max_len(name: str) -> int | None:
    for meta in Alert.model_fields[name].metadata:
        if isinstance(meta, MaxLen):
            return meta.max_length
    return None


_MESSAGE_MAX = _max_len("message") or 16_384


def _message(alert: AlertmanagerAlert, labels: dict[str, str]) -> str:
    summary = alert.annotations.get("summary", "").strip()
    description = alert.annotations.get("description", "").strip()
    text = "\n".join(part for part in (summary, description) if part)
    if not text:
        others = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
        text = f"{labels['alertname']} is firing" + (f" ({others})" if others else "")
    return text[:_MESSAGE_MAX]


def to_alert(alert: AlertmanagerAlert, fp: str) -> Alert:
    """The `Alert` an Alertmanager alert is investigated as; raises `ValidationError` when a
    label does not fit (an alertname longer than an alert type may be, say)."""
    labels = alert.label_dict()
    annotations = alert.annotations
    starts = _time(alert.startsAt)
    fields: dict[str, Any] = {
        "alert_type": labels["alertname"],
        "severity": labels.get("severity") or "warning",
        "environment": labels.get("environment") or labels.get("env") or "",
        "cluster": labels.get("cluster") or "",
        "namespace": labels.get("namespace") or "",
        "pod": labels.get("pod") or None,
        "message": _message(alert, labels),
        "runbook": annotations.get("runbook_url") or annotations.get("runbook") or None,
        # Kept as they came: they reach the model as context.
        "labels": labels,
        "annotations": annotations,
        "fingerprint": fp,
        "generatorURL": alert.generatorURL or None,
        "startsAt": starts.isoformat() if starts else None,
        "timestamp": starts,
        "source": SOURCE,
    }
    return Alert.model_validate({k: v for k, v in fields.items() if v is not None})


def _time(value: datetime | None) -> datetime | None:
    """None for Alertmanager's "unset" (0001-01-01T00:00:00Z)."""
    return value if value is not None and value.year > 1 else None


def _errors(exc: ValidationError) -> str:
    return describe_errors(exc.errors(include_url=False))


# --- intake ---------------------------------------------------------------------------------

# One lock per fingerprint: concurrent notifications of one alert (Alertmanager HA pairs
# both deliver) must not both start an investigation.
_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _lock(fp: str) -> asyncio.Lock:
    lock = _locks.get(fp)
    if lock is None:
        lock = _locks[fp] = asyncio.Lock()
    return lock


def covers(state: SessionState, window: float) -> bool:
    """Whether a session still covers its alert: unfinished, or ended within `window`
    seconds (a finished session's timestamp is when it ended)."""
    if state.status not in FINISHED:
        return True
    return (now() - state.timestamp).total_seconds() < window


@dataclass
class Intake:
    results: list[AlertmanagerAlertResult] = field(default_factory=list)
    queue_full: int = 0  # firing alerts refused because the queue was full
    refusal: str | None = None  # why (the manager's QueueFull message)

    @property
    def refused(self) -> bool:
        """Alerts were refused for want of capacity and none was taken on (queued or
        deduplicated): the notification is worth retrying as a whole."""
        taken = any(r.action in ("investigating", "deduplicated") for r in self.results)
        return self.queue_full > 0 and not taken

    def response(self, webhook: AlertmanagerWebhook) -> AlertmanagerAccepted:
        counts = dict.fromkeys(("investigating", "deduplicated", "resolved", "rejected"), 0)
        for result in self.results:
            counts[result.action] += 1
        return AlertmanagerAccepted(
            receiver=webhook.receiver, group_key=webhook.groupKey, alerts=self.results, **counts
        )


async def intake(
    webhook: AlertmanagerWebhook, investigations: Investigations, *, dedup_window: float
) -> Intake:
    """Queue an investigation for each firing alert not already covered; record the rest.
    Only queues work: answers as fast as the session index does."""
    done = Intake()
    seen: dict[tuple[str, str], AlertmanagerAlertResult] = {}
    for n, alert in enumerate(webhook.alerts):
        fp = alert.identity()
        result = AlertmanagerAlertResult(
            fingerprint=fp,
            alertname=alert.labels.alertname,
            status=alert.status,
            action="resolved",
        )
        if (fp, alert.status) in seen:  # listed twice: once is enough
            result = _repeated(seen[fp, alert.status])
        elif n >= MAX_ALERTS_PER_NOTIFICATION:
            result.action = "rejected"
            result.reason = (
                f"more than {MAX_ALERTS_PER_NOTIFICATION} alerts in one notification "
                "(set max_alerts in the webhook config)"
            )
        elif alert.status == "resolved":
            await _resolved(alert, result, investigations)
        else:
            await _firing(alert, result, investigations, dedup_window, done)
        seen.setdefault((fp, alert.status), result)
        done.results.append(result)
    return done


def _repeated(first: AlertmanagerAlertResult) -> AlertmanagerAlertResult:
    result = first.model_copy()
    if first.action == "investigating":
        result.action, result.reason = "deduplicated", "listed twice in this notification"
    return result


def _covered_by(result: AlertmanagerAlertResult, state: SessionState) -> None:
    result.alert_id, result.session_id = state.alert_id, state.session_id
    result.session_status = state.status


async def _firing(
    alert: AlertmanagerAlert,
    result: AlertmanagerAlertResult,
    investigations: Investigations,
    window: float,
    done: Intake,
) -> None:
    try:
        converted = to_alert(alert, result.fingerprint)
    except ValidationError as exc:
        result.action, result.reason = "rejected", f"invalid alert: {_errors(exc)}"
        return
    async with _lock(result.fingerprint):
        existing = await investigations.session_for_fingerprint(result.fingerprint)
        if existing is not None and covers(existing, window):
            investigations.metrics.alert_received(SOURCE)
            investigations.metrics.alert_deduplicated(SOURCE)
            result.action = "deduplicated"
            result.reason = (
                f"session {existing.session_id} {existing.status} less than {window:g}s ago"
                if existing.status in FINISHED
                else f"session {existing.session_id} is {existing.status}"
            )
            _covered_by(result, existing)
            return
        try:
            state, _ = await investigations.submit(
                converted, source=SOURCE, fingerprint=result.fingerprint
            )
        except QueueFull as exc:
            done.queue_full += 1
            done.refusal = str(exc)
            result.action, result.reason = "rejected", f"queue full: {exc}"
            return
    result.action = "investigating"
    _covered_by(result, state)


async def _resolved(
    alert: AlertmanagerAlert, result: AlertmanagerAlertResult, investigations: Investigations
) -> None:
    state = await investigations.session_for_fingerprint(result.fingerprint)
    if state is None:
        result.reason = "no session of this fingerprint"
        return
    _covered_by(result, state)
    if investigations.store is not None:
        await _mark_resolved(investigations.store, state.session_id, _time(alert.endsAt) or now())


async def _mark_resolved(store: Store, session_id: str, ended: datetime) -> None:
    try:
        record = await store.get_session(session_id)
        if record is None:
            return
        metadata = {**record.session_metadata, "alert_resolved_at": ended.isoformat()}
        if metadata != record.session_metadata:
            # updated_at kept: a finished session's last update is when it ended, which
            # the deduplication window counts from.
            await store.update_session(
                session_id, session_metadata=metadata, updated_at=record.updated_at
            )
    except Exception as exc:  # a record of it, no more: the response still reports it
        log.warning("could not mark session %s resolved: %s", session_id, exc)
