"""Events, metrics, one-call diagnosis, sanity checks and queue position on real local jobs."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from tests.conftest import Asker, call, call_error, connect, create_args, quote, wait_done

pytestmark = pytest.mark.anyio
PY = shlex.quote(sys.executable)


def py(program: str) -> str:
    return PY + " -c " + shlex.quote(program)


async def specs(client) -> list[dict]:
    return (await call(client, "list_ecs_specs", {"accelerator_type": "CPU", "sort_by": "CPU"}))["specs"]


async def launch(client, command: str, *, spec: str | None = None, max_minutes: float = 5, **kw) -> str:
    spec = spec or (await specs(client))[0]["instance_type"]
    q = await quote(client, spec, minutes=min(1, max_minutes), max_minutes=max_minutes)
    return (await call(client, "create_training_job", create_args(spec, q["quote_id"], command, **kw)))["job"]["job_id"]


def small(result: dict) -> bool:
    return len(json.dumps(result).encode()) <= 8000


async def test_events_come_in_time_order_newest_last(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, "echo hi; exit 3")
        await wait_done(client, job_id)
        events = await call(client, "get_job_events", {"job_id": job_id})
        times = [e["time"] for e in events["events"]]
        assert times == sorted(times) and small(events)
        text = "\n".join(e["message"] for e in events["events"])
        assert "started" in text and "exited with code 3" in text
        last = await call(client, "get_job_events", {"job_id": job_id, "limit": 1})
        assert last["events"] == events["events"][-1:] and last["truncated"] is True


async def test_metrics_of_a_job_that_burns_cpu(settings):
    burn = py("import time\nt = time.time()\nwhile time.time() - t < 3: pass\nprint('step 1 loss 0.5')")
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, burn)
        await wait_done(client, job_id)
        result = await call(client, "get_job_metrics", {"job_id": job_id})
        assert small(result)
        cpu = result["usage"][0]["metrics"]["cpu"]
        assert cpu["samples"] >= 1 and cpu["max"] > 30 and len(cpu["series"]) <= 20
        loss = next(t for t in result["training"] if t["name"] == "loss")
        assert loss["summary"]["latest"] == 0.5
        text = await call_error(client, "get_job_metrics", {"job_id": job_id, "metrics": ["disk"]})
        assert "disk" in text


async def test_training_metrics_from_log_with_definitions_and_flat_loss_warning(settings):
    program = "for i in range(30): print(f'it={i} myloss=0.693 top1=0.1')"
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, py(program))
        await wait_done(client, job_id)
        defs = [{"name": "loss", "regex": r"myloss=([0-9.]+)"}, {"name": "top1", "regex": r"top1=([0-9.]+)"}]
        result = await call(client, "get_job_metrics", {"job_id": job_id, "metric_definitions": defs})
        names = {t["name"]: t for t in result["training"]}
        assert set(names) == {"loss", "top1"} and names["loss"]["summary"]["samples"] == 30
        assert any("Loss is not moving" in w for w in result["warnings"])
        nan = await launch(client, py("print('loss: nan')"))
        await wait_done(client, nan)
        assert any("diverged" in w for w in (await call(client, "get_job_metrics", {"job_id": nan}))["warnings"])


@pytest.mark.parametrize(
    ("command", "verdict", "evidence"),
    [
        (py("import json\njson.loads('{oops')"), "user_code", "JSONDecodeError"),
        # a real allocation failure under a 1 GiB address-space limit (safe on a shared machine)
        ("ulimit -v 1000000; " + py("x = bytearray(4 * 1024**3)"), "out_of_memory", "MemoryError"),
    ],
)
async def test_diagnosis_of_real_failures(settings, command, verdict, evidence):
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, command)
        waited = await wait_done(client, job_id)
        assert waited["failure"]["verdict"] == verdict  # wait_job_complete carries the verdict too
        result = await call(client, "diagnose_job", {"job_id": job_id})
        assert result["verdict"] == verdict and small(result)
        assert any(evidence in line for line in result["evidence"]), result["evidence"]
        assert result["next_step"]


def sigkill_lines(result: dict) -> list[str]:
    return [line for line in result["evidence"] if "SIGKILL" in line or "137" in line]


async def test_a_worker_killed_by_sigkill_gets_its_own_verdict(settings):
    """``kill -9 $$`` kills the worker's shell from inside, but to the platform it is a SIGKILL from
    outside the program: the verdict names the signal (out_of_memory only where the evidence says so),
    the summary agrees with the evidence, and each fact is said once."""
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, "echo started; kill -9 $$")
        waited = await wait_done(client, job_id)
        result = await call(client, "diagnose_job", {"job_id": job_id})
        assert waited["failure"]["verdict"] == result["verdict"]
        assert len(sigkill_lines(result)) == 1, result["evidence"]  # once, not once per place it was reported
        assert len(result["evidence"]) == len(set(result["evidence"])) and small(result)
        assert result.get("error_info") is None  # local's error info only repeats the reason beside it
        if "most likely out of memory" in result["reason"]:  # no readable OOM counter: the usual cause of 137
            assert result["verdict"] == "out_of_memory" and "SIGKILL (exit code 137)" in result["summary"]
        else:  # the memory cgroup counted no OOM kill: something outside the job sent SIGKILL
            assert "not by the kernel's out-of-memory killer" in result["reason"]
            assert result["verdict"] == "killed_by_signal"
            assert "killed by SIGKILL (exit code 137)" in result["summary"]
            assert "not by the kernel's out-of-memory killer" in result["summary"]
            assert "did not report" not in result["summary"]
            assert "get_job_metrics" in result["next_step"] and "who" in result["next_step"]
            assert any(line.startswith("memory peak: no sample") for line in result["evidence"])


async def test_a_sigkill_after_memory_samples_quotes_the_memory_peak(tmp_path):
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, local_metrics_interval_seconds=0.1)
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, "sleep 1; kill -9 $$")
        await wait_done(client, job_id)
        result = await call(client, "diagnose_job", {"job_id": job_id})
        if result["verdict"] == "killed_by_signal":
            peak = next(line for line in result["evidence"] if line.startswith("memory peak:"))
            assert "% of its allocation" in peak, peak  # a shell and sleep: far below the allocation
        else:
            assert result["verdict"] == "out_of_memory" and "most likely out of memory" in result["reason"]


def test_a_sigkill_near_the_memory_limit_is_out_of_memory():
    from datetime import UTC, datetime

    from cloudjobs_mcp.server.models import Job, JobStatus, Pod
    from cloudjobs_mcp.server.verdict import judge

    reason = "pod j-worker-0 was killed by signal SIGKILL (exit code 137)"  # what most platforms say: no cause
    pod = Pod(pod_id="j-worker-0", role="Worker", status="Failed", exit_code=137, finished_at=datetime.now(UTC))
    job = Job(
        job_id="j", name="j", provider="x", status=JobStatus.FAILED, raw_status="Failed", pods=[pod], reason=reason
    )
    assert judge(job, [], [], None, [], [], None, memory_peak=97.5)[0] == "out_of_memory"
    verdict, evidence = judge(job, [], [], None, [], [], None, memory_peak=12.0)
    assert verdict == "killed_by_signal" and "memory peak: 12% of its allocation (get_job_metrics)" in evidence
    terminated = job.model_copy(update={"reason": None, "pods": [pod.model_copy(update={"exit_code": 143})]})
    assert judge(terminated, [], [], None, [], [], None)[0] == "killed_by_signal"  # SIGTERM, from its exit code
    crashed = job.model_copy(update={"reason": None, "pods": [pod.model_copy(update={"exit_code": 139})]})
    assert judge(crashed, [], [], None, [], [], None)[0] == "user_code"  # SIGSEGV: the program's own crash


async def test_diagnosis_of_max_runtime(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, "sleep 30", max_minutes=0.02)
        await wait_done(client, job_id)
        result = await call(client, "diagnose_job", {"job_id": job_id})
        assert result["verdict"] == "max_runtime" and "max_runtime_minutes" in result["next_step"]


async def test_sanity_check_failure_fails_before_any_worker_runs(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, "nonexistent-binary-xyz --train", sanity_check=True)
        await wait_done(client, job_id)
        checks = await call(client, "get_sanity_check_results", {"job_id": job_id})
        assert checks["enabled"] is True and checks["passed"] is False
        assert any(r["status"] == "Failed" and "nonexistent-binary-xyz" in r["message"] for r in checks["results"])
        result = await call(client, "diagnose_job", {"job_id": job_id})
        assert result["verdict"] == "sanity_check_failed"
        ok = await launch(client, "echo fine", sanity_check=True)
        await wait_done(client, ok)
        good = await call(client, "get_sanity_check_results", {"job_id": ok})
        assert good["passed"] is True and all(r["status"] == "Succeeded" for r in good["results"])
        plain = await launch(client, "echo plain")
        assert (await call(client, "get_sanity_check_results", {"job_id": plain}))["enabled"] is False


async def test_queue_position_when_two_jobs_each_need_the_whole_machine(settings):
    async with connect(settings, asker=Asker()) as client:
        whole = (await specs(client))[-1]["instance_type"]  # the largest CPU spec: the whole machine
        first = await launch(client, "sleep 2", spec=whole)
        second = await launch(client, "echo second", spec=whole)
        info = await call(client, "get_workload_info", {"job_id": second})
        assert info["status"] == "Pending" and info["queue_position"] == 1 and info["is_scheduled"] is False
        assert info["in_quota"] is True and info["unavailable"]  # the seed fields local has no value for
        assert (await call(client, "get_job", {"job_id": second}))["status"] == "Queuing"
        assert (await call(client, "diagnose_job", {"job_id": second}))["verdict"] == "queue_quota"
        running = await call(client, "get_workload_info", {"job_id": first})
        assert running["status"] == "Running" and running.get("queue_position") is None
        done = await wait_done(client, second)
        assert done["status"] == "Succeeded"


async def test_bad_job_ids_give_clear_errors(settings):
    async with connect(settings) as client:
        for tool in (
            "get_job_events",
            "get_job_metrics",
            "diagnose_job",
            "get_workload_info",
            "get_sanity_check_results",
        ):
            text = await call_error(client, tool, {"job_id": "local-missing"})
            assert "local-missing" in text and "Traceback" not in text, tool


async def test_idle_gpus_warning_with_a_fake_nvidia_smi(tmp_path, monkeypatch):
    import anyio

    from tests.conftest import make_settings
    from tests.fake_nvidia_smi import install_fake_nvidia_smi

    install_fake_nvidia_smi(tmp_path, monkeypatch, gpus=2, utilization=["1", "0"])
    settings = make_settings(tmp_path, local_metrics_interval_seconds=0.2)
    async with connect(settings, asker=Asker()) as client:
        gpu_specs = (await call(client, "list_ecs_specs", {"accelerator_type": "GPU", "sort_by": "GPU"}))["specs"]
        assert gpu_specs and gpu_specs[0]["gpu_type"] and gpu_specs[0]["gpu_count"] == 1
        job_id = await launch(client, "sleep 20", spec=gpu_specs[0]["instance_type"])
        with anyio.fail_after(20):
            while True:
                result = await call(client, "get_job_metrics", {"job_id": job_id})
                gpu = result["usage"][0]["metrics"].get("gpu_core") if result["usage"] else None
                if result["status"] == "Running" and gpu and gpu["samples"] >= 3:
                    break
                await anyio.sleep(0.2)
        assert gpu["max"] <= 1 and small(result)
        assert any("GPUs allocated but idle" in w and "money is burning" in w for w in result["warnings"])
        diagnosis = await call(client, "diagnose_job", {"job_id": job_id})
        assert diagnosis["verdict"] == "healthy" and any("idle" in w for w in diagnosis["warnings"])
        assert "but: GPUs allocated but idle" in diagnosis["summary"] and "warnings" in diagnosis["next_step"]
        await call(client, "stop_job", {"job_id": job_id})
