"""``cloudjobs-mcp demo``: the whole workflow through a real MCP client, over stdio, with a real job.

``--provider local`` runs it on this machine; ``--provider pai-sandbox`` starts a PAI sandbox on a free
loopback port and runs the same workflow through the MCP server's ``pai`` provider over real HTTP
(signed calls, specs and CNY prices from the sandbox, the seed's image strategy, a real job).
``--provider workload-sandbox`` does the same with a workload sandbox (a Primus-SaFE Workload API on
loopback: login, real paths and shapes) and the ``workload`` provider, priced by a demo price table;
``--provider modelarts-sandbox`` with the sandbox's ModelArts face and the ``modelarts`` provider
(SDK-HMAC-SHA256, IAM, BSS prices, training-job engines, dedicated pools).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestFormParams, ElicitRequestParams, ElicitResult

PROGRAM = (
    "import os, time\n"
    "rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])\n"
    'print(f\'rank {rank}/{world} starting, master {os.environ["MASTER_ADDR"]}:{os.environ["MASTER_PORT"]}\')\n'
    "for step in range(1, 6):\n"
    "    time.sleep(0.3)\n"
    "    print(f'rank {rank} step {step} loss {2.0 / (step + rank + 1):.4f}')\n"
    "print(f'rank {rank} done')\n"
)


def _say(title: str, body: str = "") -> None:
    print(f"\n== {title}")
    if body:
        print(body)


def _data(result: CallToolResult) -> dict[str, Any]:
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise SystemExit(f"demo: tool failed: {text}")
    assert result.structured_content is not None
    return result.structured_content


async def _demo(env: dict[str, str], *, prices: bool = False, pools: bool = False) -> bool:
    async def on_elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        if isinstance(params, ElicitRequestFormParams):
            _say("The server asks the human", params.message)
            print("-> the demo answers: yes")
            return ElicitResult(action="accept", content={"confirm": True})
        return ElicitResult(action="decline")

    server = StdioServerParameters(command=sys.executable, args=["-m", "cloudjobs_mcp.server.cli", "serve"], env=env)
    async with Client(server, elicitation_callback=on_elicit) as client:
        tools = await client.list_tools()
        _say("Connected over stdio", "tools: " + ", ".join(t.name for t in tools.tools))

        specs = _data(await client.call_tool("list_ecs_specs", {"accelerator_type": "CPU", "sort_by": "CPU"}))
        lines = [f"  {s['instance_type']}: {s['cpu']} vCPU, {s['memory_gb']:g} GiB" for s in specs["specs"]]
        _say("1. list_ecs_specs (CPU: this task needs no GPU)", "\n".join(lines))
        if prices:  # the listing has no prices until quoted: quote the smallest specs to compare them
            rows = []
            for s in specs["specs"][:3]:
                priced = _data(
                    await client.call_tool(
                        "estimate_cost",
                        {
                            "ecs_spec": s["instance_type"],
                            "worker_count": 1,
                            "estimated_minutes": 1,
                            "max_runtime_minutes": 5,
                        },
                    )
                )
                rows.append(
                    f"  {s['instance_type']}: {priced['currency']} {priced['per_worker_hourly']:g}/hour per worker"
                )
            _say("1b. prices (estimate_cost, from the platform's price API)", "\n".join(rows))

        image = _data(await client.call_tool("resolve_image", {"job_type": "PyTorchJob", "chip_type": "CPU"}))
        _say("2. resolve_image", f"  {image['uri']}: {image['note']}")

        quote: dict[str, Any] | None = None
        refused: list[str] = []
        for row in specs["specs"]:  # the smallest spec that takes two workers (some run one node only)
            spec = row["instance_type"]
            answer = await client.call_tool(
                "estimate_cost",
                {"ecs_spec": spec, "worker_count": 2, "estimated_minutes": 1, "max_runtime_minutes": 5},
            )
            if not answer.is_error:
                quote = _data(answer)
                break
            refused.append(f"  {spec}: " + " ".join(getattr(c, "text", "") for c in answer.content))
        if quote is None:
            raise SystemExit("demo: no CPU spec takes two workers:\n" + "\n".join(refused))
        _say("3. estimate_cost", "\n".join([*refused, quote["display_text"]]))

        command = f"{shlex.quote(sys.executable)} -c {shlex.quote(PROGRAM)}"
        created = _data(
            await client.call_tool(
                "create_training_job",
                {
                    "display_name": "cloudjobs-demo",
                    "user_command": command,
                    "job_type": "PyTorchJob",
                    "ecs_spec": spec,
                    "worker_count": 2,
                    "quote_id": quote["quote_id"],
                },
            )
        )
        job_id = created["job"]["job_id"]
        _say(
            "4. create_training_job",
            f"  job {job_id} ({created['job']['status']}), confirmed: {created['confirmation']}",
        )
        if pools:
            listed = _data(await client.call_tool("list_pools", {}))
            rows = [f"  {p['pool_id']}: {p['phase']}, {', '.join(p.get('scopes', []))}" for p in listed["pools"]]
            _say("4b. list_pools", "\n".join(rows) + "\n  " + listed.get("note", ""))
            pool = next(p["pool_id"] for p in listed["pools"] if p["usable_for_training"])
            page = _data(await client.call_tool("list_pool_workloads", {"pool_name": pool}))
            rows = [
                f"  {w['job_name']} ({w['workload_type']}): {w['status']}"
                + (f", position {w['queue_position']}" if w.get("queue_position") else "")
                for w in page["workloads"]
            ]
            _say(f"4c. list_pool_workloads {pool}", "\n".join(rows) or "  (none)")

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            print(f"  progress: {message}")

        _say("5. wait_job_complete")
        while True:
            waited = _data(
                await client.call_tool(
                    "wait_job_complete",
                    {"job_id": job_id, "interval": 0.5, "max_wait_seconds": 30},
                    progress_callback=on_progress,
                )
            )
            if waited["done"]:
                break
        print(f"  -> {waited['outcome']}: {waited['message']}")

        logs = _data(await client.call_tool("get_job_logs", {"job_id": job_id}))
        shown = [f"  [{p['pod_id']}] {line}" for p in logs.get("pods", []) for line in p.get("lines", [])]
        _say("6. get_job_logs", "\n".join(shown))

        cleanup = _data(
            await client.call_tool("cleanup_jobs", {"status": "Succeeded", "delete": True, "dry_run": False})
        )
        _say("7. cleanup_jobs", json.dumps(cleanup["actions"], indent=2) + "\n  " + cleanup["summary"])
        return bool(waited["outcome"] == "succeeded")


async def _sandbox_demo(state: str) -> bool:
    """Start a PAI sandbox in this process and run the demo's MCP server against it."""
    from cloudjobs_mcp.server.sandbox import SandboxSettings, serve

    settings = SandboxSettings(
        state_dir=Path(state) / "sandbox", creating_seconds=0.5, queuing_seconds=0.5, stop_grace_seconds=2.0
    )
    async with serve(settings) as running:
        _say(
            "Started a PAI sandbox",
            f"  {running.url}: PAI-DLC, AIWorkspace and ECS DescribePrice on one loopback port\n"
            f"  the MCP server's pai provider reaches it through CLOUDJOBS_PAI_ENDPOINT_DLC/_AIWORKSPACE/_ECS and\n"
            f"  signs every call with the sandbox's generated AccessKey {running.access_key.access_key_id}",
        )
        # Nothing of the user's own cloud setup may leak into the rehearsal (credentials, workspace, region).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ALIBABA_CLOUD_", "CLOUDJOBS_PAI_")) and k != "CLOUDJOBS_REGION"
        }
        env.update(running.env())
        env["CLOUDJOBS_STATE_DIR"] = str(Path(state) / "mcp")
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), "127.0.0.1"]))
        env["NO_PROXY"] = env["no_proxy"] = no_proxy
        ok = await _demo(env, prices=True)
        counts = Counter(c.action for c in running.sandbox.calls if c.status == 200)
        _say(
            "The sandbox answered these signed calls",
            "  " + ", ".join(f"{action} x{n}" for action, n in sorted(counts.items())),
        )
        return ok


