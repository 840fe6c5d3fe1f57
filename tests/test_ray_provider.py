"""The ray provider against a real Ray head on loopback, driven through the MCP client."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.providers.ray import RayProvider, cluster
from cloudjobs_mcp.server.providers.ray.provider import submission_id_for
from tests.conftest import (
    Asker,
    call,
    call_error,
    connect,
    create_args,
    make_settings,
    quote,
    wait_done,
)

# One worker runs them all on one head (--dist loadgroup); its start-up counts against the first test's timeout.
pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("ray"), pytest.mark.timeout(480)]

PY = sys.executable

# Rank 0 listens on MASTER_ADDR:MASTER_PORT; every other rank connects and sends its rank; rank 0 answers
# each with the sum of all ranks (an all-reduce by hand). With torch, a real gloo all-reduce instead.
RENDEZVOUS = r"""
import os, socket, time
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
print(f"rank={rank} world={world} local_rank={os.environ['LOCAL_RANK']} master={addr}:{port}", flush=True)
try:
    import torch, torch.distributed as dist
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=__import__("datetime").timedelta(seconds=60))
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)
    print(f"allreduce sum={int(t.item())} via gloo", flush=True)
    dist.destroy_process_group()
except ImportError:
    if rank == 0:
        srv = socket.create_server((addr, port))
        conns = [srv.accept()[0] for _ in range(world - 1)]
        total = 1 + sum(int(c.recv(16)) for c in conns)
        for c in conns:
            c.sendall(str(total).encode())
    else:
        for _ in range(300):
            try:
                c = socket.create_connection((addr, port), timeout=5)
                break
            except OSError:
                time.sleep(0.1)
        c.sendall(str(rank + 1).encode())
        total = int(c.recv(16))
    print(f"allreduce sum={total} via tcp", flush=True)
