"""The local provider's queue, GPU allocation, metrics, events, sanity checks and workload info.

Real processes on tmp state dirs; GPUs come from a fake ``nvidia-smi`` on PATH (``fake_nvidia_smi.py``).
"""

from __future__ import annotations

import itertools
import shlex
import socket
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_nvidia_smi import H100, install_fake_nvidia_smi

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.models import Job, JobRequest, JobStatus, Spec
from cloudjobs_mcp.server.providers.local import LocalProvider
from cloudjobs_mcp.server.providers.local import metrics as metrics_module
from cloudjobs_mcp.server.providers.local.executor import Capacity, Executor, PodSpec, Resources, SanityOptions
from cloudjobs_mcp.server.providers.local.machine import cpu_count
from cloudjobs_mcp.server.providers.local.provider import _buckets, _thin
from cloudjobs_mcp.server.providers.local.sanity import first_word, parse_args

pytestmark = pytest.mark.anyio

GRACE = 0.5
PY = shlex.quote(sys.executable)


def make_provider(state_dir: Path, metrics_interval: float = 0.2) -> LocalProvider:
    provider = LocalProvider(Settings.from_env({}, state_dir=state_dir, local_stop_grace_seconds=GRACE))
    provider.metrics_interval = metrics_interval
    return provider


@pytest.fixture
def provider(state_dir: Path) -> LocalProvider:
    return make_provider(state_dir)


def cpu1(provider: LocalProvider) -> Spec:
    return next(s for s in provider.specs() if s.cpu == 1 and s.accelerator == "CPU")


def full(provider: LocalProvider) -> Spec:
    return max((s for s in provider.specs() if s.accelerator == "CPU"), key=lambda s: s.cpu)


def request(spec: Spec, command: str, **kw: Any) -> JobRequest:
    fields: dict[str, Any] = {
        "display_name": "queue-test",
        "user_command": command,
        "job_type": "PyTorchJob",
        "ecs_spec": spec.instance_type,
        "worker_count": 1,
        "max_runtime_minutes": 5,
    }
    fields.update(kw)
    return JobRequest(**fields)


async def wait_for(provider: LocalProvider, job_id: str, done: Any, timeout: float = 15) -> Job:
    with anyio.fail_after(timeout):
        while True:
            job = await provider.get_job(job_id)
            if done(job):
                return job
            await anyio.sleep(0.03)


async def wait_terminal(provider: LocalProvider, job_id: str, timeout: float = 15) -> Job:
    return await wait_for(provider, job_id, lambda j: j.status.is_terminal, timeout)


async def messages(provider: LocalProvider, job_id: str, pod_id: str | None = None) -> list[str]:
    return [e.message for e in await provider.events(job_id, pod_id)]


async def log(provider: LocalProvider, job: Job, pod: int = 0) -> list[str]:
    return (await provider.pod_logs(job.job_id, job.pods[pod].pod_id)).lines


# -------------------------------------------------------------------------------------------------------
# The queue


