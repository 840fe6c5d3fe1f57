"""diagnose_job's engine: gather what a platform knows about a job and name what went wrong.

Evidence is gathered concurrently (status and reason, the platform's error info, events, sanity checks,
the failing pod's log, metric warnings); the verdict is the first rule that the evidence supports, each
with the lines that support it quoted and the next step to take.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import anyio
from pydantic import Field

from cloudjobs_mcp.server import metrics as job_metrics
from cloudjobs_mcp.server.diagnosis import IMAGE_PULL, ErrorBlock, find_error_block
from cloudjobs_mcp.server.engine import Engine
from cloudjobs_mcp.server.errors import CloudJobsError
from cloudjobs_mcp.server.models import Event, Job, JobStatus, Model, Pod, SanityCheckResult, utcnow
from cloudjobs_mcp.server.redact import mask
from cloudjobs_mcp.server.untrusted import untrusted_field

Verdict = Literal[
    "healthy",
    "image_pull",
    "out_of_memory",
    "nccl_network",
    "cuda",
    "user_code",
    "queue_quota",
    "spot_reclaim",
    "max_runtime",
    "sanity_check_failed",
    "stopped_by_user",
    "killed_by_signal",
    "unknown",
]
MAX_EVIDENCE = 12
T = TypeVar("T")
QUEUE_TOO_LONG_SECONDS = 600
# "not by the kernel's out-of-memory killer" must not count: a kill the counter says was no OOM.
_OOM = re.compile(
    r"OOMKilled|OOM-killed|(?<!not by the kernel's )out[- ]of[- ]memory(?! killer)|oom-kill|most likely out of memory",
    re.I,
)
_EXTERNAL_KILL = re.compile(r"SIGKILL.*not by the kernel's out-of-memory killer", re.I)
_KILLED_BY = re.compile(r"killed by (?:signal )?(SIG[A-Z0-9]+)")
_SIGNAL_EXIT = re.compile(r"\bexit(?:ed with)? code (1(?:29|[3-8]\d|9[0-2]))\b", re.I)  # 128 + signal number
# Signals a program does not send itself when it fails: someone or something outside it did. (SIGSEGV,
# SIGABRT, SIGBUS, SIGFPE, SIGILL are the program's own crash: user_code.)
_OUTSIDE_SIGNALS = {"SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"}
_SPOT = re.compile(r"spot.*(?:reclaim|preempt|releas|interrupt)|(?:reclaim|preempt)\w*.*spot|SpotInstance\w*", re.I)
# An exceeded limit, not the mere mention of one ("created ...; max runtime 5 minutes" is in every job's events).
_MAX_RUNTIME = re.compile(
    r"MaxRuntimeExceeded|max(?:imum)? run(?:ning)? ?time (?:of .{1,40} )?(?:was )?(?:exceeded|reached)|"
    r"exceeded (?:its|the) max(?:imum)? run(?:ning)? ?time|JobMaxRunningTime\w*(?:Exceeded|Reached)",
    re.I,
)
_NCCL = re.compile(r"\bNCCL\b.*(?:error|WARN|timeout)|nccl\w*Error|Connection (?:refused|reset).*(?:rank|master)", re.I)
_CUDA = re.compile(r"CUDA error|cudaError|device-side assert|CUBLAS_STATUS|CUDNN_STATUS", re.I)

NEXT_STEPS: dict[str, str] = {
    "healthy": "Nothing to fix. Keep following it with wait_job_complete.",
    "image_pull": "Fix the image: use resolve_image for an official one, or check the name, tag and registry "
    "access; then quote and create again.",
    "out_of_memory": "Use a spec with more memory (or GPU memory), lower the batch size, or enable gradient "
    "checkpointing / mixed precision; then quote again.",
    "nccl_network": "Check that all workers can reach MASTER_ADDR:MASTER_PORT, set NCCL_DEBUG=INFO in envs, and "
    "that every worker uses the same world size; retry on fresh nodes.",
    "cuda": "Check the CUDA/driver/framework versions of the image against the GPU, and run once with "
    "CUDA_LAUNCH_BLOCKING=1 to find the failing kernel.",
    "user_code": "Fix the program: the error block shows where it failed. Test it on a small CPU spec first.",
    "queue_quota": "The job waits for resources: wait, lower the worker count or the spec, use another resource "
    "quota or public resources, or stop it (billing can start before training does).",
    "spot_reclaim": "The spot instances were reclaimed: resume from a checkpoint on on-demand capacity, or raise "
    "the spot price limit.",
    "max_runtime": "The job hit its max runtime: quote again with a larger max_runtime_minutes, or make it "
    "checkpoint and resume.",
    "sanity_check_failed": "A pre-flight check failed before training started: fix what the failed check names "
    "(command, disk, GPUs, network), then create again.",
    "stopped_by_user": "It was stopped on purpose. Create it again with a new quote if it should run.",
    "killed_by_signal": "Look at the memory peak in get_job_metrics: near 100% means a memory limit (a container "
    "limit or a userspace OOM daemon such as systemd-oomd kills with SIGKILL too); then ask who else could have sent "
    "the signal (a user or script running kill, a node drain or preemption, a scheduler's time limit). Use a spec "
    "with more memory if memory was the cause, else run it again.",
    "unknown": "Read get_job_logs and get_job_events for details; the evidence above is all the platform reported.",
}


class Diagnosis(Model):
    job_id: str
    status: JobStatus
    raw_status: str
    verdict: Verdict
    summary: str
    evidence: list[str] = Field(description="The lines that support the verdict, quoted")
    next_step: str
    reason: str | None
    reason_code: str | None
    error_info: str | None = Field(description="The platform's own diagnosis, when it has one")
    error_block: list[str] = Field(default_factory=list, description="The error found in the failing pod's log")
    sanity_checks: list[SanityCheckResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list, description="Metric warnings (idle GPUs, memory, loss)")
    events: list[str] = Field(default_factory=list, description="The last events")
    untrusted: str = untrusted_field()


async def diagnose(engine: Engine, job_id: str, provider: str | None = None) -> Diagnosis:
    diagnosis, _ = await investigate(engine, await engine.get(job_id, provider))
    return diagnosis


async def investigate(engine: Engine, job: Job) -> tuple[Diagnosis, list[str]]:
    """The diagnosis of ``job`` and the failing pod's log lines it read (its last 5000)."""
    known = engine.known_secrets()
    failing = failing_pod(job)
    pod = failing.pod_id if failing else None
    got = _Evidence()

    async def error_info() -> None:
        got.error_info = await _quiet(engine.provider_of(job).error_info(job.job_id), None)

    async def events() -> None:
        got.events = await _quiet(engine.provider_of(job).events(job.job_id), [])

    async def sanity() -> None:
        got.sanity = await _quiet(engine.provider_of(job).sanity_checks(job.job_id), [])

    async def log(pod_id: str) -> None:
        page = await _quiet(engine.provider_of(job).pod_logs(job.job_id, pod_id, max_lines=5000), None)
        got.lines = page.lines if page is not None else []

    async def warnings() -> None:
        result = await _quiet(job_metrics.job_metrics(engine, job.job_id), None)
        got.warnings = result.warnings if result is not None and job.status is JobStatus.RUNNING else []
        got.memory_peak = _memory_peak(result) if result is not None else None

    async with anyio.create_task_group() as tg:  # everything at once; each piece may be missing
        for fetch in (error_info, events, sanity):
            tg.start_soon(fetch)
        if pod is not None:
            tg.start_soon(log, pod)
        if job.status is JobStatus.RUNNING or (job.status is JobStatus.FAILED and killed_by(job, [job.reason or ""])):
            tg.start_soon(warnings)  # a signal death: the memory peak tells a memory limit from a kill
    block = find_error_block(got.lines)
    verdict, evidence = judge(
        job, got.events, got.sanity, block, got.lines, got.warnings, got.error_info, got.memory_peak
    )
    evidence = distinct_facts(evidence, job)
    diagnosis = Diagnosis(
        job_id=job.job_id,
        status=job.status,
        raw_status=job.raw_status,
        verdict=verdict,
        summary=_summary(job, verdict, got.warnings, evidence),
        evidence=[mask(e, known)[:400] for e in evidence[:MAX_EVIDENCE]],
        next_step=NEXT_STEPS[verdict] if verdict != "healthy" or not got.warnings else WARNINGS_STEP,
        reason=job.reason,
        reason_code=job.reason_code,
        error_info=mask(got.error_info, known) if got.error_info and _says_more(got.error_info, job) else None,
        error_block=[mask(x, known) for x in block.lines] if block else [],
        sanity_checks=got.sanity[:20],
        warnings=got.warnings,
        events=[mask(f"{e.source}: {e.message}", known)[:300] for e in got.events[-MAX_EVIDENCE:]],
    )
    return diagnosis, got.lines


