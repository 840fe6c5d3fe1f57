"""``cloudjobs-mcp bundle``: an MCP Bundle (``.mcpb``) that Claude Desktop installs with a double click.

The bundle is manifest version 0.4 with ``server.type = "uv"``, the MCPB way for a Python server whose
dependencies are compiled (pydantic): it ships this package's code and a ``pyproject.toml`` naming the
dependencies, and the host installs Python and them with uv, for the user's own platform. The code sits in
``src/cloudjobs_mcp/`` and ``main.py`` (the entry point) puts ``src`` on the import path of the server and of
every process it starts (the local provider's job supervisors run ``python -m cloudjobs_mcp…``).
``main.py`` also names the dependencies inline (PEP 723), so ``uv run main.py`` resolves them for the
user's own platform only, as a script, rather than locking the project for every platform first.

The manifest lists the tools and prompts of a live server built here, so it never drifts from the code.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

import cloudjobs_mcp.prompts
import cloudjobs_mcp.server
import cloudjobs_mcp.tools
from cloudjobs_mcp.server import __version__
from cloudjobs_mcp.server.clients import CREDENTIALS
from cloudjobs_mcp.server.config import PROVIDERS, Settings

MANIFEST_VERSION = "0.4"
DISPLAY_NAME = "CloudJobs"
DESCRIPTION = "Run ML training jobs on clouds or this machine, each created only after a human confirmed its cost"
PACKAGE_FILES = (".py", ".md", ".json", ".html", ".js", ".css", ".typed")
ENTRY_POINT = "main.py"
# A fixed time for every archive member: the same code gives the same bytes (and fileSha256).
ZIP_TIME = (2020, 1, 1, 0, 0, 0)

MAIN_PY = '''\
# /// script
# requires-python = @REQUIRES_PYTHON@
# dependencies = @DEPENDENCIES@
# ///
"""The bundle's entry point: the cloudjobs-mcp stdio server from ./src."""

import os
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parent / "src")
sys.path.insert(0, SRC)
# Processes the server starts (job supervisors, `python -m cloudjobs_mcp...`) find the code too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
# An optional setting the user left empty may reach us unsubstituted: treat it as unset.
for name, value in list(os.environ.items()):
    if value.startswith("${user_config."):
        del os.environ[name]

