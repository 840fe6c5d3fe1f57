"""The installed console script: --version, stdio serving to a real client, and the README's demo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from cloudjobs_mcp.server import __version__

pytestmark = pytest.mark.anyio
SCRIPT = Path(sys.executable).parent / "cloudjobs-mcp"


def test_version():
    out = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"cloudjobs-mcp {__version__}"


async def test_stdio_server_through_the_console_script(tmp_path):
    env = {**os.environ, "CLOUDJOBS_STATE_DIR": str(tmp_path)}
    params = StdioServerParameters(command=str(SCRIPT), args=["serve"], env=env)
    async with Client(params) as client:
        assert client.server_info.name == "cloudjobs-mcp"
        result = await client.call_tool("list_ecs_specs", {"accelerator_type": "CPU"})
        assert not result.is_error and result.structured_content["provider"] == "local"


def test_bad_settings_exit_with_a_clear_message(tmp_path):
    env = {**os.environ, "CLOUDJOBS_PROVIDER": "aws", "CLOUDJOBS_STATE_DIR": str(tmp_path)}
    out = subprocess.run([str(SCRIPT), "serve"], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 2
    assert "CLOUDJOBS_PROVIDER" in out.stderr and "allowed: local, pai, workload, modelarts" in out.stderr
    assert "Traceback" not in out.stderr


def test_demo_runs_the_whole_workflow(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([str(SCRIPT), "demo"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for step in ("list_ecs_specs", "estimate_cost", "The server asks the human", "wait_job_complete", "rank 1 done"):
        assert step in out.stdout
    assert "demo: the job succeeded" in out.stdout


async def test_streamable_http_serving_on_loopback(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "CLOUDJOBS_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        with anyio.fail_after(30):
            while True:
                try:
                    async with httpx2.AsyncClient() as http:
                        await http.get(url)
                    break
                except httpx2.TransportError:
                    await anyio.sleep(0.1)
        for mode in ("auto", "legacy"):
            async with httpx2.AsyncClient(timeout=30) as http:
                async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert {"estimate_cost", "create_training_job", "wait_job_complete"} <= names
                    specs = await client.call_tool("list_ecs_specs", {"accelerator_type": "CPU"})
                    assert specs.structured_content["provider"] == "local"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
