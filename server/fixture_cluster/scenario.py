"""Load an incident scenario (Kubernetes objects, container logs, alert) from a folder.

A scenario folder holds:

* ``cluster.yaml`` – multi-document YAML of Kubernetes objects of any kind (custom
  resources and ``<Kind>List`` documents included);
* ``logs.yaml`` (optional) – mapping ``"<namespace>/<pod>/<container>"`` to the
  current container log and ``"<namespace>/<pod>/<container>/previous"`` to the log of
  the previous (terminated) container instance;
* ``alert.json`` and ``expected.yaml`` (optional) – the alert that starts the
  investigation and the facts a good analysis must mention; loaded as plain data.

Timestamps stay RFC 3339 strings (YAML's implicit timestamp type is disabled). The
scenario's *reference time* – the latest timestamp found in its objects – is the
fixture cluster's "now", so ages such as ``45m`` are deterministic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Scenario", "ScenarioError", "format_time", "load_scenario", "parse_time"]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScenarioError(ValueError):
    """The scenario folder or one of its files is invalid."""


try:  # libyaml's parser, where PyYAML has it (its wheels do): several times faster
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _Loader(_SafeLoader):
    """A safe loader that keeps timestamps as strings (as the Kubernetes API does)."""


def _timestamp_as_string(loader: _SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)


def parse_time(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp string; ``None`` if it is not one."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_time(value: datetime) -> str:
    """Format a datetime as Kubernetes does (``2025-06-02T09:15:00Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_strings(item)


def _timestamps(objects: Iterable[Mapping[str, Any]]) -> list[datetime]:
    found = []
    for obj in objects:
        for text in _walk_strings(obj):
            parsed = parse_time(text)
            if parsed is not None:
                found.append(parsed)
    return found


@dataclass(frozen=True)
class Scenario:
    """Objects and logs served by a :class:`FixtureCluster`.

    ``reference_time`` defaults to the latest timestamp in ``objects`` (the cluster's
    "now"); ``earliest_time`` is used as creationTimestamp for objects without one.
    """

    name: str
    objects: tuple[dict[str, Any], ...]
    logs: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None
    alert: dict[str, Any] | None = None
    expected: Any = None
    reference_time: datetime = _EPOCH
    earliest_time: datetime = _EPOCH

    def __post_init__(self) -> None:
        if self.reference_time == _EPOCH or self.earliest_time == _EPOCH:
            stamps = _timestamps(self.objects)
            if self.reference_time == _EPOCH:
                latest = max(stamps) if stamps else datetime.now(UTC).replace(microsecond=0)
                object.__setattr__(self, "reference_time", latest)
            if self.earliest_time == _EPOCH:
                earliest = min(stamps) if stamps else self.reference_time
                object.__setattr__(self, "earliest_time", earliest)

    @classmethod
    def from_documents(
        cls,
        objects: Iterable[Mapping[str, Any]],
        logs: Mapping[str, str] | None = None,
        name: str = "inline",
    ) -> Scenario:
        """Build a scenario from in-memory objects (``<Kind>List`` documents are expanded)."""
        return cls(name=name, objects=tuple(_expand(list(objects), name)), logs=dict(logs or {}))

    def log(self, namespace: str, pod: str, container: str, previous: bool = False) -> str | None:
        """The log text of a container, or ``None`` if the scenario has none."""
        key = f"{namespace}/{pod}/{container}" + ("/previous" if previous else "")
        return self.logs.get(key)


def _expand(documents: list[Any], source: str) -> Iterator[dict[str, Any]]:
    for index, doc in enumerate(documents):
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise ScenarioError(f"{source}: document {index} is not a mapping")
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
            yield from _expand(doc["items"], source)
            continue
        if not isinstance(kind, str) or not isinstance(doc.get("apiVersion"), str):
            raise ScenarioError(f"{source}: document {index} lacks apiVersion/kind")
        metadata = doc.get("metadata")
        if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
            raise ScenarioError(f"{source}: {kind} document {index} lacks metadata.name")
        yield json.loads(json.dumps(doc))  # deep copy with plain JSON types


def load_scenario(path: Path) -> Scenario:
    """Load the scenario in folder ``path`` (see the module docstring for its layout)."""
    path = Path(path)
    cluster_file = path / "cluster.yaml"
    if not cluster_file.is_file():
        raise ScenarioError(f"{path}: no cluster.yaml")
    try:
        documents = list(yaml.load_all(cluster_file.read_text(encoding="utf-8"), Loader=_Loader))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{cluster_file}: {exc}") from exc
    objects = tuple(_expand(documents, str(cluster_file)))

    logs: dict[str, str] = {}
    logs_file = path / "logs.yaml"
    if logs_file.is_file():
        raw = yaml.load(logs_file.read_text(encoding="utf-8"), Loader=_Loader) or {}
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{logs_file}: expected a mapping of log keys to text")
        for key, text in raw.items():
            parts = str(key).split("/")
            if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "previous"):
                raise ScenarioError(
                    f"{logs_file}: bad key {key!r}, want <namespace>/<pod>/<container>[/previous]"
                )
            logs[str(key)] = "" if text is None else str(text)

    alert = None
    alert_file = path / "alert.json"
    if alert_file.is_file():
        alert = json.loads(alert_file.read_text(encoding="utf-8"))

    expected = None
    expected_file = path / "expected.yaml"
    if expected_file.is_file():
        expected = yaml.load(expected_file.read_text(encoding="utf-8"), Loader=_Loader)

    return Scenario(
        name=path.resolve().name,
        objects=objects,
        logs=logs,
        path=path,
        alert=alert,
        expected=expected,
    )
