"""Waiting for a job: bounded per call, resumable across calls, one status read per poll.

Safeguards (after the seed's wait_job_complete, and past it): an image that cannot be pulled stops the
job after ``image_pull_timeout``; a status that does not change for 4 × ``interval`` gets one diagnosis
(pod events and the log tail); a job queued longer than ``queue_timeout`` or running past ``timeout`` is
stopped, because billing can run before training does; a failed job comes back with its reason, the
failing pod's last lines and events, and the error block from its log quoted first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import anyio
from pydantic import Field

from cloudjobs_mcp.server import verdict
from cloudjobs_mcp.server.diagnosis import IMAGE_PULL
from cloudjobs_mcp.server.engine import Engine
from cloudjobs_mcp.server.errors import CloudJobsError, Forbidden, Throttled
from cloudjobs_mcp.server.identity import Caller
from cloudjobs_mcp.server.models import Event, Job, JobStatus, Model, Pod
from cloudjobs_mcp.server.redact import mask
from cloudjobs_mcp.server.untrusted import untrusted_field
from cloudjobs_mcp.server.verdict import failing_pod

Outcome = Literal["succeeded", "failed", "stopped", "still_running", "timed_out", "image_pull_failed", "queue_timeout"]
ProgressFn = Callable[[float, float, str], Awaitable[None]]
NoticeFn = Callable[[str], Awaitable[None]]
TAIL_LINES = 30
TAIL_CHARS = 3000
MAX_EVENTS = 12
EVENTS_EVERY = 3  # polls between event checks while a job has not started (image-pull detection)
_IMAGE = re.compile(r"(?:pull(?:ing)? image|image) \"([^\"]+)\"", re.IGNORECASE)
WAITING = (JobStatus.CREATING, JobStatus.QUEUING)


class Failure(Model):
    verdict: str = Field(description="What went wrong, as diagnose_job names it (e.g. out_of_memory, user_code)")
    next_step: str
    error_block: list[str] = Field(description="The error found in the failing pod's log; read it first")
    pod_id: str | None
    exit_code: int | None = None
    reason: str | None
    error_info: str | None = Field(default=None, description="The platform's own diagnosis, when it has one")
    log_tail: list[str] = Field(default_factory=list, description="Last lines of the failing pod's log")
    events: list[str] = Field(default_factory=list, description="The failing pod's (or the job's) last events")


class Stall(Model):
    status: str
    unchanged_seconds: float
    events: list[str]
    log_tail: list[str]


class ImagePull(Model):
    image: str | None
    event: str
    since_seconds: float


class WaitResult(Model):
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
    message: str
    failure: Failure | None = None
    stall: Stall | None = Field(default=None, description="Diagnosis of a status that stopped changing (once)")
    image_pull: ImagePull | None = None
    untrusted: str = untrusted_field()


@dataclass
class Watch:
    """What the server remembers about one job between wait calls."""

    first_seen: float
    status_key: str = ""
    status_since: float = 0.0
    stall_reported: str = ""
    pull_since: float | None = None
    pull_event: str = ""
    waiting_since: float | None = None
    polls: int = 0


@dataclass(frozen=True)
class Limits:
    timeout: float
    interval: float
    max_wait_seconds: float
    image_pull_timeout: float = 300.0
    queue_timeout: float | None = None


def pods_running(job: Job) -> int:
    return sum(1 for p in job.pods if p.status.lower() == "running")


def progress_line(job: Job, elapsed: float) -> str:
    sub = f"/{job.sub_status}" if job.sub_status else ""
    return (
        f"{job.job_id} {job.status.value}{sub} ({job.raw_status}), {elapsed:.0f}s elapsed, "
        f"pods running {pods_running(job)}/{len(job.pods)}"
    )


async def until_terminal(
    engine: Engine, job_id: str, limit_seconds: float = 60.0, poll: float = 0.5, provider: str | None = None
) -> Job:
    """Poll until the job has finished (used after a stop, e.g. before deleting)."""
    with anyio.fail_after(limit_seconds):
        while True:
            job = await engine.get(job_id, provider)
            if job.status.is_terminal:
                return job
            await anyio.sleep(poll)


class _Call:
    """One wait_job_complete call: turns a poll's findings into the call's result."""

    def __init__(self, engine: Engine, job_id: str, watch: Watch, start: float, caller: Caller) -> None:
        self.engine, self.job_id, self.watch, self.start = engine, job_id, watch, start
        self.caller = caller  # a safeguard stops the job only when this caller may stop it
        self.stall: Stall | None = None  # reported in this call's result, once per unchanged status
        self.pull: ImagePull | None = None
        self.now = start

    def result(self, job: Job, outcome: Outcome, message: str, **extra: object) -> WaitResult:
        if outcome != "still_running":
            self.engine.watches.pop(self.job_id, None)
        elapsed, waited = self.now - self.watch.first_seen, self.now - self.start
        return _result(job, outcome, elapsed, waited, message, stall=self.stall, **extra)


async def wait(
    engine: Engine,
    job_id: str,
    limits: Limits,
    *,
    caller: Caller,
    progress: ProgressFn | None = None,
    notice: NoticeFn | None = None,
    provider: str | None = None,
) -> WaitResult:
    start = time.monotonic()
    watch = engine.watches.setdefault(job_id, Watch(first_seen=start))
    call = _Call(engine, job_id, watch, start, caller)
    delay = limits.interval
    while True:
        try:
            job = await engine.get(job_id, provider)  # the one status read of this poll
        except Throttled:
            delay = min(delay * 2, max(limits.interval, 60.0))  # the transport already retried; slow down
            await anyio.sleep(delay)
            continue
        delay = limits.interval
        call.now = now = time.monotonic()
        watch.polls += 1
        elapsed = now - watch.first_seen
        key = f"{job.status.value}/{job.sub_status or ''}"
        if key != watch.status_key:
            if watch.status_key and notice is not None:
                await notice(f"{job.job_id}: {watch.status_key.rstrip('/')} → {key.rstrip('/')}")
            watch.status_key, watch.status_since = key, now
        if progress is not None:
            await progress(min(elapsed, limits.timeout), limits.timeout, progress_line(job, elapsed))
        ended = await _check(engine, call, job, limits)
        if ended is not None:
            return ended
        if now - start + delay > limits.max_wait_seconds:
            left = limits.timeout - elapsed
            return call.result(
                job,
                "still_running",
                f"Still {job.status.value} after {elapsed:.0f}s. Call wait_job_complete(job_id={job.job_id!r}) "
                f"again to keep waiting; the overall timeout of {limits.timeout:.0f}s has {left:.0f}s left and "
                "counts from the first call.",
                image_pull=call.pull,
            )
        await anyio.sleep(delay)


async def _check(engine: Engine, call: _Call, job: Job, limits: Limits) -> WaitResult | None:
    """The result that ends this call after this poll, if any safeguard (or the job's end) says so."""
    watch, now = call.watch, call.now
    if job.status.is_terminal:
        if job.status is JobStatus.SUCCEEDED:
            return call.result(job, "succeeded", f"Job {job.job_id} succeeded. Call get_job_logs to read its output.")
        failure = await diagnose(engine, job)
        where = f" in pod {failure.pod_id}" if failure.pod_id else ""
        return call.result(
            job,
            "failed" if job.status is JobStatus.FAILED else "stopped",
            f"Job {job.job_id} {job.status.value.lower()}{where}: {job.reason or 'no reason given'}. Verdict: "
            f"{failure.verdict}. {failure.next_step} The error block, log tail and events are in failure.",
            failure=failure,
        )

    pull = call.pull = await _image_pull(engine, job, watch, now)
    if pull is not None and pull.since_seconds >= limits.image_pull_timeout:
        stopped = await _stop(engine, job, call.caller)
        return call.result(
            stopped or job,
            "image_pull_failed",
            f"Job {job.job_id} could not pull {pull.image or 'its image'} for {pull.since_seconds:.0f}s, so it was "
            f"{'stopped' if stopped else 'NOT stopped (read-only server, or not your job)'}: {pull.event}. "
            "Check the image name and tag (resolve_image finds a valid one) and the registry's access, then "
            "quote again.",
            image_pull=pull,
        )

    if job.status in WAITING:
        watch.waiting_since = watch.waiting_since or now
        queued = now - watch.waiting_since
        if limits.queue_timeout is not None and queued >= limits.queue_timeout:
            stopped = await _stop(engine, job, call.caller)
            return call.result(
                stopped or job,
                "queue_timeout",
                f"Job {job.job_id} was still {job.status.value} after {queued:.0f}s (queue_timeout "
                f"{limits.queue_timeout:.0f}s), so it was "
                f"{'stopped' if stopped else 'NOT stopped (read-only, or not your job)'}: "
                "billing can start before training does. Try another spec, fewer workers or later.",
            )
    else:
        watch.waiting_since = None

    unchanged = now - watch.status_since
    if unchanged > 4 * limits.interval and watch.stall_reported != watch.status_key and call.stall is None:
        call.stall = await _stall(engine, job, unchanged)
        watch.stall_reported = watch.status_key

    if now - watch.first_seen >= limits.timeout:
        stopped = await _stop(engine, job, call.caller)
        if stopped is None:
            return call.result(
                job,
                "timed_out",
                f"Job {job.job_id} is still {job.status.value} after the timeout of {limits.timeout:.0f}s. This "
                "server is read-only (or the job is another identity's), so it was NOT stopped: stop it yourself "
                "if it should not keep running.",
            )
        return call.result(
            stopped,
            "timed_out",
            f"Job {job.job_id} was still {job.status.value} after the timeout of {limits.timeout:.0f}s, so it was "
            "stopped to stop its cost. Raise `timeout` to allow longer jobs.",
        )
    return None


def _result(
    job: Job,
    outcome: Outcome,
    elapsed: float,
    waited: float,
    message: str,
    **extra: object,
) -> WaitResult:
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
        message=message,
        **extra,  # type: ignore[arg-type]
    )


