"""A local Ray cluster to start with: ``cloudjobs-mcp ray up`` / ``ray down`` (and the tests' cluster).

``start_head`` runs ``ray start --head --block`` in its own session, on free loopback ports, with token
auth on and Ray's usage-stats reporting off (``--disable-usage-stats`` and RAY_USAGE_STATS_ENABLED=0:
nothing calls out of the machine). Its record (pid, address, temp dir) and token (mode 0600) live under
``<state_dir>/ray/``; Ray's own files (unix sockets, session logs) go to a short temp directory, since a
unix socket path is limited to ~107 bytes. ``stop`` ends that head and only it: SIGTERM to its
``ray start`` process (which stops its children), SIGKILL for anything of its session still alive after
15 s — never a machine-wide ``ray stop``.

The node IP: Ray swaps ``127.0.0.1`` for the machine's LAN address unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
(then the head is single-node, bound to loopback); another loopback address (``127.0.0.2``) is kept as is,
and nodes on other loopback addresses can then join (``start_node``, Linux only).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from cloudjobs_mcp.server.errors import ConfigurationError

RECORD = "cluster.json"
TOKEN_FILE = "auth_token"
# Ray gives a starting node 30 s (hard-coded) to register; a busy machine misses that: one more try.
START_ATTEMPTS = 2
START_TIMEOUT_SECONDS = 180.0  # generous: a busy 2-core CI machine takes tens of seconds
OBJECT_STORE_BYTES = 100 * 1024 * 1024  # Ray's minimum-ish; jobs here pass no large objects


@dataclass
class Cluster:
    """A Ray node this package started (the head, or a node that joined it)."""

    pid: int
    address: str  # dashboard URL (head only; "" for a joined node)
    gcs_address: str
    temp_dir: str
    node_ip: str
    token_file: str
    log_file: str

    def token(self) -> str:
        return Path(self.token_file).read_text().strip()


def ray_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "ray"


def _ray_bin() -> str:
    here = Path(sys.executable).parent / "ray"
    found = str(here) if here.exists() else shutil.which("ray")
    if not found:
        raise ConfigurationError(
            "The `ray` command is not installed in this environment: pip install 'cloudjobs-mcp[ray]'."
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(token: str, node_ip: str, job_start_timeout: float | None) -> dict[str, str]:
    env = dict(os.environ)
    # The entrypoint's `python` must be this environment's (it has ray): Ray runs it with the node's PATH.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_USAGE_STATS_ENABLED="0",
        # The fixed defaults (44227, 44217) collide between two clusters on one machine.
        DASHBOARD_METRIC_PORT=str(free_port()),
        AUTOSCALER_METRIC_PORT=str(free_port()),
    )
    if node_ip in ("127.0.0.1", "localhost"):
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if job_start_timeout is not None:
        env["RAY_JOB_START_TIMEOUT_SECONDS"] = f"{job_start_timeout:g}"
    env.pop("RAY_ADDRESS", None)
    return env


def _common_args(cpus: int, node_ip: str, temp_dir: str) -> list[str]:
    return [
        "--block",
        "--num-cpus",
        str(cpus),
        "--node-ip-address",
        node_ip,
        "--disable-usage-stats",
        "--dashboard-agent-listen-port",
        str(free_port()),  # default 52365 is fixed
        "--object-store-memory",
        str(OBJECT_STORE_BYTES),
        "--include-log-monitor=false",
        "--temp-dir",
        temp_dir,
    ]


def _launch(args: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [_ray_bin(), "start", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own group: stopping it touches nothing else
        )


def start_head(
    state_dir: Path,
    *,
    cpus: int = 2,
    node_ip: str = "127.0.0.1",
    job_start_timeout: float | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> Cluster:
    """Start a head and wait until its Jobs API answers; refuses when one is already recorded and alive."""
    home = ray_dir(state_dir)
    home.mkdir(parents=True, exist_ok=True)
    existing = load(state_dir)
    if existing is not None and _alive(existing):
        raise ConfigurationError(
            f"A Ray cluster started by cloudjobs-mcp already runs at {existing.address} (pid {existing.pid}); "
            "`cloudjobs-mcp ray down` stops it."
        )
    token_file = home / TOKEN_FILE
    token = secrets.token_hex(32)
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    for attempt in range(1, START_ATTEMPTS + 1):
        cluster, proc = _launch_head(home, token, cpus, node_ip, job_start_timeout)
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {token}"}
        while proc.poll() is None and time.monotonic() < deadline:
            if node_ip in _alive_ips(cluster.address, headers):  # the Jobs API answers seconds before this
                return cluster
            time.sleep(0.2)
        code = proc.poll()
        stop(cluster)
        proc.wait()
        if code is None:  # a timeout is not retried: it already had all the time there is
            raise ConfigurationError(f"The Ray head did not answer within {timeout:g} s; see {cluster.log_file}")
        if attempt == START_ATTEMPTS:
            break
    raise ConfigurationError(f"`ray start` exited with code {code}; see {cluster.log_file}")


def _launch_head(
    home: Path, token: str, cpus: int, node_ip: str, job_start_timeout: float | None
) -> tuple[Cluster, subprocess.Popen[bytes]]:
    temp_dir = tempfile.mkdtemp(prefix="cjray-")
    dash_port, gcs_port = free_port(), free_port()
    log_file = home / "ray-start.log"
    args = [
        "--head",
        "--port",
        str(gcs_port),
        "--dashboard-host",
        "127.0.0.1",
        "--dashboard-port",
        str(dash_port),
        "--include-dashboard=true",
        "--ray-client-server-port",
        str(free_port()),  # default 10001 is fixed
        *_common_args(cpus, node_ip, temp_dir),
    ]
    proc = _launch(args, _env(token, node_ip, job_start_timeout), log_file)
    cluster = Cluster(
        pid=proc.pid,
        address=f"http://127.0.0.1:{dash_port}",
        gcs_address=f"{node_ip}:{gcs_port}",
        temp_dir=temp_dir,
        node_ip=node_ip,
        token_file=str(home / TOKEN_FILE),
        log_file=str(log_file),
    )
    (home / RECORD).write_text(json.dumps(asdict(cluster), indent=2) + "\n")
    return cluster, proc


def start_node(
    head: Cluster,
    *,
    node_ip: str,
    cpus: int = 1,
    resources: dict[str, float] | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> Cluster:
    """Start another node joining ``head`` (on another loopback address) and wait until the head lists it."""
    log_file = Path(head.log_file).with_name(f"ray-start-{node_ip}.log")
    headers = {"Authorization": f"Bearer {head.token()}"}
    for _ in range(START_ATTEMPTS):
        temp_dir = tempfile.mkdtemp(prefix="cjray-")
        args = ["--address", head.gcs_address, *_common_args(cpus, node_ip, temp_dir)]
        if resources:
            args += ["--resources", json.dumps(resources)]
        proc = _launch(args, _env(head.token(), node_ip, None), log_file)
        node = Cluster(proc.pid, "", head.gcs_address, temp_dir, node_ip, head.token_file, str(log_file))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if node_ip in _alive_ips(head.address, headers):
                return node
            time.sleep(0.3)
        code = proc.poll()
        stop(node)
        proc.wait()
        if code is None:
            break
    raise ConfigurationError(f"The Ray node on {node_ip} did not join; see {log_file}")


def _alive_ips(address: str, headers: dict[str, str]) -> list[str]:
    """Node IPs the head's state API lists as ALIVE (empty while it is not ready)."""
    try:
        listed = httpx.get(address + "/api/v0/nodes", headers=headers, timeout=5).json()
        return [n["node_ip"] for n in listed["data"]["result"]["result"] if n.get("state") == "ALIVE"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return []


def load(state_dir: Path) -> Cluster | None:
    record = ray_dir(state_dir) / RECORD
    if not record.exists():
        return None
    try:
        return Cluster(**json.loads(record.read_text()))
    except (ValueError, TypeError):
        return None


def _alive(cluster: Cluster) -> bool:
    """Whether ``cluster.pid`` is still that ``ray start`` (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{cluster.pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(cluster.pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the pid
    return cluster.temp_dir.encode() in cmdline


def session_pids(cluster: Cluster) -> list[int]:
    """Processes of this node (their command line names its temp dir)."""
    out = []
    marker = cluster.temp_dir.encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker in cmdline and ") Z " not in stat:  # zombies are dead already
            out.append(int(entry.name))
    return out


def stop(cluster: Cluster, timeout: float = 15.0) -> None:
    """Stop this node and only it; remove its temp dir."""
    if _alive(cluster):
        try:
            os.kill(cluster.pid, signal.SIGTERM)  # the group as a whole hangs ~30 s (measured): the pid only
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while _alive(cluster) and time.monotonic() < deadline:
            time.sleep(0.1)
    for sig_target in (cluster.pid,):
        try:
            os.killpg(sig_target, signal.SIGKILL)  # anything left in its own group
        except (ProcessLookupError, PermissionError):
            pass
    if Path("/proc").exists():
        deadline = time.monotonic() + 5
        while (left := session_pids(cluster)) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.1)
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)


def down(state_dir: Path) -> Cluster | None:
    """Stop the head ``start_head`` recorded under ``state_dir``; None when there is none."""
    cluster = load(state_dir)
    if cluster is None:
        return None
    stop(cluster)
    (ray_dir(state_dir) / RECORD).unlink(missing_ok=True)
    return cluster


def settings_text(cluster: Cluster) -> str:
    """The settings that point the server at ``cluster`` (the token by file: it is never printed)."""
    return (
        f"export CLOUDJOBS_PROVIDERS=ray,local   # ray the default, this machine still there\n"
        f"export CLOUDJOBS_RAY_ADDRESS={cluster.address}\n"
        f'export RAY_AUTH_TOKEN="$(cat {cluster.token_file})"\n'
    )
