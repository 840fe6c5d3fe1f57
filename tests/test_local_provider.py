"""Provider-level tests of the local provider and its executor: real processes, tmp state dirs."""

from __future__ import annotations

import builtins
import itertools
import math
import os
import re
import shlex
import signal
import sqlite3
import struct
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import CloudJobsError, InvalidRequest, NotFound
from cloudjobs_mcp.server.models import Job, JobRequest, JobStatus
from cloudjobs_mcp.server.providers.base import Provider
from cloudjobs_mcp.server.providers.local import LocalProvider
from cloudjobs_mcp.server.providers.local import executor as executor_module
from cloudjobs_mcp.server.providers.local.executor import (
    Executor,
    LogIndexWriter,
    LogTail,
    PodSpec,
    pod_process_alive,
    read_lines,
    tail_lines,
)
from cloudjobs_mcp.server.providers.local.machine import cpu_count, gpu_slug, memory_gb
from cloudjobs_mcp.server.providers.local.provider import pod_layout

pytestmark = pytest.mark.anyio

GRACE = 0.5
PY = shlex.quote(sys.executable)
FAKE_SMI = """#!/bin/sh
echo "0, NVIDIA H100 80GB HBM3, 81559"
echo "1, NVIDIA H100 80GB HBM3, 81559"
"""


def make_settings(state_dir: Path, **kw: Any) -> Settings:
    return Settings.from_env({}, state_dir=state_dir, local_stop_grace_seconds=GRACE, **kw)


@pytest.fixture
def provider(state_dir: Path) -> LocalProvider:
    return LocalProvider(make_settings(state_dir))


def cpu1(provider: LocalProvider) -> str:
    return next(s.instance_type for s in provider.specs() if s.cpu == 1 and s.accelerator == "CPU")


def request(provider: LocalProvider, command: str, **kw: Any) -> JobRequest:
    fields: dict[str, Any] = {
        "display_name": "test-job",
        "user_command": command,
        "job_type": "PyTorchJob",
        "ecs_spec": cpu1(provider),
        "worker_count": 1,
        "max_runtime_minutes": 5,
    }
    fields.update(kw)
    return JobRequest(**fields)


async def wait_terminal(provider: LocalProvider, job_id: str, timeout: float = 15) -> Job:
    with anyio.fail_after(timeout):
        while True:
            job = await provider.get_job(job_id)
            if job.status.is_terminal:
                return job
            await anyio.sleep(0.05)


async def wait_for_log(provider: LocalProvider, job_id: str, pod_id: str, text: str, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not any(text in line for line in (await provider.pod_logs(job_id, pod_id)).lines):
            await anyio.sleep(0.05)


def needs_cpus(n: int) -> None:
    if cpu_count() < n:
        pytest.skip(f"needs {n} CPUs")


def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str = FAKE_SMI) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(script)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


# -------------------------------------------------------------------------------------------------------
# Running jobs


