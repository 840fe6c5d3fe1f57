"""Pieces several providers share: the pooled client they own, concurrent calls that fail as the first
failure did, request checks and readings that mean the same on every platform.

Only what is platform-neutral lives here; each platform's JSON, names and limits stay in its own folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Self, TypeVar

import anyio
import httpx

from cloudjobs_mcp.server.errors import InvalidRequest
from cloudjobs_mcp.server.http import create_client
from cloudjobs_mcp.server.models import JOB_TYPES, Job, JobRequest, JobStatus, MetricDefinition, OutputModels
from cloudjobs_mcp.server.providers.base import TAG_QUOTE_ID

# The env var a job carries its metric definitions in (JSON ``[{"name", "regex"}]``), read back by get_job.
METRIC_DEFINITIONS_ENV = "CLOUDJOBS_METRIC_DEFINITIONS"

# A job's status in workload_info's words (DLC's quota workload statuses), for platforms without a queue API.
WORKLOAD_STATUS: Mapping[JobStatus, str] = {
    JobStatus.CREATING: "Pending",
    JobStatus.QUEUING: "Pending",
    JobStatus.RUNNING: "Running",
    JobStatus.STOPPING: "Running",
    JobStatus.SUCCEEDED: "Succeeded",
    JobStatus.FAILED: "Failed",
    JobStatus.STOPPED: "Failed",
}


class PooledClient:
    """A provider's one pooled httpx client: made from the settings unless one is passed in (tests, a shared
    pool), and closed by ``aclose`` only when the provider made it."""

    _client: httpx.AsyncClient
    _owns_client: bool

    def _open_client(self, settings: Any, client: httpx.AsyncClient | None = None, **options: Any) -> httpx.AsyncClient:
        self._owns_client = client is None
        self._client = client or create_client(settings, **options)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@asynccontextmanager
async def first_error() -> AsyncIterator[None]:
    """Around a task group: concurrent calls fail as the first of them did, not as an ExceptionGroup (callers
    and the error mapping above them catch the platform's own exceptions)."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from None


async def gather(tasks: list[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    """Run ``tasks`` concurrently; the first failure cancels the rest and is raised as itself."""
    async with first_error(), anyio.create_task_group() as tg:
        for task in tasks:
            tg.start_soon(task)


T = TypeVar("T")


async def look_again(
    find: Callable[[], Awaitable[T | None]], delays: Iterable[float], sleep: Callable[[float], Awaitable[None]]
) -> T | None:
    """``find`` after each delay (0: at once) until it finds something, else None. A platform's listing is
    eventually consistent: what a create of unknown outcome made may show up only a moment later."""
    for delay in delays:
        if delay:
            await sleep(delay)
        found = await find()
        if found is not None:
            return found
    return None


async def job_for_quote(
    request: JobRequest,
    find: Callable[[str, str], Awaitable[Job | None]],
    log: logging.Logger,
    *,
    what: str = "job",
) -> Job | None:
    """The job the request's quote already paid for (``find`` looks it up by the quote tag), else None:
    a create retried with the same quote returns that job instead of making a second one."""
    quote = request.tags.get(TAG_QUOTE_ID)
    if not quote:
        return None
    existing = await find(TAG_QUOTE_ID, quote)
    if existing is not None:
        log.info("%s %s already exists for quote %s; not creating another", what, existing.job_id, quote)
    return existing


def error_text(message: str, secrets: Iterable[str], limit: int = 400) -> str:
    """A platform's error message as the server repeats it: every known secret (4+ characters) as ``***``,
    at most ``limit`` characters (the cut marked with …)."""
    for value in secrets:
        if value and len(value) >= 4:
            message = message.replace(value, "***")
    return message if len(message) <= limit else message[: limit - 1] + "…"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The standard ``Retry-After`` header in seconds; None when absent, unreadable or not positive."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def check_job_shape(request: JobRequest) -> None:
    """A job type every platform knows and at least one worker (before any platform-specific check)."""
    if request.job_type not in JOB_TYPES:
        raise InvalidRequest(f"job_type {request.job_type!r} is not supported; allowed: {', '.join(JOB_TYPES)}")
    if request.worker_count < 1:
        raise InvalidRequest(f"worker_count must be at least 1, got {request.worker_count}")


def check_max_lines(max_lines: int | None) -> None:
    """``max_lines`` of a cloud log call: None (the platform's whole log) or at least one line."""
    if max_lines is not None and max_lines < 1:
        raise InvalidRequest(f"max_lines must be at least 1, got {max_lines}")


def metric_definitions_from(envs: Mapping[str, Any]) -> list[MetricDefinition]:
    """The job's ``CLOUDJOBS_METRIC_DEFINITIONS`` env parsed back; anything unreadable reads as none."""
    raw = envs.get(METRIC_DEFINITIONS_ENV)
    if not isinstance(raw, str) or not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    return [
        MetricDefinition(name=str(d["name"]), regex=str(d["regex"]))
        for d in data
        if isinstance(d, dict) and d.get("name") and d.get("regex")
    ]


def failure_summary(job: Job) -> str | None:
    """``"<reason_code>: <reason>"`` of a Failed job (the reason alone without a code); None otherwise."""
    if job.status != JobStatus.FAILED or not job.reason:
        return None
    return f"{job.reason_code}: {job.reason}" if job.reason_code else job.reason


def untracked_outputs(job_id: str, note: str) -> OutputModels:
    """``output_models`` of a platform that does not track what a job wrote: empty, the note says where."""
    return OutputModels(job_id=job_id, models=[], total=0, truncated=False, note=note)
