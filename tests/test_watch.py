"""wait_job_complete's safeguards and cleanup_jobs on real local jobs, through the MCP client."""

from __future__ import annotations

import shlex
import sys

import anyio
import pytest
from mcp import Client

from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.models import JobRequest
from cloudjobs_mcp.server.providers.local import LocalProvider
from tests.conftest import Asker, call, connect, create_args, quote, smallest_cpu_spec, wait_done

pytestmark = pytest.mark.anyio
PY = shlex.quote(sys.executable)

TRACEBACK = (
    PY
    + " -c "
    + shlex.quote(
        "import sys\n"
        "for i in range(300): print('step', i, 'loss', 1 / (i + 1))\n"
        "def load(path):\n"
        "    return open(path).read()\n"
        "load('/no/such/data.csv')\n"
    )
)


async def launch(client, command: str, workers: int = 1, name: str = "test-job") -> str:
    spec = await smallest_cpu_spec(client)
    q = await quote(client, spec, workers=workers)
    args = create_args(spec, q["quote_id"], command, workers, display_name=name)
    return (await call(client, "create_training_job", args))["job"]["job_id"]


async def test_failure_quotes_the_traceback_first(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, TRACEBACK)
        result = await wait_done(client, job_id)
        assert result["outcome"] == "failed"
        failure = result["failure"]
        assert list(failure)[:3] == ["verdict", "next_step", "error_block"]  # what to read first
        assert failure["verdict"] == "user_code"
        block = failure["error_block"]
        assert block[0] == "Traceback (most recent call last):"
        assert block[-1].startswith("FileNotFoundError: [Errno 2] No such file or directory")
        assert any("exited with code 1" in e for e in failure["events"])
        assert len(failure["log_tail"]) <= 30 and failure["log_tail"][-1] == block[-1]


async def test_stall_diagnosis_is_included_exactly_once(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, "echo started-and-waiting; sleep 3")
        args = {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 1.0}
        first = await call(client, "wait_job_complete", args)
        assert first["done"] is False and "stall" in first
        assert first["stall"]["status"].startswith("Running") and first["stall"]["unchanged_seconds"] >= 0.4
        assert "started-and-waiting" in first["stall"]["log_tail"]
        assert any("started" in e for e in first["stall"]["events"])
        second = await call(client, "wait_job_complete", args)
        assert "stall" not in second  # same status: not diagnosed again
        final = await wait_done(client, job_id)
        assert final["outcome"] == "succeeded" and "stall" not in final


async def test_status_changes_are_logged_to_the_client(settings):
    messages: list[str] = []

    async def on_log(params) -> None:
        messages.append(str(params.data))

    async with Client(
        build_server(settings), mode="legacy", elicitation_callback=Asker(), logging_callback=on_log
    ) as client:
        job_id = await launch(client, "sleep 0.5")
        await wait_done(client, job_id, interval=0.05)
        with anyio.fail_after(5):
            while not any("Succeeded" in m for m in messages):
                await anyio.sleep(0.02)
    assert any(job_id in m and "→" in m for m in messages)


async def test_cancelling_a_wait_stops_the_waiting_not_the_job(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, "sleep 30")
        with anyio.move_on_after(0.5) as scope:
            await client.call_tool("wait_job_complete", {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 20})
        assert scope.cancelled_caught
        job = await call(client, "get_job", {"job_id": job_id})
        assert job["status"] == "Running"
        await call(client, "stop_job", {"job_id": job_id})


async def test_cleanup_dry_run_then_real_only_this_servers_jobs(settings):
    foreign = LocalProvider(settings)
    spec = foreign.specs()[0]
    other = await foreign.create_job(
        JobRequest(
            display_name="not-ours", user_command="exit 1", job_type="PyTorchJob", ecs_spec=spec.instance_type,
            worker_count=1, max_runtime_minutes=5,
        )
    )  # fmt: skip
    async with connect(settings, asker=Asker()) as client:
        failed = [await launch(client, "exit 2", name=f"sweep-{i}") for i in range(2)]
        kept = await launch(client, "exit 3", name="keep-me")
        for job_id in [*failed, kept, other.job_id]:
            await wait_done(client, job_id)
        dry = await call(client, "cleanup_jobs", {"delete": True, "name_prefix": "sweep-"})
        assert dry["dry_run"] is True and sorted(a["job_id"] for a in dry["actions"]) == sorted(failed)
        assert {a["action"] for a in dry["actions"]} == {"would_delete"}
        assert len((await call(client, "list_jobs", {}))["jobs"]) == 4
        done = await call(client, "cleanup_jobs", {"delete": True, "dry_run": False})
        assert sorted(a["job_id"] for a in done["actions"]) == sorted([*failed, kept])
        assert {a["action"] for a in done["actions"]} == {"deleted"}
        left = [j["job_id"] for j in (await call(client, "list_jobs", {}))["jobs"]]
        assert left == [other.job_id]  # not created by this server: untouched


async def test_cleanup_stops_running_jobs_and_declined_deletes_nothing(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, "exit 4")
        await wait_done(client, job_id)
    decline = Asker("decline")
    async with connect(settings, asker=decline) as client:
        declined = await call(client, "cleanup_jobs", {"delete": True, "dry_run": False})
        assert [a["action"] for a in declined["actions"]] == ["skipped"] and "declined" in declined["summary"]
        assert (await call(client, "get_job", {"job_id": job_id}))["status"] == "Failed"
        assert len(decline.questions) == 1 and job_id in decline.questions[0]
    async with connect(settings, asker=Asker()) as client:
        running = await launch(client, "sleep 60")
        stopped = await call(client, "cleanup_jobs", {"status": "Running", "dry_run": False})
        assert [(a["job_id"], a["action"]) for a in stopped["actions"]] == [(running, "stopped")]
        assert (await wait_done(client, running))["status"] == "Stopped"
        old = await call(client, "cleanup_jobs", {"status": "Stopped", "older_than_hours": 1})
        assert old["matched"] == 0  # it is minutes old


async def test_the_failing_pod_is_the_one_that_failed_not_the_one_stopped_after_it(settings):
    program = "import os, time\nif os.environ['RANK'] == '1':\n    raise ValueError('rank 1 broke')\ntime.sleep(30)\n"
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, f"{PY} -c {shlex.quote(program)}", workers=2)
        result = await wait_done(client, job_id)
        assert result["outcome"] == "failed"
        assert result["failure"]["pod_id"] == f"{job_id}-worker-0"  # rank 1; the master was stopped after it
        assert result["failure"]["error_block"][-1] == "ValueError: rank 1 broke"
        assert result["failure"]["verdict"] == "user_code"