# The workload platform has no prices: the demo quotes with this table (what CLOUDJOBS_PRICE_TABLE takes).
DEMO_WORKLOAD_PRICES = {
    "workload": {"*": {"currency": "USD", "cpu_hour": 0.04, "memory_gb_hour": 0.005, "gpu_hour": {"*": 2.5}}}
}


async def _workload_sandbox_demo(state: str) -> bool:
    """Start a workload sandbox in this process and run the demo's MCP server against it (user login)."""
    from cloudjobs_mcp.server.sandbox.workload import WorkloadSandboxSettings, serve

    settings = WorkloadSandboxSettings(state_dir=Path(state) / "workload-sandbox", pending_seconds=0.5)
    async with serve(settings) as running:
        _say(
            "Started a workload sandbox",
            f"  {running.url}{settings.api_prefix}: the Primus-SaFE Workload API (workspaces, node flavors, images,\n"
            f"  workloads, pod logs) on one loopback port; the MCP server's workload provider logs in as\n"
            f"  {settings.user!r} with the sandbox's generated password (its API key would do as well)",
        )
        prices = Path(state) / "prices.json"
        prices.write_text(json.dumps(DEMO_WORKLOAD_PRICES))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDJOBS_WORKLOAD_", "CLOUDJOBS_PROVIDER"))}
        env.update(running.env(api_key=False))
        env["CLOUDJOBS_STATE_DIR"] = str(Path(state) / "mcp")
        env["CLOUDJOBS_PRICE_TABLE"] = str(prices)
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), "127.0.0.1"]))
        env["NO_PROXY"] = env["no_proxy"] = no_proxy
        ok = await _demo(env)
        counts = Counter(c.action for c in running.sandbox.calls if c.status == 200)
        _say(
            "The sandbox answered these calls",
            "  " + ", ".join(f"{action} x{n}" for action, n in sorted(counts.items())),
        )
        return ok


