"""``cloudjobs-mcp sandbox --cloud workload`` and ``cloudjobs-mcp demo --provider workload-sandbox``."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from tests.sandbox_fixtures import run_demo, sandbox_command

SCRIPT = Path(sys.executable).parent / "cloudjobs-mcp"


def test_demo_with_the_workload_sandbox(tmp_path: Path) -> None:
    out = run_demo(tmp_path, "workload-sandbox")
    for step in ("workload sandbox", "sandbox-cpu:cpu1", "USD 0.06/hour", "the workload platform has no pricing",
                 "pytorch:2.5-cpu", "The server asks the human", "rank 1 done", "cleanup_jobs", "Login x1",
                 "CreateWorkload x1", "demo: the job succeeded"):  # fmt: skip
        assert step in out, step


def test_the_workload_sandbox_command_prints_its_url_key_and_login(tmp_path: Path) -> None:
    with sandbox_command(tmp_path, "--cloud", "workload", "--head-schema") as run:
        lines = run.banner
        text = "".join(lines)
        fields = dict(line.split(":", 1) for line in lines if line.startswith(("API key:", "user:", "password:")))
        key, user, password = (fields[k].strip() for k in ("API key", "user", "password"))
        env = dict(line.strip().removeprefix("export ").split("=", 1) for line in lines if "export CLOUDJOBS" in line)
        url = env["CLOUDJOBS_WORKLOAD_URL"] + env["CLOUDJOBS_WORKLOAD_API_PREFIX"]
        assert (
            key.startswith("ak-")
            and env["CLOUDJOBS_WORKLOAD_API_KEY"] == key
            and env["CLOUDJOBS_PROVIDER"] == "workload"
        )
        assert "/api/v1" in text and "sandbox-cpu" in text
        r = httpx.get(f"{url}/workspaces", headers={"authorization": f"Bearer {key}"}, trust_env=False)
        assert r.status_code == 200 and r.json()["totalCount"] == 2
        login = httpx.post(f"{url}/login", json={"name": user, "password": password}, trust_env=False)
        token = login.json()["token"]
        r = httpx.get(f"{url}/workloads", cookies={"Token": token}, trust_env=False)
        assert r.json() == {"totalCount": 0, "items": None}
        assert "create body: resources[]/images[]/entryPoints[] (a build after 2026-01-09)" in text
        seed = {"displayName": "old-body", "workspaceId": "sandbox-cpu", "image": "a/b:1", "entryPoint": "dHJ1ZQ==",
                "resource": {"cpu": "2", "memory": "4Gi", "replica": 1}}  # fmt: skip
        r = httpx.post(f"{url}/workloads", json=seed, cookies={"Token": token}, trust_env=False)
        assert r.status_code == 400 and "the resources are empty" in r.json()["errorMessage"]
    assert run.proc.returncode == 0 and "Workload sandbox stopped." in run.out


def test_client_config_never_writes_the_api_key() -> None:
    from cloudjobs_mcp.server import clients

    env = {"CLOUDJOBS_PROVIDER": "workload", "CLOUDJOBS_WORKLOAD_URL": "https://safe.example.com",
           "CLOUDJOBS_WORKLOAD_API_KEY": "ak-do-not-write-me"}  # fmt: skip
    for client in clients.CLIENTS:
        text = str(clients.block(client, env))
        assert "ak-do-not-write-me" not in text and "CLOUDJOBS_WORKLOAD_API_KEY" in text
