"""Shared helpers for tests that run the PAI sandbox in-process and drive it over loopback HTTP.

    async with running_sandbox(tmp_path) as sb:          # a RunningSandbox: .url, .faults, .access_key, .sandbox
        async with pai_client(sb, tmp_path) as client:   # an MCP Client on the pai provider, pointed at it
            await client.call_tool("list_ecs_specs", {})
            job = await create_job(client, "python train.py", spec="ecs.gn6i-c4g1.xlarge")  # quote + create
            await until(lambda: status_of(sb, job["job_id"]), "Running")                    # poll

The pai provider runs its real retry loop with a fast policy (``FAST_POLICY``) and a ``sleep`` capped at
``MAX_SLEEP`` seconds, so throttling storms and reconciliation delays take fractions of a second.
Its HTTP client ignores proxy variables, so nothing leaves loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client

from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.http import USER_AGENT, RetryPolicy
from cloudjobs_mcp.server.providers.pai import signing
from cloudjobs_mcp.server.providers.pai.provider import PaiProvider
from cloudjobs_mcp.server.sandbox import AccessKey, RunningSandbox, SandboxSettings, serve
from tests.conftest import Asker, call, create_args, quote

SCRIPT = Path(sys.executable).parent / "cloudjobs-mcp"


@dataclass
class SandboxCommand:
    """A ``cloudjobs-mcp sandbox`` process: its banner, then (once stopped) what it printed after it."""

    proc: subprocess.Popen[str]
    banner: list[str] = field(default_factory=list)
    out: str = ""
    err: str = ""

    @property
    def exports(self) -> dict[str, str]:
        """The banner's ``export NAME=value`` lines (not the commented proxy hint)."""
        return dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in self.banner
            if "export " in line and "#" not in line
        )