@dataclass
class _Evidence:
    error_info: str | None = None
    events: list[Event] = field(default_factory=list)
    sanity: list[SanityCheckResult] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    memory_peak: float | None = None  # % of the allocation, highest of any pod; None: no sample


async def _quiet(call: Awaitable[T], default: T) -> T:
    """The call's result, or ``default`` when the platform cannot tell (a diagnosis uses what it gets)."""
    try:
        return await call
    except CloudJobsError:
        return default


def judge(
    job: Job,
    events: list[Event],
    sanity: list[SanityCheckResult],
    block: ErrorBlock | None,
    lines: list[str],
    warnings: list[str],
    error_info: str | None,
    memory_peak: float | None = None,
) -> tuple[Verdict, list[str]]:
    """The first verdict the evidence supports, with that evidence (the job's own reason first)."""
    texts = [job.reason or "", job.reason_code or "", error_info or ""]
    texts += [f"{p.pod_id}: {p.status} {p.sub_status or ''}" for p in job.pods]
    texts += [f"{e.source}: {e.message}" for e in events]

    def hits(pattern: re.Pattern[str]) -> list[str]:
        return [t for t in texts if t and pattern.search(t)]

    failed_checks = [c for c in sanity if c.status.lower() in ("failed", "error")]
    if failed_checks or job.reason_code == "SanityCheckFailed":
        return "sanity_check_failed", [
            f"check {c.check_number} {c.phase}: {c.status} {c.message}" for c in failed_checks
        ] or [job.reason or ""]
    if found := hits(IMAGE_PULL):
        return "image_pull", found
    if found := hits(_SPOT):
        return "spot_reclaim", found
    if found := hits(_MAX_RUNTIME):
        return "max_runtime", found
    if (block is not None and block.kind == "out_of_memory") or hits(_OOM):
        return "out_of_memory", (block.lines[-3:] if block and block.kind == "out_of_memory" else []) + hits(_OOM)
    if (block is not None and block.kind == "nccl") or hits(_NCCL):
        return "nccl_network", (block.lines[-3:] if block and block.kind == "nccl" else []) + hits(_NCCL)
    if (block is not None and block.kind == "cuda") or hits(_CUDA):
        return "cuda", (block.lines[-3:] if block and block.kind == "cuda" else []) + hits(_CUDA)
    killed = killed_by(job, [job.reason or "", error_info or ""]) if job.status is JobStatus.FAILED else None
    if killed in _OUTSIDE_SIGNALS:
        said = [t for t in texts if t and (_KILLED_BY.search(t) or _SIGNAL_EXIT.search(t))]
        if memory_peak is not None and memory_peak >= job_metrics.MEMORY_NEAR_LIMIT:
            return "out_of_memory", [_memory_line(memory_peak), *said]
        return "killed_by_signal", [*said, _memory_line(memory_peak)]
    if job.status is JobStatus.FAILED and block is not None:
        return "user_code", block.lines[-4:]
    if job.status is JobStatus.FAILED and any(p.exit_code not in (None, 0) for p in job.pods):
        return "user_code", [f"{p.pod_id} exited with code {p.exit_code}" for p in job.pods if p.exit_code] + lines[-3:]
    if job.status in (JobStatus.QUEUING, JobStatus.CREATING) and _waiting_long(job, events):
        return "queue_quota", [
            f"{job.status.value} since {job.created_at:%Y-%m-%d %H:%M:%S} UTC" if job.created_at else job.status.value
        ]
    if job.status is JobStatus.STOPPED:
        return "stopped_by_user", [job.reason or "stopped"]
    if job.status is JobStatus.FAILED:
        return "unknown", [t for t in texts if t][:4]
    return "healthy", warnings[:3] or [f"{job.status.value}: no error in events or logs"]


