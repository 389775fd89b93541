"""The demo: the bundled fixture cluster, the real kubernetes-mcp-server pointed at it,
and a bundled scenario's alert and runbook."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.config import KUBERNETES_SERVER
from graph.registry import AgentRegistry
from server.fixture_cluster import FixtureCluster, load_scenario

DEFAULT_SCENARIO = "stuck-namespace"


class DemoError(RuntimeError):
    """The demo cannot run here; the message says what to install or pass."""


def examples_dir() -> Path:
    """The bundled examples/ folder (next to the project, or under the working directory)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (root / "examples" / "scenarios").is_dir():
            return root / "examples"
    raise DemoError("examples/ not found: run the demo from the sre-agent checkout")


def scenarios() -> list[str]:
    return sorted(p.name for p in (examples_dir() / "scenarios").iterdir() if p.is_dir())


@dataclass
class Demo:
    alert: dict[str, Any]
    registry: AgentRegistry
    runbooks_dir: Path
    cluster: FixtureCluster


def _server_command_available(registry: AgentRegistry) -> str:
    command = registry.servers[KUBERNETES_SERVER].command or ""
    if Path(command).exists() or shutil.which(command):
        return command
    if not shutil.which("node") or not shutil.which("npm"):
        raise DemoError(
            "the demo runs the real kubernetes-mcp-server, which needs Node.js: "
            "install node and npm (e.g. `apt-get install nodejs npm`), then `npm ci`"
        )
    raise DemoError(
        "kubernetes-mcp-server is not installed: run `npm ci` in the sre-agent "
        "checkout (or `make demo`, which does it)"
    )


@contextlib.contextmanager
def demo_environment(registry: AgentRegistry, scenario: str = DEFAULT_SCENARIO) -> Iterator[Demo]:
    """Start the fixture cluster for `scenario` and point the Kubernetes server at it."""
    folder = examples_dir() / "scenarios" / scenario
    if not folder.is_dir():
        raise DemoError(f"unknown scenario '{scenario}'; bundled: {', '.join(scenarios())}")
    if KUBERNETES_SERVER not in registry.servers:
        raise DemoError(f"the demo needs the '{KUBERNETES_SERVER}' MCP server in the config")
    _server_command_available(registry)
    alert = json.loads((folder / "alert.json").read_text())
    with (
        tempfile.TemporaryDirectory(prefix="sre-agent-demo-") as tmp,
        FixtureCluster(load_scenario(folder)) as cluster,
    ):
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        server = registry.servers[KUBERNETES_SERVER]
        args = [a for a in server.args if a != "--kubeconfig"] + ["--kubeconfig", str(kubeconfig)]
        env = {**server.env, "KUBE_CLIENT_QPS": "1000", "KUBE_CLIENT_BURST": "1000"}
        demo_registry = registry.with_servers(**{KUBERNETES_SERVER: {"args": args, "env": env}})
        yield Demo(alert, demo_registry, examples_dir() / "runbooks", cluster)
