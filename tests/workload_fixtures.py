"""Shared helpers for tests that run the workload sandbox in-process and drive it over loopback HTTP.

async with workload_sandbox(tmp_path) as sb:                     # .url, .sandbox (api_key, password, calls)
    async with workload_provider(sb, tmp_path) as provider:      # the real provider, fast retries
        ...
    async with workload_client(sb, tmp_path) as client:          # an MCP Client on the workload provider
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client

from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.providers.workload import WorkloadProvider
from cloudjobs_mcp.server.sandbox.workload import RunningWorkloadSandbox, WorkloadSandboxSettings, serve
from tests.conftest import Asker, stop_leftover_runs
from tests.sandbox_fixtures import FAST_POLICY, fast_sleep, loopback_client

FAST_WORKLOAD: dict[str, Any] = {
    "pending_seconds": 0.15,
    "mirror_lag_seconds": 0.2,
    "poll_seconds": 0.02,
    "stop_grace_seconds": 1.0,
}
FAST_RECONCILE = (0.0, 0.1, 0.2, 0.4)


@asynccontextmanager
async def workload_sandbox(tmp_path: Path, **settings: Any) -> AsyncIterator[RunningWorkloadSandbox]:
    """A sandbox on a free 127.0.0.1 port with fast timings; its workloads are stopped (and checked dead)."""
    state = tmp_path / "workload-sandbox"
    try:
        async with serve(WorkloadSandboxSettings(state_dir=state, **{**FAST_WORKLOAD, **settings})) as running:
            yield running
    finally:
        stop_leftover_runs(state)


def workload_settings(
    sb: RunningWorkloadSandbox, tmp_path: Path, *, api_key: bool = True, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        **sb.settings_overrides(api_key=api_key),
        "state_dir": tmp_path / "mcp-state",
        "max_retries": 4,
        "http_timeout_seconds": 10.0,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


@asynccontextmanager
async def workload_provider(
    sb: RunningWorkloadSandbox, tmp_path: Path, *, api_key: bool = True, **overrides: Any
) -> AsyncIterator[WorkloadProvider]:
    cfg = workload_settings(sb, tmp_path, api_key=api_key, **overrides)
    async with loopback_client(cfg) as http:
        yield WorkloadProvider(cfg, client=http, policy=FAST_POLICY, sleep=fast_sleep, reconcile_delays=FAST_RECONCILE)


@asynccontextmanager
async def workload_client(
    sb: RunningWorkloadSandbox,
    tmp_path: Path,
    *,
    api_key: bool = True,
    asker: Asker | None = None,
    providers: list[WorkloadProvider] | None = None,
    **overrides: Any,
) -> AsyncIterator[Client]:
    """A connected MCP client whose server uses the workload provider against ``sb``."""
    async with workload_provider(sb, tmp_path, api_key=api_key, **overrides) as provider:
        if providers is not None:
            providers.append(provider)
        server = build_server(provider.settings, provider=provider)
        async with Client(server, elicitation_callback=asker or Asker(), cache=None) as client:  # type: ignore[arg-type]
            yield client
