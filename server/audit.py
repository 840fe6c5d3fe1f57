"""The audit trail: one JSON line in ``<state>/audit.jsonl`` for every call that changes something.

Every tool whose ``read_only_hint`` is False (create, stop, delete, labels, templates, cleanup) is recorded
on every transport by one MCP middleware: time, identity, client, tool, arguments with secrets masked, the
quote (id, price, worst case), the job ids touched and the outcome. ``wait_job_complete`` is recorded only
when a safeguard tried to stop the job (its other calls only read).

Appends are safe with several servers on one state directory and against a crash mid-write: each line is
written by one ``O_APPEND`` write under an exclusive ``flock``, then fsynced. Should a writer die halfway
through a line, the next writer starts on a fresh line, and readers skip the torn fragment, so no complete
line is ever lost or merged with another.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from pydantic import BaseModel

from cloudjobs_mcp.server.access import caller_of, writes
from cloudjobs_mcp.server.identity import Caller
from cloudjobs_mcp.server.models import utcnow
from cloudjobs_mcp.server.redact import MASK, mask

AUDIT_FILE = "audit.jsonl"
MAX_STRING = 1000
_SECRET_KEY = re.compile(r"(?i)secret|token|passw|credential|api[_-]?key|access[_-]?key|private[_-]?key|auth")
_SAFEGUARD_OUTCOMES = {"timed_out", "image_pull_failed", "queue_timeout"}


class AuditLog:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / AUDIT_FILE

    def append(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # the previous writer died mid-line: keep its fragment apart from ours
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock

    def entries(
        self, *, since: datetime | None = None, identity: str | None = None, tool: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The complete lines that match, oldest first (a torn fragment is skipped)."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            for raw in handle:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(entry, dict):
                    continue
                if identity is not None and entry.get("identity") != identity:
                    continue
                if tool is not None and entry.get("tool") != tool:
                    continue
                if since is not None and str(entry.get("time", "")) < since.isoformat():
                    continue
                yield entry


def masked(value: Any, known: tuple[str, ...] = (), key: str = "") -> Any:
    """``value`` with secrets masked: values under secret-sounding keys, secret-shaped text, long strings cut."""
    if isinstance(value, dict):
        return {k: masked(v, known, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, known) for v in value]
    if isinstance(value, str):
        if key and _SECRET_KEY.search(key):
            return MASK
        text = mask(value, known)
        return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "…"
    return value


def _structured(result: Any) -> tuple[bool, dict[str, Any], str]:
    """(is_error, structured content, text) of a tools/call result, a model or its serialized dict."""
    if isinstance(result, BaseModel):
        result = result.model_dump(by_alias=True, exclude_none=True)
    if not isinstance(result, dict):
        return False, {}, ""
    text = " ".join(str(c.get("text", "")) for c in result.get("content") or [] if isinstance(c, dict))
    structured = result.get("structuredContent") or result.get("structured_content") or {}
    is_error = bool(result.get("isError") or result.get("is_error"))
    return is_error, structured if isinstance(structured, dict) else {}, text


def _job_ids(args: dict[str, Any], out: dict[str, Any]) -> list[str]:
    ids = [str(args["job_id"])] if args.get("job_id") else []
    if isinstance(out.get("job"), dict) and out["job"].get("job_id"):
        ids.append(str(out["job"]["job_id"]))
    elif out.get("job_id"):
        ids.append(str(out["job_id"]))
    for action in out.get("actions") or []:
        if isinstance(action, dict) and action.get("action") in ("stopped", "deleted", "error"):
            ids.append(str(action.get("job_id")))
    return list(dict.fromkeys(ids))


class AuditTrail:
    """The middleware: one line per call of a tool that changes something, after its outcome is known."""

    def __init__(self, mcp: MCPServer, log: AuditLog) -> None:
        self._mcp, self.log = mcp, log
        self.engine: Any = None  # set by the lifespan: the HTTP layer's refusals (stepup.py) have no request context

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        params = ctx.params or {}
        name = params.get("name")
        tool = next((t for t in await self._mcp.list_tools() if t.name == name), None)
        if tool is None or not writes(tool):
            return await call_next(ctx)
        args = params.get("arguments") or {}
        args = args if isinstance(args, dict) else {}
        try:
            result = await call_next(ctx)
        except Exception as exc:
            await self._write(ctx, str(name), args, {}, f"error: {type(exc).__name__}", "")
            raise
        if isinstance(result, dict) and result.get("resultType") == "input_required":
            return result  # a round of a multi-round call (the human is being asked): the last round is recorded
        is_error, out, text = _structured(result)
        if name == "wait_job_complete" and not is_error and out.get("outcome") not in _SAFEGUARD_OUTCOMES:
            return result
        detail = text if is_error else str(out.get("message") or out.get("summary") or "")
        await self._write(ctx, str(name), args, out, "error" if is_error else "ok", detail)
        return result

    async def refused(self, caller: Caller, tool: str, args: dict[str, Any], detail: str) -> None:
        """A call refused before it reached the MCP layer (HTTP 403 insufficient_scope)."""
        await self._record(caller, self.engine, tool, args, {}, "error", detail)

    async def _write(
        self, ctx: ServerRequestContext[Any, Any], tool: str, args: dict[str, Any], out: dict[str, Any], outcome: str,
        detail: str,
    ) -> None:  # fmt: skip
        await self._record(caller_of(ctx), ctx.lifespan_context, tool, args, out, outcome, detail)

    async def _record(
        self, caller: Caller, engine: Any, tool: str, args: dict[str, Any], out: dict[str, Any], outcome: str,
        detail: str,
    ) -> None:  # fmt: skip
        known: tuple[str, ...] = engine.known_secrets() if hasattr(engine, "known_secrets") else ()
        quote_id = args.get("quote_id") or out.get("quote_id")
        quote = engine.gate.peek(str(quote_id)) if quote_id and hasattr(engine, "gate") else None
        entry: dict[str, Any] = {
            "time": utcnow().isoformat(),
            "identity": caller.identity,
            "client": caller.client,
            "tool": tool,
            "arguments": masked(args, known),
            "quote_id": quote_id,
            "price_hourly": quote.total_hourly if quote else None,
            "worst_case": quote.worst_case_total if quote else None,
            "currency": quote.currency if quote else None,
            "job_ids": _job_ids(args, out),
            "outcome": outcome,
        }
        if detail:
            entry["detail"] = masked(detail, known)[:500]
        await anyio.to_thread.run_sync(self.log.append, entry)


def parse_since(text: str) -> datetime:
    """``2h``, ``30m``, ``7d`` ago, or an ISO 8601 time (UTC when it names no zone)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        return utcnow() - timedelta(seconds=float(match[1]) * units[match[2]])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: give a duration (30m, 2h, 7d) or an ISO time (2026-01-31T09:00)") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