async def test_a_job_that_does_not_fit_now_queues_and_priority_jumps_ahead(
    provider: LocalProvider, tmp_path: Path
) -> None:
    big = full(provider)
    # a holds the machine until the test has looked at the queue (a fixed sleep races a busy machine).
    gate = tmp_path / "release-a"
    a = await provider.create_job(request(big, f"while [ ! -e {gate} ]; do sleep 0.05; done"))
    assert a.status in (JobStatus.CREATING, JobStatus.RUNNING) and a.priority == 1 and a.resource_id is None
    # Max runtime counts from the start: b waits ~1.5 s, longer than its 1.2 s limit, and still succeeds.
    b = await provider.create_job(request(big, "echo b-ran", max_runtime_minutes=0.02))
    assert b.status == JobStatus.QUEUING and b.raw_status == "Queuing"
    assert b.reason and b.reason.startswith("queued at position 1 of 1: needs ")
    assert f"{big.cpu} CPU" in b.reason and "free now: 0 of" in b.reason
    assert all(p.status == "Pending" and p.started_at is None for p in b.pods)
    info = await provider.workload_info(b.job_id)
    assert (info.status, info.is_scheduled, info.queue_position, info.in_quota) == ("Pending", False, 1, True)
    assert [(m.queue, m.position) for m in info.queue_metas] == [("local", 1)]

    c = await provider.create_job(request(big, "sleep 0.3; echo c-ran", priority=5))
    assert c.status == JobStatus.QUEUING and c.priority == 5
    info = await provider.workload_info(b.job_id)
    assert info.queue_position == 2 and info.queue_metas[0].position == 2  # c jumped ahead
    assert info.created_at == b.created_at and b.created_at is not None and info.enqueued_at is not None
    assert 0 <= (info.enqueued_at - b.created_at).total_seconds() < 1
    info_c = await provider.workload_info(c.job_id)
    assert (info_c.queue_position, info_c.priority, info_c.workload_type) == (1, 5, "PyTorchJob")
    assert info_c.quota_name == "local machine" and info_c.source == "local scheduler" and info_c.user_name
    assert {"WorkspaceId", "TenantId"} <= set(info_c.unavailable) and info_c.name == "queue-test"
    queued = await messages(provider, b.job_id)
    assert any(m.startswith("queued at position 1 of 1") for m in queued)

    gate.touch()
    assert (await wait_terminal(provider, a.job_id)).status == JobStatus.SUCCEEDED
    c = await wait_for(provider, c.job_id, lambda j: j.status != JobStatus.QUEUING)
    b_now = await provider.get_job(b.job_id)
    if not c.status.is_terminal:  # while c runs, b moved up to position 1
        assert b_now.status == JobStatus.QUEUING and (await provider.workload_info(b.job_id)).queue_position == 1
    b = await wait_terminal(provider, b.job_id)
    c = await wait_terminal(provider, c.job_id)
    assert b.status == c.status == JobStatus.SUCCEEDED, (b.reason, c.reason)
    assert await log(provider, b) == ["b-ran"] and await log(provider, c) == ["c-ran"]
    a = await provider.get_job(a.job_id)
    assert a.finished_at and c.started_at and c.finished_at and b.started_at
    assert a.finished_at <= c.started_at and c.finished_at <= b.started_at  # never two at once, c before b

    info = await provider.workload_info(b.job_id)
    assert (info.status, info.is_scheduled, info.queue_position, info.queue_metas[0].position) == (
        "Succeeded",
        True,
        None,
        None,
    )
    events = await messages(provider, b.job_id)
    assert any(m.startswith("resources allocated after") for m in events)
    assert "started: 1 pod running" in events and events[-1].startswith("succeeded")


async def test_stop_a_queued_job_it_never_runs(provider: LocalProvider) -> None:
    big = full(provider)
    a = await provider.create_job(request(big, "sleep 30"))
    b = await provider.create_job(request(big, "echo never"))
    assert b.status == JobStatus.QUEUING
    started = time.monotonic()
    stopped = await provider.stop_job(b.job_id)
    assert stopped.status == JobStatus.STOPPED, stopped
    assert time.monotonic() - started < 5  # not the 30 s the running job would take (slack for a busy CI box)
    assert stopped.reason_code == "JobStoppedByUser" and "never ran" in (stopped.reason or "")
    assert stopped.started_at is None and [p.status for p in stopped.pods] == ["Stopped"]
    assert await log(provider, stopped) == []
    info = await provider.workload_info(b.job_id)
    assert (info.status, info.is_scheduled, info.queue_position) == ("Failed", False, None)
    await provider.stop_job(a.job_id)
    await wait_terminal(provider, a.job_id)


