"""estimate_cost: the quote every job creation needs."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from server.config import Settings
from server.models import JobType, Quote
from tools._common import engine_of, tool_errors


class QuoteResult(Quote):
    next_step: str


def register(mcp: MCPServer, settings: Settings) -> None:
    @mcp.tool(
        title="Estimate cost (quote)",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=False, open_world_hint=True),
    )
    async def estimate_cost(
        ctx: Context[Any, Any],
        ecs_spec: str = Field(description="instance_type from list_ecs_specs"),
        worker_count: int = Field(description="Number of workers (pods)"),
        estimated_minutes: float = Field(gt=0, description="Your estimate of the job's runtime in minutes"),
        max_runtime_minutes: float = Field(
            gt=0, le=10080, description="Hard limit in minutes: the job is stopped when it runs this long"
        ),
        job_type: JobType = "PyTorchJob",
    ) -> QuoteResult:
        """Quote the cost of a job before creating it: per-worker and total hourly price, the estimated
        total, the worst case if it runs to max_runtime_minutes, and a quote_id that expires. You MUST
        show `display_text` to the user and get their approval before create_training_job, which needs
        this quote_id and the same spec, worker count and job type."""
        with tool_errors():
            quote = await engine_of(ctx).estimate(
                ecs_spec=ecs_spec,
                worker_count=worker_count,
                estimated_minutes=estimated_minutes,
                max_runtime_minutes=max_runtime_minutes,
                job_type=job_type,
            )
        return QuoteResult(
            **quote.model_dump(),
            next_step=(
                "Show display_text to the user and ask whether to proceed. Only after they approve, call "
                f"create_training_job with quote_id={quote.quote_id!r}, ecs_spec={quote.ecs_spec!r}, "
                f"worker_count={quote.worker_count} and job_type={quote.job_type!r}."
            ),
        )
