"""Dedicated resource pools: list_pools and list_pool_workloads (seed 002, ModelArts' ListWorkloads)."""

from __future__ import annotations

from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.engine import Engine
from cloudjobs_mcp.server.errors import InvalidRequest
from cloudjobs_mcp.server.models import Model, Pool, PoolWorkloadPage
from cloudjobs_mcp.server.providers.base import PoolProvider
from cloudjobs_mcp.server.toolserver import CloudJobsServer
from cloudjobs_mcp.tools._common import ProviderArg, engine_of, tool_errors

READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True)
WorkloadType = Literal["train", "infer", "notebook", "x-infer"]
WorkloadStatus = Literal[
    "Queue", "Pending", "Abnormal", "Terminating", "Creating", "Running", "Completed", "Terminated", "Failed"
]


class PoolList(Model):
    provider: str
    pools: list[Pool]
    note: str


def pool_provider(engine: Engine, name: str | None) -> PoolProvider:
    """The named provider (else the default, else the one enabled provider with pools) when it has dedicated
    pools; otherwise a clear refusal."""
    provider = engine.pick(name)
    if name is None and not isinstance(provider, PoolProvider):
        provider = next((p for p in engine.providers.values() if isinstance(p, PoolProvider)), provider)
    if not isinstance(provider, PoolProvider):
        raise InvalidRequest(
            f"Dedicated resource pools are a ModelArts feature: the {provider.name} provider has none (its jobs run "
            "on its own resources or quotas; see get_workload_info). Enable and name the modelarts provider "
            "(CLOUDJOBS_PROVIDERS) to use these tools."
        )
    return provider


def register(mcp: CloudJobsServer, settings: Settings) -> None:
    @mcp.tool(toolset="pools", title="List dedicated resource pools", annotations=READ)
    async def list_pools(ctx: Context[Any, Any], provider: ProviderArg = None) -> PoolList:
        """The account's dedicated resource pools (ModelArts): each pool's id (pass it as pool_name to
        list_pool_workloads, or as resource_id when creating a job on it), phase, enabled job types, nodes by
        flavor, and whether it can take training jobs. Only the modelarts provider has pools."""
        with tool_errors():
            chosen = pool_provider(engine_of(ctx), provider)
            pools = await chosen.list_pools()
        usable = [p.pool_id for p in pools if p.usable_for_training]
        note = (
            f"{len(usable)} of {len(pools)} pool(s) take training jobs: " + ", ".join(usable)
            if pools
            else "No dedicated pools: jobs run on the public resource pool."
        )
        return PoolList(provider=chosen.name, pools=pools, note=note)

    @mcp.tool(toolset="pools", title="Jobs on a dedicated pool", annotations=READ)
    async def list_pool_workloads(
        ctx: Context[Any, Any],
        pool_name: str = Field(description="The pool's id (metadata.name) from list_pools"),
        type: list[WorkloadType] | None = Field(default=None, description="Only these job types (several allowed)"),
        status: WorkloadStatus | None = Field(default=None, description="Only workloads in this status"),
        sort: Literal["create_time"] | None = Field(default=None, description="Sort by creation time"),
        order: Literal["asc", "desc"] | None = Field(default=None, description="With sort: oldest or newest first"),
        limit: int = Field(default=50, ge=1, le=500, description="At most this many"),
        offset: int = Field(default=0, ge=0, description="Skip this many (paging)"),
        provider: ProviderArg = None,
    ) -> PoolWorkloadPage:
        """The jobs queued or running on one dedicated pool (training, inference, notebooks — yours and other
        users'), each with status, queue position, priority, how long it waited and ran, its flavor and the
        resources it asked for. Use it to see why a job waits: who is ahead of it in the pool."""
        with tool_errors():
            chosen = pool_provider(engine_of(ctx), provider)
            return await chosen.list_pool_workloads(
                pool_name, types=list(type or []), status=status, sort=sort, order=order, limit=limit, offset=offset
            )