async def test_provider_protocol_and_job_id(provider: LocalProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "local" and provider.currency == "CNY"
    job = await provider.create_job(request(provider, "true"))
    assert re.fullmatch(r"local-\d{14}-[0-9a-f]{8}", job.job_id)
    assert job.provider == "local" and job.name == "test-job" and job.max_runtime_minutes == 5
    assert (await wait_terminal(provider, job.job_id)).status == JobStatus.SUCCEEDED
    await provider.aclose()


async def test_two_workers_get_torch_env_and_succeed(
    provider: LocalProvider, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_cpus(2)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "do-not-leak")
    command = (
        "echo rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK addr=$MASTER_ADDR port=$MASTER_PORT; "
        "echo job=$CLOUDJOBS_JOB_ID pod=$CLOUDJOBS_POD_ID unbuffered=$PYTHONUNBUFFERED foo=$FOO; "
        "echo secret=${ALIBABA_CLOUD_ACCESS_KEY_SECRET:-unset}; echo cwd=$(pwd); "
        "echo python=$(command -v python); echo oops >&2"
    )
    job = await provider.create_job(request(provider, command, worker_count=2, envs={"FOO": "bar"}))
    assert job.status in (JobStatus.CREATING, JobStatus.RUNNING, JobStatus.SUCCEEDED)
    job = await wait_terminal(provider, job.job_id)
    assert job.status == JobStatus.SUCCEEDED and job.raw_status == "Succeeded"
    jid = job.job_id
    assert [(p.pod_id, p.role) for p in job.pods] == [(f"{jid}-master-0", "Master"), (f"{jid}-worker-0", "Worker")]
    assert all(p.exit_code == 0 and p.status == "Succeeded" and p.ip == "127.0.0.1" for p in job.pods)
    assert job.started_at and job.finished_at and job.duration_seconds is not None
    assert 0 <= job.duration_seconds < 10

    ports = set()
    for rank, pod in enumerate(job.pods):
        page = await provider.pod_logs(jid, pod.pod_id)
        text = "\n".join(page.lines)
        m = re.search(rf"rank={rank} world=2 local=0 addr=127\.0\.0\.1 port=(\d+)", text)
        assert m, text
        ports.add(int(m.group(1)))
        assert f"job={jid} pod={pod.pod_id} unbuffered=1 foo=bar" in text
        assert "secret=unset" in text  # cloud credentials are scrubbed from the inherited environment
        assert f"cwd={state_dir / 'jobs' / jid / 'work'}" in text  # one working directory per job
        assert f"python={Path(sys.executable).parent}" in text  # the server's own Python environment
        assert "oops" in page.lines  # stderr is merged into the pod's log
        assert page.truncated is False
    assert len(ports) == 1 and 0 < ports.pop() < 65536

    messages = [e.message for e in await provider.events(jid)]
    assert messages[0].startswith("created with 2 pods")
    assert any(m.startswith("supervisor started") for m in messages)
    assert messages[-1] == "succeeded: all 2 pods exited with code 0"
    pod_events = await provider.events(jid, f"{jid}-worker-0")
    assert [e.message.split(" (")[0] for e in pod_events] == ["pod started", "pod exited with code 0"]
    assert all(e.source == f"{jid}-worker-0" for e in pod_events)


async def test_failing_pod_fails_the_job_and_the_other_pod_is_terminated(provider: LocalProvider) -> None:
    needs_cpus(2)
    command = "if [ $RANK = 1 ]; then echo bad input; exit 3; fi; sleep 30"
    job = await provider.create_job(request(provider, command, worker_count=2, job_type="TFJob"))
    started = time.monotonic()
    job = await wait_terminal(provider, job.job_id)
    assert time.monotonic() - started < GRACE + 5
    jid = job.job_id
    assert job.status == JobStatus.FAILED and job.reason_code == "PodFailed"
    assert job.reason == f"pod {jid}-worker-1 exited with code 3"
    first, second = job.pods
    assert (second.status, second.exit_code) == ("Failed", 3)
    assert first.status == "Stopped" and first.exit_code == 128 + signal.SIGTERM
    assert first.sub_status and f"after pod {jid}-worker-1 failed" in first.sub_status


async def test_signal_death_says_which_signal_and_hints_at_oom(provider: LocalProvider) -> None:
    job = await provider.create_job(request(provider, "kill -KILL $$"))
    job = await wait_terminal(provider, job.job_id)
    assert job.status == JobStatus.FAILED
    assert "killed by signal SIGKILL (exit code 137)" in (job.reason or "")
    assert "out-of-memory" in (job.reason or "")
    assert job.pods[0].exit_code == 137


async def test_stop_a_sleeping_job(provider: LocalProvider) -> None:
    job = await provider.create_job(request(provider, "echo started; sleep 60"))
    await wait_for_log(provider, job.job_id, job.pods[0].pod_id, "started")
    started = time.monotonic()
    stopped = await provider.stop_job(job.job_id)
    assert stopped.status in (JobStatus.STOPPING, JobStatus.STOPPED)
    job = await wait_terminal(provider, job.job_id)
    assert time.monotonic() - started < GRACE + 5  # far below the job's 60 s; slack for a busy CI box
    assert job.status == JobStatus.STOPPED and job.raw_status == "Stopped"
    assert job.reason_code == "JobStoppedByUser"
    assert job.pods[0].status == "Stopped" and job.pods[0].exit_code == 128 + signal.SIGTERM
    messages = [e.message for e in await provider.events(job.job_id)]
    assert "stop requested" in messages and messages[-1].startswith("stopped")
    # Stopping a terminal job returns it unchanged.
    again = await provider.stop_job(job.job_id)
    assert again == job


async def test_a_program_ignoring_sigterm_is_killed_after_the_grace(provider: LocalProvider) -> None:
    program = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready'); time.sleep(30)"
    job = await provider.create_job(request(provider, f"exec {PY} -c {shlex.quote(program)}"))
    pod = job.pods[0].pod_id
    await wait_for_log(provider, job.job_id, pod, "ready")
    started = time.monotonic()
    await provider.stop_job(job.job_id)
    job = await wait_terminal(provider, job.job_id)
    elapsed = time.monotonic() - started
    assert GRACE <= elapsed < GRACE + 3
    assert job.status == JobStatus.STOPPED and job.reason_code == "JobStoppedByUser"
    assert job.pods[0].exit_code == 137
    assert job.pods[0].sub_status and "out-of-memory" not in job.pods[0].sub_status  # we killed it
    assert any("sending SIGKILL" in e.message for e in await provider.events(job.job_id))


async def test_max_runtime_is_enforced(provider: LocalProvider) -> None:
    job = await provider.create_job(request(provider, "sleep 30", max_runtime_minutes=0.01))  # 0.6 s
    job = await wait_terminal(provider, job.job_id)
    assert job.status == JobStatus.STOPPED and job.reason_code == "MaxRuntimeExceeded"
    assert "max runtime of 0.6 s exceeded" in (job.reason or "")
    assert job.duration_seconds is not None and 0.5 < job.duration_seconds < 0.6 + GRACE + 2


def test_executor_max_runtime_and_sigkill(state_dir: Path) -> None:
    ex = Executor(state_dir)
    program = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)"
    pods = [PodSpec("r-a", "Worker", {}, "sleep 30"), ("r-b", "Worker", {}, f"exec {PY} -c {shlex.quote(program)}")]
    ex.launch("r", pods, max_runtime_seconds=0.4, grace_seconds=0.2)
    state = ex.wait("r", 10)
    assert state.status == "Stopped" and state.reason_code == "MaxRuntimeExceeded"
    assert state.reason == "max runtime of 0.4 s exceeded; the job was stopped"
    assert {p.pod_id: (p.exit_code, p.signal) for p in state.pods} in (
        {"r-a": (143, 15), "r-b": (137, 9)},
        {"r-a": (143, 15), "r-b": (143, 15)},  # killed before python installed its handler
    )
    events = [e.message for e in ex.events("r")]
    assert any(m.startswith("max runtime of 0.4 s exceeded") for m in events)
    with pytest.raises(InvalidRequest, match="already exists"):
        ex.launch("r", pods)


