"""wait_job_complete, get_job_logs and cleanup_jobs on the pai provider against a real sandbox on loopback."""

from __future__ import annotations

import json
import shlex
import sys

import anyio
import pytest

from tests.conftest import Asker, call, create_args, quote
from tests.sandbox_fixtures import pai_client, running_sandbox, signed_call

pytestmark = pytest.mark.anyio
SPEC = "ecs.c6.large"
PY = shlex.quote(sys.executable)


async def launch(client, command: str, name: str = "sandbox-job", max_minutes: float = 30) -> str:
    q = await quote(client, SPEC, minutes=1, max_minutes=max_minutes)
    created = await call(client, "create_training_job", create_args(SPEC, q["quote_id"], command, display_name=name))
    return created["job"]["job_id"]


async def test_progress_resumable_wait_and_overall_timeout(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        job_id = await launch(client, "sleep 60")
        seen: list[str] = []

        async def on_progress(progress, total, message):
            seen.append(message)

        args = {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 0.6, "timeout": 2.0}
        first = await call(client, "wait_job_complete", args, progress_callback=on_progress)
        second = await call(client, "wait_job_complete", args)
        assert first["done"] is False and second["done"] is False
        assert second["elapsed_seconds"] > first["elapsed_seconds"]
        third = args
        while True:
            third = await call(client, "wait_job_complete", args)
            if third["done"]:
                break
        assert third["outcome"] == "timed_out" and third["elapsed_seconds"] < 6
        assert seen and job_id in seen[0] and "pods running" in seen[0]
        with anyio.fail_after(20):
            while (await call(client, "get_job", {"job_id": job_id}))["status"] != "Stopped":
                await anyio.sleep(0.1)


async def test_queue_watchdog_stops_a_job_stuck_in_the_queue(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        sb.faults.queue_forever("stuck")
        job_id = await launch(client, "echo never", name="stuck-job")
        args = {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 10, "queue_timeout": 1.0}
        result = await call(client, "wait_job_complete", args)
        assert result["outcome"] == "queue_timeout" and "billing can start" in result["message"]
        assert result["status"] in ("Stopping", "Stopped")


async def test_stall_diagnosis_once_and_a_throttling_storm_during_the_wait(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        job_id = await launch(client, "echo working; sleep 2.5")
        sb.faults.throttle(6, retry_after_ms=20)
        first = await call(client, "wait_job_complete", {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 1.2})
        done = await call(client, "wait_job_complete", {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 20})
        stalls = [r["stall"] for r in (first, done) if "stall" in r]
        assert len(stalls) == 1 and stalls[0]["status"].startswith("Running")
        assert done["outcome"] == "succeeded"


async def test_traceback_quoted_first_grep_and_masking_over_real_http(tmp_path):
    program = (
        "print('ALIBABA_CLOUD_ACCESS_KEY_SECRET=Zq8kL2mN4pQ6rS8tU0vW2xY4zA6bC8')\n"
        "for i in range(400): print('step', i, 'loss', round(1 / (i + 1), 4))\n"
        "raise SystemExit(__import__('json').loads('{broken'))\n"
    )
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        job_id = await launch(client, f"{PY} -c {shlex.quote(program)}")
        result = await call(client, "wait_job_complete", {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 20})
        assert result["outcome"] == "failed" and result["failure"]["verdict"] == "user_code"
        assert result["failure"]["error_block"][-1].startswith("json.decoder.JSONDecodeError")
        logs = await call(client, "get_job_logs", {"job_id": job_id, "max_bytes": 3000})
        assert len(json.dumps(logs).encode()) <= 3000 and logs["next_cursor"]
        assert logs["error_block"]["kind"] == "python_traceback"
        assert "Zq8kL2mN4pQ6rS8tU0vW2xY4zA6bC8" not in json.dumps(logs)
        page = await call(client, "get_job_logs", {"job_id": job_id, "cursor": logs["next_cursor"]})
        assert page["pods"][0]["lines"]
        hits = await call(client, "get_job_logs", {"job_id": job_id, "grep": r"step 39\d ", "context_lines": 0})
        assert len([x for x in hits["pods"][0]["lines"] if x != "--"]) == 10


async def test_cleanup_touches_only_this_servers_jobs_and_asks_before_deleting(tmp_path):
    async with running_sandbox(tmp_path) as sb:
        foreign = await signed_call(
            sb,
            "CreateJob",
            "POST",
            "/api/v1/jobs",
            body={
                "DisplayName": "someone-else",
                "JobType": "PyTorchJob",
                "UserCommand": "exit 1",
                "WorkspaceId": sb.sandbox.create_workspace("others"),
                "JobSpecs": [{"Type": "Worker", "Image": "img", "PodCount": 1, "EcsSpec": SPEC}],
            },
        )
        assert foreign.status_code == 200, foreign.text
        decline = Asker("decline")
        async with pai_client(sb, tmp_path, asker=Asker()) as client:
            ours = await launch(client, "exit 2", name="ours")
            await call(client, "wait_job_complete", {"job_id": ours, "interval": 0.1, "max_wait_seconds": 20})
        async with pai_client(sb, tmp_path, asker=decline) as client:
            dry = await call(client, "cleanup_jobs", {"delete": True})
            assert [a["job_id"] for a in dry["actions"]] == [ours] and dry["actions"][0]["action"] == "would_delete"
            declined = await call(client, "cleanup_jobs", {"delete": True, "dry_run": False})
            assert declined["actions"][0]["action"] == "skipped" and len(decline.questions) == 1
            assert (await call(client, "get_job", {"job_id": ours}))["status"] == "Failed"
        async with pai_client(sb, tmp_path, asker=Asker()) as client:
            done = await call(client, "cleanup_jobs", {"delete": True, "dry_run": False})
            assert [(a["job_id"], a["action"]) for a in done["actions"]] == [(ours, "deleted")]
            everyone = await call(client, "list_jobs", {"status": "Failed"})
            assert [j["name"] for j in everyone["jobs"]] == ["someone-else"]