from cloudjobs_mcp.server.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:] or ["serve"]))
'''


def _slug(env_name: str) -> str:
    return env_name.lower()


def user_config() -> tuple[dict[str, Any], dict[str, str]]:
    """What the host asks the user for, and the server environment each answer fills."""
    fields = Settings.model_fields
    config: dict[str, Any] = {
        "providers": {
            "type": "string",
            "title": "Providers",
            "description": f"Where jobs run, a comma list, the default first: {', '.join(PROVIDERS)}",
            "default": fields["provider"].default,
            "required": False,
        },
        "region": {
            "type": "string",
            "title": "Region",
            "description": "Cloud region of every call (pai)",
            "default": fields["region"].default,
            "required": False,
        },
        "max_job_cost": {
            "type": "number",
            "title": "Budget cap per job",
            "description": "Refuse quotes whose worst case (the full max runtime) is above this; empty: no cap",
            "required": False,
            "min": 0,
        },
        "max_hourly": {
            "type": "number",
            "title": "Budget cap per hour",
            "description": "Refuse quotes whose total hourly price is above this; empty: no cap",
            "required": False,
            "min": 0,
        },
    }
    env = {f"CLOUDJOBS_{key.upper()}": f"${{user_config.{key}}}" for key in config}
    for provider, credentials in CREDENTIALS.items():
        for name, what in credentials:
            config[_slug(name)] = {
                "type": "string",
                "title": what,
                "description": f"{provider}: {what}, kept in the OS keychain; empty: the provider's credential chain",
                "required": False,
                "sensitive": True,
            }
            env[name] = f"${{user_config.{_slug(name)}}}"
    return config, env


async def _listing() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The tools and prompts a server with default settings lists (state in a throwaway directory).

    Settings that narrow tools/list (read-only mode, and toolsets where they exist) must be left at "all
    tools" here: the manifest lists everything the bundle can serve."""
    from cloudjobs_mcp.server.app import build_server

    with tempfile.TemporaryDirectory() as state:
        settings = Settings.from_env({}, state_dir=state)
        async with Client(build_server(settings)) as client:
            tools = [{"name": t.name, "description": t.description or ""} for t in (await client.list_tools()).tools]
            prompts = []
            for prompt in (await client.list_prompts()).prompts:
                names = [a.name for a in prompt.arguments or []]
                # The text with MCPB's placeholders where the arguments go.
                got = await client.get_prompt(prompt.name, {n: f"${{arguments.{n}}}" for n in names})
                text = "\n".join(getattr(m.content, "text", "") for m in got.messages)
                prompts.append({"name": prompt.name, "description": prompt.description or "", "arguments": names})
                prompts[-1]["text"] = text
    return tools, prompts


def manifest() -> dict[str, Any]:
    meta = metadata.metadata("cloudjobs-mcp")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    tools, prompts = anyio.run(_listing)
    config, env = user_config()
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": "cloudjobs-mcp",
        "display_name": DISPLAY_NAME,
        "version": __version__,
        "description": DESCRIPTION,
        "long_description": meta["Summary"],
        "author": {"name": "cloudjobs-mcp contributors", "url": urls["Repository"]},
        "repository": {"type": "git", "url": urls["Repository"]},
        "homepage": urls["Repository"],
        "support": urls["Issues"],
        "license": meta["License-Expression"] or meta["License"],
        "keywords": (meta["Keywords"] or "").split(","),
        "server": {
            "type": "uv",
            "entry_point": ENTRY_POINT,
            "mcp_config": {"command": "uv", "args": ["run", "--directory", "${__dirname}", ENTRY_POINT], "env": env},
        },
        "tools": tools,
        "tools_generated": False,
        "prompts": prompts,
        "prompts_generated": False,
        "user_config": config,
        "compatibility": {
            "platforms": ["darwin", "linux"],  # the local provider needs POSIX processes and signals
            "runtimes": {"python": meta["Requires-Python"]},
        },
    }


def dependencies() -> list[str]:
    """Our runtime requirements, as installed (the extras' requirements left out)."""
    return [r for r in metadata.requires("cloudjobs-mcp") or [] if "extra ==" not in r]


def pyproject(meta: metadata.PackageMetadata) -> str:
    """The uv project the host installs: our runtime dependencies, and no build of our own."""
    lines = [
        "[project]",
        'name = "cloudjobs-mcp-bundle"',
        f'version = "{__version__}"',
        f"requires-python = {json.dumps(meta['Requires-Python'])}",
        f"dependencies = {json.dumps(dependencies())}",
        "",
        "[tool.uv]",
        "package = false",
        "",
    ]
    return "\n".join(lines)


def package_files() -> dict[str, bytes]:
    """Archive path → content of every file of the installed cloudjobs_mcp packages."""
    files: dict[str, bytes] = {}
    for module in (cloudjobs_mcp.server, cloudjobs_mcp.tools, cloudjobs_mcp.prompts):
        top = Path(module.__file__ or "").parent
        for path in sorted(top.rglob("*")):
            if path.is_file() and path.suffix in PACKAGE_FILES and "__pycache__" not in path.parts:
                rel = path.relative_to(top).as_posix()
                files[f"src/{module.__name__.replace('.', '/')}/{rel}"] = path.read_bytes()
    return files


def build(output: Path) -> Path:
    """Write ``output/cloudjobs-mcp-<version>.mcpb``; returns its path."""
    doc = manifest()
    meta = metadata.metadata("cloudjobs-mcp")
    main_py = MAIN_PY.replace("@REQUIRES_PYTHON@", json.dumps(meta["Requires-Python"]))
    main_py = main_py.replace("@DEPENDENCIES@", json.dumps(dependencies()))
    files = {
        "manifest.json": (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode(),
        "pyproject.toml": pyproject(meta).encode(),
        ENTRY_POINT: main_py.encode(),
        **package_files(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"cloudjobs-mcp-{__version__}.mcpb"
    path.write_bytes(buffer.getvalue())
    return path


def main(output: Path) -> int:
    path = build(output)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(path)
    print(f"sha256 {digest}  (server.json fileSha256, if you publish the bundle as an mcpb package)")
    return 0
