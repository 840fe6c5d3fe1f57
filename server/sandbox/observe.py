"""What the sandbox reports about a job's resources and pre-flight checks: GetJobMetrics (and PaiStudio's
ListTrainingJobInstanceMetrics) and the sanity check results.

Metrics. CPU and memory are the executor's real samples of each pod's process tree (``Executor.metrics``,
taken every ``SandboxSettings.metrics_seconds``), in % of what the pod is allocated: its EcsSpec's vCPUs and
memory, or its ResourceConfig on a quota (the executor measures against the run's largest pod; the values
are rescaled to each pod's own share). GPU metrics are synthetic (the pods run on the CPU): pods of GPU
specs report 60-90 % GPU core and 45-75 % GPU memory use while they run, ~1-3 % / ~0.5-2 % with the
``idle_gpus`` fault; pods without GPUs have no GPU series. Values are stable from read to read (a hash of
the pod and the sample time). The samples are averaged in ``TimeStep`` buckets aligned on ``StartTime``,
each stamped with its bucket's start, as a range query does. NetworkInputRate / NetworkOutputRate /
DiskReadRate / DiskWriteRate are accepted and answered with empty series (not measured).

Sanity checks (jobs created with ``Settings.EnableSanityCheck=true``). The executor runs its real pre-flight
checks before any pod starts (``server/providers/local/sanity.py``: interpreter, working directory, disk,
rendezvous port); they are reported as check run 1 (``CheckNumber`` is "the nth time the check is
performed") with one item per DLC phase: ``CheckInit`` (the interpreter, directory and disk checks),
``SingleNodeCommCheck`` (the port check), and — simulated, said so in their Message — ``DeviceCheck`` for
GPU jobs and ``TwoNodeCommCheck`` / ``AllNodeCommCheck`` for jobs of two pods or more. A
``sanity_check_failure`` fault answers for its jobs instead (faults.py).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudjobs_mcp.server.errors import NotFound
from cloudjobs_mcp.server.providers.local.executor import Executor, SanityCheck
from cloudjobs_mcp.server.sandbox.errors import ApiError, invalid, missing
from cloudjobs_mcp.server.sandbox.faults import JobFault
from cloudjobs_mcp.server.sandbox.jobs import JobView, iso_checked, parse_iso, sanity_phases

# MetricType → the executor's metric kind (None: accepted, not measured).
METRIC_TYPES: dict[str, str | None] = {
    "CpuCoreUsage": "cpu",
    "MemoryUsage": "memory",
    "GpuCoreUsage": "gpu_core",
    "GpuMemoryUsage": "gpu_memory",
    "NetworkInputRate": None,
    "NetworkOutputRate": None,
    "DiskReadRate": None,
    "DiskWriteRate": None,
}
MAX_POINTS = 11_000  # a range query's limit per series
_STEP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_STEP_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
STUDIO_STEPS = {"10s": 10.0, "5m": 300.0, "30m": 1800.0, "1h": 3600.0}  # ListTrainingJobInstanceMetrics
BUSY = {"gpu_core": (60.0, 30.0), "gpu_memory": (45.0, 30.0)}  # (base, spread) %
IDLE = {"gpu_core": (1.0, 2.0), "gpu_memory": (0.5, 1.5)}


def metric_kind(raw: str | None) -> str | None:
    """The MetricType's kind; MissingParameter / InvalidParameter as the API answers them."""
    if not raw:
        raise missing("MetricType")
    if raw not in METRIC_TYPES:
        raise invalid("MetricType", f"{raw!r} is not one of {', '.join(METRIC_TYPES)}")
    return METRIC_TYPES[raw]


def parse_step(raw: str | None, default: float = 300.0) -> float:
    """A TimeStep duration (``5m``, ``30s``, ``1h`` ...) in seconds."""
    if not raw:
        return default
    match = _STEP.match(raw)
    if not match or float(match.group(1)) <= 0:
        raise invalid("TimeStep", f"{raw!r} is not a duration such as 30s, 5m or 1h")
    return float(match.group(1)) * _STEP_UNITS[match.group(2)]


def window_end(raw: str, name: str = "EndTime") -> float:
    """An EndTime without fractions covers its whole second (or minute, for PaiStudio's ``HH:mmZ``): the
    sandbox's timeline is seconds long, and a client that floors "now" to the second would otherwise miss
    the samples of the last second."""
    end = parse_iso(name, raw)
    text = raw.strip()
    if re.search(r"T\d{2}:\d{2}(Z|[+-]\d{2}:?\d{2})?$", text):
        return end + 59.999
    if "." not in text:
        return end + 0.999
    return end


def check_window(start: float, end: float, step: float) -> None:
    if end < start:
        raise invalid("EndTime", "is before StartTime")
    if (end - start) / step > MAX_POINTS:
        raise ApiError(
            400,
            "InvalidParameter",
            f"exceeded maximum resolution of {MAX_POINTS:,} points per timeseries. Try decreasing the query "
            "resolution (a larger TimeStep) or a shorter time range.",
        )


