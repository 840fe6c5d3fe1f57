"""get_job_logs: every pod's log, bounded."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from server import logs
from server.config import Settings
from server.logs import JobLogs
from tools._common import engine_of, tool_errors


def register(mcp: MCPServer, settings: Settings) -> None:
    @mcp.tool(
        title="Read a job's logs",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
    )
    async def get_job_logs(
        ctx: Context[Any, Any],
        job_id: str,
        pod_id: str | None = Field(default=None, description="One pod (see get_job); omit for every pod"),
        tail_lines: int = Field(default=200, ge=1, le=5000, description="Last lines per pod"),
        max_bytes: int = Field(default=8000, ge=200, le=100_000, description="Size limit of the whole result"),
    ) -> JobLogs:
        """Read the logs (stdout and stderr) of a job's pods: every pod by default, the last tail_lines
        lines of each, cut to max_bytes in total (the result says when it cut). Use after
        wait_job_complete, or while a job runs to see its progress."""
        with tool_errors():
            return await logs.job_logs(
                engine_of(ctx), job_id, pod_id=pod_id, tail_lines=tail_lines, max_bytes=max_bytes
            )
