"""What every tool module shares: reaching the engine, turning engine errors into tool errors, and adding a
picture to a structured result."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import anyio
import pydantic_core
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field

from cloudjobs_mcp.server import plot
from cloudjobs_mcp.server.engine import Engine
from cloudjobs_mcp.server.errors import CloudJobsError
from cloudjobs_mcp.server.identity import Caller, current_caller

log = logging.getLogger("cloudjobs.tools")

# The one `provider` argument every tool takes (kept terse: every tool's schema carries it).
ProviderArg = Annotated[str | None, Field(description="Provider (list_providers); omit: automatic")]


def caller_of(ctx: Context[Any, Any]) -> Caller:
    """Who is calling: the verified token's identity over authenticated HTTP, else ``local``."""
    return current_caller(getattr(ctx.request_context.session, "client_params", None))


def engine_of(ctx: Context[Any, Any]) -> Engine:
    engine = ctx.request_context.lifespan_context
    assert isinstance(engine, Engine), "the server's lifespan must yield the Engine"
    return engine


@contextmanager
def tool_errors() -> Iterator[None]:
    """Engine errors carry messages written for the assistant: pass them on as the tool's error text."""
    try:
        yield
    except CloudJobsError as exc:
        log.info("tool refused: %s", exc)
        raise ToolError(str(exc)) from None


async def with_plot(result: BaseModel, title: str, panels: list[plot.Panel], size: tuple[int, int]) -> CallToolResult:
    """``result`` exactly as the tool returns it without a plot, followed by the curves as a PNG image
    (or, without the plotting library, a sentence saying how to get it)."""
    try:
        png = await anyio.to_thread.run_sync(plot.render_png, title, panels, size)
        picture: ImageContent | TextContent = ImageContent(
            type="image", data=base64.b64encode(png).decode(), mime_type="image/png"
        )
    except plot.PlotUnavailable as exc:
        log.warning("plot refused: %s", exc)
        picture = TextContent(type="text", text=str(exc))
    return CallToolResult(
        content=[
            TextContent(type="text", text=pydantic_core.to_json(result, fallback=str, indent=2).decode()),
            picture,
        ],
        structured_content=result.model_dump(mode="json", by_alias=True),
    )
