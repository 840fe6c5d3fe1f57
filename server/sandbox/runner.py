"""Running a sandbox: in-process on a loopback port (:func:`serve`, for tests and the demo) and as the
``cloudjobs-mcp sandbox`` command (:func:`run`; its arguments are in ``cli.py``)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import anyio

from cloudjobs_mcp.server.sandbox.app import Sandbox
from cloudjobs_mcp.server.sandbox.faults import Faults
from cloudjobs_mcp.server.sandbox.settings import AccessKey, SandboxSettings, load_or_create_keys

KEYS_FILE = "sandbox-keys.json"


def host_port(host: str, port: int) -> str:
    """``host:port`` as a URL holds it (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def reachable_host(bound: str) -> str:
    """Where a client reaches a socket bound to ``bound``: a wildcard bind is reached on loopback."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(bound, bound)


class Face(Protocol):
    """A sandbox face: an ASGI ``app`` and the faults it injects."""

    @property
    def faults(self) -> Faults: ...


F = TypeVar("F", bound=Face)


@dataclass
class RunningFace(Generic[F]):
    """A sandbox face answering on ``url``; what a client needs to reach it."""

    sandbox: F
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        """``host:port`` (what the official SDK's ``Config.endpoint`` takes)."""
        return host_port(self.host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def faults(self) -> Faults:
        return self.sandbox.faults


@dataclass
class RunningSandbox(RunningFace[Sandbox]):
    """The PAI face answering on ``url``."""

    @property
    def access_key(self) -> AccessKey:
        return self.sandbox.access_key

    def settings_overrides(self) -> dict[str, Any]:
        """``Settings`` fields that point the ``pai`` provider at this sandbox."""
        return {
            "provider": "pai",
            "region": self.sandbox.settings.region,
            "pai_endpoint_dlc": self.url,
            "pai_endpoint_aiworkspace": self.url,
            "pai_endpoint_ecs": self.url,
            "pai_endpoint_paistudio": self.url,
        }

    def env(self, key: AccessKey | None = None) -> dict[str, str]:
        """Environment variables for a ``cloudjobs-mcp serve`` that uses this sandbox (with ``key``)."""
        env = {f"CLOUDJOBS_{k.upper()}": str(v) for k, v in self.settings_overrides().items()}
        env.update((key or self.access_key).env())
        env["ALIBABA_CLOUD_CLI_PROFILE_DISABLED"] = "true"
        return env


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio turns Nagle off only on sockets
    # whose proto says TCP. With Nagle on, uvicorn's body (its second send) waits for the client's delayed
    # ACK: every answer after the first on a kept-alive connection came ~40 ms late.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections made before uvicorn accepts wait in the backlog
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(sandbox: Sandbox | Any) -> Any:
    """A uvicorn server for any sandbox face (an object with an ASGI ``app``)."""
    import uvicorn

    # Idle connections are kept longer than a client's pool keeps them (server.http: 30 s), so a client
    # never reuses a connection the sandbox is just closing (a ReadError, then a retry).
    config = uvicorn.Config(
        sandbox.app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=45,
    )
    return uvicorn.Server(config)


@asynccontextmanager
async def serve_face(
    face: Any, host: str, port: int, *, stop: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[int]:
    """Serve any sandbox face (an object with an ASGI ``app``) with uvicorn in this event loop, on a
    pre-bound socket (``port=0``: a free one); yields the port. On exit ``stop`` runs first (shielded)."""
    sock = _bind(host, port)
    server = _uvicorn_server(face)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(server.serve, sockets=[sock]))
            with anyio.fail_after(15):
                while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                    await anyio.sleep(0.01)
            try:
                yield int(sock.getsockname()[1])
            finally:
                if stop is not None:
                    with anyio.CancelScope(shield=True):
                        await stop()
                server.should_exit = True
    finally:
        sock.close()


@asynccontextmanager
async def serve(
    sandbox: Sandbox | SandboxSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    stop_jobs: bool = True,
) -> AsyncIterator[RunningSandbox]:
    """Serve ``sandbox`` on ``host:port`` (``port=0``: a free one). On exit the sandbox's unfinished jobs
    are stopped unless ``stop_jobs`` is False."""
    sandbox = sandbox if isinstance(sandbox, Sandbox) else Sandbox(sandbox)
    async with serve_face(sandbox, host, port, stop=sandbox.stop_all if stop_jobs else None) as bound:
        yield RunningSandbox(sandbox, host, bound)


# --------------------------------------------------------------------------------------------- CLI


def default_state_dir() -> Path:
    base = os.environ.get("CLOUDJOBS_STATE_DIR") or "~/.cloudjobs"
    return Path(base).expanduser() / "sandbox"


def settings_from_flags(
    args: argparse.Namespace, state: Path, region: str, keys: list[AccessKey], **more: Any
) -> SandboxSettings:
    """The settings the command's timing flags ask for (the PAI face's, which the ModelArts face runs on)."""
    return SandboxSettings(
        state_dir=state,
        region=region,
        access_keys=tuple(keys),
        creating_seconds=args.creating_seconds,
        queuing_seconds=args.queuing_seconds,
        minute_seconds=args.minute_seconds,
        metrics_seconds=args.metrics_seconds,
        **more,
    )


def apply_fault_flags(faults: Faults, args: argparse.Namespace) -> None:
    if args.throttle:
        faults.throttle(args.throttle, args.throttle_retry_after_ms)
    if args.fail_503:
        faults.fail_503(args.fail_503)
    if args.latency:
        faults.latency(args.latency)
    for image in args.image_pull_backoff:
        faults.image_pull_backoff(image)
    if args.queue_forever is not None:
        faults.queue_forever(None if args.queue_forever == "*" else args.queue_forever)
    for raw in args.fault:
        faults.add_spec(json.loads(raw))


def banner(running: RunningSandbox, *, show_secret: bool) -> str:
    key = running.access_key
    lines = [
        f"PAI sandbox on {running.url}: PAI-DLC 2020-12-03, AIWorkspace 2021-02-04, ECS 2014-05-26 (DescribePrice), "
        "PaiStudio 2022-01-12 (training jobs, quota workloads)",
        f"region {running.sandbox.settings.region}; state {running.sandbox.settings.state_dir}; jobs run as "
        "processes on this machine",
        f"resource quotas (ResourceId): {', '.join(running.sandbox.settings.quotas) or 'none'}",
        "",
        "Point cloudjobs-mcp's pai provider at it:",
        "",
    ]
    env = running.env()
    env.pop("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")
    if not show_secret:
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "<the secret you gave>"
    lines += [f"  export {k}={v}" for k, v in env.items()]
    lines += [
        "  export NO_PROXY=127.0.0.1,localhost   # only if you use an HTTP proxy",
        "",
        f"Access key id {key.access_key_id}. Faults at runtime (loopback only), e.g.:",
        f'  curl -s -X POST -H \'Content-Type: application/json\' -d \'{{"kind": "throttle", "count": 5}}\' '
        f"{running.url}/_sandbox/faults",
        "Stop with Ctrl-C (jobs still running keep running; a restart with the same --state finds them).",
    ]
    return "\n".join(lines)


def serve_until_interrupted(
    face: Any, host: str, port: int, banner: Callable[[str, int], str], name: str, *, warn_exposed: bool = False
) -> int:
    """The CLI's serving of any face: bind ``host:port`` (exit status 2, saying why, when it cannot), print
    ``banner(reachable host, bound port)``, serve until Ctrl-C; 0 after a clean stop."""
    try:
        sock = _bind(host, port)
    except OSError as exc:
        print(f"cloudjobs-mcp sandbox: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    if warn_exposed and host not in ("127.0.0.1", "::1", "localhost"):
        print(
            f"cloudjobs-mcp sandbox: WARNING: listening on {host}: anyone holding the key can run commands "
            "on this machine",
            file=sys.stderr,
        )
    print(banner(reachable_host(host), int(sock.getsockname()[1])), flush=True)
    server = _uvicorn_server(face)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then re-raises the signal it caught
        pass
    finally:
        sock.close()
    print(f"{name} sandbox stopped.", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """``cloudjobs-mcp sandbox``: serve until interrupted."""
    if getattr(args, "cloud", "pai") == "modelarts":
        from cloudjobs_mcp.server.sandbox.modelarts.runner import run as run_modelarts

        return run_modelarts(args)
    state = (args.state or default_state_dir()).expanduser()
    if bool(args.access_key_id) != bool(args.access_key_secret):
        print("cloudjobs-mcp sandbox: give both --access-key-id and --access-key-secret, or neither", file=sys.stderr)
        return 2
    if args.access_key_id:
        keys = [AccessKey(args.access_key_id, args.access_key_secret)]
        generated = False
    else:
        keys = load_or_create_keys(state / KEYS_FILE)
        generated = True
    try:
        quotas = tuple(args.quota) if args.quota else SandboxSettings.quotas
        settings = settings_from_flags(args, state, args.region, keys, quotas=quotas)
        sandbox = Sandbox(settings)
        apply_fault_flags(sandbox.faults, args)
    except (ValueError, OSError) as exc:
        print(f"cloudjobs-mcp sandbox: {exc}", file=sys.stderr)
        return 2

    def show(host: str, port: int) -> str:
        return banner(RunningSandbox(sandbox, host, port), show_secret=generated)

    return serve_until_interrupted(sandbox, args.host, args.port, show, "PAI", warn_exposed=True)
