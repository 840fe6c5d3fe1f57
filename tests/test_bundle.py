"""``cloudjobs-mcp bundle``: an MCP Bundle that validates, holds what it names, and runs as a host runs it.

The manifest schema is vendored in tests/data/mcpb-manifest-v0.4.schema.json, a copy of
https://github.com/modelcontextprotocol/mcpb/blob/27083dcf93c4d1c589af6b539ec746e50d6068e7/schemas/mcpb-manifest-v0.4.schema.json
(the schema `@anthropic-ai/mcpb` 2.1.2 validates 0.4 manifests with; it requires `server.mcp_config` for
every server type).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from install_fixtures import offline_env, wheelhouse  # noqa: F401  (fixture)
from jsonschema import Draft7Validator, FormatChecker
from mcp import Client, StdioServerParameters

from cloudjobs_mcp.server import __version__
from cloudjobs_mcp.server.toolsets import DEFAULT as DEFAULT_TOOLSETS
from tests.conftest import connect

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "cloudjobs-mcp"
SCHEMA = json.loads((ROOT / "tests" / "data" / "mcpb-manifest-v0.4.schema.json").read_text())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    done = subprocess.run([str(SCRIPT), "bundle", "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path = out / f"cloudjobs-mcp-{__version__}.mcpb"
    assert done.stdout.splitlines()[0] == str(path)
    return path


def _manifest(bundle: Path) -> dict[str, Any]:
    return json.loads(zipfile.ZipFile(bundle).read("manifest.json"))


def test_the_manifest_is_valid_on_the_mcpb_schema(bundle):
    doc = _manifest(bundle)
    errors = [e.message for e in Draft7Validator(SCHEMA, format_checker=FormatChecker()).iter_errors(doc)]
    assert errors == []
    assert doc["manifest_version"] == "0.4" and doc["version"] == __version__
    assert doc["server"]["type"] == "uv" and doc["compatibility"]["runtimes"]["python"] == ">=3.11"
    broken = {**doc, "user_config": {"key": {"type": "password", "title": "k", "description": "k"}}}
    assert list(Draft7Validator(SCHEMA).iter_errors(broken)), "the schema check must catch a bad user_config"


def test_user_config_asks_for_provider_region_budgets_and_keeps_keys_secret(bundle):
    doc = _manifest(bundle)
    config, env = doc["user_config"], doc["server"]["mcp_config"]["env"]
    assert {"providers", "region", "max_job_cost", "max_hourly"} <= set(config)
    assert config["providers"]["default"] == "local" and config["max_job_cost"]["type"] == "number"
    secret = config["alibaba_cloud_access_key_secret"]
    assert secret["sensitive"] is True and "default" not in secret
    # Each answer reaches the server through its environment; credentials only that way, never as arguments.
    assert env["CLOUDJOBS_MAX_JOB_COST"] == "${user_config.max_job_cost}"
    assert env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] == "${user_config.alibaba_cloud_access_key_secret}"
    assert set(re.findall(r"\$\{user_config\.(\w+)\}", json.dumps(env))) == set(config)
    assert "user_config" not in json.dumps(doc["server"]["mcp_config"]["args"])


async def test_the_listed_tools_and_prompts_are_the_servers(bundle, settings):
    doc = _manifest(bundle)
    default = settings.model_copy(update={"toolsets": DEFAULT_TOOLSETS})  # what a host sees
    async with connect(default) as client:
        tools = [{"name": t.name, "description": t.description} for t in (await client.list_tools()).tools]
        prompts = (await client.list_prompts()).prompts
    assert doc["tools"] == tools and doc["tools_generated"] is False
    assert [(p["name"], p["description"], p["arguments"]) for p in doc["prompts"]] == [
        (p.name, p.description, [a.name for a in p.arguments or []]) for p in prompts
    ]
    train = next(p for p in doc["prompts"] if p["name"] == "train_model")
    assert "${arguments.task}" in train["text"] and "ASK ME" in train["text"]


def test_the_archive_holds_what_the_manifest_names_and_the_whole_package(bundle):
    doc = _manifest(bundle)
    names = set(zipfile.ZipFile(bundle).namelist())
    assert doc["server"]["entry_point"] in names and "pyproject.toml" in names
    for arg in doc["server"]["mcp_config"]["args"]:
        if arg.startswith("${__dirname}/"):
            assert arg.removeprefix("${__dirname}/") in names, arg
    assert not any(n.startswith(("server/lib/", "server/venv/")) for n in names)  # forbidden in uv bundles
    modules = {
        f"src/cloudjobs_mcp/{p.relative_to(ROOT).as_posix()}"
        for top in ("server", "tools", "prompts")
        for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules - names == set()
    pyproject = zipfile.ZipFile(bundle).read("pyproject.toml").decode()
    assert '"mcp<3,>=2.3"' in pyproject and 'requires-python = ">=3.11"' in pyproject


def test_the_same_code_gives_the_same_bundle(bundle, tmp_path):
    again = subprocess.run([str(SCRIPT), "bundle", "--output", str(tmp_path)], capture_output=True, timeout=120)
    assert again.returncode == 0
    assert (tmp_path / bundle.name).read_bytes() == bundle.read_bytes()  # a stable fileSha256 for the registry


def _host_command(doc: dict[str, Any], where: Path, answers: dict[str, str]) -> tuple[str, list[str], dict[str, str]]:
    """mcp_config with ${__dirname} and the user's answers substituted, as the host does."""

    def fill(value: str) -> str:
        value = value.replace("${__dirname}", str(where))
        return re.sub(r"\$\{user_config\.(\w+)\}", lambda m: answers.get(m.group(1), m.group(0)), value)

    config = doc["server"]["mcp_config"]
    return fill(config["command"]), [fill(a) for a in config["args"]], {k: fill(v) for k, v in config["env"].items()}