def killed_by(job: Job, texts: list[str]) -> str | None:
    """The signal that ended the job's failing pod: from its exit code (137 = 128 + 9 = SIGKILL) where the
    platform gives one, else as the job's reason states it (``killed by SIGKILL``, ``exit code 137``). Other
    pods (a master stopped after a worker failed) do not count. None when no signal ended it."""
    pod = failing_pod(job)
    if pod is not None and pod.exit_code is not None:
        return _signal_of(pod.exit_code)
    for text in texts:
        if found := _KILLED_BY.search(text):
            return found.group(1)
        if found := _SIGNAL_EXIT.search(text):
            return _signal_of(int(found.group(1)))
    return None


def _signal_of(exit_code: int) -> str | None:
    if not 128 < exit_code <= 128 + 64:
        return None
    try:
        return signal.Signals(exit_code - 128).name
    except ValueError:
        return None


def _memory_peak(metrics: job_metrics.JobMetrics) -> float | None:
    peaks = [u.metrics["memory"].max for u in metrics.usage if "memory" in u.metrics]
    found = [p for p in peaks if p is not None]
    return max(found) if found else None


def _memory_line(peak: float | None) -> str:
    if peak is None:
        return "memory peak: no sample was taken before it died (get_job_metrics has none)"
    return f"memory peak: {peak:g}% of its allocation (get_job_metrics)"


