"""Installed as users install it: the wheel, a fresh venv from the README, uvx, and the README's client blocks.

Everything runs outside the repository and offline: uv and pip install from the wheelhouse built by
tests/install_fixtures.py (our wheel plus our dependencies' wheels), never from an index.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from install_fixtures import offline_env, our_wheel, wheelhouse  # noqa: F401  (fixtures)
from mcp import Client, StdioServerParameters

from cloudjobs_mcp.server import __version__
from cloudjobs_mcp.server.bundle import PACKAGE_FILES

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CORE_TOOLS = {"list_ecs_specs", "estimate_cost", "create_training_job", "wait_job_complete", "get_job_logs"}
# The pai blocks start a real server: any call it made would go to a closed loopback port, never a cloud.
NOWHERE = {f"CLOUDJOBS_PAI_ENDPOINT_{s}": "http://127.0.0.1:9" for s in ("DLC", "AIWORKSPACE", "ECS", "PAISTUDIO")}


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


async def run(cmd: str | list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    """Run a README line as a user's shell would; its combined output, and it must succeed."""
    argv = ["bash", "-c", cmd] if isinstance(cmd, str) else cmd
    with anyio.fail_after(timeout):
        done = await anyio.run_process(argv, env=env, cwd=cwd, check=False, stderr=-2)
    out = done.stdout.decode()
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{out}"
    return out


