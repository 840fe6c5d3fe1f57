"""list_ecs_specs and resolve_image: choosing hardware and the container image."""

from __future__ import annotations

from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.models import Accelerator, Image, Model
from cloudjobs_mcp.server.offers import SpecRow, priced_rows
from cloudjobs_mcp.server.toolserver import CloudJobsServer
from cloudjobs_mcp.tools._common import ProviderArg, engine_of, tool_errors

SortKey = Literal["CPU", "GPU", "Memory", "Price"]
_SORT = {
    "CPU": lambda s: s.cpu,
    "GPU": lambda s: s.gpu_count,
    "Memory": lambda s: s.memory_gb,
    # Prices compare only within a currency: rows sort by currency first, unpriced rows last.
    "Price": lambda s: (s.currency or "", float("inf") if s.price_per_hour is None else s.price_per_hour),
}


class SpecList(Model):
    provider: str | None = Field(description="The provider listed; None when every enabled provider was")
    region: str | None
    specs: list[SpecRow]
    total_matching: int = Field(description="How many specs matched before `limit` was applied")
    truncated: bool
    unavailable: dict[str, str] = Field(default_factory=dict, description="Providers that failed, and why")
    hint: str


def register(mcp: CloudJobsServer, settings: Settings) -> None:
    @mcp.tool(
        toolset="core",
        title="List machine specs",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def list_ecs_specs(
        ctx: Context[Any, Any],
        accelerator_type: Accelerator | None = Field(default=None, description="CPU or GPU; omit for both"),
        sort_by: SortKey | None = Field(default=None, description="Sort key"),
        order: Literal["asc", "desc"] = "asc",
        min_cpu: int | None = Field(default=None, ge=0),
        min_memory_gb: float | None = Field(default=None, ge=0),
        min_gpu: int | None = Field(default=None, ge=0),
        gpu_type: str | None = Field(default=None, description="Substring of the GPU model, e.g. A10, T4"),
        limit: int = Field(default=20, ge=1, le=100),
        provider: ProviderArg = None,
    ) -> SpecList:
        """List the machine specs (instance types) jobs can run on, with vCPUs, memory, GPUs and the hourly
        price where known. Call this before estimate_cost to pick `ecs_spec`. Do not default to GPU:
        shell scripts, data processing and small tests need only a CPU spec; GPU specs are for model
        training, CUDA work and large-model fine-tuning. Without `provider`, every enabled provider's specs,
        each row naming its provider and currency. Returns at most `limit` specs."""
        with tool_errors():
            engine = engine_of(ctx)
            found, failures = await engine.all_specs(provider)
            specs = priced_rows(engine, found)
        matching = [
            s
            for s in specs
            if (accelerator_type is None or s.accelerator == accelerator_type)
            and (min_cpu is None or s.cpu >= min_cpu)
            and (min_memory_gb is None or s.memory_gb >= min_memory_gb)
            and (min_gpu is None or s.gpu_count >= min_gpu)
            and (gpu_type is None or gpu_type.lower() in (s.gpu_type or "").lower())
        ]
        if sort_by is not None:
            matching.sort(key=_SORT[sort_by], reverse=order == "desc")
        single = engine.providers[next(iter(found))] if len(found) == 1 and not failures else None
        return SpecList(
            provider=single.name if single else None,
            region=single.region if single else None,
            specs=matching[:limit],
            total_matching=len(matching),
            truncated=len(matching) > limit,
            unavailable=failures,
            hint="Pass the chosen instance_type as ecs_spec to estimate_cost, then show the user the quote."
            if matching
            else "No spec matched these filters; relax them or call without filters.",
        )

    @mcp.tool(
        toolset="core",
        title="Resolve the container image",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
    )
    async def resolve_image(
        ctx: Context[Any, Any],
        job_type: str = Field(description="PyTorchJob, TFJob, MPIJob, XGBoostJob or RayJob"),
        chip_type: Accelerator = Field(default="CPU", description="CPU or GPU, matching the spec's accelerator"),
        provider: ProviderArg = None,
    ) -> Image:
        """Find the best official image for a job type and chip type (standard images preferred over
        accl/ngc variants, newest first). Optional: create_training_job resolves the image itself from
        the spec; use this to show or pin the image. On the local provider it explains that jobs run in
        the host's Python environment."""
        from cloudjobs_mcp.server.engine import check_job_type

        with tool_errors():
            check_job_type(job_type)
            return await engine_of(ctx).pick(provider).resolve_image(job_type, chip_type)