_PREFIX = re.compile(r"^(?:[\w.-]+:\s*)+")  # "PodFailed: ", "failed: ", "<pod id>: "
_FILLER = re.compile(r"\b(?:pod|failed)\b", re.I)


def distinct_facts(evidence: list[str], job: Job) -> list[str]:
    """Each fact once: the same sentence reached through the reason, the error info, an event and a pod's
    status differs only in its prefix and the ids it names; the first (the job's reason) is kept, and a
    line whose fact another line already contains is dropped."""

    def fact(line: str) -> str:
        text = line
        for name in sorted([job.job_id, *(p.pod_id for p in job.pods)], key=len, reverse=True):
            text = text.replace(name, " ")
        text = _FILLER.sub(" ", _PREFIX.sub("", text.strip()))
        return " ".join(text.split()).strip(" :.").lower()

    kept: list[tuple[str, str]] = []
    for line in evidence:
        key = fact(line)
        if not key or any(key in seen for seen, _ in kept):
            continue
        kept = [(seen, text) for seen, text in kept if seen not in key]  # a longer line says it all
        kept.append((key, line))
    return [line for _, line in kept]


def _says_more(error_info: str, job: Job) -> bool:
    """Whether the platform's error info adds to the job's reason (local's is ``"<code>: <reason>"``)."""
    return error_info not in (job.reason, f"{job.reason_code}: {job.reason}")


def _waiting_long(job: Job, events: list[Event]) -> bool:
    if job.created_at is None:
        return True
    return (utcnow() - job.created_at).total_seconds() > QUEUE_TOO_LONG_SECONDS or any(
        "position" in e.message.lower() for e in events
    )


def failing_pod(job: Job) -> Pod | None:
    """The pod that made the job fail: the one its reason names (on PAI every pod of a failed job is Failed
    and pods carry no exit codes), else the first with a non-zero exit or a Failed status, else the first."""
    named = [p for p in job.pods if job.reason and p.pod_id in job.reason]
    if named:
        return max(named, key=lambda p: len(p.pod_id))  # "...-worker-10" also contains "...-worker-1"
    for pod in job.pods:
        if pod.exit_code not in (None, 0) or pod.status.lower() == "failed":
            return pod
    return job.pods[0] if job.pods else None


WARNINGS_STEP = "No error, but act on the warnings: each says what costs money or will fail soon and what to change."


def _summary(job: Job, verdict: Verdict, warnings: list[str], evidence: list[str]) -> str:
    words = {
        "healthy": "shows no problem",
        "image_pull": "cannot pull its image",
        "out_of_memory": "ran out of memory",
        "nccl_network": "failed in NCCL / network communication between workers",
        "cuda": "hit a CUDA error",
        "user_code": "failed in the user's code",
        "queue_quota": "is waiting in a queue for resources",
        "spot_reclaim": "lost its spot instances (reclaimed)",
        "max_runtime": "was stopped at its max runtime",
        "sanity_check_failed": "failed a pre-flight sanity check",
        "stopped_by_user": "was stopped by a user",
        "killed_by_signal": "was killed by a signal",
        "unknown": "failed for a reason the platform did not report",
    }
    head = f"Job {job.job_id} ({job.status.value})"
    if verdict == "healthy" and warnings:
        return f"{head} shows no error, but: {warnings[0]}"
    killed = killed_by(job, [job.reason or "", *evidence]) if job.status is JobStatus.FAILED else None
    pod = failing_pod(job)
    code = pod.exit_code if pod is not None and pod.exit_code is not None else None
    if code is None:
        code = next((int(m.group(1)) for t in [job.reason or "", *evidence] if (m := _SIGNAL_EXIT.search(t))), None)
    how = f"{killed} (exit code {code})" if killed and code else killed
    texts = [job.reason or "", *evidence]
    if verdict == "killed_by_signal":
        who = (
            "sent from outside the job, not by the kernel's out-of-memory killer"
            if any(_EXTERNAL_KILL.search(t) for t in texts)
            else "the platform does not say who sent it"
        )
        return f"{head} was killed by {how}: {who}."
    if killed and verdict in ("out_of_memory", "user_code"):
        return f"{head} {words[verdict]} (killed by {how})."
    if verdict == "unknown" and job.reason:
        return f"{head} failed; no known cause matches what the platform reported: {job.reason[:200]}"
    return f"{head} {words[verdict]}."
