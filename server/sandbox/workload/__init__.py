"""Workload sandbox: an offline Primus-SaFE apiserver (the seed's Workload API, as the platform's code
answers it) whose workloads run through the local provider's executor.

    from cloudjobs_mcp.server.sandbox.workload import WorkloadSandboxSettings, serve

    async with serve(WorkloadSandboxSettings(state_dir=tmp)) as running:
        running.url, running.sandbox.api_key, running.sandbox.password
        running.env()            # CLOUDJOBS_* variables for the workload provider

Modules: ``settings`` (flavors, workspaces, timings), ``wire`` (errors, times, quantities), ``views`` (a
workload and how GET shows it), ``app`` (routes, auth, handlers, scheduler), ``runner`` (serve, CLI).
"""

from __future__ import annotations

from cloudjobs_mcp.server.sandbox.workload.app import WorkloadSandbox
from cloudjobs_mcp.server.sandbox.workload.runner import RunningWorkloadSandbox, serve
from cloudjobs_mcp.server.sandbox.workload.settings import WorkloadSandboxSettings

__all__ = ["RunningWorkloadSandbox", "WorkloadSandbox", "WorkloadSandboxSettings", "serve"]