async def test_the_unpacked_bundle_runs_a_job_when_started_as_a_host_starts_it(bundle, tmp_path, wheelhouse):  # noqa: F811
    where = tmp_path / "installed bundle"  # hosts install under paths with spaces
    zipfile.ZipFile(bundle).extractall(where)
    doc = _manifest(bundle)
    # max_hourly left unanswered stays a literal placeholder; the entry point must treat it as unset.
    answers = {"providers": "local", "region": "cn-hangzhou", "max_job_cost": "50"}
    answers |= {"alibaba_cloud_access_key_id": "", "alibaba_cloud_access_key_secret": ""}
    command, args, env = _host_command(doc, where, answers)
    assert command == "uv" and env["CLOUDJOBS_MAX_HOURLY"] == "${user_config.max_hourly}"
    base = offline_env(tmp_path, wheelhouse, tmp_path / "uv-cache")
    params = StdioServerParameters(
        command=command,
        args=args,
        env={**base, **env, "CLOUDJOBS_STATE_DIR": str(tmp_path / "state")},
        cwd=str(tmp_path),
    )
    with anyio.fail_after(150):
        async with Client(params) as client:
            listed = [t.name for t in (await client.list_tools()).tools]
            assert listed == [t["name"] for t in doc["tools"]]
            spec = (await client.call_tool("list_ecs_specs", {"accelerator_type": "CPU"})).structured_content
            request = {
                "ecs_spec": spec["specs"][0]["instance_type"],
                "worker_count": 1,
                "job_type": "PyTorchJob",
                "estimated_minutes": 1,
                "max_runtime_minutes": 5,
            }
            quote = (await client.call_tool("estimate_cost", request)).structured_content
            # The local job's supervisor is `python -m cloudjobs_mcp…`: it must find the bundle's code.
            job = {"display_name": "bundled", "user_command": "echo bundled-run", "confirmed": True}
            created = await client.call_tool("create_training_job", {**request, **job, "quote_id": quote["quote_id"]})
            assert not created.is_error, created.content
            job_id = created.structured_content["job"]["job_id"]
            waited: dict[str, Any] = {"done": False}
            while not waited["done"]:
                args = {"job_id": job_id, "interval": 0.5, "max_wait_seconds": 20}
                waited = (await client.call_tool("wait_job_complete", args)).structured_content or {}
            assert waited["outcome"] == "succeeded", waited
            logs = await client.call_tool("get_job_logs", {"job_id": job_id})
            assert "bundled-run" in json.dumps(logs.structured_content)
