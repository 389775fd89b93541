"""How a configured MCP server is launched: `${VAR}` references expanded from
sre-agent's environment (secrets stay out of the YAML), and a bare command looked up where
this project installs MCP servers."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graph.config import MCPServerConfig

REPO = Path(__file__).resolve().parents[1]
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value: str, environ: Mapping[str, str] | None = None) -> str:
    """`${VAR}` and `${VAR:-default}` in a configured value, from sre-agent's environment
    (so secrets stay out of the YAML); raises KeyError naming a variable that is not set."""
    environ = os.environ if environ is None else environ

    def value_of(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise KeyError(name)

    return _VARIABLE.sub(value_of, value)


def resolve_command(command: str) -> str:
    """A bare command name that is not on PATH is looked up where this project installs MCP
    servers: next to the running Python (PyPI packages, in the venv) and node_modules/.bin
    (npm packages), so a config can say `prometheus-mcp-server` without a path."""
    if os.sep in command or shutil.which(command):
        return command
    folders = [Path(sys.executable).parent, Path.cwd() / "node_modules" / ".bin"]
    folders.append(REPO / "node_modules" / ".bin")
    for folder in folders:
        candidate = folder / command
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return command


def resolved(config: MCPServerConfig) -> MCPServerConfig:
    """The config a server is started with: variables expanded, the command located."""
    try:
        update: dict[str, Any] = {
            "args": [expand(a) for a in config.args],
            "env": {k: expand(v) for k, v in config.env.items()},
            "headers": {k: expand(v) for k, v in config.headers.items()},
            "url": expand(config.url) if config.url else None,
        }
    except KeyError as exc:
        raise ValueError(f"environment variable {exc.args[0]} is not set") from None
    if config.command:
        update["command"] = resolve_command(expand(config.command))
    return config.model_copy(update=update)
