"""The seed's whole workflow on the local provider, with real processes, through a real MCP client."""

from __future__ import annotations

import shlex
import sys

import anyio
import pytest

from tests.conftest import Asker, call, connect, create_args, quote, smallest_cpu_spec, wait_done

pytestmark = pytest.mark.anyio

PY = shlex.quote(sys.executable)
TRAIN = (
    PY
    + " -c "
    + shlex.quote(
        "import os\n"
        "r, w = os.environ['RANK'], os.environ['WORLD_SIZE']\n"
        'print(f\'rank {r}/{w} port {os.environ["MASTER_PORT"]} addr {os.environ["MASTER_ADDR"]}\')\n'
        "print(f'rank {r} loss 0.{r}5')\n"
    )
)
FAIL = PY + " -c " + shlex.quote("print('loading data')\nimport json\njson.loads('{not json')\n")


async def launch(client, command: str, workers: int = 1, max_minutes: float = 5, **kw):
    spec = await smallest_cpu_spec(client)
    q = await quote(client, spec, workers=workers, minutes=min(1, max_minutes), max_minutes=max_minutes)
    created = await call(client, "create_training_job", create_args(spec, q["quote_id"], command, workers, **kw))
    return created["job"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_full_workflow_two_workers(settings, mode):
    asker = Asker()
    async with connect(settings, mode=mode, asker=asker) as client:
        specs = await call(client, "list_ecs_specs", {"accelerator_type": "CPU"})
        assert specs["provider"] == "local" and specs["specs"]
        assert all(s["accelerator"] == "CPU" for s in specs["specs"])
        image = await call(client, "resolve_image", {"job_type": "PyTorchJob", "chip_type": "CPU"})
        assert image["used"] is False and "Python" in image["note"]
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec, workers=2)
        assert q["currency"] and q["display_text"].startswith("Local machine cost estimate:")
        assert f"Spec: {spec}" in q["display_text"] and "x 2 Workers" in q["display_text"]
        created = await call(client, "create_training_job", create_args(spec, q["quote_id"], TRAIN, 2))
        assert created["confirmation"] == "elicited" and len(asker.questions) == 1
        job_id = created["job"]["job_id"]
        assert created["job"]["max_runtime_minutes"] == 5

        seen: list[str] = []

        async def on_progress(progress, total, message):
            seen.append(message)

        result = await call(
            client, "wait_job_complete", {"job_id": job_id, "interval": 0.1}, progress_callback=on_progress
        )
        while not result["done"]:
            result = await call(client, "wait_job_complete", {"job_id": job_id, "interval": 0.1})
        assert result["outcome"] == "succeeded" and result["status"] == "Succeeded"
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.01)
        assert job_id in seen[0]

        job = await call(client, "get_job", {"job_id": job_id})
        assert [p["pod_id"] for p in job["pods"]] == [f"{job_id}-master-0", f"{job_id}-worker-0"]
        assert all(p["exit_code"] == 0 for p in job["pods"])
        logs = await call(client, "get_job_logs", {"job_id": job_id})
        text = {p["pod_id"]: "\n".join(p["lines"]) for p in logs["pods"]}
        assert "rank 0/2" in text[f"{job_id}-master-0"] and "rank 1/2" in text[f"{job_id}-worker-0"]
        assert "addr 127.0.0.1" in text[f"{job_id}-master-0"]
        assert logs["truncated"] is False and "next_cursor" not in logs

        dry = await call(client, "cleanup_jobs", {"status": "Succeeded", "delete": True})
        assert dry["dry_run"] is True and [a["action"] for a in dry["actions"]] == ["would_delete"]
        assert (await call(client, "get_job", {"job_id": job_id}))["status"] == "Succeeded"
        done = await call(client, "cleanup_jobs", {"status": "Succeeded", "delete": True, "dry_run": False})
        assert [a["action"] for a in done["actions"]] == ["deleted"]
        assert (await call(client, "list_jobs", {}))["jobs"] == []


