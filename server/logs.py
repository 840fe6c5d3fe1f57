"""Fitting the logs of many pods into a result an LLM can read.

A log is read whole (up to the provider's cap) and shown as head + tail per pod, with the error block
(a traceback, an OOM kill, an NCCL or CUDA error) quoted first and a cursor to page through what was cut.
Every line that leaves here is masked for secrets. The serialized result never exceeds ``max_bytes``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime

import anyio
from pydantic import BaseModel, Field

from cloudjobs_mcp.server.diagnosis import find_error_block
from cloudjobs_mcp.server.engine import Engine
from cloudjobs_mcp.server.errors import InvalidRequest
from cloudjobs_mcp.server.models import Job, LogPage, Model
from cloudjobs_mcp.server.redact import mask
from cloudjobs_mcp.server.untrusted import fence, untrusted_field

HEAD_SHARE = 0.25  # of a pod's budget, for its first lines; the rest shows its last lines
ERROR_SHARE = 0.3  # of the whole budget, for the error block


class PodLog(Model):
    pod_id: str
    total_lines: int = Field(description="Lines the pod's log has (within since/until)")
    lines: list[str] = Field(description="Lines shown; a '[... lines a-b cut ...]' marker stands where lines were cut")
    truncated: bool


class ErrorBlock(Model):
    pod_id: str
    kind: str = Field(description="python_traceback, out_of_memory, nccl or cuda")
    line: int = Field(description="1-based line number where the block starts")
    lines: list[str]


class JobLogs(Model):
    job_id: str
    error_block: ErrorBlock | None = Field(description="The error to read first, when the log has one")
    pods: list[PodLog]
    truncated: bool
    next_cursor: str | None = Field(description="Pass as cursor to read the lines that were cut, page by page")
    note: str
    untrusted: str = untrusted_field()


@dataclass(frozen=True)
class Query:
    job_id: str
    pod_id: str | None
    tail_lines: int | None
    since: datetime | None
    until: datetime | None
    grep: str | None
    context: int

    def encode(self, pod: str, line: int) -> str:
        raw = {
            "j": self.job_id,
            "p": self.pod_id,
            "t": self.tail_lines,
            "s": self.since.isoformat() if self.since else None,
            "u": self.until.isoformat() if self.until else None,
            "g": self.grep,
            "c": self.context,
            "at": [pod, line],
        }
        return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")

    @staticmethod
    def decode(cursor: str, job_id: str) -> tuple[Query, str, int]:
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            query = Query(
                job_id=raw["j"],
                pod_id=raw["p"],
                tail_lines=raw["t"],
                since=datetime.fromisoformat(raw["s"]) if raw["s"] else None,
                until=datetime.fromisoformat(raw["u"]) if raw["u"] else None,
                grep=raw["g"],
                context=int(raw["c"]),
            )
            pod, line = str(raw["at"][0]), int(raw["at"][1])
        except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
            raise InvalidRequest("cursor is not valid: pass the next_cursor value of a previous get_job_logs") from None
        if query.job_id != job_id:
            raise InvalidRequest(f"cursor belongs to job {query.job_id}, not {job_id}: pass the matching job_id")
        return query, pod, line


async def job_logs(
    engine: Engine,
    job_id: str,
    *,
    pod_id: str | None = None,
    tail_lines: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    grep: str | None = None,
    context: int = 2,
    max_bytes: int = 8000,
    cursor: str | None = None,
    provider: str | None = None,
) -> JobLogs:
    job = await engine.get(job_id, provider)
    at: tuple[str, int] | None = None
    if cursor:
        query, pod, line = Query.decode(cursor, job.job_id)
        at = (pod, line)
    else:
        query = Query(job.job_id, pod_id, tail_lines, since, until, grep or None, context)
    if query.since and query.until and query.since >= query.until:
        raise InvalidRequest("since must be earlier than until")
    pattern = _compile(query.grep)
    pods = _pods(job, query.pod_id)
    pages = await fetch(engine, job, pods, query)
    logs = {p: _numbered(pages[p].lines, pattern, query.context) for p in pods}
    known = engine.known_secrets()
    if at is not None:
        return _page(job, query, logs, at, max_bytes, known)
    return _overview(job, query, logs, pages, max_bytes, known, pattern is not None)


async def fetch(engine: Engine, job: Job, pods: list[str], query: Query) -> dict[str, LogPage]:
    pages: dict[str, LogPage] = {}

    async def one(pid: str) -> None:
        pages[pid] = await engine.provider_of(job).pod_logs(
            job.job_id, pid, max_lines=query.tail_lines, since=query.since, until=query.until
        )

    async with anyio.create_task_group() as tg:  # one request per pod, all at once
        for pid in pods:
            tg.start_soon(one, pid)
    return pages


def _pods(job: Job, pod_id: str | None) -> list[str]:
    pods = [p.pod_id for p in job.pods]
    if pod_id is None:
        return pods
    if pod_id not in pods:
        raise InvalidRequest(f"Job {job.job_id} has no pod {pod_id!r}; its pods are: {', '.join(pods) or 'none'}.")
    return [pod_id]


def _compile(grep: str | None) -> re.Pattern[str] | None:
    if not grep:
        return None
    try:
        return re.compile(grep)
    except re.error as exc:
        raise InvalidRequest(f"grep is not a valid regular expression ({exc}): e.g. 'loss|error'") from None


def _numbered(lines: list[str], pattern: re.Pattern[str] | None, context: int) -> list[tuple[int, str]]:
    """(1-based line number, text) of every line, or of grep matches with their context lines."""
    if pattern is None:
        return list(enumerate(lines, 1))
    keep: dict[int, bool] = {}
    for i, line in enumerate(lines):
        if pattern.search(line):
            for j in range(max(0, i - context), min(len(lines), i + context + 1)):
                keep[j] = keep.get(j, False) or j == i
    out: list[tuple[int, str]] = []
    prev = -2
    for j in sorted(keep):
        if out and j != prev + 1:
            out.append((0, "--"))
        out.append((j + 1, f"{j + 1}{':' if keep[j] else '-'} {lines[j]}"))
        prev = j
    return out


def _cost(text: str) -> int:
    return len(json.dumps(text).encode()) + 2


def _take(items: list[tuple[int, str]], budget: int, known: tuple[str, ...]) -> tuple[list[str], int]:
    out, used = [], 0
    for _, text in items:
        text = mask(text[:2000], known)
        cost = _cost(text)
        if used + cost > budget:
            break
        out.append(text)
        used += cost
    return out, used


def _take_tail(items: list[tuple[int, str]], budget: int, known: tuple[str, ...]) -> tuple[list[str], int]:
    lines, used = _take(items[::-1], budget, known)
    return lines[::-1], used


def _marker(first: int, last: int) -> str:
    return f"[... lines {first}-{last} cut ({last - first + 1} lines): pass next_cursor to read them, or use grep ...]"


def _overview(
    job: Job,
    query: Query,
    logs: dict[str, list[tuple[int, str]]],
    pages: dict[str, LogPage],
    max_bytes: int,
    known: tuple[str, ...],
    grepping: bool,
) -> JobLogs:
    error = None if grepping else _error_block(job, pages, known)
    budget = max_bytes - 400  # keys, ids and the note
    result = None
    for _ in range(5):  # shrink until the serialized result fits
        result = _build_overview(job, query, logs, error, budget, known, grepping)
        size = serialized_size(result)
        if size <= max_bytes:
            return result
        budget -= size - max_bytes + 64
    assert result is not None
    return result.model_copy(update={"pods": [], "error_block": None, "note": result.note})


def _build_overview(
    job: Job,
    query: Query,
    logs: dict[str, list[tuple[int, str]]],
    error: ErrorBlock | None,
    budget: int,
    known: tuple[str, ...],
    grepping: bool,
) -> JobLogs:
    if error is not None:
        lines, used = _take(list(enumerate(error.lines)), int(budget * ERROR_SHARE), known)
        error = error.model_copy(update={"lines": lines})
        budget -= used + 120
    pods_out: list[PodLog] = []
    cursor: str | None = None
    remaining = budget
    names = list(logs)
    for i, pod in enumerate(names):
        items = logs[pod]
        share = max(remaining // (len(names) - i), 0)
        if _fits(items, share):
            shown, used = _take(items, share, known)
            pods_out.append(PodLog(pod_id=pod, total_lines=_count(items), lines=shown, truncated=False))
            remaining -= used
            continue
        room = max(share - 160, 0)
        head, head_used = _take(items, int(room * HEAD_SHARE), known)
        tail, tail_used = _take_tail(items[len(head) :], room - head_used, known)
        first_cut = len(head)
        last_cut = len(items) - len(tail) - 1
        first_no = _line_no(items, first_cut)
        last_no = _line_no(items, last_cut, backwards=True)
        marker = _marker(first_no, last_no)
        pods_out.append(PodLog(pod_id=pod, total_lines=_count(items), lines=[*head, marker, *tail], truncated=True))
        remaining -= head_used + tail_used + _cost(marker)
        if cursor is None:
            cursor = query.encode(pod, first_cut)
    cut = cursor is not None
    if not logs:
        note = f"Job {job.job_id} has no pods yet ({job.status.value}); try again once it runs."
    elif cut:
        note = (
            "Cut to fit: each pod shows its first and last lines"
            + ("" if error is None else ", the error block is quoted first")
            + ". Pass next_cursor to read the cut lines page by page, or narrow with grep, pod_id or since/until."
        )
    elif grepping:
        note = f"Lines matching {query.grep!r} with {query.context} lines of context ('N:' matches, 'N-' context)."
    else:
        note = "The whole log of each pod" + ("" if query.tail_lines is None else f" (last {query.tail_lines} lines)")
    return JobLogs(job_id=job.job_id, error_block=error, pods=pods_out, truncated=cut, next_cursor=cursor, note=note)


def _fits(items: list[tuple[int, str]], budget: int) -> bool:
    used = 0
    for _, text in items:
        used += len(text.encode()) + 4
        if used > budget:
            return False
    return True


def serialized_size(model: BaseModel) -> int:
    """Bytes of the result as a client may print it: JSON with spaces and ASCII escapes (the largest form)."""
    return len(json.dumps(model.model_dump(mode="json")).encode())


def _count(items: list[tuple[int, str]]) -> int:
    return sum(1 for n, _ in items if n > 0)


def _line_no(items: list[tuple[int, str]], index: int, backwards: bool = False) -> int:
    step = -1 if backwards else 1
    while 0 <= index < len(items):
        if items[index][0] > 0:
            return items[index][0]
        index += step
    return 0


def _page(
    job: Job,
    query: Query,
    logs: dict[str, list[tuple[int, str]]],
    at: tuple[str, int],
    max_bytes: int,
    known: tuple[str, ...],
) -> JobLogs:
    pod, start = at
    if pod not in logs:
        raise InvalidRequest(f"cursor points at pod {pod!r}, which job {job.job_id} no longer has")
    names = list(logs)
    items = logs[pod][start:]
    shown, _ = _take(items, max_bytes - 600, known)
    end = start + len(shown)
    if end < len(logs[pod]):
        cursor: str | None = query.encode(pod, end)
    else:
        later = names[names.index(pod) + 1 :]
        cursor = query.encode(later[0], 0) if later else None
    first, last = _line_no(logs[pod], start), _line_no(logs[pod], max(end - 1, start), backwards=True)
    note = f"Lines {first}-{last} of pod {pod}" + ("; pass next_cursor for more." if cursor else "; end of the logs.")
    return JobLogs(
        job_id=job.job_id,
        error_block=None,
        pods=[PodLog(pod_id=pod, total_lines=_count(logs[pod]), lines=shown, truncated=cursor is not None)],
        truncated=cursor is not None,
        next_cursor=cursor,
        note=note,
    )


def _error_block(job: Job, pages: dict[str, LogPage], known: tuple[str, ...]) -> ErrorBlock | None:
    """The error block of the failing pod first, else of any pod."""
    order = sorted(pages, key=lambda p: 0 if _pod_failed(job, p) else 1)
    for pod in order:
        block = find_error_block(pages[pod].lines)
        if block is not None:
            return ErrorBlock(pod_id=pod, kind=block.kind, line=block.line, lines=[mask(x, known) for x in block.lines])
    return None


def _pod_failed(job: Job, pod_id: str) -> bool:
    return any(p.pod_id == pod_id and p.exit_code not in (None, 0) for p in job.pods)


def render_text(logs: JobLogs) -> str:
    """Plain-text form (for the MCP resource)."""
    parts: list[str] = []
    if logs.error_block:
        e = logs.error_block
        parts += [f"== error block ({e.kind}) in {e.pod_id} at line {e.line}", *e.lines, ""]
    for pod in logs.pods:
        parts += [f"== {pod.pod_id} ({pod.total_lines} lines)", *pod.lines, ""]
    return fence("\n".join(parts)) + "\n" + logs.note
