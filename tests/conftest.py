"""Shared test helpers: a server on a temporary state directory, driven through a real MCP client."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestFormParams, ElicitRequestParams, ElicitResult

from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.providers.local.executor import Executor, pod_process_alive


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def stop_leftover_runs(path: Path) -> None:
    """Stop every local run under ``path`` still going and check its pods are dead: no test leaks a process."""
    if not (path / Executor.DB_NAME).exists():
        return
    ex = Executor(path)
    for run_id in ex.run_ids():
        state = ex.get(run_id)
        if not state.terminal:
            state = ex.stop(run_id, wait_seconds=10)
        assert state.terminal, f"run {run_id} still {state.status} at teardown"
        for pod in state.pods:
            deadline = time.monotonic() + 5
            while pod_process_alive(pod.pid, run_id) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not pod_process_alive(pod.pid, run_id), f"pod {pod.pod_id} left running"


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state dir whose runs are all stopped (and checked dead) at teardown."""
    path = tmp_path / "state"
    yield path
    stop_leftover_runs(path)


@pytest.fixture
def settings(state_dir: Path, tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def make_settings(tmp_path, **overrides: Any) -> Settings:
    """Test settings: every toolset on (test_toolsets.py covers the default set)."""
    base: dict[str, Any] = {"state_dir": tmp_path / "state", "local_stop_grace_seconds": 1.0, "toolsets": "all"}
    base.update(overrides)
    return Settings.from_env({}, **base)


class Asker:
    """An elicitation callback that answers with a fixed action and records every question."""

    def __init__(self, action: str = "accept", confirm: bool = True) -> None:
        self.action, self.confirm = action, confirm
        self.questions: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        assert isinstance(params, ElicitRequestFormParams)
        self.questions.append(params.message)
        if self.action == "accept":
            return ElicitResult(action="accept", content={"confirm": self.confirm})
        return ElicitResult(action=self.action)  # type: ignore[arg-type]


@asynccontextmanager
async def connect(
    settings: Settings, *, asker: Asker | None = None, mode: str = "auto", **kwargs: Any
) -> AsyncIterator[Client]:
    server = build_server(settings, **kwargs)
    async with Client(server, mode=mode, elicitation_callback=asker, cache=None) as client:  # type: ignore[arg-type]
        yield client


async def call(client: Client, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured result."""
    result = await client.call_tool(tool, args or {}, **kw)
    assert not result.is_error, f"{tool} failed: {error_text(result)}"
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, args: dict[str, Any] | None = None) -> str:
    """Call a tool that must fail; return its error text."""
    result = await client.call_tool(tool, args or {})
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    return error_text(result)


def error_text(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def smallest_cpu_spec(client: Client) -> str:
    specs = await call(client, "list_ecs_specs", {"accelerator_type": "CPU", "sort_by": "CPU"})
    return specs["specs"][0]["instance_type"]


def qargs(spec: str, workers: int = 1, minutes: float = 1, max_minutes: float = 5, **kw: Any) -> dict[str, Any]:
    return {
        "ecs_spec": spec,
        "worker_count": workers,
        "estimated_minutes": minutes,
        "max_runtime_minutes": max_minutes,
        **kw,
    }


async def quote(client: Client, spec: str, workers: int = 1, minutes: float = 1, max_minutes: float = 5, **kw: Any):
    return await call(client, "estimate_cost", qargs(spec, workers, minutes, max_minutes, **kw))


def create_args(spec: str, quote_id: str, command: str, workers: int = 1, **kw: Any) -> dict[str, Any]:
    return {
        "display_name": kw.pop("display_name", "test-job"),
        "user_command": command,
        "job_type": kw.pop("job_type", "PyTorchJob"),
        "ecs_spec": spec,
        "worker_count": workers,
        "quote_id": quote_id,
        **kw,
    }


async def wait_done(client: Client, job_id: str, **kw: Any) -> dict[str, Any]:
    args = {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 30, **kw}
    while True:
        result = await call(client, "wait_job_complete", args)
        if result["done"]:
            return result


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real Ray head on loopback for the session (token auth on, usage stats off), stopped and checked
    gone at the end. Its tests are all in the xdist group "ray" (``--dist loadgroup``): one pytest worker
    runs them all against this one head. Skips where the ``ray`` command is not installed."""
    if not (Path(sys.executable).parent / "ray").exists() and shutil.which("ray") is None:
        pytest.skip("ray is not installed (pip install 'cloudjobs-mcp[ray]')")
    from cloudjobs_mcp.server.providers.ray import cluster

    state = tmp_path_factory.mktemp("ray-state")
    # 127.0.0.2, not 127.0.0.1: Ray keeps it as the node IP, and a second node (127.0.0.3) can join.
    head = cluster.start_head(state, cpus=2, node_ip="127.0.0.2", job_start_timeout=300)
    try:
        yield head
    finally:
        cluster.down(state)
        assert not cluster.session_pids(head), "the Ray head left processes behind"