async def test_two_providers_never_start_a_queued_job_twice(state_dir: Path) -> None:
    providers = [make_provider(state_dir), make_provider(state_dir)]
    big = full(providers[0])
    first = await providers[0].create_job(request(big, "sleep 0.5"))
    ids: list[str] = []

    async def create(i: int) -> None:
        job = await providers[i % 2].create_job(request(big, f"echo once-{i}"))
        ids.append(job.job_id)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(create, i)

    async def poll(p: LocalProvider) -> None:  # both "servers" keep reading the state meanwhile
        while not all(j.status.is_terminal for j in await p.list_jobs()):
            await anyio.sleep(0.01)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for p in providers:
                tg.start_soon(poll, p)
    jobs = [await providers[1].get_job(job_id) for job_id in [first.job_id, *ids]]
    assert all(j.status == JobStatus.SUCCEEDED for j in jobs), [j.reason for j in jobs]
    spans = sorted((j.started_at, j.finished_at) for j in jobs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end is not None and start is not None and end <= start  # each needs the whole machine
    for job in jobs[1:]:
        events = await messages(providers[0], job.job_id)
        assert sum(m.startswith("resources allocated") for m in events) == 1
        assert sum(m.startswith("pod started") for m in events) == 1
        assert len(await log(providers[0], job)) == 1


def test_executor_queue_allocates_gpus_exclusively_and_fails_what_can_never_fit(
    state_dir: Path, tmp_path: Path
) -> None:
    ex = Executor(state_dir)
    cap = Capacity(cpus=64, memory_gb=256, gpus=(0, 1, 2))
    gpu1 = Resources(cpus=1, memory_gb=1, gpus=1, gpu_pool=(0, 1, 2))
    # The GPU holders run until the queue was checked (a fixed sleep races a busy machine).
    gate = tmp_path / "release"
    show = f"echo gpus=[$CUDA_VISIBLE_DEVICES]; while [ ! -e {gate} ]; do sleep 0.05; done"
    two = [PodSpec(f"two-{i}", "Worker", {}, show) for i in range(2)]
    ex.launch("two", two, grace_seconds=0.2, resources=gpu1, capacity=cap, metrics_interval=0.5)
    ex.launch("one", [("one-0", "Worker", {}, show)], grace_seconds=0.2, resources=gpu1)  # the stored capacity
    ex.launch("wait", [("wait-0", "Worker", {}, show)], grace_seconds=0.2, resources=gpu1)
    cpu_only = Resources(cpus=1, memory_gb=1)
    ex.launch("cpu", [("cpu-0", "Worker", {}, "echo gpus=[$CUDA_VISIBLE_DEVICES]")], resources=cpu_only)
    waiting, cpu = ex.get("wait"), ex.get("cpu")
    assert waiting.status == "Queuing" and waiting.queue_position == 1 and ex.queue() == ["wait", "cpu"]
    assert waiting.reason and "GPUs free: none (of 0, 1, 2)" in waiting.reason
    assert cpu.status == "Queuing" and cpu.queue_position == 2  # strict order: behind "wait" though it fits
    assert cpu.reason and cpu.reason.endswith("; 1 job ahead of it starts first")
    gate.touch()
    states = {run: ex.wait(run, 15) for run in ("two", "one", "wait", "cpu")}
    assert all(s.status == "Succeeded" for s in states.values()), states
    given = [p.gpus for run in ("two", "one") for p in states[run].pods]
    assert sorted(given) == [(0,), (1,), (2,)]  # one GPU each, never shared
    for run in ("two", "one", "wait"):
        for pod in states[run].pods:
            assert ex.read_log(run, pod.pod_id).lines == [f"gpus=[{pod.gpus[0]}]"]  # type: ignore[index]
    assert ex.read_log("cpu", "cpu-0").lines == ["gpus=[]"] and states["cpu"].pods[0].gpus == ()
    assert states["wait"].started_at and states["two"].finished_at
    assert states["wait"].started_at >= min(states["two"].finished_at, states["one"].finished_at)  # type: ignore[type-var]

    # The capacity shrank below what a waiting run needs: it fails instead of blocking the queue.
    ex.launch("hold", [("hold-0", "Worker", {}, "sleep 30")], grace_seconds=0.2, resources=cpu_only)
    ex.launch("big", [("big-0", "Worker", {}, "true")], resources=Resources(cpus=64, memory_gb=1))
    assert ex.get("big").status == "Queuing"
    ex.launch("small", [("small-0", "Worker", {}, "true")], resources=cpu_only, capacity=Capacity(8, 256))
    big = ex.wait("big", 5)
    assert big.status == "Failed" and big.reason_code == "InsufficientResources"
    assert "64 CPUs (the machine has 8)" in (big.reason or "")
    assert ex.wait("small", 10).status == "Succeeded"
    ex.stop("hold", wait_seconds=5)
    with pytest.raises(InvalidRequest, match="capacity and priority"):
        ex.launch("x", [("x-0", "Worker", {}, "true")], priority=3)


# -------------------------------------------------------------------------------------------------------
# GPUs through a fake nvidia-smi


async def test_gpu_jobs_get_their_own_gpus_queue_for_them_and_report_gpu_metrics(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if cpu_count() < 2:
        pytest.skip("needs 2 CPUs")
    calls = install_fake_nvidia_smi(tmp_path, monkeypatch, utilization=["0", "0"], memory_used=["8156", "0"])
    provider = make_provider(state_dir)
    gpu = await provider.list_specs("GPU")
    assert [s.instance_type for s in gpu] == ["local.gpu-1xh100-80gb-hbm3", "local.gpu-2xh100-80gb-hbm3"]
    one = gpu[0]
    assert (one.gpu_count, one.gpu_type, one.gpu_memory_gb) == (1, H100, 79.6)
    show = "echo gpus=$CUDA_VISIBLE_DEVICES; sleep 1"
    first = await provider.create_job(request(one, show, worker_count=2, sanity_check=True))
    second = await provider.create_job(request(one, "echo gpus=$CUDA_VISIBLE_DEVICES"))
    assert second.status == JobStatus.QUEUING
    assert second.reason and "GPUs free: none (of 0, 1)" in second.reason
    first = await wait_terminal(provider, first.job_id)
    second = await wait_terminal(provider, second.job_id)
    assert first.status == second.status == JobStatus.SUCCEEDED, (first.reason, second.reason)
    assert sorted([(await log(provider, first, i))[0] for i in range(2)]) == ["gpus=0", "gpus=1"]
    assert await log(provider, second) == ["gpus=0"]
    assert first.finished_at and second.started_at and first.finished_at <= second.started_at
    pod_events = await messages(provider, first.job_id, first.pods[0].pod_id)
    assert pod_events[0].startswith("pod started (pid ") and "CUDA_VISIBLE_DEVICES=" in pod_events[0]

    checks = await provider.sanity_checks(first.job_id)
    assert [c.phase for c in checks] == ["CheckInit", "CheckInit", "CheckInit", "DeviceCheck", "SingleNodeCommCheck"]
    assert all(c.status == "Succeeded" for c in checks), checks
    assert "GPU 0, 1 visible" in checks[3].message

    core = await provider.metrics(first.job_id, "gpu_core")
    assert [s.pod_id for s in core] == [p.pod_id for p in first.pods]
    assert all(s.points and all(p.value == 0 for p in s.points) and s.unit == "%" for s in core)
    memory = {s.pod_id: [p.value for p in s.points] for s in await provider.metrics(first.job_id, "gpu_memory")}
    assert sorted({v for values in memory.values() for v in values}) == [0.0, 10.0]  # 8156 of 81559 MiB on GPU 0
    assert all(values for values in memory.values())
    cpu_job_gpu = await provider.metrics(second.job_id, "gpu_core")
    assert [len(s.points) for s in cpu_job_gpu] in ([0], [1], [2], [3])  # sampled only while it ran
    queried = calls.read_text().splitlines()
    assert sum("utilization.gpu" in c for c in queried) <= 30  # one call per sample for all pods


# -------------------------------------------------------------------------------------------------------
# Metrics


async def test_cpu_and_memory_metrics_follow_what_the_job_does(provider: LocalProvider) -> None:
    if cpu_count() < 2:
        pytest.skip("needs 2 CPUs")
    spec = cpu1(provider)
    program = "import time\nb = b'x' * (200 << 20)\nt = time.time()\nwhile time.time() - t < 1.6: pass\n"
    busy = await provider.create_job(request(spec, f"{PY} -c {shlex.quote(program)}"))
    idle = await provider.create_job(request(spec, "sleep 1.6"))
    busy = await wait_terminal(provider, busy.job_id)
    idle = await wait_terminal(provider, idle.job_id)
    assert busy.status == idle.status == JobStatus.SUCCEEDED

    (busy_cpu,) = await provider.metrics(busy.job_id, "cpu")
    (idle_cpu,) = await provider.metrics(idle.job_id, "cpu")
    assert len(busy_cpu.points) >= 4 and len(idle_cpu.points) >= 4
    times = [p.time for p in busy_cpu.points]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    busy_mean = statistics.mean(p.value for p in busy_cpu.points)
    idle_mean = statistics.mean(p.value for p in idle_cpu.points)
    print(f"cpu: busy {busy_mean:.0f} %, idle {idle_mean:.1f} %")
    assert busy_mean > idle_mean + 30 and idle_mean < 10

    (mem,) = await provider.metrics(busy.job_id, "memory")
    peak_mib = max(p.value for p in mem.points) / 100 * spec.memory_gb * 1024
    assert 190 < peak_mib < 1024, peak_mib
    (idle_mem,) = await provider.metrics(idle.job_id, "memory")
    assert max(p.value for p in idle_mem.points) / 100 * spec.memory_gb * 1024 < 50

    assert await provider.metrics(busy.job_id, "gpu_core") == [
        type(busy_cpu)(pod_id=busy.pods[0].pod_id, metric="gpu_core", points=[])
    ]
    (bucketed,) = await provider.metrics(busy.job_id, "cpu", step_seconds=1)
    assert 1 <= len(bucketed.points) < len(busy_cpu.points) and len(bucketed.points) <= 5
    assert all(p.time.timestamp() % 1 == 0 for p in bucketed.points)
    later = busy_cpu.points[-2].time
    (tail,) = await provider.metrics(busy.job_id, "cpu", since=later)
    assert [p.time for p in tail.points] == [p.time for p in busy_cpu.points[-2:]]
    with pytest.raises(NotFound):
        await provider.metrics("local-20260101000000-deadbeef", "cpu")
    with pytest.raises(InvalidRequest, match="unknown metric"):
        await provider.metrics(busy.job_id, "disk")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="step_seconds"):
        await provider.metrics(busy.job_id, "cpu", step_seconds=0)


def test_metric_series_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    points = [(1000.0 + i * 0.5, float(i % 10)) for i in range(2000)]
    thinned = _thin(points, 500)
    assert len(thinned) == 500 and thinned[0] == (1000.0, 1.5) and thinned[1][0] == 1002.0
    assert _thin(points[:10], 500) == points[:10]
    assert _buckets([(10.2, 1.0), (10.9, 3.0), (12.0, 5.0)], 1) == [(10.0, 2.0), (12.0, 5.0)]

    # Storage keeps at most MAX_POINTS per series: the older half is thinned to every other point.
    monkeypatch.setattr(metrics_module, "MAX_POINTS", 100)
    ex = Executor(tmp_path / "state")
    with ex.db.write() as conn:
        conn.execute(
            "INSERT INTO runs (run_id, status, created_at, workdir, grace_seconds) VALUES ('r', 'Succeeded', 0, '.', 0)"
        )
        counts: dict[tuple[str, str], int] = {}
        for i in range(300):
            metrics_module.store_points(
                conn, "r", [("p", "cpu", float(i), float(i)), ("p", "memory", float(i), 1.0)], counts
            )
    conn = sqlite3.connect(ex.db.path)
    try:
        times = [r[0] for r in conn.execute("SELECT time FROM metrics WHERE metric = 'cpu' ORDER BY time")]
    finally:
        conn.close()
    assert len(times) < 100 and times[-20:] == [float(i) for i in range(280, 300)]  # the newest stay exact
    assert times[0] == 0.0 and times[1] - times[0] > 1  # the oldest thinned out


# -------------------------------------------------------------------------------------------------------
# Events


async def test_sigkill_events_say_137_and_out_of_memory(provider: LocalProvider) -> None:
    job = await provider.create_job(request(cpu1(provider), "kill -KILL $$"))
    job = await wait_terminal(provider, job.job_id)
    assert job.status == JobStatus.FAILED and job.reason_code == "PodFailed"
    pod_events = await messages(provider, job.job_id, job.pods[0].pod_id)
    exit_text = pod_events[-1]
    assert "137" in exit_text and ("out of memory" in exit_text or "out-of-memory" in exit_text), exit_text
    assert (await provider.error_info(job.job_id)) == f"PodFailed: {job.reason}"
    ok = await provider.create_job(request(cpu1(provider), "true"))
    await wait_terminal(provider, ok.job_id)
    assert await provider.error_info(ok.job_id) is None


async def test_max_runtime_event_names_the_limit(provider: LocalProvider) -> None:
    job = await provider.create_job(request(cpu1(provider), "sleep 30", max_runtime_minutes=0.005))  # 0.3 s
    job = await wait_terminal(provider, job.job_id)
    assert job.status == JobStatus.STOPPED and job.reason_code == "MaxRuntimeExceeded"
    events = await messages(provider, job.job_id)
    assert any(m.startswith("max runtime of 0.3 s exceeded") for m in events)
    assert events[-1] == "stopped: max runtime of 0.3 s exceeded; the job was stopped"


# -------------------------------------------------------------------------------------------------------
# Sanity checks


async def test_sanity_checks_fail_before_any_worker_or_pass(provider: LocalProvider) -> None:
    spec = cpu1(provider)
    bad = await provider.create_job(request(spec, "nonexistent-binary-xyz --train", sanity_check=True))
    good = await provider.create_job(
        request(spec, f"cd . && {PY} -c 'print(1)'", sanity_check=True, sanity_check_args="min_free_gb=0.01")
    )
    bad = await wait_terminal(provider, bad.job_id)
    assert bad.status == JobStatus.FAILED and bad.reason_code == "SanityCheckFailed"
    assert bad.reason and bad.reason.startswith("sanity check 1 (CheckInit) failed: ")
    assert "'nonexistent-binary-xyz'" in bad.reason
    assert all(p.started_at is None and p.exit_code is None for p in bad.pods) and await log(provider, bad) == []
    checks = await provider.sanity_checks(bad.job_id)
    assert [(c.check_number, c.phase, c.status) for c in checks] == [
        (1, "CheckInit", "Failed"),
        (2, "CheckInit", "Succeeded"),
        (3, "CheckInit", "Succeeded"),
        (4, "SingleNodeCommCheck", "Succeeded"),
    ]
    assert all(c.started_at and c.finished_at and c.started_at <= c.finished_at for c in checks)
    events = await messages(provider, bad.job_id)
    assert any(m.startswith("sanity check failed: 1 of 4 checks failed") for m in events)
    assert not any(m.startswith("pod started") for m in events)

    good = await wait_terminal(provider, good.job_id)
    assert good.status == JobStatus.SUCCEEDED and await log(provider, good) == ["1"]
    checks = await provider.sanity_checks(good.job_id)
    assert [c.status for c in checks] == ["Succeeded"] * 4
    assert "shell builtin or keyword 'cd'" in checks[0].message and "writable" in checks[1].message
    assert "floor 0.01 GiB" in checks[2].message and "free on 127.0.0.1" in checks[3].message
    assert "sanity check passed: all 4 checks succeeded" in await messages(provider, good.job_id)

    disk = await provider.create_job(request(spec, "true", sanity_check=True, sanity_check_args="min_free_gb=1e9"))
    disk = await wait_terminal(provider, disk.job_id)
    assert disk.reason and disk.reason.startswith("sanity check 3 (CheckInit) failed: only ")
    plain = await provider.create_job(request(spec, "true"))
    await wait_terminal(provider, plain.job_id)
    assert await provider.sanity_checks(plain.job_id) == []
    with pytest.raises(NotFound):
        await provider.sanity_checks("local-20260101000000-deadbeef")


def test_sanity_check_of_a_busy_port_and_a_missing_program(state_dir: Path) -> None:
    ex = Executor(state_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = {"MASTER_PORT": str(port)}
        ex.launch("port", [("port-0", "Worker", env, "./missing.sh")], sanity=SanityOptions(min_free_gb=0))
        state = ex.wait("port", 10)
    assert state.status == "Failed" and state.reason_code == "SanityCheckFailed"
    assert "(checks 4 failed too)" in (state.reason or "")
    checks = ex.sanity_checks("port")
    assert "'./missing.sh' does not exist" in checks[0].message
    assert checks[3].phase == "SingleNodeCommCheck" and checks[3].status == "Failed"
    assert f"MASTER_PORT={port} cannot be bound" in checks[3].message


def test_first_word_and_sanity_args() -> None:
    assert first_word("python train.py --x") == "python"
    assert first_word("A=1 B='x y' exec env -i C=2 torchrun x") == "torchrun"
    assert first_word("cd sub&&python t.py") == "cd"
    assert first_word("(python t.py)") == "("
    assert first_word("'unbalanced") == "'unbalanced"
    assert first_word("   ") is None
    assert parse_args(None).min_free_gb == 1.0
    assert parse_args(" min_free_gb = 5 ,").min_free_gb == 5.0
    for bad, text in (
        ("foo=1", "unknown key 'foo'; known keys: min_free_gb"),
        ("min_free_gb", "is not key=value"),
        ("min_free_gb=abc", "must be a number"),
        ("min_free_gb=-1", "0 or more"),
        ("min_free_gb=1,min_free_gb=2", "given twice"),
    ):
        with pytest.raises(ValueError, match=text):
            parse_args(bad)


async def test_new_request_fields_are_validated(provider: LocalProvider) -> None:
    spec = cpu1(provider)
    for fields, text in (
        ({"priority": 0}, "priority must be an integer from 1 to 9"),
        ({"priority": 10}, "priority must be an integer from 1 to 9"),
        ({"sanity_check": True, "sanity_check_args": "foo=1"}, "sanity_check_args 'foo=1': unknown key 'foo'"),
        ({"sanity_check_args": "min_free_gb=1"}, "sanity_check is false"),
        ({"envs": {"CUDA_VISIBLE_DEVICES": "0"}}, "CUDA_VISIBLE_DEVICES is set by the local provider"),
    ):
        with pytest.raises(InvalidRequest, match=text):
            await provider.create_job(request(spec, "true", **fields))
    assert await provider.list_jobs() == []
    provider.validate_request(request(spec, "true", priority=9, sanity_check=True, sanity_check_args=""), spec)


async def test_workload_info_of_a_running_job(provider: LocalProvider) -> None:
    job = await provider.create_job(request(cpu1(provider), "sleep 30", priority=3))
    job = await wait_for(provider, job.job_id, lambda j: j.status == JobStatus.RUNNING)
    info = await provider.workload_info(job.job_id)
    assert (info.status, info.is_scheduled, info.queue_position, info.priority) == ("Running", True, None, 3)
    assert info.enqueued_at is not None and info.enqueued_at <= datetime.now(UTC)
    assert job.priority == 3
    with pytest.raises(NotFound):
        await provider.workload_info("local-20260101000000-deadbeef")
    await provider.stop_job(job.job_id)
    await wait_terminal(provider, job.job_id)