async def _modelarts_demo(state: str) -> bool:
    """Start the sandbox's ModelArts face in this process and run the demo's MCP server against it."""
    from cloudjobs_mcp.server.sandbox import SandboxSettings
    from cloudjobs_mcp.server.sandbox.modelarts.runner import serve_modelarts

    settings = SandboxSettings(
        state_dir=Path(state) / "sandbox",
        region="cn-north-4",
        creating_seconds=0.5,
        queuing_seconds=0.5,
        stop_grace_seconds=2.0,
    )
    async with serve_modelarts(settings) as running:
        _say(
            "Started the sandbox's ModelArts face",
            f"  {running.url}: ModelArts training jobs v2, pools, IAM and BSS on one loopback port (region\n"
            f"  {running.sandbox.region}, project {running.project_id}); the MCP server's modelarts provider reaches\n"
            "  it through HUAWEICLOUD_SDK_REGION_MODELARTS_CN_NORTH_4 / HUAWEICLOUD_SDK_IAM_ENDPOINT /\n"
            f"  CLOUDJOBS_MODELARTS_BSS_ENDPOINT and signs every call (SDK-HMAC-SHA256) with AK "
            f"{running.access_key.access_key_id}",
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HUAWEICLOUD_", "CLOUDJOBS_MODELARTS_"))
            and k not in ("CLOUDJOBS_PROVIDER", "CLOUDJOBS_PROVIDERS")
        }
        env.update(running.env())
        env["CLOUDJOBS_STATE_DIR"] = str(Path(state) / "mcp")
        env["HOME"] = str(Path(state) / "home")  # no ~/.huaweicloud profile of the user's own
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), "127.0.0.1"]))
        env["NO_PROXY"] = env["no_proxy"] = no_proxy
        ok = await _demo(env, prices=True, pools=True)
        counts = Counter(c.action for c in running.sandbox.calls if c.status < 300)
        _say(
            "The sandbox answered these signed calls",
            "  " + ", ".join(f"{action} x{n}" for action, n in sorted(counts.items())),
        )
        return ok


def _ray_demo(state: str) -> bool:
    """Run the demo on CLOUDJOBS_RAY_ADDRESS, or on a local Ray head started for it and stopped after."""
    env = {**os.environ, "CLOUDJOBS_PROVIDERS": "ray", "CLOUDJOBS_STATE_DIR": str(Path(state) / "mcp")}
    if os.environ.get("CLOUDJOBS_RAY_ADDRESS"):
        _say("Using the Ray cluster at CLOUDJOBS_RAY_ADDRESS", f"  {os.environ['CLOUDJOBS_RAY_ADDRESS']}")
        return anyio.run(_demo, env)
    from cloudjobs_mcp.server.providers.ray import cluster

    head = cluster.start_head(Path(state) / "mcp", cpus=2)
    try:
        _say(
            "Started a local Ray head for the demo",
            f"  {head.address}: token auth on, usage stats off; 2 CPUs, so the two workers get one each",
        )
        env.update(CLOUDJOBS_RAY_ADDRESS=head.address, RAY_AUTH_TOKEN=head.token())
        return anyio.run(_demo, env)
    finally:
        cluster.down(Path(state) / "mcp")
        _say("Stopped the demo's Ray head")


def run_demo(*, provider: str = "local", keep: bool = False) -> int:
    state = tempfile.mkdtemp(prefix="cloudjobs-demo-")
    # CLOUDJOBS_PROVIDERS wins over CLOUDJOBS_PROVIDER: set both, or a user's own list would run the demo elsewhere.
    env = {**os.environ, "CLOUDJOBS_PROVIDER": provider, "CLOUDJOBS_PROVIDERS": provider, "CLOUDJOBS_STATE_DIR": state}
    try:
        if provider == "pai-sandbox":
            ok = anyio.run(_sandbox_demo, state)
        elif provider == "workload-sandbox":
            ok = anyio.run(_workload_sandbox_demo, state)
        elif provider == "modelarts-sandbox":
            ok = anyio.run(_modelarts_demo, state)
        elif provider == "ray":
            ok = _ray_demo(state)
        else:
            ok = anyio.run(_demo, env)
    finally:
        if keep:
            print(f"\nstate kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    print("\ndemo: the job succeeded" if ok else "\ndemo: the job did NOT succeed")
    return 0 if ok else 1
