"""wait_job_complete: follow a job to its end, across several bounded calls."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from server import watch
from server.config import Settings
from server.watch import WaitResult
from tools._common import engine_of, tool_errors

DEFAULT_MAX_WAIT = 45.0  # below the 60 s request timeout many MCP clients use


def register(mcp: MCPServer, settings: Settings) -> None:
    @mcp.tool(
        title="Wait for a job to finish",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def wait_job_complete(
        ctx: Context[Any, Any],
        job_id: str,
        timeout: float = Field(
            default=7200,
            gt=0,
            description="Overall seconds to wait, counted from the first call for this job; past it the job is stopped",
        ),
        interval: float = Field(default=10, ge=0.05, le=600, description="Seconds between status polls"),
        max_wait_seconds: float = Field(
            default=DEFAULT_MAX_WAIT, gt=0, le=3600, description="Return after at most this long in one call"
        ),
    ) -> WaitResult:
        """Wait for a job to finish, reporting progress on every poll. Returns when the job ends or after
        max_wait_seconds with done=false ("still running": call again with the same job_id; the overall
        timeout keeps counting from the first call). If the job runs past `timeout` it is stopped. On
        Failed/Stopped the result has the reason, the failing pod and the tail of its log."""

        async def progress(done: float, total: float, message: str) -> None:
            await ctx.report_progress(done, total=total, message=message)

        with tool_errors():
            return await watch.wait(
                engine_of(ctx),
                job_id,
                timeout=timeout,
                interval=interval,
                max_wait_seconds=max_wait_seconds,
                progress=progress,
            )
