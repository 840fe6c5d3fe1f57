"""Running a workload sandbox: in-process on a loopback port (:func:`serve`) and as
``cloudjobs-mcp sandbox --cloud workload`` (:func:`run`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudjobs_mcp.server.sandbox.runner import RunningFace, default_state_dir, serve_face, serve_until_interrupted
from cloudjobs_mcp.server.sandbox.workload.app import WorkloadSandbox
from cloudjobs_mcp.server.sandbox.workload.settings import WorkloadSandboxSettings


@dataclass
class RunningWorkloadSandbox(RunningFace[WorkloadSandbox]):
    def env(self, *, api_key: bool = True) -> dict[str, str]:
        return self.sandbox.env(self.url, api_key=api_key)

    def settings_overrides(self, *, api_key: bool = True) -> dict[str, Any]:
        """``Settings`` fields that point the ``workload`` provider here."""
        return {k.removeprefix("CLOUDJOBS_").lower(): v for k, v in self.env(api_key=api_key).items()}


@asynccontextmanager
async def serve(
    sandbox: WorkloadSandbox | WorkloadSandboxSettings, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningWorkloadSandbox]:
    """Serve ``sandbox`` with uvicorn in this event loop on a free port; its workloads are stopped on exit."""
    sandbox = sandbox if isinstance(sandbox, WorkloadSandbox) else WorkloadSandbox(sandbox)
    async with serve_face(sandbox, host, port, stop=sandbox.stop_all) as bound:
        yield RunningWorkloadSandbox(sandbox, host, bound)


def banner(running: RunningWorkloadSandbox) -> str:
    sb = running.sandbox
    s = sb.settings
    lines = [
        f"Workload sandbox (Primus-SaFE Workload API) on {running.url}{s.api_prefix}",
        f"state {s.state_dir}; workloads run as processes on this machine; logs kept {s.ttl_seconds} s after "
        f"the end unless a workload asks for longer; log search {'on' if s.log_search else 'off'}",
        "workspaces: " + ", ".join(f"{w.workspace_id} ({w.nodes} x {w.flavor_id})" for w in s.workspaces),
        "create body: "
        + (
            "resources[]/images[]/entryPoints[] (a build after 2026-01-09)"
            if s.head_schema
            else "resource/image/entryPoint (a seed-era build)"
        ),
        "",
        f"API key:  {sb.api_key}",
        f"user:     {s.user}",
        f"password: {sb.password}",
        "",
        "Point cloudjobs-mcp's workload provider at it (an API key; or CLOUDJOBS_WORKLOAD_USER and",
        "CLOUDJOBS_WORKLOAD_PASSWORD instead of CLOUDJOBS_WORKLOAD_API_KEY):",
        "",
        *(f"  export {k}={v}" for k, v in running.env().items()),
        "  export NO_PROXY=127.0.0.1,localhost   # only if you use an HTTP proxy",
        "",
        "Stop with Ctrl-C (workloads are in memory: a restart forgets them).",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``cloudjobs-mcp sandbox --cloud workload``: serve until interrupted."""
    state: Path = (args.state or default_state_dir()).expanduser() / "workload"
    try:
        settings = WorkloadSandboxSettings(
            state_dir=state,
            pending_seconds=args.queuing_seconds,
            ttl_seconds=args.log_ttl_seconds,
            log_search=args.log_search,
            head_schema=args.head_schema,
            password=args.password,
            api_key=args.api_key,
        )
        sandbox = WorkloadSandbox(settings)
        if args.fail_503:
            sandbox.faults.fail_503(args.fail_503)
        if args.latency:
            sandbox.faults.latency(args.latency)
    except (ValueError, OSError) as exc:
        print(f"cloudjobs-mcp sandbox: {exc}", file=sys.stderr)
        return 2

    def show(host: str, port: int) -> str:
        return banner(RunningWorkloadSandbox(sandbox, host, port))

    return serve_until_interrupted(sandbox, args.host, args.port, show, "Workload")
