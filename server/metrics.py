"""Job metrics an assistant can act on: resource usage summaries, training metrics read from the log,
and the warnings that matter (GPUs paid for but idle, memory near its limit, a loss that is NaN or flat)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import anyio
from pydantic import Field

from cloudjobs_mcp.server.engine import Engine
from cloudjobs_mcp.server.errors import CloudJobsError, InvalidRequest
from cloudjobs_mcp.server.models import (
    METRIC_KINDS,
    Job,
    JobStatus,
    MetricDefinition,
    MetricKind,
    MetricPoint,
    Model,
    PodMetricSeries,
)

SERIES_POINTS = 20  # a compact series: enough to see a trend, never raw thousands of points
IDLE_GPU_PERCENT = 10.0
MEMORY_NEAR_LIMIT = 90.0
FLAT_LOSS_SAMPLES = 10
FLAT_LOSS_CHANGE = 0.01
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|inf|-inf)"
DEFAULT_DEFINITIONS: dict[str, str] = {
    "loss": rf"\bloss\b[\s:=]+{_NUMBER}",
    "acc": rf"\b(?:acc|accuracy)\b[\s:=]+{_NUMBER}",
    "lr": rf"\b(?:lr|learning[_ ]rate)\b[\s:=]+{_NUMBER}",
    "step": r"\b(?:step|iter|iteration)\b[\s:=]+(\d+)",
}


class Summary(Model):
    latest: float | None = Field(description="The last value (None when it was NaN or infinite)")
    mean: float | None
    max: float | None
    min: float | None = None
    samples: int
    non_finite: int = Field(default=0, description="How many values were NaN or infinite")
    last_finite: bool = True
    series: list[float] = Field(description=f"At most {SERIES_POINTS} points, oldest first (bucket means)")


class PodUsage(Model):
    pod_id: str
    metrics: dict[str, Summary] = Field(description="By metric: cpu, memory, gpu_core, gpu_memory (% of allocation)")


class TrainingMetric(Model):
    name: str
    pod_id: str
    first: float | None
    summary: Summary


class JobMetrics(Model):
    job_id: str
    status: JobStatus
    usage: list[PodUsage]
    training: list[TrainingMetric]
    warnings: list[str] = Field(description="Things to act on, most costly first")
    note: str


def summarize(values: list[float], with_min: bool = False) -> Summary:
    finite = [v for v in values if math.isfinite(v)]
    last_finite = bool(values) and math.isfinite(values[-1])
    return Summary(
        latest=round(values[-1], 6) if last_finite else None,
        mean=round(sum(finite) / len(finite), 4) if finite else None,
        max=round(max(finite), 4) if finite else None,
        min=round(min(finite), 4) if finite and with_min else None,
        samples=len(values),
        non_finite=len(values) - len(finite),
        last_finite=last_finite or not values,
        series=downsample(finite, SERIES_POINTS),
    )


def downsample(values: list[float], points: int) -> list[float]:
    """At most ``points`` bucket means of finite ``values`` (JSON has no NaN)."""
    if len(values) <= points:
        return [round(v, 4) for v in values]
    return [
        round(sum(bucket) / len(bucket), 4)
        for i in range(points)
        if (bucket := values[i * len(values) // points : (i + 1) * len(values) // points])
    ]


def compile_definitions(definitions: list[MetricDefinition] | None) -> dict[str, re.Pattern[str]]:
    raw = {d.name: d.regex for d in definitions} if definitions else DEFAULT_DEFINITIONS
    compiled: dict[str, re.Pattern[str]] = {}
    for name, regex in raw.items():
        try:
            pattern = re.compile(regex, re.IGNORECASE)
        except re.error as exc:
            raise InvalidRequest(f"metric definition {name!r}: invalid regular expression ({exc})") from None
        if pattern.groups < 1:
            raise InvalidRequest(f"metric definition {name!r}: the regex needs a group that captures the value")
        compiled[name] = pattern
    return compiled


def parse_training_metrics(lines: list[str], patterns: dict[str, re.Pattern[str]]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {name: [] for name in patterns}
    for line in lines:
        for name, pattern in patterns.items():
            for match in pattern.finditer(line):
                try:
                    found[name].append(float(match.group(1)))
                except ValueError:
                    continue
    return {k: v for k, v in found.items() if v}


def usage_warnings(job: Job, usage: list[PodUsage], gpu_job: bool) -> list[str]:
    warnings: list[str] = []
    if job.status is JobStatus.RUNNING and gpu_job:
        idle = [
            u.pod_id
            for u in usage
            if (m := _recent_mean(u.metrics.get("gpu_core"))) is not None and m < IDLE_GPU_PERCENT
        ]
        if idle:
            warnings.append(
                f"GPUs allocated but idle while Running (< {IDLE_GPU_PERCENT:g}% GPU use) on {', '.join(idle)}: "
                "money is burning. Check that the code uses CUDA (device='cuda'), that data loading is not the "
                "bottleneck, or stop the job and use a CPU spec."
            )
    for u in usage:
        mem = u.metrics.get("memory")
        if mem and mem.max is not None and mem.max >= MEMORY_NEAR_LIMIT:
            warnings.append(
                f"Memory near its limit on {u.pod_id} (max {mem.max:.0f}% of the allocation): the job may be "
                "OOM-killed. Use a spec with more memory or lower the batch size."
            )
        gmem = u.metrics.get("gpu_memory")
        if gmem and gmem.max is not None and gmem.max >= 97:
            warnings.append(f"GPU memory full on {u.pod_id} (max {gmem.max:.0f}%): CUDA out-of-memory is likely.")
    return warnings


def _recent_mean(s: Summary | None) -> float | None:
    """Mean of the last few points: a job that warmed up for minutes and then idles is idle."""
    recent = s.series[-3:] if s else []
    return sum(recent) / len(recent) if recent else None


def training_warnings(training: list[TrainingMetric]) -> list[str]:
    warnings: list[str] = []
    for t in training:
        if t.name != "loss":
            continue
        series = t.summary.series
        if not t.summary.last_finite:
            warnings.append(
                f"Loss is NaN or infinite on {t.pod_id} ({t.summary.non_finite} such values): training diverged. "
                "Lower the learning rate, check the inputs for NaN, or use gradient clipping."
            )
        elif t.summary.samples >= FLAT_LOSS_SAMPLES and len(series) >= 2:
            first, last = series[0], series[-1]
            if (
                math.isfinite(first)
                and math.isfinite(last)
                and abs(last - first) <= FLAT_LOSS_CHANGE * max(abs(first), 1e-9)
            ):
                warnings.append(
                    f"Loss is not moving on {t.pod_id} ({first:g} → {last:g} over {t.summary.samples} samples): "
                    "check the learning rate, the data and that gradients reach the model."
                )
    return warnings


async def job_metrics(engine: Engine, job_id: str, **options: Any) -> JobMetrics:
    """The job's metrics (``options``: those of ``collect``)."""
    result, _ = await collect(engine, job_id, **options)
    return result


