"""list_providers and compare_offers: the enabled providers, and where a need is cheapest."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from cloudjobs_mcp.server import offers
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.models import Model
from cloudjobs_mcp.server.offers import OfferComparison, ProviderState
from cloudjobs_mcp.server.toolserver import CloudJobsServer
from cloudjobs_mcp.tools._common import ProviderArg, engine_of, tool_errors


class ProviderList(Model):
    providers: list[ProviderState]


def register(mcp: CloudJobsServer, settings: Settings) -> None:
    @mcp.tool(
        toolset="providers",
        title="List providers",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def list_providers(ctx: Context[Any, Any]) -> ProviderList:
        """The enabled providers (clouds, or this machine): label, region, currency, where credentials were
        found (never a value) and whether the API answered a quick live probe. The default one serves calls
        that name no provider. Call it first when a job may run on more than one provider."""
        with tool_errors():
            return ProviderList(providers=await offers.provider_states(engine_of(ctx)))

    @mcp.tool(
        toolset="providers",
        title="Compare offers",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def compare_offers(
        ctx: Context[Any, Any],
        estimated_minutes: float = Field(gt=0, description="Expected runtime in minutes"),
        worker_count: int = Field(default=1, ge=1, le=1000),
        gpu_type: str | None = Field(default=None, description="Substring of the GPU model, e.g. A10"),
        gpu_count: int | None = Field(default=None, ge=0, description="GPUs per worker, at least"),
        min_cpu: int | None = Field(default=None, ge=0),
        min_memory_gb: float | None = Field(default=None, ge=0),
        currency: str | None = Field(default=None, description="Rank all in this currency (configured rates only)"),
        include_unavailable: bool = Field(default=False, description="Also sold-out specs"),
        limit: int = Field(default=20, ge=1, le=100),
        provider: ProviderArg = None,
    ) -> OfferComparison:
        """Rank the specs that meet a need across every enabled provider by whole-job cost (price per worker-hour
        × workers × runtime), cheapest first. Currencies are ranked apart unless `currency` is given and the
        price table has a rate (each conversion is named); specs without a known price come last. Then quote
        the chosen one with estimate_cost(provider, ecs_spec)."""
        with tool_errors():
            return await offers.compare(
                engine_of(ctx),
                gpu_type=gpu_type,
                gpu_count=gpu_count,
                min_cpu=min_cpu,
                min_memory_gb=min_memory_gb,
                worker_count=worker_count,
                estimated_minutes=estimated_minutes,
                currency=currency,
                include_unavailable=include_unavailable,
                limit=limit,
                provider=provider,
            )