async def _stop(engine: Engine, job: Job, caller: Caller) -> Job | None:
    """Stop the job unless the server is read-only or the job is another identity's (then None)."""
    if engine.settings.read_only:
        return None
    try:
        return await engine.stop(job.job_id, job.provider, caller=caller)
    except Forbidden:
        return None


async def _image_pull(engine: Engine, job: Job, watch: Watch, now: float) -> ImagePull | None:
    """An image-pull failure seen in pod status, or in events (read every few polls before the job runs)."""
    text = next((_pod_text(p) for p in job.pods if IMAGE_PULL.search(_pod_text(p))), "")
    if not text and job.status in WAITING:
        if watch.polls % EVENTS_EVERY != 1:
            text = watch.pull_event  # between event reads, the last reading stands
        else:
            events = await _events(engine, job)
            text = next((e.message for e in reversed(events) if IMAGE_PULL.search(e.message)), "")
    if not text:
        watch.pull_since, watch.pull_event = None, ""
        return None
    if watch.pull_since is None:
        watch.pull_since = now
    watch.pull_event = text
    found = _IMAGE.search(text)
    image = found.group(1) if found else job.image
    return ImagePull(image=image, event=text[:500], since_seconds=round(now - watch.pull_since, 1))


def _pod_text(pod: Pod) -> str:
    return f"{pod.status} {pod.sub_status or ''}"


