"""estimate_cost: the quote every job creation needs."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.models import JobType, Quote
from cloudjobs_mcp.server.toolserver import CloudJobsServer
from cloudjobs_mcp.tools._common import ProviderArg, caller_of, engine_of, tool_errors


class QuoteResult(Quote):
    next_step: str


def register(mcp: CloudJobsServer, settings: Settings) -> None:
    @mcp.tool(
        toolset="core",
        title="Estimate cost (quote)",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=False, open_world_hint=True),
    )
    async def estimate_cost(
        ctx: Context[Any, Any],
        estimated_minutes: float = Field(gt=0, description="Your estimate of the job's runtime in minutes"),
        ecs_spec: str | None = Field(default=None, description="instance_type from list_ecs_specs"),
        worker_count: int | None = Field(default=None, description="Number of workers (pods)"),
        max_runtime_minutes: float | None = Field(
            default=None, gt=0, le=10080, description="Hard limit in minutes: the job is stopped when it runs this long"
        ),
        job_type: JobType | None = Field(default=None, description="Default PyTorchJob"),
        template_id: str | None = Field(default=None, description="Quote a run of this job template"),
        template_version: int | None = Field(default=None, description="Template version; default: its default"),
        spot: bool = Field(default=False, description="Quote spot capacity (cheaper, can be reclaimed)"),
        spot_price_limit: float | None = Field(default=None, gt=0, description="Highest spot price per worker-hour"),
        provider: ProviderArg = None,
    ) -> QuoteResult:
        """Quote the cost of a job before creating it: per-worker and total hourly price, the estimated
        total, the worst case if it runs to max_runtime_minutes, and a quote_id that expires. With
        template_id the template's spec, workers and max runtime are used (the arguments override them
        where its constraints allow). With spot=true the estimate is at the latest spot price and the worst
        case at spot_price_limit (or on-demand). You MUST show `display_text` to the user and get their
        approval before create_training_job, which needs this quote_id and the same spec, worker count,
        job type, spot and template. With several providers and no `provider`, the one offering `ecs_spec`
        is quoted. A spec with no known price is quoted as "price unknown" (refused under a budget cap)."""
        with tool_errors():
            quote = await engine_of(ctx).estimate(
                ecs_spec=ecs_spec,
                worker_count=worker_count,
                estimated_minutes=estimated_minutes,
                max_runtime_minutes=max_runtime_minutes,
                job_type=job_type,
                template_id=template_id,
                template_version=template_version,
                spot=spot,
                spot_price_limit=spot_price_limit,
                caller=caller_of(ctx),
                provider=provider,
            )
        return QuoteResult(
            **quote.model_dump(),
            next_step=(
                (
                    "The price is UNKNOWN: tell the user plainly that the cost of this job is not known. "
                    if quote.per_worker_hourly is None
                    else ""
                )
                + "Show display_text to the user and ask whether to proceed. Only after they approve, call "
                f"create_training_job with quote_id={quote.quote_id!r}, "
                + (
                    f"template_id={quote.template_id!r} (version {quote.template_version}), "
                    if quote.template_id
                    else f"ecs_spec={quote.ecs_spec!r}, worker_count={quote.worker_count}, "
                    f"job_type={quote.job_type!r}, "
                )
                + (f"spot=true, spot_price_limit={quote.spot_price_limit}." if quote.spot else "and no spot.")
            ),
        )
