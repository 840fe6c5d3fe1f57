"""Resource samples of a run's pods, taken by its supervisor, and the raw readings behind them.

Stdlib only (imported by supervisor processes). Every ``interval`` seconds (``Executor.launch``'s
``metrics_interval``; at least ``MIN_INTERVAL_SECONDS``) the supervisor samples each live pod:

* ``cpu``: CPU time of the pod's process tree over the last interval, in % of the vCPUs the pod was
  allocated (100 = all of them busy; more when the pod uses more than its share: CPUs are not pinned).
  The tree is every process of the pod's session (each pod starts a session of its own) plus every
  descendant of its main process; its CPU time is the sum of ``utime + stime + cutime + cstime`` from
  ``/proc/<pid>/stat`` (``cutime``/``cstime`` keep the time of children the tree already reaped).
* ``memory``: resident memory (RSS) of the tree, in % of the pod's allocated memory (shared pages count
  once per process, as ``ps`` does).
* ``gpu_core`` / ``gpu_memory`` (pods holding GPUs): ``nvidia-smi --query-gpu=index,utilization.gpu,
  memory.used,memory.total --format=csv,noheader,nounits``, one call per sample for all pods; utilization
  averaged over the pod's GPUs, memory used over their total. GPUs are never shared between runs, so a
  GPU's use is its pod's.

Samples go to the ``metrics`` table, ``(run_id, pod_id, metric, time, value)``. Each series keeps at most
``MAX_POINTS`` points: when it reaches that, every other point of its older half is deleted, so old samples
thin out (a long run keeps its whole history at a decreasing resolution) while recent ones stay exact.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_INTERVAL_SECONDS = 2.0
MIN_INTERVAL_SECONDS = 0.1
MAX_POINTS = 5000
NVIDIA_SMI_TIMEOUT_SECONDS = 5.0
GPU_QUERY = ("--query-gpu=index,utilization.gpu,memory.used,memory.total", "--format=csv,noheader,nounits")
KINDS = ("cpu", "memory", "gpu_core", "gpu_memory")

try:
    _CLK_TCK = float(os.sysconf("SC_CLK_TCK"))
    _PAGE = int(os.sysconf("SC_PAGE_SIZE"))
except (ValueError, OSError, AttributeError):  # pragma: no cover - every Linux has them
    _CLK_TCK, _PAGE = 100.0, 4096


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    session: int
    cpu_seconds: float  # utime + stime + cutime + cstime
    rss_bytes: int


def meminfo_total_gb() -> float | None:
    """MemTotal from /proc/meminfo in GiB; None where it cannot be read (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        rest = data[data.rindex(b")") + 2 :].split()  # the command name may hold spaces and parentheses
        # rest[0] is field 3 (state): field k is rest[k - 3]
        ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
        return ProcStat(pid, int(rest[1]), int(rest[3]), ticks / _CLK_TCK, int(rest[21]) * _PAGE)
    except (ValueError, IndexError):
        return None


def scan_procs() -> dict[int, ProcStat]:
    """Every readable process of this machine (its pid namespace)."""
    out: dict[int, ProcStat] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                out[st.pid] = st
    return out


def tree_of(procs: Mapping[int, ProcStat], root: int) -> list[ProcStat]:
    """The processes of the pod whose main process is ``root``: its session and its descendants."""
    children: dict[int, list[int]] = {}
    for st in procs.values():
        children.setdefault(st.ppid, []).append(st.pid)
    seen = {pid for pid, st in procs.items() if st.session == root} | {root}
    stack = list(seen)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return [procs[p] for p in seen if p in procs]


@dataclass(frozen=True)
class GpuReading:
    index: int
    utilization: float | None  # %
    memory_used_mib: float | None
    memory_total_mib: float | None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]", ...


def parse_gpu_query(text: str) -> dict[int, GpuReading]:
    """Lines ``index, utilization.gpu, memory.used, memory.total``; others are skipped."""
    out: dict[int, GpuReading] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        out[int(parts[0])] = GpuReading(int(parts[0]), _number(parts[1]), _number(parts[2]), _number(parts[3]))
    return out


