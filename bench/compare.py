"""cloudjobs-mcp against the floor (bench/floor.py) and Alibaba's official SDK, in one run, same target.

Drives the two sides of ../shared/bench (``sdk_side.py``, ``mcp_side.py``) and runs ``mcp_side.py`` a second
time with the floor server as its command, so all three are measured against the same target, at the same
injected latencies, minutes apart. Adds what ../shared/bench does not measure: the server CPU from spawn to
the first tools/list answer (median of --cold-runs spawns). Prints one table with the issue #15 goals and
writes every figure as a JSON line. A benchmark: it prints ratios and asserts nothing.

    python bench/compare.py                              # fake_pai (Nagle off), +0 and +20 ms
    python bench/compare.py --target sandbox             # `cloudjobs-mcp sandbox` as the target
    python bench/compare.py --quick                      # smoke run, fewer calls (not a measurement)

Run it from the project's venv with the compat extra installed (``pip install -e ".[test,compat]"``: the
official SDK and mcp 2.3.0 are both in it). On a 2-core machine nothing else should be running.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)
AK_ID, AK_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
SIDES = ("sdk", "floor", "cloudjobs")


def log(msg: str) -> None:
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the target exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the target did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def find_shared_bench() -> Path | None:
    """../shared/bench: the nearest `shared/bench` folder above this checkout."""
    return next((d / "shared" / "bench" for d in ROOT.parents if (d / "shared" / "bench").is_dir()), None)


def start_target(
    kind: str, tmp: Path, env: dict[str, str], shared: Path
) -> tuple[subprocess.Popen[bytes], str, str, str]:
    """(process, endpoint, key id, key secret) of a PAI-DLC-wire server on loopback."""
    if kind == "sandbox":
        port, key_id, secret = free_port(), "bench" + secrets.token_hex(4), secrets.token_hex(16)
        cmd = [
            shutil.which("cloudjobs-mcp") or "cloudjobs-mcp",
            "sandbox",
            "--port",
            str(port),
            "--state",
            str(tmp / "sandbox"),
            "--creating-seconds",
            "0",
            "--queuing-seconds",
            "0",
        ]
        keys = {"CLOUDJOBS_SANDBOX_ACCESS_KEY_ID": key_id, "CLOUDJOBS_SANDBOX_ACCESS_KEY_SECRET": secret}
        proc = subprocess.Popen(cmd, env={**env, **keys}, stdout=subprocess.DEVNULL)
        wait_port(port, proc)
        return proc, f"http://127.0.0.1:{port}", key_id, secret
    script = shared / ("fake_pai.py" if kind == "fake-stock" else "fake_pai_nodelay.py")
    info = tmp / "fake-info.json"
    cmd = [sys.executable, str(script), "--info", str(info), "--workspaces", "1", "--job-seconds", "3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not info.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{script} did not start")
        time.sleep(0.05)
    time.sleep(0.1)  # the info file is written in one go, but give the writer its close
    data = json.loads(info.read_text())
    return proc, data["endpoint"], data["keys"]["main"]["id"], data["keys"]["main"]["secret"]


def create_jobs(kind: str, shared: Path, endpoint: str, env: dict[str, str], jobs_file: Path) -> list[str]:
    """20 PyTorchJobs made through the official SDK (`sdk_side.py setup`), once they reached their final
    state (the fake's take 3 s, the sandbox's start at once); their ids."""
    setup = [sys.executable, str(shared / "sdk_side.py"), "setup", "--endpoint", endpoint, "--jobs", "20"]
    subprocess.run([*setup, "--jobs-out", str(jobs_file)], env=env, check=True, stdout=subprocess.DEVNULL)
    time.sleep(1 if kind == "sandbox" else 3.5)
    return list(json.loads(jobs_file.read_text())["job_ids"])


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- cold start: spawn -> first tools/list answer, wall and server CPU -----------------------------------


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.add(int(d))
            except (OSError, IndexError, ValueError):
                continue
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _one_cold_start(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    before = children(os.getpid())
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 (opening /dev/null does not block)
        t = time.perf_counter()
        async with Client(stdio_client(params, errlog=devnull), cache=None, read_timeout_seconds=60) as c:
            await c.list_tools()
            wall = time.perf_counter() - t
            server = children(os.getpid()) - before
            cpu = sum(cpu_seconds(p) for p in server)
    return wall, cpu


def cold_start(side: str, command: list[str], env: dict[str, str], runs: int, lat: float) -> dict[str, Any]:
    import anyio

    samples = [anyio.run(_one_cold_start, command, env) for _ in range(runs)]
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    return {
        "side": side,
        "figure": "cold_start.server_cpu",
        "value": round(statistics.median(cpus) * 1000, 1),
        "unit": "ms median",
        "wall_ms": round(statistics.median(walls) * 1000, 1),
        "samples_cpu_ms": [round(c * 1000) for c in cpus],
        "injected_latency_ms": lat,
    }


# -- the table -------------------------------------------------------------------------------------------


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    by = {(r["side"], r["figure"], r["injected_latency_ms"]): r for r in rows}

    def val(side: str, figure: str, lat: float, key: str = "value") -> float | None:
        figures = (
            ["get_job.c16.shared_client", "get_job.c16.client_per_thread"]
            if side == "sdk" and figure == "get_job.c16.one_session"
            else [figure]
        )
        vals = [by[(side, f, lat)].get(key) for f in figures if (side, f, lat) in by]
        nums = [v for v in vals if isinstance(v, int | float)]
        return max(nums) if nums else None

    # (label, figure, detail key, better, goal as (kind, amount)): "+" = at most floor + amount,
    # "x" = at most amount x floor, "min x" = at least amount x floor.
    lines = [
        ("GetJob p50 ms", "get_job.sequential", "value", ("+", 1.5), {20.0}),
        ("ListJobs (20) p50 ms", "list_jobs.sequential", "value", ("+", 3.0), {20.0}),
        ("16 x GetJob calls/s", "get_job.c16.one_session", "value", ("min x", 0.9), {20.0}),
        ("server CPU/GetJob ms", "get_job.sequential", "server_cpu_ms_per_call", ("+", 0.5), {0.0}),
        ("server CPU/ListJobs ms", "list_jobs.sequential", "server_cpu_ms_per_call", ("+", 1.5), {0.0}),
        ("peak RSS MB", "peak_rss", "value", ("+", 6.0), None),
        ("cold start CPU ms", "cold_start.server_cpu", "value", ("x", 1.15), None),
        ("cold start wall ms", "cold_start.server_cpu", "wall_ms", None, None),
        ("target floor p50 ms", "target_floor.sequential", "value", None, None),
    ]
    lats = sorted({r["injected_latency_ms"] for r in rows})
    out = [
        f"{'figure':<24}{'inj':>4}{'SDK':>9}{'floor':>9}{'ours':>9}{'ours-floor':>11}{'ours/floor':>11}"
        f"{'ours/SDK':>9}  goal"
    ]
    for lat in lats:
        for label, figure, key, goal, goal_lats in lines:
            sdk, floor, ours = (val(s, figure, lat, key) for s in SIDES)
            if floor is None and ours is None:
                continue
            verdict = ""
            if goal and floor is not None and ours is not None and (goal_lats is None or lat in goal_lats):
                kind, amount = goal
                if kind == "+":
                    ok, text = ours <= floor + amount, f"<= floor + {amount:g}"
                elif kind == "x":
                    ok, text = ours <= floor * amount, f"<= {amount:g} x floor"
                else:
                    ok, text = ours >= floor * amount, f">= {amount:g} x floor"
                verdict = f"{'met' if ok else 'MISSED'} ({text})"
            diff = None if floor is None or ours is None else ours - floor
            ratio = None if not floor or ours is None else ours / floor
            sdk_ratio = None if not sdk or ours is None else ours / sdk
            out.append(
                f"{label:<24}{lat:>4g}{fmt(sdk):>9}{fmt(floor):>9}{fmt(ours):>9}{fmt(diff, 2):>11}"
                f"{fmt(ratio, 2):>11}{fmt(sdk_ratio, 2):>9}  {verdict}"
            )
    tl = [r for r in rows if r["figure"] == "tools_list.size" and r["side"] == "cloudjobs"]
    if tl:
        out.append(f"tools/list (ours): {tl[0]['value']:,} bytes, {tl[0]['tools']} tools")
    return "\n".join(out)


# -- the run ---------------------------------------------------------------------------------------------


def mcp_side(side: str, config: dict[str, Any], common: list[str], lat: float, out: Path, env: dict[str, str]) -> None:
    cfg = out.parent / f"{side}-config.json"
    cfg.write_text(json.dumps(config))
    t = time.perf_counter()
    cmd = [sys.executable, str(ARGS.shared / "mcp_side.py"), *common, "--inject-latency-ms", str(lat)]
    cmd += ["--out", str(out), "--config", str(cfg), *ARGS.sizes, *(["--cold-runs", "2"] if ARGS.quick else [])]
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"mcp_side.py ({side}) failed with exit {r.returncode}")
    log(f"{side} at +{lat:g} ms: {time.perf_counter() - t:.0f} s")


def install_mode(script: str) -> str:
    """How the measured cloudjobs-mcp is installed (users run a wheel: pip, uvx), so a figure says which.

    An editable install's modules are compiled to bytecode here first, as pip does for a wheel at install:
    with PYTHONDONTWRITEBYTECODE set (some environments set it, this project's development machines do) no
    start would ever cache its bytecode, and each one would compile our ~50 modules from source (~55 ms of
    the start's CPU), a cost no user has. What is left of an editable install is its import hook (~10 ms)."""
    try:
        with open(script, encoding="utf-8") as f:
            python = f.readline().removeprefix("#!").strip()
        probe = (
            "import compileall, importlib.metadata as m, json, pathlib, urllib.parse\n"
            "d = m.distribution('cloudjobs-mcp')\n"
            "u = json.loads(d.read_text('direct_url.json') or '{}')\n"
            "editable = u.get('dir_info', {}).get('editable')\n"
            "if editable:\n"
            "    root = pathlib.Path(urllib.parse.urlparse(u['url']).path)\n"
            "    for folder in ('server', 'tools', 'prompts'):\n"
            "        compileall.compile_dir(root / folder, quiet=1)\n"
            "print(('editable, bytecode compiled' if editable else 'wheel') + ' ' + d.version)"
        )
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True, cwd="/")
        return done.stdout.strip()  # (run from /: the checkout's own egg-info would answer first)
    except (OSError, subprocess.CalledProcessError):
        return "unknown install"


def main() -> None:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    ours = shutil.which("cloudjobs-mcp") or "cloudjobs-mcp"
    mode = install_mode(ours)  # before any start: it may compile the bytecode
    log(f"measuring {ours} ({mode})")
    tmp = Path(tempfile.mkdtemp(prefix="cloudjobs-compare-"))
    target = None
    rows: list[dict[str, Any]] = []
    try:
        target, endpoint, key_id, secret = start_target(ARGS.target, tmp, env, ARGS.shared)
        log(f"target: {ARGS.target} at {endpoint}")
        env.update({AK_ID: key_id, AK_SECRET: secret})
        common = ["--endpoint", endpoint, "--jobs-file", str(tmp / "jobs.json")]
        create_jobs(ARGS.target, ARGS.shared, endpoint, env, tmp / "jobs.json")
        ours_cmd = [ours, "serve"]
        floor_cmd = [sys.executable, str(HERE / "floor.py")]
        configs = {"cloudjobs": {"command": ours_cmd}, "floor": {"command": floor_cmd}}
        outs = {side: tmp / f"{side}.jsonl" for side in SIDES}
        for lat in [float(x) for x in ARGS.latencies.split(",") if x.strip()]:
            t = time.perf_counter()
            cmd = [sys.executable, str(ARGS.shared / "sdk_side.py"), "bench", *common, "--inject-latency-ms", str(lat)]
            subprocess.run(
                [*cmd, "--out", str(outs["sdk"]), *ARGS.sizes], env=env, check=True, stdout=subprocess.DEVNULL
            )
            log(f"sdk at +{lat:g} ms: {time.perf_counter() - t:.0f} s")
            for side in ARGS.order:
                mcp_side(side, configs[side], common, lat, outs[side], env)
        # Cold start does not depend on the latency: the first tools/list makes no request to the target.
        server_env = {
            **env,
            "CLOUDJOBS_PROVIDER": "pai",
            "CLOUDJOBS_PAI_ENDPOINT_DLC": endpoint,
            "CLOUDJOBS_REGION": "cn-hangzhou",
        }
        for side in ARGS.order:
            cmd = configs[side]["command"]
            rows.append(cold_start(side, cmd, server_env, ARGS.cold_runs, 0.0))
        for side, path in outs.items():
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                rows.append({**rec, "side": side})
    finally:
        stop(target)
        shutil.rmtree(tmp, ignore_errors=True)  # holds the target's keys
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = table(rows)
    title = f"cloudjobs-mcp ({mode}) vs floor vs official SDK, target {ARGS.target}, {stamp}, {os.cpu_count()} CPUs"
    print(f"\n{title}{' (quick: not a measurement)' if ARGS.quick else ''}\n{text}")
    with open(ARGS.out, "a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({**r, "run": stamp, "target_kind": ARGS.target}) + "\n")
    log(f"JSON lines appended to {ARGS.out}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--target", choices=("fake", "fake-stock", "sandbox"), default="fake")
    ap.add_argument("--latencies", default="0,20", help="injected ms a request, comma-separated (default 0,20)")
    ap.add_argument(
        "--shared", type=Path, default=find_shared_bench(), help="../shared/bench (default: the nearest above)"
    )
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--order", default="floor,cloudjobs", help="which MCP servers, in this order")
    ap.add_argument("--quick", action="store_true", help="fewer calls: a smoke run")
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "cloudjobs-compare.jsonl"))
    a = ap.parse_args()
    a.order = [s for s in a.order.split(",") if s]
    a.sizes = ["--seq-calls", "50", "--warmup", "5", "--calls", "320", "--repeats", "1"] if a.quick else []
    if a.quick:
        a.cold_runs = 2
    if a.shared is None or not (a.shared / "mcp_side.py").exists():
        raise SystemExit(f"no ../shared/bench at {a.shared}: give --shared PATH")
    return a


if __name__ == "__main__":
    ARGS = parse_args()
    main()