def test_executor_stop_before_the_supervisor_started(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = Executor(state_dir)
    real_start = ex._start_supervisor

    def stop_first(run_id: str, run_dir: Path, payload: Any) -> int:
        ex.stop(run_id)  # the run exists, its supervisor does not yet
        return real_start(run_id, run_dir, payload)

    monkeypatch.setattr(ex, "_start_supervisor", stop_first)
    ex.launch("early", [("early-0", "Worker", {}, "sleep 30")], grace_seconds=0.2)
    state = ex.wait("early", 10)
    assert state.status == "Stopped" and state.reason_code == "JobStoppedByUser"
    assert "before its pods started" in (state.reason or "")
    assert state.pods[0].pid is None and state.pods[0].status == "Stopped"


def test_executor_pod_that_cannot_start_fails_the_run(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = Executor(state_dir)
    real_start = ex._start_supervisor

    def remove_workdir_first(run_id: str, run_dir: Path, payload: Any) -> int:
        (run_dir / "work").rmdir()
        return real_start(run_id, run_dir, payload)

    monkeypatch.setattr(ex, "_start_supervisor", remove_workdir_first)
    ex.launch("nostart", [("nostart-0", "Worker", {}, "true"), ("nostart-1", "Worker", {}, "true")])
    state = ex.wait("nostart", 10)
    assert state.status == "Failed" and state.reason_code == "PodStartFailed"
    assert (state.reason or "").startswith("pod nostart-0 could not start:")
    assert [(p.status, p.pid) for p in state.pods] == [("Failed", None), ("Stopped", None)]


def test_executor_lost_supervisor_fails_the_run_and_kills_its_pods(state_dir: Path) -> None:
    ex = Executor(state_dir)
    ex.launch("lost", [("lost-0", "Worker", {}, "sleep 30")], grace_seconds=0.2)
    deadline = time.monotonic() + 10
    while (state := ex.get("lost")).pods[0].pid is None and time.monotonic() < deadline:
        time.sleep(0.02)
    pod_pid = state.pods[0].pid
    assert state.supervisor_pid and pod_process_alive(pod_pid, "lost")
    os.kill(state.supervisor_pid, signal.SIGKILL)  # as if the machine had restarted
    deadline = time.monotonic() + 5
    while not (state := ex.get("lost")).terminal and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state.status == "Failed" and state.reason_code == "SupervisorLost"
    assert "supervisor process" in (state.reason or "") and "is gone" in (state.reason or "")
    deadline = time.monotonic() + 5
    while pod_process_alive(pod_pid, "lost") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pod_process_alive(pod_pid, "lost")


def test_executor_never_signals_a_reused_pid(state_dir: Path) -> None:
    ex = Executor(state_dir)
    ex.launch("reused", [("reused-0", "Worker", {}, "true")], grace_seconds=0.2)
    assert ex.wait("reused", 10).terminal
    # Pretend the run is still running and its supervisor PID now belongs to this test process.
    with ex.db.write() as conn:
        conn.execute("UPDATE runs SET status = 'Running', supervisor_pid = ? WHERE run_id = 'reused'", (os.getpid(),))
    state = ex.stop("reused")  # must not SIGTERM us: our cmdline does not name the run
    assert state.status == "Failed" and state.reason_code == "SupervisorLost"


async def test_a_new_provider_finds_jobs_statuses_and_logs(state_dir: Path) -> None:
    first = LocalProvider(make_settings(state_dir))
    done = await first.create_job(request(first, "echo first-output", tags={"k": "done"}))
    await wait_terminal(first, done.job_id)
    later = await first.create_job(request(first, "sleep 0.8; echo finished-later", tags={"k": "later"}))
    await first.aclose()
    del first
    await anyio.sleep(1.5)  # the second job finishes while no provider object exists

    second = LocalProvider(make_settings(state_dir))
    jobs = await second.list_jobs()
    assert [j.job_id for j in jobs] == [later.job_id, done.job_id]  # newest first
    assert all(j.status == JobStatus.SUCCEEDED for j in jobs)
    for job, text in ((done, "first-output"), (later, "finished-later")):
        page = await second.pod_logs(job.job_id, job.pods[0].pod_id)
        assert page.lines == [text]
    found = await second.find_job_by_tag("k", "later")
    assert found is not None and found.job_id == later.job_id and found.tags == {"k": "later"}


async def test_two_providers_create_jobs_concurrently(state_dir: Path) -> None:
    providers = [LocalProvider(make_settings(state_dir)) for _ in range(2)]
    created: list[str] = []

    async def create(p: LocalProvider, i: int) -> None:
        job = await p.create_job(request(p, f"echo job-{i}", tags={"i": str(i)}))
        created.append(job.job_id)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(create, providers[i % 2], i)
    assert len(set(created)) == 6
    third = LocalProvider(make_settings(state_dir))
    for job_id in created:
        assert (await wait_terminal(third, job_id)).status == JobStatus.SUCCEEDED
    jobs = await third.list_jobs()
    assert sorted(j.job_id for j in jobs) == sorted(created)
    for i in range(6):
        job = await third.find_job_by_tag("i", str(i))
        assert job is not None
        assert (await third.pod_logs(job.job_id, job.pods[0].pod_id)).lines == [f"job-{i}"]
    conn = sqlite3.connect(state_dir / Executor.DB_NAME)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


# -------------------------------------------------------------------------------------------------------
# Specs, prices, images


async def test_specs_reflect_this_machine(state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    provider = LocalProvider(make_settings(state_dir, local_price_per_hour=1.5, local_currency="USD"))
    specs = await provider.list_specs()
    cpus, mem = len(os.sched_getaffinity(0)), memory_gb()
    ladder = [c for c in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if c < cpus] + [cpus]
    assert [s.cpu for s in specs] == ladder
    for s in specs:
        m = math.floor(mem * s.cpu / cpus)
        assert s.instance_type == f"local.cpu-{s.cpu}c{m}g" and s.memory_gb == m
        assert s.accelerator == "CPU" and s.gpu_count == 0
        assert (s.price_per_hour, s.currency) == (1.5, "USD")
    meminfo = (await anyio.Path("/proc/meminfo").read_text()).splitlines()
    total_kib = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
    assert specs[-1].memory_gb == math.floor(total_kib / 1024**2)
    note = provider.machine().gpu_note
    assert note is not None and "exit code 9" in note
    assert await provider.list_specs("GPU") == []

    price = await provider.price(specs[0].instance_type)
    assert (price.per_worker_hourly, price.currency, price.source) == (1.5, "USD", "CLOUDJOBS_LOCAL_PRICE_PER_HOUR")
    with pytest.raises(NotFound, match=re.escape(specs[0].instance_type)):
        await provider.price("ecs.gn7i-c8g1.2xlarge")


async def test_fake_nvidia_smi_yields_gpu_specs(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch)
    provider = LocalProvider(make_settings(state_dir))
    gpu = await provider.list_specs("GPU")
    assert [s.instance_type for s in gpu] == ["local.gpu-1xh100-80gb-hbm3", "local.gpu-2xh100-80gb-hbm3"]
    one, two = gpu
    assert (one.gpu_count, two.gpu_count) == (1, 2)
    assert one.gpu_type == "NVIDIA H100 80GB HBM3" and one.gpu_memory_gb == 79.6
    assert one.cpu == max(1, cpu_count() // 2) and two.cpu == cpu_count()
    assert all(s.accelerator == "GPU" for s in gpu)

    too_many = request(provider, "true", ecs_spec=two.instance_type, worker_count=2)
    with pytest.raises(InvalidRequest) as err:
        provider.validate_request(too_many, two)
    assert "2 GPUs (2x NVIDIA H100 80GB HBM3)" in str(err.value)
    need = f"need {2 * two.cpu} CPUs, {2 * two.memory_gb:g} GiB memory and 4 NVIDIA H100 80GB HBM3 GPUs (it has 2)"
    assert need in str(err.value)

    needs_cpus(2)
    job = await provider.create_job(
        request(provider, "echo gpus=$CUDA_VISIBLE_DEVICES", ecs_spec=one.instance_type, worker_count=2)
    )
    job = await wait_terminal(provider, job.job_id)
    logs = [(await provider.pod_logs(job.job_id, p.pod_id)).lines for p in job.pods]
    assert logs == [["gpus=0"], ["gpus=1"]]
    cpu_job = await provider.create_job(request(provider, "echo gpus=[$CUDA_VISIBLE_DEVICES]"))
    cpu_job = await wait_terminal(provider, cpu_job.job_id)
    assert (await provider.pod_logs(cpu_job.job_id, cpu_job.pods[0].pod_id)).lines == ["gpus=[]"]


def test_gpu_slug_and_pod_layout() -> None:
    assert gpu_slug("NVIDIA H200") == "h200"
    assert gpu_slug("NVIDIA GeForce RTX 4090") == "geforce-rtx-4090"
    assert gpu_slug("Tesla V100-SXM2-16GB") == "tesla-v100-sxm2-16gb"
    names = lambda jt, n: [p for p, _ in pod_layout("j", jt, n)]  # noqa: E731
    assert names("PyTorchJob", 3) == ["j-master-0", "j-worker-0", "j-worker-1"]
    assert names("XGBoostJob", 2) == ["j-master-0", "j-worker-0"]
    assert names("PyTorchJob", 1) == ["j-worker-0"]
    assert names("RayJob", 2) == ["j-head-0", "j-worker-0"]
    assert names("RayJob", 1) == ["j-head-0"]
    assert names("TFJob", 2) == names("MPIJob", 2) == ["j-worker-0", "j-worker-1"]
    assert [r for _, r in pod_layout("j", "RayJob", 2)] == ["Head", "Worker"]


async def test_image_is_recorded_but_not_used(provider: LocalProvider) -> None:
    image = await provider.resolve_image("PyTorchJob", "CPU")
    assert image.used is False and sys.executable in image.note and "no container image" in image.note
    with pytest.raises(InvalidRequest, match="allowed: PyTorchJob"):
        await provider.resolve_image("SparkJob", "CPU")
    job = await provider.create_job(request(provider, "true", image="pytorch:2.3-cpu"))
    assert job.image == "pytorch:2.3-cpu"
    messages = [e.message for e in await provider.events(job.job_id)]
    assert any("'pytorch:2.3-cpu' recorded but not used" in m for m in messages)
    await wait_terminal(provider, job.job_id)


# -------------------------------------------------------------------------------------------------------
# Bad input creates nothing


def _bad_cases(provider: LocalProvider) -> list[tuple[dict[str, Any], type[Exception], list[str]]]:
    full = max(provider.specs(), key=lambda s: s.cpu)
    cpus = cpu_count()
    return [
        ({"ecs_spec": "local.cpu-999c1g"}, NotFound, ["unknown spec 'local.cpu-999c1g'", cpu1(provider)]),
        ({"worker_count": 0}, InvalidRequest, ["worker_count must be at least 1"]),
        ({"user_command": "   "}, InvalidRequest, ["user_command is empty"]),
        ({"user_command": "echo \0"}, InvalidRequest, ["NUL"]),
        ({"job_type": "SparkJob"}, InvalidRequest, ["unknown job_type 'SparkJob'", "allowed: PyTorchJob"]),
        (
            {"ecs_spec": full.instance_type, "worker_count": 3},
            InvalidRequest,
            [
                f"this machine has {cpus} CPU{'s' if cpus != 1 else ''}, {math.floor(memory_gb())} GiB memory",
                f"3 workers of {full.instance_type} need {3 * cpus} CPUs",
            ],
        ),
        (
            {"thirdparty_libs": ["pydantic", "surely-not-installed-pkg==1.0"]},
            InvalidRequest,
            ["never installs packages", "not installed: surely-not-installed-pkg==1.0"],
        ),
        ({"thirdparty_libs": ["pydantic<1"]}, InvalidRequest, ["installed with another version: pydantic<1"]),
        ({"envs": {"RANK": "5"}}, InvalidRequest, ["RANK is set by the local provider"]),
        ({"envs": {"1BAD": "x"}}, InvalidRequest, ["invalid variable name '1BAD'"]),
        ({"max_runtime_minutes": 0}, InvalidRequest, ["max_runtime_minutes must be a positive number"]),
    ]


async def test_bad_inputs_give_clear_errors_and_create_nothing(provider: LocalProvider, state_dir: Path) -> None:
    for fields, error, texts in _bad_cases(provider):
        req = request(provider, "true", **fields)
        with pytest.raises(error) as err:
            await provider.create_job(req)
        message = str(err.value)
        for text in texts:
            assert text in message, (fields, message)
        with pytest.raises(error):
            provider.validate_request(req, provider.specs()[0])
    assert await provider.list_jobs() == []
    assert provider.executor.run_ids() == []
    assert not (state_dir / "jobs").exists() or list((state_dir / "jobs").iterdir()) == []
    # Installed packages are accepted.
    provider.validate_request(request(provider, "true", thirdparty_libs=["pydantic", "anyio>=4"]), provider.specs()[0])


async def test_unknown_ids_delete_and_list_filters(provider: LocalProvider, state_dir: Path) -> None:
    needs_cpus(2)  # a running job and a second one at once (with one CPU the second would queue)
    for call in (provider.get_job, provider.stop_job, provider.delete_job, provider.events):
        with pytest.raises(NotFound, match="list_jobs"):
            await call("local-20260101000000-deadbeef")
    running = await provider.create_job(request(provider, "sleep 30", tags={"team": "a"}))
    with pytest.raises(NotFound, match=re.escape(running.pods[0].pod_id)):
        await provider.pod_logs(running.job_id, "no-such-pod")
    with pytest.raises(InvalidRequest, match="stop it first"):
        await provider.delete_job(running.job_id)
    done = await provider.create_job(request(provider, "true", tags={"team": "b"}))
    await wait_terminal(provider, done.job_id)

    assert [j.job_id for j in await provider.list_jobs()] == [done.job_id, running.job_id]
    assert [j.job_id for j in await provider.list_jobs(limit=1)] == [done.job_id]
    assert [j.job_id for j in await provider.list_jobs(status=JobStatus.SUCCEEDED)] == [done.job_id]
    assert [j.job_id for j in await provider.list_jobs(tags={"team": "a"})] == [running.job_id]
    assert await provider.list_jobs(tags={"team": "a", "x": "y"}) == []
    assert running.created_at is not None
    assert [j.job_id for j in await provider.list_jobs(created_after=running.created_at)] == [done.job_id]
    assert await provider.find_job_by_tag("team", "c") is None

    await provider.stop_job(running.job_id)
    await wait_terminal(provider, running.job_id)
    await provider.delete_job(running.job_id)
    with pytest.raises(NotFound):
        await provider.get_job(running.job_id)
    assert not (state_dir / "jobs" / running.job_id).exists()
    assert [j.job_id for j in await provider.list_jobs()] == [done.job_id]


# -------------------------------------------------------------------------------------------------------
# Logs


async def test_tail_of_a_big_log_is_fast_and_bounded(provider: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    job = await wait_terminal(provider, (await provider.create_job(request(provider, "echo small"))).job_id)
    pod = job.pods[0].pod_id
    path = provider.executor.log_path(job.job_id, pod)
    line_count = 900_000
    await anyio.Path(path).write_bytes(b"".join(b"line %07d .........\n" % i for i in range(line_count)))  # ~20 MB
    assert path.stat().st_size > 19_000_000

    read_bytes = 0
    real_open = builtins.open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        f = real_open(*args, **kwargs)
        real_read = f.read

        def read(n: int = -1) -> bytes:
            nonlocal read_bytes
            data = real_read(n)
            read_bytes += len(data)
            return data

        f.read = read
        return f

    monkeypatch.setattr(executor_module, "open", counting_open, raising=False)
    started = time.monotonic()
    page = await provider.pod_logs(job.job_id, pod, max_lines=100)
    assert time.monotonic() - started < 3.0  # the byte count below is the real bound
    assert page.truncated is True and len(page.lines) == 100
    assert page.lines[0] == f"line {line_count - 100:07d} ........."
    assert page.lines[-1] == f"line {line_count - 1:07d} ........."
    assert read_bytes < 256 * 1024


def test_tail_lines_edges(tmp_path: Path) -> None:
    p = tmp_path / "log"
    assert tail_lines(p, 10) == executor_module.LogTail([], False)  # missing file: empty log
    p.write_bytes(b"a\nb\xff\nc")  # invalid UTF-8, no final newline
    assert tail_lines(p).lines == ["a", "b\ufffd", "c"]
    assert tail_lines(p, 2) == executor_module.LogTail(["b\ufffd", "c"], True)
    assert tail_lines(p, 3).truncated is False and tail_lines(p, 30).lines == ["a", "b\ufffd", "c"]
    assert tail_lines(p, 0) == executor_module.LogTail([], True)
    p.write_bytes(b"x" * 300_000 + b"\n" + b"y\n" * 10)
    capped = tail_lines(p, None, max_bytes=100_000)
    assert capped == executor_module.LogTail(["y"] * 10, True)  # the cut-off first line is dropped
    with pytest.raises(InvalidRequest):
        tail_lines(p, -1)


BURSTS = (
    "import time\n"
    "for i in range(3): print(f'a{i}')\n"
    "print(f't1 {time.time()!r}', flush=True)\n"
    "time.sleep(1.2)\n"
    "for i in range(3): print(f'b{i}')\n"
)


def index_records(path: Path) -> list[tuple[float, int]]:
    data = path.read_bytes()
    assert data[:8] == b"CJLOGIDX" and struct.unpack("<II", data[8:16]) == (1, 0)
    return [struct.unpack("<dQ", data[i : i + 16]) for i in range(16, len(data) - 15, 16)]


async def test_since_and_until_pick_lines_by_when_they_were_written(provider: LocalProvider) -> None:
    job = await wait_terminal(
        provider, (await provider.create_job(request(provider, f"python -c {shlex.quote(BURSTS)}"))).job_id
    )
    assert job.status == JobStatus.SUCCEEDED and job.started_at and job.finished_at
    jid, pod = job.job_id, job.pods[0].pod_id
    everything = (await provider.pod_logs(jid, pod)).lines
    first, second = everything[:4], everything[4:]
    assert first[:3] == ["a0", "a1", "a2"] and first[3].startswith("t1 ") and second == ["b0", "b1", "b2"]
    t1 = float(first[3].split()[1])
    between = datetime.fromtimestamp(t1 + 0.9, UTC)  # the index saw the first burst by ~t1 + 0.5
    before, after = job.started_at - timedelta(seconds=1), job.finished_at + timedelta(seconds=1)

    async def lines(**kw: Any) -> list[str]:
        return (await provider.pod_logs(jid, pod, **kw)).lines

    assert await lines(since=between) == second
    assert await lines(until=between) == first
    assert await lines(until=between.replace(tzinfo=None)) == first  # naive datetimes are UTC
    assert await lines(since=before, until=between) == first
    assert await lines(since=between, until=after) == second
    assert await lines(since=between, until=between + timedelta(seconds=0.25)) == []  # the quiet time
    assert await lines(since=before, until=after) == everything
    assert await lines(since=after) == [] and await lines(until=before) == []
    page = await provider.pod_logs(jid, pod, max_lines=2, since=between)
    assert page.lines == ["b1", "b2"] and page.truncated is True
    page = await provider.pod_logs(jid, pod, max_lines=1, until=between)
    assert page.lines == [first[3]] and page.truncated is True
    page = await provider.pod_logs(jid, pod, max_lines=5, since=between)
    assert page.lines == second and page.truncated is False

    # The index: a sample before the start, then at most one per ~0.5 s when the size changed, a last at exit.
    index = provider.executor.index_path(jid, pod)
    records = index_records(index)
    sizes = [size for _, size in records]
    assert sizes[0] == 0 and sizes == sorted(sizes) and sizes[-1] == provider.executor.log_path(jid, pod).stat().st_size
    assert len(set(sizes[:-1])) == len(sizes) - 1 and 3 <= len(records) <= 4
    assert all(b > a for (a, _), (b, _) in itertools.pairwise(records))

    index.unlink()  # no index (an older run): the bounds are not applied, the whole log comes back
    page = await provider.pod_logs(jid, pod, since=between, until=after)
    assert page.lines == everything and page.truncated is False
    assert provider.executor.read_log(jid, pod, since=between).windowed is False
    assert provider.executor.read_log(jid, pod, 2, since=between).lines == second[1:]


def test_read_lines_windows_follow_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log, index = tmp_path / "p.log", tmp_path / "p.idx"
    log.touch()
    t0 = 1_700_000_000.0
    writer = LogIndexWriter(log, index)
    writer.start(now=t0)
    for i, chunk in enumerate((b"one\ntw", b"o\nthree\n", b"four\n")):  # "two" straddles a sample
        with log.open("ab") as f:
            f.write(chunk)
        writer.sample(now=t0 + i + 1)
    writer.sample(now=t0 + 3.5)  # unchanged size: no record
    assert [size for _, size in index_records(index)] == [0, 6, 14, 19]

    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(t0 + seconds, UTC)

    def window(since: float | None = None, until: float | None = None, max_lines: int | None = None) -> LogTail:
        return read_lines(
            log,
            max_lines,
            None if since is None else at(since),
            None if until is None else at(until),
            index_path=index,
        )

    everything = ["one", "two", "three", "four"]
    assert window(until=1.5) == LogTail(["one", "two"], False, True)  # a line goes with its first byte
    assert window(since=1.5).lines == ["three", "four"]
    assert window(since=1).lines == everything and window(until=1).lines == []  # [since, until)
    assert window(since=2, until=3).lines == ["three"] and window(since=2.5, until=2.6).lines == []
    assert window(since=-5, until=99).lines == everything and window(since=3).lines == ["four"]
    assert window(since=3.01).lines == []
    for cut in (-1, 0.5, 1, 1.5, 2, 2.5, 3, 5):  # adjacent windows split the log exactly
        assert window(until=cut).lines + window(since=cut).lines == everything
    assert window(since=1.5, max_lines=1) == LogTail(["four"], True, True)
    assert window(since=1.5, max_lines=0) == LogTail([], True, True)
    naive = at(1.5).replace(tzinfo=None)
    assert read_lines(log, since=naive, index_path=index).lines == ["three", "four"]

    with log.open("ab") as f:
        f.write(b"five\n")  # not sampled yet: counts as written now
    future = datetime.now(UTC) + timedelta(hours=1)
    assert read_lines(log, until=future, index_path=index).lines == [*everything, "five"]
    assert window(since=3.5).lines == ["five"] and read_lines(log, since=future, index_path=index).lines == []
    with index.open("ab") as f:
        f.write(b"\x01\x02\x03")  # a record cut short is ignored
    assert window(since=1.5).lines == ["three", "four", "five"]

    all_lines = LogTail([*everything, "five"], False, False)
    assert read_lines(log, since=at(1.5), index_path=tmp_path / "missing.idx") == all_lines
    assert read_lines(log, since=at(1.5)) == all_lines  # no index given
    index.write_bytes(b"NOTANIDX" + bytes(40))
    assert read_lines(log, since=at(1.5), index_path=index) == all_lines
    LogIndexWriter(log, index).start(now=t0)  # a header and one sample: all is after t0
    assert window(until=-1).lines == [] and window(since=-1).lines == all_lines.lines

    log.write_bytes(b"z" * 1000 + b"\n" + b"y\n" * 100)
    monkeypatch.setattr(executor_module, "FULL_LOG_BYTES", 500)  # the whole-log cap, read from the end
    assert read_lines(log) == LogTail(["y"] * 100, True)
    assert read_lines(log, 200) == LogTail(["z" * 1000, *["y"] * 100], False)  # max_lines: the tail cap
    assert tail_lines(log) == LogTail(["z" * 1000, *["y"] * 100], False)


async def test_a_whole_big_log_is_read_fast_and_windows_read_only_their_bytes(
    provider: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await wait_terminal(provider, (await provider.create_job(request(provider, "echo small"))).job_id)
    jid, pod = job.job_id, job.pods[0].pod_id
    path = provider.executor.log_path(jid, pod)
    chunk_lines, chunks = 90_000, 10
    t0 = time.time() - 100
    path.write_bytes(b"")
    writer = LogIndexWriter(path, provider.executor.index_path(jid, pod))
    writer.start(now=t0)
    with path.open("ab") as f:
        for c in range(chunks):  # ~20 MB, chunk c "written" at t0 + c + 1
            f.write(b"".join(b"line %07d .........\n" % i for i in range(c * chunk_lines, (c + 1) * chunk_lines)))
            f.flush()
            writer.sample(now=t0 + c + 1)
    size = path.stat().st_size
    assert size > 19_000_000

    read_bytes = 0
    real_open = builtins.open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        f = real_open(*args, **kwargs)
        real_read = f.read

        def read(n: int = -1) -> bytes:
            nonlocal read_bytes
            data = real_read(n)
            read_bytes += len(data)
            return data

        f.read = read
        return f

    monkeypatch.setattr(executor_module, "open", counting_open, raising=False)
    started = time.perf_counter()
    page = await provider.pod_logs(jid, pod)
    full_s = time.perf_counter() - started
    assert len(page.lines) == chunks * chunk_lines and page.truncated is False  # > 8 MiB: the whole log
    assert (
        page.lines[0] == "line 0000000 ........." and page.lines[-1] == f"line {chunks * chunk_lines - 1:07d} ........."
    )
    assert read_bytes == size

    read_bytes = 0
    started = time.perf_counter()
    page = await provider.pod_logs(jid, pod, max_lines=100)
    tail_s = time.perf_counter() - started
    assert len(page.lines) == 100 and page.truncated is True and read_bytes < 256 * 1024
    print(
        f"20 MB log: whole {full_s * 1000:.0f} ms, last 100 lines {tail_s * 1000:.1f} ms, ratio {full_s / tail_s:.0f}"
    )
    assert full_s < 5.0 and tail_s < 1.0

    read_bytes = 0  # chunks 3 and 4: only their bytes (and a byte before) are read
    page = await provider.pod_logs(
        jid, pod, since=datetime.fromtimestamp(t0 + 3.5, UTC), until=datetime.fromtimestamp(t0 + 5.5, UTC)
    )
    assert len(page.lines) == 2 * chunk_lines and page.truncated is False
    assert (
        page.lines[0] == f"line {3 * chunk_lines:07d} ........."
        and page.lines[-1] == f"line {5 * chunk_lines - 1:07d} ........."
    )
    assert read_bytes <= 2 * size // chunks + 16
    read_bytes = 0
    page = await provider.pod_logs(jid, pod, max_lines=10, until=datetime.fromtimestamp(t0 + 5.5, UTC))
    assert page.lines[-1] == f"line {5 * chunk_lines - 1:07d} ........." and len(page.lines) == 10 and page.truncated
    assert read_bytes < 256 * 1024


def test_executor_rejects_bad_runs(state_dir: Path) -> None:
    ex = Executor(state_dir)
    for run_id, pods, error in (
        ("bad/id", [("p", "Worker", {}, "true")], "invalid run id"),
        ("ok", [], "at least one pod"),
        ("ok", [("p", "Worker", {}, "true"), ("p", "Worker", {}, "true")], "appears twice"),
        ("ok", [("p", "Worker", {}, "")], "command is empty"),
        ("ok", [("p", "Worker", {"A=B": "1"}, "true")], "invalid variable name"),
    ):
        with pytest.raises(InvalidRequest, match=error):
            ex.launch(run_id, pods)
    assert ex.run_ids() == [] and not (state_dir / "jobs").exists()
    with pytest.raises(NotFound):
        ex.get("nope")
    with pytest.raises(CloudJobsError):
        ex.delete("nope")