def query_gpus(exe: str, timeout: float = NVIDIA_SMI_TIMEOUT_SECONDS) -> tuple[dict[int, GpuReading], str | None]:
    """``(readings by index, error)``: the error says why nvidia-smi gave nothing usable."""
    try:
        proc = subprocess.run(
            [exe, *GPU_QUERY], capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return {}, f"nvidia-smi did not answer within {timeout:g} s"
    except OSError as exc:
        return {}, f"nvidia-smi could not run: {exc}"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return {}, f"nvidia-smi failed (exit code {proc.returncode}){': ' + detail[0] if detail else ''}"
    return parse_gpu_query(proc.stdout), None


# ---------------------------------------------------------------------------------------------- sampling


@dataclass
class PodTarget:
    """What the sampler needs about one live pod."""

    pod_id: str
    pid: int
    cpus: float  # allocated vCPUs (the % base)
    memory_bytes: float  # allocated memory (the % base)
    gpus: tuple[int, ...] = ()
    started: float = 0.0  # wall time of its start


@dataclass
class Sampler:
    """Turns readings into points: keeps each pod's previous CPU time to difference against."""

    nvidia_smi: str | None = None
    _last: dict[str, tuple[float, float]] = field(default_factory=dict)  # pod -> (wall time, cpu seconds)
    _gpu_backoff_until: float = 0.0
    gpu_error: str | None = None

    def sample(self, pods: Iterable[PodTarget], now: float) -> list[tuple[str, str, float, float]]:
        """``(pod_id, metric, time, value)`` points for ``pods`` at wall time ``now``."""
        pods = list(pods)
        if not pods:
            return []
        procs = scan_procs()
        points: list[tuple[str, str, float, float]] = []
        for pod in pods:
            tree = tree_of(procs, pod.pid)
            if not tree:
                continue
            cpu = sum(p.cpu_seconds for p in tree)
            rss = sum(p.rss_bytes for p in tree)
            last_t, last_cpu = self._last.get(pod.pod_id, (pod.started, 0.0))
            self._last[pod.pod_id] = (now, cpu)
            if now - last_t > 1e-3 and pod.cpus > 0:
                value = max(0.0, cpu - last_cpu) / (now - last_t) / pod.cpus * 100.0
                points.append((pod.pod_id, "cpu", now, round(value, 3)))
            if pod.memory_bytes > 0:
                points.append((pod.pod_id, "memory", now, round(rss / pod.memory_bytes * 100.0, 3)))
        with_gpus = [p for p in pods if p.gpus]
        if with_gpus and self.nvidia_smi and now >= self._gpu_backoff_until:
            readings, self.gpu_error = query_gpus(self.nvidia_smi)
            if self.gpu_error is not None:
                self._gpu_backoff_until = now + 30.0  # a broken nvidia-smi is not called every interval
            for pod in with_gpus:
                got = [readings[g] for g in pod.gpus if g in readings]
                utils = [r.utilization for r in got if r.utilization is not None]
                if utils and len(utils) == len(pod.gpus):
                    points.append((pod.pod_id, "gpu_core", now, round(sum(utils) / len(utils), 3)))
                used = [r.memory_used_mib for r in got if r.memory_used_mib is not None]
                total = [r.memory_total_mib for r in got if r.memory_total_mib is not None]
                if used and len(used) == len(total) == len(pod.gpus) and sum(total) > 0:
                    points.append((pod.pod_id, "gpu_memory", now, round(sum(used) / sum(total) * 100.0, 3)))
        return points

    def forget(self, pod_id: str) -> None:
        self._last.pop(pod_id, None)


def store_points(
    conn: sqlite3.Connection,
    run_id: str,
    points: list[tuple[str, str, float, float]],
    counts: dict[tuple[str, str], int],
) -> None:
    """Insert ``points`` inside ``conn``'s transaction, thinning any series that reached ``MAX_POINTS``.

    ``counts`` is the caller's running count of points per ``(pod_id, metric)`` (kept across calls)."""
    conn.executemany(
        "INSERT OR REPLACE INTO metrics (run_id, pod_id, metric, time, value) VALUES (?, ?, ?, ?, ?)",
        [(run_id, pod, metric, t, v) for pod, metric, t, v in points],
    )
    for pod, metric, _, _ in points:
        key = (pod, metric)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] < MAX_POINTS:
            continue
        times = [
            r[0]
            for r in conn.execute(
                "SELECT time FROM metrics WHERE run_id = ? AND pod_id = ? AND metric = ? ORDER BY time LIMIT ?",
                (run_id, pod, metric, MAX_POINTS // 2),
            )
        ]
        doomed = times[1::2]
        conn.executemany(
            "DELETE FROM metrics WHERE run_id = ? AND pod_id = ? AND metric = ? AND time = ?",
            [(run_id, pod, metric, t) for t in doomed],
        )
        counts[key] = conn.execute(
            "SELECT COUNT(*) FROM metrics WHERE run_id = ? AND pod_id = ? AND metric = ?", (run_id, pod, metric)
        ).fetchone()[0]


# ------------------------------------------------------------------------------------ out-of-memory kills


def _read_counter(path: str, key: str) -> int | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except (OSError, ValueError):
        return None
    return None


def oom_kill_counter(pid: int) -> tuple[str, int] | None:
    """``(file, count)`` of OOM kills in the memory cgroup of ``pid``: cgroup v1 ``memory.oom_control`` or
    v2 ``memory.events``. Only the file of the process's own cgroup counts (a v1 parent does not count its
    children's kills); None when it is not readable (no cgroup mount, another namespace, no permission)."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    candidates: list[tuple[str, str]] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if "memory" in controllers.split(","):
            candidates.insert(0, (f"/sys/fs/cgroup/memory{path.rstrip('/')}/memory.oom_control", "oom_kill"))
        elif parts[0] == "0" and controllers == "":
            for mount in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                candidates.append((f"{mount}{path.rstrip('/')}/memory.events", "oom_kill"))
    for path, key in candidates:
        count = _read_counter(path, key)
        if count is not None:
            return path, count
    return None


def oom_killed_since(baseline: tuple[str, int] | None) -> bool | None:
    """True when the cgroup counted an OOM kill since ``baseline``, False when not, None when unknown."""
    if baseline is None:
        return None
    with contextlib.suppress(Exception):
        now = _read_counter(baseline[0], "oom_kill")
        if now is not None:
            return now > baseline[1]
    return None