async def test_failing_job_reports_reason_and_log_tail(settings):
    async with connect(settings, asker=Asker()) as client:
        job = await launch(client, FAIL)
        result = await wait_done(client, job["job_id"])
        assert result["outcome"] == "failed" and result["status"] == "Failed"
        failure = result["failure"]
        assert failure["pod_id"] == f"{job['job_id']}-worker-0" and failure["exit_code"] == 1
        assert "exited with code 1" in result["reason"]
        tail = "\n".join(failure["log_tail"])
        assert "loading data" in tail and "json.decoder.JSONDecodeError" in tail


async def test_stop_a_sleeping_job(settings):
    async with connect(settings, asker=Asker()) as client:
        job = await launch(client, "sleep 60")
        stopped = await call(client, "stop_job", {"job_id": job["job_id"]})
        assert stopped["status"] in ("Stopping", "Stopped")
        result = await wait_done(client, job["job_id"])
        assert result["status"] == "Stopped" and result["outcome"] == "stopped"
        assert (await call(client, "get_job", {"job_id": job["job_id"]}))["reason_code"] == "JobStoppedByUser"


async def test_max_runtime_is_enforced(settings):
    async with connect(settings, asker=Asker()) as client:
        job = await launch(client, "sleep 60", max_minutes=0.02)  # 1.2 s
        result = await wait_done(client, job["job_id"])
        assert result["status"] == "Stopped"
        final = await call(client, "get_job", {"job_id": job["job_id"]})
        assert final["reason_code"] == "MaxRuntimeExceeded"
        assert final["duration_seconds"] < 30


async def test_wait_is_resumable_and_the_overall_timeout_stops_the_job(settings):
    async with connect(settings, asker=Asker()) as client:
        job = await launch(client, "sleep 60")
        args = {"job_id": job["job_id"], "interval": 0.1, "max_wait_seconds": 0.5, "timeout": 1.6}
        first = await call(client, "wait_job_complete", args)
        assert first["done"] is False and first["outcome"] == "still_running"
        assert "call wait_job_complete" in first["message"].lower()
        second = await call(client, "wait_job_complete", args)
        assert second["done"] is False and second["elapsed_seconds"] > first["elapsed_seconds"]
        third = await wait_done(client, job["job_id"], max_wait_seconds=0.5, timeout=1.6)
        assert third["outcome"] == "timed_out" and "stopped" in third["message"]
        assert third["elapsed_seconds"] < 5  # counted from the first call, not per call
        final = await wait_done(client, job["job_id"])
        assert final["status"] == "Stopped"


async def test_a_new_server_finds_jobs_statuses_and_logs(settings):
    async with connect(settings, asker=Asker()) as client:
        done = await launch(client, "echo persisted-output")
        await wait_done(client, done["job_id"])
        running = await launch(client, "sleep 1; echo finished-later")
    # The first server is gone; the second job finishes while no server runs.
    await anyio.sleep(1.5)
    async with connect(settings, asker=Asker()) as client:
        jobs = {j["job_id"]: j for j in (await call(client, "list_jobs", {}))["jobs"]}
        assert set(jobs) == {done["job_id"], running["job_id"]}
        result = await wait_done(client, running["job_id"])
        assert result["status"] == "Succeeded"
        for job_id, text in ((done["job_id"], "persisted-output"), (running["job_id"], "finished-later")):
            logs = await call(client, "get_job_logs", {"job_id": job_id})
            assert text in logs["pods"][0]["lines"]


async def test_unknown_job_ids_give_clear_errors(settings):
    async with connect(settings) as client:
        for tool in ("get_job", "wait_job_complete", "get_job_logs", "stop_job", "delete_job"):
            result = await client.call_tool(tool, {"job_id": "local-nope"})
            assert result.is_error, tool
            assert "local-nope" in result.content[0].text and "Traceback" not in result.content[0].text
