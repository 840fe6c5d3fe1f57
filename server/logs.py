"""Fitting the logs of many pods into a result an LLM can read."""

from __future__ import annotations

import anyio
from pydantic import BaseModel, Field

from server.engine import Engine
from server.errors import InvalidRequest
from server.models import LogPage

MARKER = "[… {n} earlier lines cut …]"
MARKER_ROOM = 48  # bytes kept free for the marker line


class PodLog(BaseModel):
    pod_id: str
    lines: list[str]
    truncated: bool = Field(description="True when earlier lines were cut to fit the size limit")


class JobLogs(BaseModel):
    job_id: str
    pods: list[PodLog]
    truncated: bool
    bytes: int
    note: str


async def job_logs(engine: Engine, job_id: str, *, pod_id: str | None, tail_lines: int, max_bytes: int) -> JobLogs:
    job = await engine.get(job_id)
    pods = [p.pod_id for p in job.pods]
    if pod_id is not None:
        if pod_id not in pods:
            raise InvalidRequest(f"Job {job.job_id} has no pod {pod_id!r}; its pods are: {', '.join(pods) or 'none'}.")
        pods = [pod_id]
    pages: dict[str, LogPage] = {}

    async def fetch(pid: str) -> None:
        pages[pid] = await engine.provider.pod_logs(job.job_id, pid, max_lines=tail_lines)

    async with anyio.create_task_group() as tg:  # one request per pod, all at once
        for pid in pods:
            tg.start_soon(fetch, pid)
    fitted = fit([pages[p] for p in pods], max_bytes)
    size = sum(len(line.encode()) + 1 for p in fitted for line in p.lines)
    cut = any(p.truncated for p in fitted)
    if not pods:
        note = f"Job {job.job_id} has no pods yet ({job.status.value}); try again once it runs."
    elif cut:
        note = (
            f"Output cut to {max_bytes} bytes: each pod shows its last lines. Pass pod_id for one pod, or a "
            "larger max_bytes / smaller tail_lines."
        )
    else:
        note = f"Last {tail_lines} lines of each pod at most."
    return JobLogs(job_id=job.job_id, pods=fitted, truncated=cut, bytes=size, note=note)


def fit(pages: list[LogPage], max_bytes: int) -> list[PodLog]:
    """Keep each pod's newest lines within an equal share of max_bytes (unused share is passed on)."""
    out: list[PodLog] = []
    budget = max_bytes
    for i, page in enumerate(pages):
        share = budget // (len(pages) - i)
        kept, used = _tail_within(page.lines, share)
        dropped = len(page.lines) - len(kept)
        if dropped:
            kept, used = _tail_within(page.lines, max(share - MARKER_ROOM, 0))
            dropped = len(page.lines) - len(kept)
            if not kept and page.lines and share > MARKER_ROOM + 8:
                # one line longer than the whole share: keep its end
                last = page.lines[-1].encode()[-(share - MARKER_ROOM - 4) :].decode(errors="ignore")
                kept, used = ["…" + last], len(last.encode()) + 4
            marker = MARKER.format(n=dropped)
            kept, used = [marker, *kept], used + len(marker.encode()) + 1
        budget -= used
        out.append(PodLog(pod_id=page.pod_id, lines=kept, truncated=page.truncated or dropped > 0))
    return out


def _tail_within(lines: list[str], limit: int) -> tuple[list[str], int]:
    used, start = 0, len(lines)
    while start > 0:
        size = len(lines[start - 1].encode()) + 1
        if used + size > limit:
            break
        used += size
        start -= 1
    return lines[start:], used
