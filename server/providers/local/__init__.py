"""The ``local`` provider: jobs run as real processes on this machine.

``LocalProvider`` (``provider.py``) implements the ``Provider`` protocol on top of the reusable
``Executor`` (``executor.py``), which runs pods as detached processes watched by one supervisor process
per job (``supervisor.py``) and keeps their state in SQLite (``store.py``). ``machine.py`` detects this
machine's CPUs, memory and GPUs and builds the specs offered on it.

``LocalProvider`` is imported lazily so that supervisor processes, which import this package, start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudjobs_mcp.server.providers.local.executor import Executor
    from cloudjobs_mcp.server.providers.local.provider import LocalProvider

__all__ = ["Executor", "LocalProvider"]


def __getattr__(name: str) -> Any:
    if name == "LocalProvider":
        from cloudjobs_mcp.server.providers.local.provider import LocalProvider

        return LocalProvider
    if name == "Executor":
        from cloudjobs_mcp.server.providers.local.executor import Executor

        return Executor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