def run_demo(tmp_path: Path, provider: str) -> str:
    """``cloudjobs-mcp demo --provider <provider>`` as a user runs it; what it printed (it must succeed)."""
    out = subprocess.run(
        [str(SCRIPT), "demo", "--provider", provider],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@contextmanager
def sandbox_command(tmp_path: Path, *args: str) -> Iterator[SandboxCommand]:
    """Run ``cloudjobs-mcp sandbox <args>`` on a free loopback port with its state under ``tmp_path``, as a user
    would; yields once the banner is printed, and stops it with Ctrl-C (SIGINT) on exit."""
    proc = subprocess.Popen(
        [str(SCRIPT), "sandbox", *args, "--port", "0", "--state", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    run = SandboxCommand(proc)
    try:
        deadline = time.monotonic() + 30
        while not any(line.startswith("Stop with Ctrl-C") for line in run.banner):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(run.banner)
            run.banner.append(proc.stdout.readline())  # type: ignore[union-attr]
        yield run
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            run.out, run.err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


FAST_POLICY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, max_total=10.0, max_retry_after=0.5)
MAX_SLEEP = 0.05
FAST_SANDBOX: dict[str, Any] = {
    "creating_seconds": 0.15,
    "queuing_seconds": 0.15,
    "stop_grace_seconds": 1.0,
    "poll_seconds": 0.02,
    "metrics_seconds": 0.2,
}


async def fast_sleep(delay: float) -> None:
    await anyio.sleep(min(delay, MAX_SLEEP))


@asynccontextmanager
async def running_sandbox(tmp_path: Path, **settings: Any) -> AsyncIterator[RunningSandbox]:
    """A sandbox on a free 127.0.0.1 port with fast timings; its unfinished jobs are stopped on exit."""
    values = {**FAST_SANDBOX, **settings}
    async with serve(SandboxSettings(state_dir=tmp_path / "sandbox", **values)) as running:
        yield running


def pai_settings(sandbox: RunningSandbox, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **sandbox.settings_overrides(),
        "state_dir": tmp_path / "mcp-state",
        "max_retries": 4,
        "http_timeout_seconds": 10.0,
        "toolsets": "all",
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


def loopback_client(settings: Settings) -> httpx.AsyncClient:
    """What ``server.http.create_client`` builds, minus proxies from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout_seconds, connect=5.0),
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )


def pai_provider(
    settings: Settings,
    key: AccessKey,
    client: httpx.AsyncClient,
    *,
    policy: RetryPolicy | None = FAST_POLICY,
    home: Path | None = None,
) -> PaiProvider:
    """The real pai provider with ``key`` in its (injected) environment."""
    return PaiProvider(
        settings,
        client=client,
        env={**key.env(), "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"},
        home=home,
        policy=policy,
        sleep=fast_sleep,
    )


@asynccontextmanager
async def pai_client(
    sandbox: RunningSandbox,
    tmp_path: Path,
    *,
    key: AccessKey | None = None,
    asker: Asker | None = None,
    policy: RetryPolicy | None = FAST_POLICY,
    providers: list[PaiProvider] | None = None,
    **settings: Any,
) -> AsyncIterator[Client]:
    """A connected MCP client whose server uses the pai provider against ``sandbox``.

    ``key`` defaults to the sandbox's own; ``providers`` (a list) receives the provider, for tests that
    also call it directly (e.g. ``events``)."""
    cfg = pai_settings(sandbox, tmp_path, **settings)
    async with loopback_client(cfg) as http:
        provider = pai_provider(cfg, key or sandbox.access_key, http, policy=policy, home=tmp_path / "home")
        if providers is not None:
            providers.append(provider)
        server = build_server(cfg, provider=provider)
        async with Client(server, elicitation_callback=asker or Asker(), cache=None) as client:  # type: ignore[arg-type]
            yield client


async def signed_call(
    sandbox: RunningSandbox,
    action: str,
    method: str,
    path: str,
    *,
    version: str = "2020-12-03",
    query: dict[str, str] | None = None,
    body: dict[str, Any] | bytes | None = None,
    key: AccessKey | None = None,
    date: str | None = None,
    nonce: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request signed like the pai provider signs it (override date/nonce/key to break it)."""
    key = key or sandbox.access_key
    q = {k: v for k, v in (query or {}).items()}
    payload = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    signed = signing.sign_headers(
        method=method,
        host=sandbox.endpoint,
        path=path,
        query=q,
        body=payload,
        action=action,
        version=version,
        access_key_id=key.access_key_id,
        access_key_secret=key.access_key_secret,
        security_token=key.security_token,
        date=date,
        nonce=nonce,
    )
    signed.update(headers or {})
    url = signing.build_url("http", sandbox.endpoint, path, q)
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
        return await http.request(method, url, headers=signed, content=payload or None)


async def create_job(
    client: Client, command: str, *, spec: str = "ecs.c6.large", workers: int = 1, max_minutes: float = 5, **kw: Any
) -> dict[str, Any]:
    """Quote and create a job through the MCP tools (the Asker approves); returns the created job."""
    q = await quote(client, spec, workers=workers, max_minutes=max_minutes)
    created = await call(client, "create_training_job", create_args(spec, q["quote_id"], command, workers, **kw))
    return dict(created["job"])


async def until(fetch: Callable[[], Awaitable[Any]], expected: Any, limit: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``fetch()`` until it returns ``expected`` (or, when ``expected`` is callable, a value it accepts)."""
    with anyio.fail_after(limit):
        while True:
            value = await fetch()
            if expected(value) if callable(expected) else value == expected:
                return value
            await anyio.sleep(interval)


async def status_of(sandbox: RunningSandbox, job_id: str) -> str:
    """The PAI-DLC status the sandbox reports now for a ``dlc…`` job (or the DLC job running a ``train…`` one)."""
    if job_id.startswith("train"):
        found = await anyio.to_thread.run_sync(sandbox.sandbox.store.training_job, job_id)
        assert found is not None, job_id
        job_id = found.dlc_job_id
    view = await sandbox.sandbox.job_view(job_id)
    assert view is not None, job_id
    return view.status
