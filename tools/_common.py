"""What every tool module shares: reaching the engine and turning engine errors into tool errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

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
