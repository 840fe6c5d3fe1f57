"""What the sandbox faces (PAI, ModelArts, workload) share as ASGI apps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio


@asynccontextmanager
async def in_background(task: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """A lifespan: ``task`` (a face's scheduler) runs while the app is served and is cancelled when it stops."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(task)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
