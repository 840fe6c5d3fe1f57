"""``cloudjobs-mcp config <client>``: the block that adds this server to Claude Desktop, VS Code or Cursor.

The block starts the server with ``uvx`` (or ``pipx run``, or this installation's own script) and carries
the ``CLOUDJOBS_*`` settings asked for. Credentials never go into it: Claude Desktop gets a placeholder to
replace, Cursor a ``${env:NAME}`` reference to the user's environment, VS Code an ``inputs`` entry with
``password: true`` that VS Code asks for once and keeps in its secret storage.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cloudjobs_mcp.server import __version__
from cloudjobs_mcp.server.config import PREFIX, Settings
from cloudjobs_mcp.server.errors import ConfigurationError

CLIENTS = ("claude", "vscode", "cursor")
RUNNERS = ("uvx", "pipx", "path")
PACKAGE = "cloudjobs-mcp"
# The credentials each provider reads from the environment (name, what to ask the user for). A provider with
# an ambient credential chain (files, instance roles) still works when the user leaves them unset.
CREDENTIALS: dict[str, tuple[tuple[str, str], ...]] = {
    "pai": (
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "Alibaba Cloud AccessKey ID"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "Alibaba Cloud AccessKey secret"),
    ),
    # The API key (ak-…); a user and password (CLOUDJOBS_WORKLOAD_USER/_PASSWORD) work too, set by hand.
    "workload": (("CLOUDJOBS_WORKLOAD_API_KEY", "workload platform API key"),),
    "modelarts": (
        ("HUAWEICLOUD_SDK_AK", "Huawei Cloud access key id (AK)"),
        ("HUAWEICLOUD_SDK_SK", "Huawei Cloud secret key (SK)"),
    ),
}
# Read by the CLI itself, not a Settings field.
EXTRA_SETTINGS = ("CLOUDJOBS_LOG_LEVEL",)
WHERE = {
    "claude": "claude_desktop_config.json (Settings > Developer > Edit Config)",
    "vscode": ".vscode/mcp.json in your workspace (or MCP: Open User Configuration)",
    "cursor": ".cursor/mcp.json in your project, or ~/.cursor/mcp.json",
}


def setting_names() -> list[str]:
    return [PREFIX + name.upper() for name in Settings.model_fields] + list(EXTRA_SETTINGS)


def launch(runner: str, *, pin: bool) -> tuple[str, list[str]]:
    """The command and arguments that start the stdio server."""
    if runner == "uvx":
        return "uvx", [f"{PACKAGE}@{__version__}" if pin else PACKAGE]
    if runner == "pipx":
        return "pipx", ["run", "--spec", f"{PACKAGE}=={__version__}" if pin else PACKAGE, PACKAGE]
    return str(Path(sys.executable).parent / PACKAGE), ["serve"]


def settings_env(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` (CLOUDJOBS_* name → value) checked as the server would read them."""
    known = setting_names()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigurationError(f"unknown setting {', '.join(unknown)}; known: {', '.join(known)}")
    Settings.from_env(dict(values))  # the server's own validation and messages
    return dict(values)


def credentials_of(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The credential variables of every enabled provider (CLOUDJOBS_PROVIDERS), each once."""
    providers = Settings.from_env(dict(env)).providers
    return tuple(dict.fromkeys(c for p in providers for c in CREDENTIALS.get(p, ())))


def _slug(name: str) -> str:
    return name.lower().replace("_", "-")


def block(client: str, env: Mapping[str, str], *, runner: str = "uvx", pin: bool = False) -> dict[str, Any]:
    """The JSON block for ``client``: settings from ``env`` plus the provider's credentials, as references."""
    if client not in CLIENTS:
        raise ConfigurationError(f"unknown client {client!r}; allowed: {', '.join(CLIENTS)}")
    command, args = launch(runner, pin=pin)
    server_env = settings_env(env)
    credentials = credentials_of(env)
    if client == "vscode":
        inputs = [
            {"type": "promptString", "id": _slug(name), "description": what, "password": True}
            for name, what in credentials
        ]
        server_env.update({name: f"${{input:{_slug(name)}}}" for name, _ in credentials})
        server = {"type": "stdio", "command": command, "args": args, "env": server_env}
        return {"inputs": inputs, "servers": {"cloudjobs": server}}
    if client == "cursor":
        server_env.update({name: f"${{env:{name}}}" for name, _ in credentials})
    else:
        server_env.update({name: f"<your {what}>" for name, what in credentials})
    return {"mcpServers": {"cloudjobs": {"command": command, "args": args, "env": server_env}}}


def notes(client: str, env: Mapping[str, str]) -> list[str]:
    """What the user must do with the block, printed beside it (on stderr)."""
    lines = [f"Add this to {WHERE[client]}."]
    names = [name for name, _ in credentials_of(env)]
    if names and client == "claude":
        lines.append(
            f"Replace the <your …> values of {', '.join(names)}. Claude Desktop keeps them in this file as plain"
            " text; the bundle (`cloudjobs-mcp bundle`) keeps them in the OS keychain instead."
        )
    if names and client == "cursor":
        lines.append(f"Cursor reads {', '.join(names)} from the environment it was started in: export them there.")
    if names and client == "vscode":
        lines.append(f"VS Code asks for {', '.join(names)} once and keeps them in its secret storage.")
    return lines


def main(client: str, env: Mapping[str, str], *, runner: str, pin: bool) -> int:
    try:
        text = json.dumps(block(client, env, runner=runner, pin=pin), indent=2)
        extra = notes(client, env)
    except ConfigurationError as exc:
        print(f"cloudjobs-mcp config: {exc}", file=sys.stderr)
        return 2
    print(text)
    for line in extra:
        print(line, file=sys.stderr)
    return 0