async def _events(engine: Engine, job: Job, pod_id: str | None = None) -> list[Event]:
    try:
        return await engine.provider_of(job).events(job.job_id, pod_id)
    except CloudJobsError:
        return []


def _event_lines(events: list[Event], known: tuple[str, ...]) -> list[str]:
    lines = [
        f"{e.time:%Y-%m-%d %H:%M:%S} {e.source}: {e.message}" if e.time else f"{e.source}: {e.message}" for e in events
    ]
    return [mask(line[:300], known) for line in lines[-MAX_EVENTS:]]


async def _stall(engine: Engine, job: Job, unchanged: float) -> Stall:
    pod = failing_pod(job)
    events = await _events(engine, job)
    return Stall(
        status=f"{job.status.value} ({job.raw_status})",
        unchanged_seconds=round(unchanged, 1),
        events=_event_lines(events, engine.known_secrets()),
        log_tail=await _tail(engine, job, pod),
    )


async def _tail(engine: Engine, job: Job, pod: Pod | None) -> list[str]:
    """The bounded, masked last lines of a pod's log."""
    if pod is None:
        return []
    try:
        page = await engine.provider_of(job).pod_logs(job.job_id, pod.pod_id, max_lines=TAIL_LINES)
    except CloudJobsError:
        return []
    known = engine.known_secrets()
    return clip_tail([mask(line, known) for line in page.lines], TAIL_CHARS)


async def diagnose(engine: Engine, job: Job) -> Failure:
    """What a failed or stopped job's result carries: the verdict first, then the evidence to read."""
    found, lines = await verdict.investigate(engine, job)
    known = engine.known_secrets()
    pod = failing_pod(job)
    return Failure(
        verdict=found.verdict,
        next_step=found.next_step,
        error_block=found.error_block,
        pod_id=pod.pod_id if pod else None,
        exit_code=pod.exit_code if pod else None,
        reason=job.reason,
        error_info=found.error_info,
        log_tail=clip_tail([mask(line, known) for line in lines[-TAIL_LINES:]], TAIL_CHARS),
        events=found.events,
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
