"""How much the concurrent per-pod log fetch of get_job_logs saves, on the PAI sandbox over real HTTP.

A job with 8 pods; the sandbox adds 50 ms to every call (a cloud API's latency). The same logs are read
once pod after pod and once the way get_job_logs reads them (all pods at once in one task group), and
with one pooled httpx client versus a new client per call. Prints ratios, asserts nothing.

    python bench/pod_logs.py
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.engine import Engine
from cloudjobs_mcp.server.logs import Query, fetch
from cloudjobs_mcp.server.models import JobRequest
from cloudjobs_mcp.server.providers.pai.provider import PaiProvider
from cloudjobs_mcp.server.sandbox import SandboxSettings, serve

PODS = 8
LATENCY = 0.05
ROUNDS = 3


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with serve(
            SandboxSettings(state_dir=Path(tmp) / "sb", creating_seconds=0.05, queuing_seconds=0.05)
        ) as sb:
            settings = Settings.from_env({}, **sb.settings_overrides(), state_dir=Path(tmp) / "state")
            env = {**sb.access_key.env(), "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}
            async with httpx.AsyncClient(trust_env=False) as http:
                provider = PaiProvider(settings, client=http, env=env)
                async with Engine.open(settings, provider) as engine:
                    spec = (await provider.list_specs("CPU"))[0]
                    program = "for i in range(200): print('step', i)"
                    job = await provider.create_job(
                        JobRequest(
                            display_name="bench", job_type="PyTorchJob", ecs_spec=spec.instance_type,
                            worker_count=PODS, max_runtime_minutes=5,
                            user_command=f"{shlex.quote(sys.executable)} -c {shlex.quote(program)}",
                        )
                    )  # fmt: skip
                    with anyio.fail_after(60):
                        while not (job := await provider.get_job(job.job_id)).status.is_terminal:
                            await anyio.sleep(0.2)
                    sb.faults.latency(LATENCY)
                    pods = [p.pod_id for p in job.pods]
                    query = Query(job.job_id, None, None, None, None, None, 2)

                    async def sequential() -> None:
                        for pod in pods:
                            await provider.pod_logs(job.job_id, pod)

                    async def concurrent() -> None:
                        await fetch(engine, job, pods, query)

                    async def fresh_clients() -> None:
                        for pod in pods:
                            async with httpx.AsyncClient(trust_env=False) as own:
                                await PaiProvider(settings, client=own, env=env).pod_logs(job.job_id, pod)

                    runs = (("sequential", sequential), ("concurrent", concurrent), ("fresh", fresh_clients))
                    timings = {name: await best(fn) for name, fn in runs}
    seq, conc, fresh = timings["sequential"], timings["concurrent"], timings["fresh"]
    print(f"{PODS} pods, {LATENCY * 1000:.0f} ms per call, best of {ROUNDS}:")
    print(f"  pod after pod, pooled client:    {seq * 1000:7.1f} ms")
    print(f"  all pods at once (get_job_logs): {conc * 1000:7.1f} ms   -> {seq / conc:.1f}x faster")
    print(f"  pod after pod, a client per call:{fresh * 1000:7.1f} ms   -> pooling saves {fresh / seq:.2f}x")
    print("  (on loopback there is no TLS handshake: against the cloud a fresh client costs far more)")


async def best(fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return min(times)


if __name__ == "__main__":
    anyio.run(main)