def _noise(pod_id: str, at: float, metric: str) -> float:
    digest = hashlib.sha256(f"{pod_id}/{metric}/{round(at, 1)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


@dataclass(frozen=True)
class Series:
    pod_id: str
    points: list[tuple[float, float]]  # (unix time, %), oldest first


def samples(
    executor: Executor, view: JobView, kind: str | None, start: float, end: float, faults: Sequence[JobFault]
) -> list[Series]:
    """Every pod's raw samples of ``kind`` in [start, end] (pods that never ran: no points)."""
    record = view.record
    pods = [p.pod_id for p in record.pods]
    if kind is None or record.launched_at is None:
        return [Series(p, []) for p in pods]
    shares = {p.pod_id: record.allocation(p.role) for p in record.pods}
    base_cpus = max((s.cpus for s in shares.values()), default=1.0) or 1.0
    base_memory = max((s.memory_gib for s in shares.values()), default=1.0) or 1.0
    measured = "cpu" if kind in ("gpu_core", "gpu_memory") else kind
    try:
        raw = executor.metrics(record.job_id, measured, since=datetime.fromtimestamp(start, UTC))
    except NotFound:
        return [Series(p, []) for p in pods]
    idle = any(f.kind == "idle_gpus" for f in faults)
    out: list[Series] = []
    for pod in view.pods:
        share = shares[pod.pod_id]
        points = [(t, v) for t, v in raw.get(pod.pod_id, []) if start <= t <= end]
        if kind == "cpu":
            points = [(t, v * base_cpus / (share.cpus or base_cpus)) for t, v in points]
        elif kind == "memory":
            points = [(t, v * base_memory / (share.memory_gib or base_memory)) for t, v in points]
        elif share.gpus <= 0:
            points = []
        else:
            times = [t for t, _ in points]
            if not times and pod.started_at is not None:  # not sampled yet: its start and now
                last = pod.finished_at if pod.finished_at is not None else view.now
                times = [t for t in (pod.started_at, last) if start <= t <= end]
            base, spread = (IDLE if idle else BUSY)[kind]
            points = [(t, base + spread * _noise(pod.pod_id, t, kind)) for t in times]
        out.append(Series(pod.pod_id, points))
    return out


def buckets(points: Sequence[tuple[float, float]], start: float, step: float) -> list[tuple[float, float]]:
    """Mean of the points in each ``step`` bucket from ``start``, stamped with the bucket's start."""
    grouped: dict[int, list[float]] = {}
    for t, v in points:
        grouped.setdefault(math.floor((t - start) / step), []).append(v)
    return [(start + k * step, sum(vs) / len(vs)) for k, vs in sorted(grouped.items())]


def value(v: float) -> float:
    return float(round(v, 3))


# ------------------------------------------------------------------------------------ sanity checks


def _item(phase: str, status: str, message: str, started: float | None, finished: float | None) -> dict[str, Any]:
    item: dict[str, Any] = {"CheckNumber": 1, "Phase": phase, "Status": status, "Message": message}
    if started is not None:
        item["StartedAt"] = iso_checked(started)
    if finished is not None:
        item["FinishedAt"] = iso_checked(finished)
    return item


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def sanity_results(
    view: JobView, checks: Sequence[SanityCheck], faults: Sequence[JobFault]
) -> list[list[dict[str, Any]]]:
    """The job's sanity check runs (each a list of SanityCheckResultItem dicts), oldest first."""
    record = view.record
    if not record.sanity_enabled:
        return []
    for fault in faults:
        decided = fault.sanity_items(view)
        if decided is not None:
            return [decided] if decided else []
    if not checks:
        return []
    by_phase: dict[str, list[SanityCheck]] = {}
    for check in checks:
        by_phase.setdefault(check.phase, []).append(check)
    done = all(c.finished_at is not None for c in checks)
    failed = any(c.status == "Failed" for c in checks)
    last = max((_ts(c.finished_at) or _ts(c.started_at) or 0.0) for c in checks)
    share = record.allocation(record.pods[0].role)
    items: list[dict[str, Any]] = []
    for phase in sanity_phases(record):
        real = by_phase.get(phase)
        if real:
            status = (
                "Failed"
                if any(c.status == "Failed" for c in real)
                else ("Running" if any(c.status == "Running" for c in real) else "Succeeded")
            )
            message = "; ".join(c.message for c in real if c.message) or f"{phase} passed"
            started = min((c.started_at.timestamp() for c in real if c.started_at is not None), default=None)
            finished = max((_ts(c.finished_at) or 0.0) for c in real) if all(c.finished_at for c in real) else None
            items.append(_item(phase, status, message, started, finished))
            continue
        if not done or failed:
            continue  # the simulated phases run after the real ones, and only when those passed
        if phase == "DeviceCheck":
            gpus = f"{share.gpus:g} x {share.gpu_type or 'GPU'}"
            message = (
                f"DeviceCheck passed on {len(record.pods)} pod(s), {gpus} each (sandbox: the GPUs are simulated; "
                "no device was tested)"
            )
        else:
            message = f"{phase} passed across {len(record.pods)} pods (sandbox: simulated on one machine)"
        items.append(_item(phase, "Succeeded", message, last, last))
    return [items] if items else []
