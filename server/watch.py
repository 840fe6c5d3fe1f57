"""Waiting for a job: bounded per call, resumable across calls, one status read per poll."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal

import anyio
from pydantic import BaseModel, Field

from server.engine import Engine
from server.errors import NotFound, Throttled
from server.models import Job, JobStatus, Pod

Outcome = Literal["succeeded", "failed", "stopped", "still_running", "timed_out"]
ProgressFn = Callable[[float, float, str], Awaitable[None]]
TAIL_LINES = 30
TAIL_CHARS = 3000


class Failure(BaseModel):
    pod_id: str | None
    exit_code: int | None = None
    reason: str | None
    log_tail: list[str] = Field(default_factory=list, description="Last lines of the failing pod's log")


class WaitResult(BaseModel):
    job_id: str
    name: str
    status: JobStatus
    raw_status: str
    sub_status: str | None
    outcome: Outcome
    done: bool = Field(description="False when the job is still running and wait_job_complete should be called again")
    elapsed_seconds: float = Field(description="Seconds since the first wait_job_complete call for this job")
    waited_seconds: float = Field(description="Seconds this call waited")
    pods_running: int
    pods_total: int
    duration_seconds: float | None
    reason: str | None
    failure: Failure | None = None
    message: str


def pods_running(job: Job) -> int:
    return sum(1 for p in job.pods if p.status.lower() == "running")


def progress_line(job: Job, elapsed: float) -> str:
    sub = f"/{job.sub_status}" if job.sub_status else ""
    return (
        f"{job.job_id} {job.status.value}{sub} ({job.raw_status}), {elapsed:.0f}s elapsed, "
        f"pods running {pods_running(job)}/{len(job.pods)}"
    )


async def until_terminal(engine: Engine, job_id: str, limit_seconds: float = 60.0, poll: float = 0.5) -> Job:
    """Poll until the job has finished (used after a stop, e.g. before deleting)."""
    with anyio.fail_after(limit_seconds):
        while True:
            job = await engine.get(job_id)
            if job.status.is_terminal:
                return job
            await anyio.sleep(poll)


async def wait(
    engine: Engine,
    job_id: str,
    *,
    timeout: float,
    interval: float,
    max_wait_seconds: float,
    progress: ProgressFn | None = None,
) -> WaitResult:
    call_start = time.monotonic()
    first_seen = engine.wait_started.setdefault(job_id, call_start)
    delay = interval
    while True:
        try:
            job = await engine.get(job_id)
        except Throttled:
            delay = min(delay * 2, max(interval, 60.0))  # the transport already retried; slow down further
            await anyio.sleep(delay)
            continue
        now = time.monotonic()
        elapsed, waited = now - first_seen, now - call_start
        if progress is not None:
            await progress(min(elapsed, timeout), timeout, progress_line(job, elapsed))
        if job.status.is_terminal:
            engine.wait_started.pop(job_id, None)
            return await _finished(engine, job, elapsed, waited)
        if elapsed >= timeout:
            return await _timed_out(engine, job, elapsed, waited, timeout)
        if waited + delay > max_wait_seconds:
            left = timeout - elapsed
            return _result(
                job,
                "still_running",
                elapsed,
                waited,
                f"Still {job.status.value} after {elapsed:.0f}s. Call wait_job_complete(job_id={job.job_id!r}) "
                f"again to keep waiting; the overall timeout of {timeout:.0f}s has {left:.0f}s left and counts "
                "from the first call.",
            )
        await anyio.sleep(delay)
        delay = interval


def _result(job: Job, outcome: Outcome, elapsed: float, waited: float, message: str, failure: Failure | None = None):
    return WaitResult(
        job_id=job.job_id,
        name=job.name,
        status=job.status,
        raw_status=job.raw_status,
        sub_status=job.sub_status,
        outcome=outcome,
        done=outcome != "still_running",
        elapsed_seconds=round(elapsed, 2),
        waited_seconds=round(waited, 2),
        pods_running=pods_running(job),
        pods_total=len(job.pods),
        duration_seconds=job.duration_seconds,
        reason=job.reason,
        failure=failure,
        message=message,
    )


async def _finished(engine: Engine, job: Job, elapsed: float, waited: float) -> WaitResult:
    if job.status is JobStatus.SUCCEEDED:
        return _result(
            job, "succeeded", elapsed, waited, f"Job {job.job_id} succeeded. Call get_job_logs to read its output."
        )
    failure = await diagnose(engine, job)
    outcome: Outcome = "failed" if job.status is JobStatus.FAILED else "stopped"
    where = f" in pod {failure.pod_id}" if failure.pod_id else ""
    return _result(
        job,
        outcome,
        elapsed,
        waited,
        f"Job {job.job_id} {job.status.value.lower()}{where}: {job.reason or 'no reason given'}. "
        "The failing pod's last log lines are in failure.log_tail; get_job_logs has more.",
        failure,
    )


async def _timed_out(engine: Engine, job: Job, elapsed: float, waited: float, timeout: float) -> WaitResult:
    engine.wait_started.pop(job.job_id, None)
    if engine.settings.read_only:
        return _result(
            job,
            "timed_out",
            elapsed,
            waited,
            f"Job {job.job_id} is still {job.status.value} after the timeout of {timeout:.0f}s. This server is "
            "read-only, so it was NOT stopped: stop it yourself if it should not keep running.",
        )
    stopped = await engine.stop(job.job_id)
    return _result(
        stopped,
        "timed_out",
        elapsed,
        waited,
        f"Job {job.job_id} was still {job.status.value} after the timeout of {timeout:.0f}s, so it was stopped "
        "to stop its cost. Raise `timeout` to allow longer jobs.",
    )


def failing_pod(job: Job) -> Pod | None:
    for pod in job.pods:
        if pod.exit_code not in (None, 0) or pod.status.lower() == "failed":
            return pod
    return job.pods[0] if job.pods else None


async def diagnose(engine: Engine, job: Job) -> Failure:
    pod = failing_pod(job)
    tail: list[str] = []
    if pod is not None:
        try:
            page = await engine.provider.pod_logs(job.job_id, pod.pod_id, max_lines=TAIL_LINES)
            tail = clip_tail(page.lines, TAIL_CHARS)
        except NotFound:
            tail = []
    return Failure(
        pod_id=pod.pod_id if pod else None,
        exit_code=pod.exit_code if pod else None,
        reason=job.reason,
        log_tail=tail,
    )


def clip_tail(lines: list[str], max_chars: int) -> list[str]:
    """The last lines that fit in max_chars (a single huge line is cut from its start)."""
    out: list[str] = []
    used = 0
    for line in reversed(lines):
        if used + len(line) + 1 > max_chars:
            if not out:
                out.append("…" + line[-(max_chars - 1) :])
            break
        out.append(line)
        used += len(line) + 1
    return out[::-1]