"""


def ray_client(tmp_path: Path, head: Any, token: str | None = None, **kw: Any) -> Any:
    """An MCP client of a server with ray (the default) and local enabled; its ray provider holds ``token``
    (default: the head's)."""
    settings = make_settings(tmp_path, providers="ray,local", ray_address=head.address)
    ray = RayProvider(settings, token=head.token() if token is None else token, **kw)
    return connect(settings, asker=Asker(), providers={"ray": ray})


def ray_jobs(head: Any) -> list[dict[str, Any]]:
    return httpx.get(head.address + "/api/jobs/", headers={"Authorization": f"Bearer {head.token()}"}).json()


async def run(client: Any, spec: str, command: str, workers: int = 1, max_minutes: float = 5, **kw: Any) -> str:
    q = await quote(client, spec, workers=workers, minutes=min(1, max_minutes), max_minutes=max_minutes)
    created = await call(client, "create_training_job", create_args(spec, q["quote_id"], command, workers, **kw))
    return str(created["job"]["job_id"])


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return f"{PY} {path}"


async def test_workflow_two_workers_rendezvous(ray_head: Any, tmp_path: Path) -> None:
    async with ray_client(tmp_path, ray_head) as client:
        both = await call(client, "list_ecs_specs", {"accelerator_type": "CPU"})
        assert {s["provider"] for s in both["specs"]} == {"ray", "local"}
        specs = await call(client, "list_ecs_specs", {"accelerator_type": "CPU", "sort_by": "CPU", "provider": "ray"})
        names = [s["instance_type"] for s in specs["specs"]]
        assert names[:2] == ["ray-1cpu", "ray-2cpu"], names
        assert specs["specs"][0]["free_now"] >= 2 and specs["specs"][0]["available"]
        q = await quote(client, "ray-1cpu", workers=2, provider="ray")
        assert q["provider"] == "ray" and q["per_worker_hourly"] == 0 and q["total_hourly"] == 0
        assert "Price source: your own Ray cluster, quoted at 0" in q["display_text"]
        command = script(tmp_path, "rdv.py", RENDEZVOUS)
        created = await call(
            client,
            "create_training_job",
            create_args("ray-1cpu", q["quote_id"], command, 2, envs={"MY_FLAG": "on"}),
        )
        job_id = created["job"]["job_id"]
        assert job_id == submission_id_for(q["quote_id"])
        done = await wait_done(client, job_id, max_wait_seconds=240, interval=0.5)
        assert done["outcome"] == "succeeded", done
        job = await call(client, "get_job", {"job_id": job_id})
        assert job["status"] == "Succeeded" and job["raw_status"] == "SUCCEEDED"
        assert [p["pod_id"] for p in job["pods"]] == [f"{job_id}-master-0", f"{job_id}-worker-0"]
        assert all(p["exit_code"] == 0 and p["ip"].startswith("127.") for p in job["pods"])
        assert job["tags"]["cloudjobs-quote"] == q["quote_id"] and job["tags"]["cloudjobs-mcp"] == "true"

        logs = await call(client, "get_job_logs", {"job_id": job_id})
        lines = {p["pod_id"]: p["lines"] for p in logs["pods"]}
        ranks = sorted(ln.split()[0] for pod in lines.values() for ln in pod if ln.startswith("rank="))
        assert ranks == ["rank=0", "rank=1"]
        masters = {ln.split("master=")[1] for pod in lines.values() for ln in pod if "master=" in ln}
        assert len(masters) == 1 and masters.pop().startswith(job["pods"][0]["ip"] + ":")
        assert all(any(ln.startswith("allreduce sum=3") for ln in pod) for pod in lines.values()), lines
        assert all(any("local_rank=0" in ln for ln in pod) for pod in lines.values())

        listed = await call(client, "list_jobs", {})
        assert listed["jobs"][0]["job_id"] == job_id
        events = await call(client, "get_job_events", {"job_id": job_id})
        assert any("rendezvous at MASTER_ADDR" in e["message"] for e in events["events"])

        cleanup = await call(client, "cleanup_jobs", {"status": "Succeeded", "delete": True, "dry_run": False})
        assert any(a["job_id"] == job_id for a in cleanup["actions"])
        assert not [j for j in ray_jobs(ray_head) if j["submission_id"] == job_id]


async def test_worker_placed_on_a_second_node_by_its_resource(ray_head: Any, tmp_path: Path) -> None:
    try:
        node = cluster.start_node(ray_head, node_ip="127.0.0.3", cpus=1, resources={"accel_test": 2})
    except ConfigurationError as exc:
        log = Path(str(exc).rsplit("see ", 1)[-1]).read_text()
        if "timed out during startup" not in log:
            raise
        # Ray gives a joining node a hard-coded 30 s to register with the GCS; a machine this busy misses it.
        pytest.skip("this machine is too busy for Ray to register a second node within its 30 s")
    try:
        async with ray_client(tmp_path, ray_head) as client:
            specs = await call(client, "list_ecs_specs", {"accelerator_type": "GPU"})
            accel = {s["instance_type"]: s for s in specs["specs"]}
            assert "ray-1cpu-1xaccel_test" in accel, accel
            assert accel["ray-1cpu-1xaccel_test"]["gpu_type"] == "accel_test"
            job_id = await run(client, "ray-1cpu-1xaccel_test", "hostname; echo on-accel", workers=1)
            done = await wait_done(client, job_id, max_wait_seconds=240, interval=0.5)
            assert done["outcome"] == "succeeded", done
            job = await call(client, "get_job", {"job_id": job_id})
            assert job["pods"][0]["ip"] == "127.0.0.3"
            logs = await call(client, "get_job_logs", {"job_id": job_id})
            assert "on-accel" in logs["pods"][0]["lines"]
    finally:
        cluster.stop(node)
    assert not cluster.session_pids(node)


async def test_failing_worker_traceback_quoted_first(ray_head: Any, tmp_path: Path) -> None:
    program = (
        "import os, time\n"
        "rank = int(os.environ['RANK'])\n"
        "print(f'rank {rank} step 1 token={os.environ.get(\"RAY_AUTH_TOKEN\")}', flush=True)\n"
        "if rank == 1:\n"
        "    def load(batch):\n"
        "        raise ValueError(f'bad batch {batch}')\n"
        "    load(7)\n"
        "time.sleep(60)\n"
    )
    async with ray_client(tmp_path, ray_head) as client:
        job_id = await run(client, "ray-1cpu", script(tmp_path, "fail.py", program), workers=2)
        done = await wait_done(client, job_id, max_wait_seconds=240, interval=0.5)
        assert done["outcome"] == "failed", done
        job = await call(client, "get_job", {"job_id": job_id})
        worker = f"{job_id}-worker-0"
        assert job["raw_status"] == "FAILED" and job["reason_code"] == "PodFailed"
        assert worker in job["reason"]
        statuses = {p["pod_id"]: (p["status"], p["exit_code"]) for p in job["pods"]}
        assert statuses[worker] == ("Failed", 1)
        assert statuses[f"{job_id}-master-0"][0] == "Stopped"  # the other worker was stopped, not left running
        logs = await call(client, "get_job_logs", {"job_id": job_id})
        block = logs["error_block"]
        assert block["pod_id"] == worker and block["kind"] == "python_traceback"
        assert block["lines"][0].startswith("Traceback") and "ValueError: bad batch 7" in block["lines"][-1]
        shown = json.dumps(logs)
        assert "step 1 token=" in shown and ray_head.token() not in shown  # the cluster token is masked
        diagnosis = await call(client, "diagnose_job", {"job_id": job_id})
        assert "ValueError: bad batch 7" in json.dumps(diagnosis)


async def test_stop_and_max_runtime(ray_head: Any, tmp_path: Path) -> None:
    async with ray_client(tmp_path, ray_head) as client:
        long = "echo $$ > {}; exec sleep 120"
        stopped_id = await run(client, "ray-1cpu", long.format(tmp_path / "stopped.pid"))
        limited_id = await run(client, "ray-1cpu", long.format(tmp_path / "limited.pid"), max_minutes=0.1)  # 6 s
        for _ in range(600):
            if (tmp_path / "stopped.pid").exists():
                break
            await anyio.sleep(0.1)
        job = await call(client, "get_job", {"job_id": stopped_id})
        assert job["status"] == "Running", job
        stopped = await call(client, "stop_job", {"job_id": stopped_id})
        assert stopped["status"] == "Stopped" and stopped["raw_status"] == "STOPPED"
        done = await wait_done(client, limited_id, max_wait_seconds=240, interval=0.5)
        job = await call(client, "get_job", {"job_id": limited_id})
        assert job["status"] == "Stopped" and job["raw_status"] == "STOPPED", done
        assert job["reason_code"] == "MaxRuntimeExceeded" and "max runtime" in job["reason"]
        for name in ("stopped.pid", "limited.pid"):  # the user's processes died with their jobs
            assert not _running(int((tmp_path / name).read_text()))


async def test_create_retried_after_a_lost_response_returns_the_one_job(ray_head: Any, tmp_path: Path) -> None:
    class LoseFirstSubmit(httpx.AsyncBaseTransport):
        """Delivers the first job submission to Ray, then loses Ray's answer (a read timeout)."""

        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()
            self.posts = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            if request.method == "POST" and request.url.path == "/api/jobs/":
                self.posts += 1
                if self.posts == 1:
                    await response.aread()
                    await response.aclose()
                    raise httpx.ReadTimeout("response lost", request=request)
            return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    transport = LoseFirstSubmit()
    async with ray_client(tmp_path, ray_head, transport=transport) as client:
        q = await quote(client, "ray-1cpu")
        created = await call(client, "create_training_job", create_args("ray-1cpu", q["quote_id"], "echo once"))
        job_id = created["job"]["job_id"]
        assert transport.posts == 2  # the retry met Ray's "already exists" and took the job it made
        assert [j["submission_id"] for j in ray_jobs(ray_head)].count(job_id) == 1
        again = await call(client, "create_training_job", create_args("ray-1cpu", q["quote_id"], "echo once"))
        assert again["job"]["job_id"] == job_id and transport.posts == 2
        done = await wait_done(client, job_id, max_wait_seconds=240, interval=0.5)
        assert done["outcome"] == "succeeded"


async def test_refusals_before_anything_reaches_ray(ray_head: Any, tmp_path: Path) -> None:
    before = len(ray_jobs(ray_head))
    async with ray_client(tmp_path, ray_head) as client:
        t0 = time.monotonic()
        err = await call_error(client, "estimate_cost", {**_q("ray-2cpu", 3)})
        assert "No placement can ever hold 3 workers of ray-2cpu" in err and "at most 1" in err
        err = await call_error(client, "estimate_cost", {**_q("ray-64cpu", 1), "provider": "ray"})
        assert "Unknown spec 'ray-64cpu'" in err and "ray-1cpu" in err
        assert time.monotonic() - t0 < 10
        # Sneaking past the gate: a quote for one worker does not pay for two, and no quote pays for none.
        q = await quote(client, "ray-1cpu", workers=1)
        err = await call_error(client, "create_training_job", create_args("ray-1cpu", q["quote_id"], "true", 2))
        assert "worker" in err.lower()
        err = await call_error(client, "create_training_job", create_args("ray-1cpu", "q-0000000000000000", "true"))
        assert "quote" in err.lower()
        err = await call_error(client, "get_job", {"job_id": "a/b", "provider": "ray"})
        assert "is not a Ray job id" in err
        err = await call_error(client, "get_job", {"job_id": "cloudjobs-nope", "provider": "ray"})
        assert "does not exist" in err
    assert len(ray_jobs(ray_head)) == before


async def test_wrong_or_missing_token_is_a_clear_error(ray_head: Any, tmp_path: Path) -> None:
    wrong = "not-the-token-0123456789"
    async with ray_client(tmp_path, ray_head, token=wrong) as client:
        err = await call_error(client, "list_ecs_specs", {"provider": "ray"})
        assert "rejected the token in RAY_AUTH_TOKEN" in err and wrong not in err
    async with ray_client(tmp_path, ray_head, token="") as client:
        err = await call_error(client, "list_jobs", {"provider": "ray"})
        assert "requires a token: set RAY_AUTH_TOKEN" in err


async def test_stop_of_a_pending_job_that_never_starts_says_so(ray_head: Any, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {ray_head.token()}"}
    sid = f"foreign-{int(time.time() * 1000)}"
    body = {"entrypoint": "echo never", "submission_id": sid, "entrypoint_num_cpus": 64}
    async with httpx.AsyncClient() as http:
        assert (await http.post(ray_head.address + "/api/jobs/", json=body, headers=headers)).status_code == 200
    async with ray_client(tmp_path, ray_head) as client:
        job = await call(client, "get_job", {"job_id": sid})  # not in the job index: found by asking
        assert job["status"] == "Queuing" and job["pods"][0]["pod_id"] == f"{sid}-driver"
        stopped = await call(client, "stop_job", {"job_id": sid})
        assert stopped["raw_status"] == "PENDING"
        assert "cannot stop a job whose driver has not started" in stopped["reason"]
        err = await call_error(client, "delete_job", {"job_id": sid})
        assert "only finished jobs can be deleted" in err


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _q(spec: str, workers: int) -> dict[str, Any]:
    return {"ecs_spec": spec, "worker_count": workers, "estimated_minutes": 1, "max_runtime_minutes": 5}


async def test_ray_up_and_down_stop_only_their_cluster(ray_head: Any, tmp_path: Path) -> None:
    env = {**os.environ, "CLOUDJOBS_STATE_DIR": str(tmp_path / "state")}
    cli = [PY, "-m", "cloudjobs_mcp.server.cli", "ray"]
    up = await anyio.run_process([*cli, "up", "--cpus", "1"], env=env, check=False)
    out = up.stdout.decode()
    assert up.returncode == 0, up.stderr.decode()
    record = cluster.load(tmp_path / "state")
    assert record is not None and f"export CLOUDJOBS_RAY_ADDRESS={record.address}" in out
    assert record.token() not in out and f'RAY_AUTH_TOKEN="$(cat {record.token_file})"' in out
    assert (Path(record.token_file).stat().st_mode & 0o777) == 0o600
    cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
    environ = Path(f"/proc/{record.pid}/environ").read_bytes().split(b"\0")
    assert b"--disable-usage-stats" in cmdline and b"RAY_USAGE_STATS_ENABLED=0" in environ
    assert b"RAY_AUTH_MODE=token" in environ
    again = await anyio.run_process([*cli, "up"], env=env, check=False)
    assert again.returncode == 2 and "already runs" in again.stderr.decode()
    down = await anyio.run_process([*cli, "down"], env=env, check=False)
    assert down.returncode == 0 and f"Stopped the Ray head at {record.address}" in down.stdout.decode()
    assert not cluster.session_pids(record) and not Path(record.temp_dir).exists()
    assert cluster.session_pids(ray_head)  # the session's own head still runs
    none = await anyio.run_process([*cli, "down"], env=env, check=False)
    assert "No Ray cluster started by cloudjobs-mcp here" in none.stdout.decode()
