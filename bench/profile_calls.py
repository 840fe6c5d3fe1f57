"""Where a cloudjobs-mcp tool call spends its server CPU: cProfile of the stdio server, one tool at a time.

Starts a PAI-DLC-wire target (../shared/bench's fake_pai, Nagle off) with 20 jobs, then for each tool spawns
``cloudjobs-mcp serve`` (or the floor, ``--server floor``) with a profiler switched on after its imports, drives
``--calls`` calls through the official MCP client over stdio and prints the top entries of the server's
profile by own time and by cumulative time. The client's CPU is not in it. Also ``--imports``: the slowest
modules of ``import cloudjobs_mcp.server.app`` (python -X importtime), what every start pays.

    python bench/profile_calls.py                      # get_job and list_jobs, 300 calls each, top 25
    python bench/profile_calls.py --server floor       # the same for bench/floor.py
    python bench/profile_calls.py --imports            # import time of the server's modules
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROFILE_ENV = "CLOUDJOBS_BENCH_PROFILE"


def serve_profiled() -> None:
    """The server side: build the server (imports done), then profile everything it does until stdin closes."""
    server = os.environ.get("CLOUDJOBS_BENCH_SERVER", "cloudjobs")
    if server == "floor":
        sys.path.insert(0, str(HERE))
        import floor

        run = floor.mcp.run
    else:
        from cloudjobs_mcp.server.app import build_server

        run = build_server(freeze_after_start=True).run  # as `cloudjobs-mcp serve` runs it
    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: waiting on the target is not cost
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
        profiler.dump_stats(os.environ[PROFILE_ENV])


async def drive(command: list[str], env: dict[str, str], tool: str, args: Any, calls: int) -> None:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 (opening /dev/null does not block)
        async with Client(stdio_client(params, errlog=devnull), cache=None, read_timeout_seconds=60) as c:
            await c.list_tools()
            for i in range(calls):
                result = await c.call_tool(tool, args(i))
                if result.is_error:
                    raise SystemExit(f"{tool} failed: {result.content}")


def top(path: Path, sort: str, n: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(n)
    text = out.getvalue()
    body = text[text.index("ncalls") :] if "ncalls" in text else text
    return re.sub(r"\n{2,}", "\n", body).rstrip()


def imports(n: int) -> None:
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import cloudjobs_mcp.server.app"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), int(m.group(1)), len(m.group(3)), m.group(4)))
    total = max(rows)[0] if rows else 0
    print(f"import cloudjobs_mcp.server.app: {total / 1000:.0f} ms cumulative (one run, -X importtime)")
    print(f"{'cumulative ms':>14} {'self ms':>8}  module")
    for cum, own, _depth, name in sorted(rows, reverse=True)[:n]:
        print(f"{cum / 1000:>14.1f} {own / 1000:>8.1f}  {name}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--server", choices=("cloudjobs", "floor"), default="cloudjobs")
    ap.add_argument("--tools", default="get_job,list_jobs")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--imports", action="store_true", help="only the import-time table")
    ap.add_argument("--keep", type=Path, help="also keep the .prof files in this folder")
    a = ap.parse_args()
    if a.imports:
        imports(a.top)
        return
    sys.path.insert(0, str(HERE))
    import anyio
    from compare import PROXY_VARS, create_jobs, find_shared_bench, start_target, stop

    shared = find_shared_bench()
    if shared is None:
        raise SystemExit("no ../shared/bench above this checkout")
    tmp = Path(tempfile.mkdtemp(prefix="cloudjobs-profile-"))
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    target = None
    try:
        target, endpoint, key_id, secret = start_target("fake", tmp, env, shared)
        env.update({"ALIBABA_CLOUD_ACCESS_KEY_ID": key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret})
        ids = create_jobs("fake", shared, endpoint, env, tmp / "jobs.json")
        tool_args = {
            "get_job": lambda i: {"job_id": ids[i % len(ids)]},
            "list_jobs": lambda i: {"limit": 20},
        }
        for tool in a.tools.split(","):
            prof = tmp / f"{a.server}-{tool}.prof"
            server_env = {
                **env,
                "CLOUDJOBS_PROVIDER": "pai",
                "CLOUDJOBS_PAI_ENDPOINT_DLC": endpoint,
                "CLOUDJOBS_PAI_ENDPOINT_AIWORKSPACE": endpoint,
                "CLOUDJOBS_REGION": "cn-hangzhou",
                "CLOUDJOBS_BENCH_SERVER": a.server,
                PROFILE_ENV: str(prof),
            }
            command = [sys.executable, str(Path(__file__).resolve()), "--serve-profiled"]
            anyio.run(drive, command, server_env, tool, tool_args[tool], a.calls)
            deadline = time.monotonic() + 10
            while not prof.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            stats = pstats.Stats(str(prof))
            total_ms = stats.total_tt * 1000  # type: ignore[attr-defined]
            print(f"\n== {a.server} server, {a.calls} x {tool}: {total_ms / a.calls:.2f} ms profiled CPU a call ==")
            print(f"-- by own time (tottime), top {a.top}\n{top(prof, 'tottime', a.top)}")
            print(f"-- by cumulative time, top {a.top}\n{top(prof, 'cumulative', a.top)}")
            if a.keep:
                a.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(prof, a.keep / prof.name)
    finally:
        stop(target)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve-profiled"]:
        serve_profiled()
    else:
        main()
