"""``cloudjobs-mcp config <client>``: the block a user pastes, with their settings and never a key."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from cloudjobs_mcp.server import __version__

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "cloudjobs-mcp"
FAKE_SECRET = "s3cr3t-value-that-must-not-appear"


def config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "config", *args], capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )


def block(*args: str) -> dict:
    out = config(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_claude_block_with_settings_and_placeholders_for_the_keys():
    env = {**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": FAKE_SECRET}
    out = config("claude", "--provider", "pai", "--region", "cn-shanghai", "--max-job-cost", "50", env=env)
    assert out.returncode == 0, out.stderr
    assert FAKE_SECRET not in out.stdout + out.stderr  # the user's real key never lands in the file
    server = json.loads(out.stdout)["mcpServers"]["cloudjobs"]
    assert server["command"] == "uvx" and server["args"] == ["cloudjobs-mcp"]
    assert server["env"] == {
        "CLOUDJOBS_PROVIDERS": "pai",
        "CLOUDJOBS_REGION": "cn-shanghai",
        "CLOUDJOBS_MAX_JOB_COST": "50",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "<your Alibaba Cloud AccessKey ID>",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "<your Alibaba Cloud AccessKey secret>",
    }
    assert "claude_desktop_config.json" in out.stderr and "Replace the <your" in out.stderr


def test_vscode_block_asks_for_the_keys_as_password_inputs():
    env = {**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": FAKE_SECRET}
    out = config("vscode", "--provider", "pai", "--pin", env=env)
    assert out.returncode == 0 and FAKE_SECRET not in out.stdout
    doc = json.loads(out.stdout)
    inputs = {i["id"]: i for i in doc["inputs"]}
    assert all(i["type"] == "promptString" and i["password"] is True for i in inputs.values())
    server = doc["servers"]["cloudjobs"]
    assert server["type"] == "stdio" and server["args"] == [f"cloudjobs-mcp@{__version__}"]
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        ref = re.fullmatch(r"\$\{input:([a-z-]+)\}", server["env"][name])
        assert ref and ref.group(1) in inputs, server["env"][name]


def test_cursor_block_reads_the_keys_of_every_enabled_provider_from_the_environment():
    server = block("cursor", "--provider", "local", "--provider", "pai", "--read-only")["mcpServers"]["cloudjobs"]
    assert server["env"]["CLOUDJOBS_PROVIDERS"] == "local,pai" and server["env"]["CLOUDJOBS_READ_ONLY"] == "1"
    assert server["env"]["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] == "${env:ALIBABA_CLOUD_ACCESS_KEY_SECRET}"


def test_the_local_provider_needs_no_credentials_and_pipx_is_a_runner():
    server = block("claude", "--runner", "pipx", "--pin", "--set", "strict_confirm=1")["mcpServers"]["cloudjobs"]
    assert server["command"] == "pipx"
    assert server["args"] == ["run", "--spec", f"cloudjobs-mcp=={__version__}", "cloudjobs-mcp"]
    assert server["env"] == {"CLOUDJOBS_STRICT_CONFIRM": "1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["claude", "--provider", "aws"], "CLOUDJOBS_PROVIDERS: Value error, unknown provider 'aws'"),
        (["vscode", "--max-job-cost", "-5"], "CLOUDJOBS_MAX_JOB_COST: Input should be greater than or equal to 0"),
        (["cursor", "--set", "CLOUDJOBS_NOPE=1"], "unknown setting CLOUDJOBS_NOPE; known: CLOUDJOBS_PROVIDER"),
        (["zed"], "invalid choice: 'zed'"),
    ],
)
def test_bad_requests_say_what_is_allowed(args, message):
    out = config(*args)
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and "Traceback" not in out.stderr


def _readme_blocks() -> list[tuple[str, dict]]:
    """Each JSON block of the README's client section with the `cloudjobs-mcp config …` command before it."""
    text = (ROOT / "README.md").read_text().split("\n## Add it to an MCP client\n", 1)[1].split("\n## ", 1)[0]
    found = []
    for lead, body in re.findall(r"((?:[^\n]+\n)+)\n```json\n(.*?)```", text, re.S):
        commands = re.findall(r"`(cloudjobs-mcp config [^`]+)`", lead)
        assert commands, f"no `cloudjobs-mcp config …` command before the block:\n{lead}"
        found.append((commands[-1], json.loads(body)))
    return found


def test_the_readme_blocks_are_what_the_command_prints():
    blocks = _readme_blocks()
    assert {cmd.split()[2] for cmd, _ in blocks} == {"claude", "vscode", "cursor"}
    for command, shown in blocks:
        assert block(*shlex.split(command)[2:]) == shown, command


def test_every_version_the_readme_pins_is_this_version():
    readme = (ROOT / "README.md").read_text()
    pins = re.findall(r"cloudjobs-mcp(?:@|==)([0-9][^\s`\"']*)", readme)
    assert pins and set(pins) == {__version__}


async def test_the_path_runner_block_starts_this_installation_with_its_settings(tmp_path):
    args = ("claude", "--runner", "path", "--max-job-cost", "1", "--set", "CLOUDJOBS_LOCAL_PRICE_PER_HOUR=10")
    server = block(*args)["mcpServers"]["cloudjobs"]
    assert Path(server["command"]) == SCRIPT
    env = {**os.environ, **server["env"], "CLOUDJOBS_STATE_DIR": str(tmp_path)}
    async with Client(StdioServerParameters(command=server["command"], args=server["args"], env=env)) as client:
        specs = await client.call_tool("list_ecs_specs", {"accelerator_type": "CPU"})
        spec = specs.structured_content["specs"][0]["instance_type"]
        request = {"ecs_spec": spec, "worker_count": 1, "estimated_minutes": 5, "max_runtime_minutes": 60}
        quote = await client.call_tool("estimate_cost", request)
    # CNY 10/hour for an hour is over the block's cap of 1: the settings reached the server.
    text = " ".join(getattr(c, "text", "") for c in quote.content)
    assert "CLOUDJOBS_MAX_JOB_COST=1" in text, text


def test_several_providers_bring_every_enabled_providers_keys():
    server = block("claude", "--set", "providers=local,pai")["mcpServers"]["cloudjobs"]
    assert server["env"]["CLOUDJOBS_PROVIDERS"] == "local,pai"
    assert server["env"]["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "<your Alibaba Cloud AccessKey ID>"
