"""Servers measured round by round, alternating, against one target: the floor and a build, or two builds.

On a shared 2-core machine the figures of one `compare.py` run move by more than the goals' margins between
runs (a busy minute lands on one side only). Here every round starts each side's server once, in turn,
against the same PAI-DLC-wire target behind the same latency proxy, so a slow minute costs both sides alike;
the medians over the rounds are what to compare.

    python bench/interleave.py                                  # the floor against `cloudjobs-mcp` on PATH
    python bench/interleave.py floor /path/to/venv --rounds 8   # the floor against another venv's build
    python bench/interleave.py /venv/a /venv/b --latency-ms 0   # two builds, no added latency

A side is `floor` (bench/floor.py) or a venv (its `bin/cloudjobs-mcp serve`). Each round and side: 20
warm-up `get_job`, then 200 sequential ones (p50 of the client's wall time, the server's CPU a call), then
16 concurrent workers of 20 calls each on the one session (calls/s), then 10 warm-up and 100 sequential
`list_jobs` of 20 (p50). Needs ../shared/bench (the fake
target, the latency proxy and the official SDK that creates its jobs). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from compare import (
    AK_ID,
    AK_SECRET,
    HERE,
    PROXY_VARS,
    children,
    cpu_seconds,
    create_jobs,
    find_shared_bench,
    start_target,
    stop,
)
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

WARMUP, SEQUENTIAL, WORKERS, PER_WORKER, LISTINGS = 20, 200, 16, 20, 100
FIGURES = (("get_job p50", "ms"), ("get_job server CPU a call", "ms"), ("16 concurrent get_job", "calls/s"),
           ("list_jobs (20) p50", "ms"))  # fmt: skip


def server_command(side: str) -> list[str]:
    if side == "floor":
        return [sys.executable, str(HERE / "floor.py")]
    found = shutil.which("cloudjobs-mcp") if side == "path" else str(Path(side) / "bin" / "cloudjobs-mcp")
    if not found or not Path(found).exists():
        raise SystemExit(f"no cloudjobs-mcp for {side!r}: give `floor`, `path` or a venv folder")
    return [found, "serve"]


async def one_round(command: list[str], env: dict[str, str], job_id: str) -> tuple[float, ...]:
    """The FIGURES of one server, started for this round."""
    before = children(os.getpid())
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    with open(os.devnull, "w") as devnull, anyio.fail_after(600):  # noqa: ASYNC230 (opening /dev/null does not block)
        async with Client(stdio_client(params, errlog=devnull), cache=None, read_timeout_seconds=60) as client:
            server = children(os.getpid()) - before
            await client.list_tools()
            args = {"job_id": job_id}
            for _ in range(WARMUP):
                await client.call_tool("get_job", args)
            cpu_before, walls = sum(cpu_seconds(p) for p in server), []
            for _ in range(SEQUENTIAL):
                t = time.perf_counter()
                await client.call_tool("get_job", args)
                walls.append(time.perf_counter() - t)
            cpu = (sum(cpu_seconds(p) for p in server) - cpu_before) / SEQUENTIAL

            async def worker() -> None:
                for _ in range(PER_WORKER):
                    await client.call_tool("get_job", args)

            t = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for _ in range(WORKERS):
                    tg.start_soon(worker)
            rate = WORKERS * PER_WORKER / (time.perf_counter() - t)
            listings = []
            for i in range(10 + LISTINGS):
                t = time.perf_counter()
                await client.call_tool("list_jobs", {"limit": 20})
                if i >= 10:
                    listings.append(time.perf_counter() - t)
    return statistics.median(walls) * 1000, cpu * 1000, rate, statistics.median(listings) * 1000


def main() -> None:
    args = parse_args()
    shared = args.shared or find_shared_bench()
    if shared is None:
        raise SystemExit("../shared/bench not found: give --shared")
    commands = {side: server_command(side) for side in args.sides}
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    tmp = Path(tempfile.mkdtemp(prefix="cloudjobs-interleave-"))
    target = None
    sys.path.insert(0, str(shared))  # its LatencyProxy: the same proxy process the two sides of compare.py use
    from common import LatencyProxy, Target

    figures: dict[str, list[tuple[float, ...]]] = {side: [] for side in args.sides}
    try:
        target, endpoint, key_id, secret = start_target(args.target, tmp, env, shared)
        env.update({AK_ID: key_id, AK_SECRET: secret})
        job_id = create_jobs(args.target, shared, endpoint, env, tmp / "jobs.json")[0]
        with contextlib.ExitStack() as stack:
            if args.latency_ms:
                endpoint = stack.enter_context(LatencyProxy(Target(endpoint, key_id, secret), args.latency_ms)).url
            server_env = {
                **env,
                "CLOUDJOBS_PROVIDER": "pai",
                "CLOUDJOBS_REGION": "cn-hangzhou",
                "CLOUDJOBS_STATE_DIR": str(tmp / "state"),
                **{f"CLOUDJOBS_PAI_ENDPOINT_{api}": endpoint for api in ("DLC", "AIWORKSPACE", "ECS", "PAISTUDIO")},
            }
            for n in range(args.rounds):
                for side in args.sides:
                    figures[side].append(anyio.run(one_round, commands[side], server_env, job_id))
                print(f"round {n + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        stop(target)
        shutil.rmtree(tmp, ignore_errors=True)  # holds the target's keys
    print(report(figures, args))


def report(figures: dict[str, list[tuple[float, ...]]], args: argparse.Namespace) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"target {args.target}, +{args.latency_ms:g} ms, {args.rounds} rounds, {stamp}, "
        f"{os.cpu_count()} CPUs (medians over rounds; each round's figure in brackets)"
    ]
    first: dict[str, float] = {}
    for i, (name, unit) in enumerate(FIGURES):
        lines.append(f"{name} ({unit}):")
        for side, rounds in figures.items():
            values = [r[i] for r in rounds]
            median = statistics.median(values)
            first.setdefault(name, median)
            versus = median - first[name] if unit == "ms" else median / first[name]
            shown = f"{versus:+.2f} ms" if unit == "ms" else f"{versus:.2f}x"
            each = ", ".join(f"{v:.1f}" if unit == "ms" else f"{v:.0f}" for v in values)
            label = "cloudjobs-mcp on PATH" if side == "path" else side
            lines.append(f"  {label:<40} {median:9.2f}  ({shown} vs the first side)  [{each}]")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("sides", nargs="*", default=["floor", "path"], help="floor, path (cloudjobs-mcp on PATH) or a venv")
    ap.add_argument("--target", choices=("fake", "fake-stock", "sandbox"), default="fake")
    ap.add_argument("--latency-ms", type=float, default=20.0, help="added to every request (default 20)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--shared", type=Path, default=None, help="../shared/bench (found by default)")
    return ap.parse_args()


if __name__ == "__main__":
    main()
