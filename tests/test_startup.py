"""What a start costs: the server imports and builds only what its first tools/list needs, and the server
process takes its start-up heap out of the garbage collector's sight. (The time itself is measured in
bench/compare.py, never asserted here.)"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import pytest
from mcp import Client

from cloudjobs_mcp.server.app import build_server
from tests.conftest import make_settings

PROBE = """
import json, sys, anyio
from mcp import Client
from pydantic import BaseModel
from cloudjobs_mcp.server.app import build_server

def our_models():
    found, todo = [], [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("cloudjobs_mcp") and "[" not in sub.__name__:
                found.append(sub)
    return found

server = build_server()
async def main():
    async with Client(server) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        at_list = sorted(sys.modules)
        built_at_list = [t.name for t in server._tool_manager.list_tools()]
        models = our_models()
        models_built = sorted(m.__name__ for m in models if m.__pydantic_complete__)
        first = await client.call_tool("list_ecs_specs", {})  # no such endpoint: the provider is made, and fails
        after_call = sorted(sys.modules)
    built = [t.name for t in server._tool_manager.list_tools()]
    print(json.dumps({"modules": at_list, "after_call": after_call, "listed": listed, "built_at_list": built_at_list,
                      "built": built, "first_call": first.content[0].text, "models": len(models),
                      "models_built": models_built}))
anyio.run(main)
"""

# Loaded on first use only: what only HTTP serving needs (tokens, Host checks, scope challenges), plots, the
# sandboxes, every provider not configured, and the configured one until a tool needs it.
NOT_AT_START = (
    "jwt",
    "cloudjobs_mcp.server.auth",
    "cloudjobs_mcp.server.rebinding",
    "cloudjobs_mcp.server.stepup",
    "matplotlib",
    "cloudjobs_mcp.server.sandbox",
    "cloudjobs_mcp.server.providers.pai",
    "cloudjobs_mcp.server.providers.local",
    "cloudjobs_mcp.server.providers.modelarts",
    "cloudjobs_mcp.server.providers.workload",
    "cloudjobs_mcp.server.providers.ray",
    "huaweicloudsdkcore",
    "ray",
)


def test_a_start_loads_only_what_its_tools_list_needs(tmp_path):
    env = {
        **os.environ,
        "CLOUDJOBS_STATE_DIR": str(tmp_path / "state"),
        "CLOUDJOBS_PROVIDER": "pai",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-startup-test",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-a-real-secret",
        "CLOUDJOBS_TOOLSETS": "core",
        # Nothing listens there: the first call makes the provider, which fails to connect (never the internet).
        **{
            f"CLOUDJOBS_PAI_ENDPOINT_{p}": "http://127.0.0.1:9"
            for p in ("DLC", "AIWORKSPACE", "ECS", "PAISTUDIO", "STS")
        },
        "CLOUDJOBS_MAX_RETRIES": "0",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    seen = json.loads(out.splitlines()[-1])
    loaded = [m for m in seen["modules"] if any(m == n or m.startswith(n + ".") for n in NOT_AT_START)]
    assert loaded == []
    assert "cloudjobs_mcp.server.providers.pai.provider" in seen["after_call"]  # made by the first call
    assert "GET 127.0.0.1/api/v1/ecsspecs: ConnectError" in seen["first_call"]
    # tools/list read the committed schemas (server/tool_schemas.json): no tool was built with the SDK for it;
    # a tool is built on its first call, and only that one.
    assert len(seen["listed"]) == 12 and seen["built_at_list"] == []
    assert seen["built"] == ["list_ecs_specs"]
    # Of our ~70 models only the settings were built (validator and serializer): the rest wait for first use.
    assert seen["models"] > 50 and seen["models_built"] == ["Settings"]
    assert "label_job" not in seen["listed"] and "get_job" in seen["listed"]


@pytest.mark.anyio
async def test_the_server_process_freezes_what_its_start_built(tmp_path):
    assert gc.get_freeze_count() == 0
    try:
        async with Client(build_server(make_settings(tmp_path / "a"))) as client:
            await client.list_tools()
            assert gc.get_freeze_count() == 0  # tests and embedders build many servers: never frozen
        async with Client(build_server(make_settings(tmp_path / "b"), freeze_after_start=True)) as client:
            await client.list_tools()
            assert gc.get_freeze_count() > 10_000  # the modules, models and schemas of the start
    finally:
        gc.unfreeze()