async def list_tools(command: str, args: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    params = StdioServerParameters(command=command, args=args, env=env, cwd=str(cwd))
    with anyio.fail_after(90):
        async with Client(params) as client:
            assert client.server_info.version == __version__
            return {t.name for t in (await client.list_tools()).tools}


def test_the_wheel_holds_one_namespace_and_everything_in_it(our_wheel):  # noqa: F811
    names = zipfile.ZipFile(our_wheel).namelist()
    info = f"cloudjobs_mcp-{__version__}.dist-info/"
    assert all(n.startswith(("cloudjobs_mcp/", info)) for n in names), sorted(
        n for n in names if not n.startswith(("cloudjobs_mcp/", info))
    )
    assert "cloudjobs_mcp/__init__.py" not in names  # a namespace package: nothing to collide on
    wanted = {
        f"cloudjobs_mcp/{p.relative_to(ROOT).as_posix()}"
        for top in ("server", "tools", "prompts")
        for p in (ROOT / top).rglob("*")
        if p.is_file() and p.suffix in PACKAGE_FILES and "__pycache__" not in p.parts
    }
    assert wanted - set(names) == set(), "files the wheel lacks"
    with zipfile.ZipFile(our_wheel) as zf:
        assert zf.read(info + "top_level.txt").decode().split() == ["cloudjobs_mcp"]
        meta = zf.read(info + "METADATA").decode()
        entry_points = zf.read(info + "entry_points.txt").decode()
    assert f"\nVersion: {__version__}\n" in meta
    # The registry's ownership check reads the README inside the PyPI metadata.
    assert "\n<!-- mcp-name: io.github.cloudjobs-mcp/cloudjobs-mcp -->\n" in meta
    assert "cloudjobs-mcp = cloudjobs_mcp.server.cli:main" in entry_points


async def test_a_fresh_venv_made_as_the_readme_says(tmp_path, wheelhouse, our_wheel):  # noqa: F811
    """pip install into a new venv (non-editable), then everything from a directory outside the repo."""
    env, wheel = offline_env(tmp_path, wheelhouse, tmp_path / "uv-cache"), our_wheel
    (venv_block,) = [b for b in code_blocks(section("Install"), "bash") if "pip install cloudjobs-mcp" in b]
    for line in venv_block.strip().splitlines():
        await run(line, env, tmp_path, timeout=240)
    venv = tmp_path / ".venvs" / "cloudjobs"
    python, script = venv / "bin" / "python", venv / "bin" / "cloudjobs-mcp"
    probe = (
        "import importlib.util, pathlib, sys\n"
        "for name in ('server', 'tools', 'prompts'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ModuleNotFoundError:\n"
        "        pass\n"
        "    else:\n"
        "        sys.exit(f'import {name} works: a top-level package leaked')\n"
        "import cloudjobs_mcp.server.cli as cli, cloudjobs_mcp.server.providers.local.supervisor as sup\n"
        "print(pathlib.Path(cli.__file__).resolve())\n"
        "print(pathlib.Path(sup.__file__).resolve())\n"
    )
    out = await run([str(python), "-c", probe], env, tmp_path)
    for path in out.split():
        assert Path(path).is_relative_to(venv.resolve()), f"{path} is not the installed copy"
    assert (await run([str(script), "--version"], env, tmp_path)).strip() == f"cloudjobs-mcp {__version__}"
    # A client starts it with no arguments: stdio.
    names = await list_tools(str(script), [], {**env, "CLOUDJOBS_STATE_DIR": str(tmp_path / "s")}, tmp_path)
    assert CORE_TOOLS <= names
    # The bundle is built from the installed copy too: it carries every module the wheel installed.
    await run([str(script), "bundle", "--output", str(tmp_path / "b")], env, tmp_path)
    bundled = zipfile.ZipFile(tmp_path / "b" / f"cloudjobs-mcp-{__version__}.mcpb").namelist()
    installed = [n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("cloudjobs_mcp/")]
    assert sorted(n.removeprefix("src/") for n in bundled if n.startswith("src/")) == sorted(installed)


async def test_uvx_runs_the_readme_commands_and_the_demo(tmp_path, wheelhouse):  # noqa: F811
    env = offline_env(tmp_path, wheelhouse, tmp_path / "uv-cache")
    lines = [ln for b in code_blocks(section("Install"), "bash") for ln in b.splitlines() if ln.startswith("uvx ")]
    assert [shlex.split(ln.split("#")[0]) for ln in lines] == [
        ["uvx", "cloudjobs-mcp", "--version"],
        ["uvx", "cloudjobs-mcp", "demo"],
    ]
    assert (await run(lines[0], env, tmp_path)).strip().endswith(f"cloudjobs-mcp {__version__}")
    # The demo's job runs through the local provider's supervisor, started from the uvx environment.
    demo = await run(lines[1], env, tmp_path, timeout=180)
    assert "demo: the job succeeded" in demo and "rank 1 done" in demo
    pinned = re.findall(r"`(uvx cloudjobs-mcp@[^`]+)`", section("Install"))
    assert pinned == [f"uvx cloudjobs-mcp@{__version__}"]
    assert (await run(pinned[0] + " --version", env, tmp_path)).strip().endswith(__version__)


def _fill(server: dict[str, Any]) -> dict[str, str]:
    """The env a client would pass: inputs answered, ${env:…} taken from the (here fake) environment."""
    fake = "fake-not-a-real-key"
    env = {}
    for name, value in server.get("env", {}).items():
        env[name] = re.sub(r"\$\{(input|env):[^}]+\}", fake, value)
    return env


async def test_every_client_block_in_the_readme_starts_the_server_through_uvx(tmp_path, wheelhouse):  # noqa: F811
    env = offline_env(tmp_path, wheelhouse, tmp_path / "uv-cache")
    blocks = [json.loads(b) for b in code_blocks(section("Add it to an MCP client"), "json")]
    servers = [(b.get("mcpServers") or b["servers"])["cloudjobs"] for b in blocks]
    assert len(servers) >= 4 and {s["command"] for s in servers} == {"uvx"}
    assert {tuple(s["args"]) for s in servers} == {("cloudjobs-mcp",), (f"cloudjobs-mcp@{__version__}",)}
    started: dict[int, set[str]] = {}

    async def start(i: int, server: dict[str, Any]) -> None:
        block_env = {**env, **NOWHERE, **_fill(server), "CLOUDJOBS_STATE_DIR": str(tmp_path / f"state{i}")}
        command = shutil.which(server["command"], path=env["PATH"])
        assert command, server["command"]
        started[i] = await list_tools(command, server["args"], block_env, tmp_path)

    # uv's cache is shared: warm it with one start, then start the rest side by side.
    await start(0, servers[0])
    async with anyio.create_task_group() as tg:
        for i, server in enumerate(servers[1:], start=1):
            tg.start_soon(start, i, server)
    assert all(CORE_TOOLS <= started[i] for i in range(len(servers)))