async def collect(
    engine: Engine,
    job_id: str,
    *,
    metrics: list[MetricKind] | None = None,
    since: datetime | None = None,
    step_seconds: int | None = None,
    definitions: list[MetricDefinition] | None = None,
    provider: str | None = None,
) -> tuple[JobMetrics, dict[str, dict[str, list[float]]]]:
    """The job's metrics, and every training value read from each pod's log (pod → metric → values),
    for pictures that need more than the compact series. Without ``definitions``, the job's own."""
    job = await engine.get(job_id, provider)
    definitions = definitions or job.metric_definitions or None
    spec = None
    if job.ecs_spec:
        try:
            spec = await engine.spec(job.ecs_spec, job.provider)
        except CloudJobsError:
            spec = None
    gpu_job = bool(spec and spec.gpu_count)
    kinds = list(metrics) if metrics else [k for k in METRIC_KINDS if gpu_job or not k.startswith("gpu")]
    bad = [k for k in kinds if k not in METRIC_KINDS]
    if bad:
        raise InvalidRequest(f"Unknown metric {bad[0]!r}; allowed: {', '.join(METRIC_KINDS)}.")
    patterns = compile_definitions(definitions)
    series: dict[str, list[PodMetricSeries]] = {}
    logs: dict[str, list[str]] = {}

    async def fetch_metric(kind: MetricKind) -> None:
        series[kind] = await engine.provider_of(job).metrics(job.job_id, kind, since=since, step_seconds=step_seconds)

    async def fetch_log(pod_id: str) -> None:
        logs[pod_id] = (await engine.provider_of(job).pod_logs(job.job_id, pod_id, max_lines=20_000, since=since)).lines

    async with anyio.create_task_group() as tg:  # every metric and every pod's log at once
        for kind in kinds:
            tg.start_soon(fetch_metric, kind)
        for pod in job.pods[:8]:
            tg.start_soon(fetch_log, pod.pod_id)

    usage: dict[str, PodUsage] = {}
    for kind in kinds:
        for s in series.get(kind, []):
            values = [p.value for p in _points(s.points)]
            usage.setdefault(s.pod_id, PodUsage(pod_id=s.pod_id, metrics={})).metrics[kind] = summarize(values)
    values_by_pod = {pod_id: parse_training_metrics(lines, patterns) for pod_id, lines in logs.items()}
    training = [
        TrainingMetric(name=name, pod_id=pod_id, first=values[0], summary=summarize(values, with_min=True))
        for pod_id, by_name in values_by_pod.items()
        for name, values in by_name.items()
    ]
    warnings = usage_warnings(job, list(usage.values()), gpu_job) + training_warnings(training)
    note = (
        f"Usage in % of each pod's allocation ({', '.join(kinds)}); series are at most {SERIES_POINTS} bucket means. "
        "Training metrics come from the logs"
        + (" with the metric definitions." if definitions else " (defaults: loss, acc, lr, step).")
    )
    result = JobMetrics(
        job_id=job.job_id,
        status=job.status,
        usage=list(usage.values()),
        training=training[:16],
        warnings=warnings,
        note=note,
    )
    return result, values_by_pod


def _points(points: list[MetricPoint]) -> list[MetricPoint]:
    return sorted(points, key=lambda p: p.time)
