"""PaiStudio 2022-01-12 training jobs (``train…`` ids) and the observability shapes of both products.

Pure mapping, no I/O: GetTrainingJob → :class:`~server.models.Job`, resource-metric series, sanity-check
results, ListQuotaWorkloads → :class:`~server.models.WorkloadInfo`, error info. :mod:`.provider` calls
the APIs and dispatches by id prefix (:func:`is_training_job`).

PaiStudio's training-job statuses are not enumerated in its SDK; the list below is the one the official
PAI Python SDK (aliyun/pai-python-sdk, ``pai/job/_training_job.py`` ``TrainingJobStatus``) works with.
``Terminated`` is a job stopped before it ended (that SDK reports it apart from the failures), so it
maps to Stopped. DLC's own names are accepted too, in case the service reports them for the DLC job
underneath; anything else counts as running (non-terminal), as for DLC.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudjobs_mcp.server.errors import InvalidRequest
from cloudjobs_mcp.server.models import (
    Job,
    JobStatus,
    MetricPoint,
    OutputModel,
    OutputModels,
    Pod,
    QueueMeta,
    SanityCheckResult,
)

Status = JobStatus

TRAINING_JOB_PREFIX = "train"

TRAINING_STATUS_MAP: dict[str, Status] = {
    "Creating": Status.CREATING,
    "Created": Status.CREATING,
    "Submitted": Status.QUEUING,
    "Initializing": Status.CREATING,
    "Running": Status.RUNNING,
    "Succeed": Status.SUCCEEDED,
    "Failed": Status.FAILED,
    "CreateFailed": Status.FAILED,
    "InitializeFailed": Status.FAILED,
    "Terminated": Status.STOPPED,
    # DLC's names, accepted as well
    "Queuing": Status.QUEUING,
    "Stopping": Status.STOPPING,
    "Stopped": Status.STOPPED,
    "Succeeded": Status.SUCCEEDED,
}

# MetricKind → the MetricType both DLC GetJobMetrics and PaiStudio ListTrainingJobInstanceMetrics take.
METRIC_TYPES: dict[str, str] = {
    "cpu": "CpuCoreUsage",
    "memory": "MemoryUsage",
    "gpu_core": "GpuCoreUsage",
    "gpu_memory": "GpuMemoryUsage",
}
MAX_SERIES_POINTS = 500
DLC_DEFAULT_STEP = 300  # GetJobMetrics' default TimeStep (5 minutes)
STUDIO_STEPS = (10, 300, 1800, 3600)  # ListTrainingJobInstanceMetrics' TimeStep values: 10s, 5m, 30m, 1h

# Seed 000's GetWorkloadInfo fields, in the seed's order, with the WorkloadInfo attribute each fills.
SEED_WORKLOAD_FIELDS: tuple[tuple[str, str], ...] = (
    ("WorkloadId", "job_id"),
    ("WorkloadName", "name"),
    ("WorkloadType", "workload_type"),
    ("WorkspaceId", "workspace_id"),
    ("WorkspaceName", "workspace_name"),
    ("WorkloadCreatedTime", "created_at"),
    ("WorkloadStatus", "status"),
    ("UserId", "user_id"),
    ("TenantId", "tenant_id"),
    ("UserName", "user_name"),
    ("Priority", "priority"),
    ("IsScheduled", "is_scheduled"),
    ("QueueMetas", "queue_metas"),
)
PUBLIC_NOTE = "runs on public pay-as-you-go resources; it is not queued in a resource quota"
MAX_ERROR_INFO = 1000


def is_training_job(job_id: str) -> bool:
    """``train…`` ids are PaiStudio training jobs; everything else (``dlc…``) goes to PAI-DLC."""
    return job_id.startswith(TRAINING_JOB_PREFIX)


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not job_id.strip() or any(c.isspace() or c in "/?#" for c in job_id):
        raise InvalidRequest(
            f"job_id {job_id!r} is not a PAI job id: pass a PAI-DLC id (dlc…) or a PaiStudio training job id "
            "(train…) as list_jobs shows it"
        )
    return job_id


# ------------------------------------------------------------------------------ scalars


def as_dict(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}


def as_str(raw: Any) -> str | None:
    return str(raw) if raw not in (None, "") else None


def as_int(raw: Any) -> int | None:
    """Numbers arrive as numbers or strings (``TotalCount``, ``Position``, ``MaxRunningTimeInSeconds``)."""
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    try:
        return int(float(raw))
    except (TypeError, ValueError):
        return None


def as_float(raw: Any) -> float | None:
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def as_bool(raw: Any) -> bool | None:
    """``IsScheduled`` is the string ``"true"``/``"false"`` in the SDK's WorkloadInfo."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    return None


def parse_time(raw: Any) -> datetime | None:
    """UTC ISO-8601 (``2024-01-01T00:00:00Z``, ``…00.123Z``, minute-precision ``2024-01-01T00:05Z``)."""
    if not raw or not isinstance(raw, str):
        return None
    text = raw.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(\+00:00)?", text):  # yyyy-MM-ddTHH:mmZ
        text = text[:16] + ":00" + text[16:]
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def from_epoch_ms(raw: Any) -> datetime | None:
    ms = as_float(raw)
    if ms is None:
        return parse_time(raw)
    try:
        return datetime.fromtimestamp(ms / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def studio_time(value: datetime | None, *, ceil: bool = False) -> str | None:
    """PaiStudio query time, ``yyyy-MM-ddTHH:mmZ``: the start rounded down, the end (``ceil``) up."""
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    floor = value.replace(second=0, microsecond=0)
    if ceil and floor != value:
        floor += timedelta(minutes=1)
    return floor.strftime("%Y-%m-%dT%H:%MZ")


def one_line(*parts: str | None, limit: int = MAX_ERROR_INFO) -> str:
    text = " ".join(" ".join(p.split()) for p in parts if p and p.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------ training jobs


def normalize_training_status(raw: str | None) -> Status:
    if not raw:
        return Status.CREATING
    return TRAINING_STATUS_MAP.get(raw, Status.RUNNING)


def _transition_time(transitions: Sequence[Mapping[str, Any]], statuses: Iterable[str]) -> datetime | None:
    wanted = set(statuses)
    for t in transitions:
        if t.get("Status") in wanted:
            when = parse_time(t.get("StartTime"))
            if when:
                return when
    return None


def training_labels(data: Mapping[str, Any]) -> dict[str, str]:
    """``Labels: [{"Key","Value"}]`` (plus ``Settings.Tags`` when the job carries them)."""
    tags: dict[str, str] = {}
    settings = data.get("Settings")
    if isinstance(settings, dict) and isinstance(settings.get("Tags"), dict):
        tags.update({str(k): str(v) for k, v in settings["Tags"].items()})
    for label in data.get("Labels") or []:
        if isinstance(label, dict) and label.get("Key"):
            tags[str(label["Key"])] = str(label.get("Value") or "")
    return tags


def training_pods(data: Mapping[str, Any]) -> list[Pod]:
    """``Instances: [{"Name", "Role", "Status"}]`` — the instance Name is the id logs/events take."""
    return [
        Pod(pod_id=str(i.get("Name")), role=str(i.get("Role") or ""), status=str(i.get("Status") or "Unknown"))
        for i in data.get("Instances") or []
        if isinstance(i, dict) and i.get("Name")
    ]


def training_job_from(data: Mapping[str, Any], provider: str = "pai") -> Job:
    """A GetTrainingJob body (or a ListTrainingJobs item) → Job."""
    raw = str(data.get("Status") or "")
    status = normalize_training_status(raw)
    compute = as_dict(data.get("ComputeResource"))
    algorithm = as_dict(data.get("AlgorithmSpec"))
    scheduler = as_dict(data.get("Scheduler"))
    transitions = [t for t in data.get("StatusTransitions") or [] if isinstance(t, dict)]
    seconds = as_float(scheduler.get("MaxRunningTimeInSeconds"))
    minutes = as_float(scheduler.get("MaxRunningTimeInMinutes"))
    max_minutes = seconds / 60.0 if seconds else (minutes or None)  # 0: no limit
    finished = None
    if status.is_terminal:
        finished = _transition_time(transitions, [k for k, v in TRAINING_STATUS_MAP.items() if v.is_terminal])
        finished = finished or parse_time(data.get("GmtModifiedTime"))
    return Job(
        job_id=str(data.get("TrainingJobId") or ""),
        name=str(data.get("TrainingJobName") or ""),
        provider=provider,
        status=status,
        raw_status=raw or "Unknown",
        job_type=as_str(algorithm.get("JobType")),
        ecs_spec=as_str(compute.get("EcsSpec")),
        worker_count=as_int(compute.get("EcsCount")) or as_int(compute.get("InstanceCount")),
        image=as_str(algorithm.get("Image")),
        pods=training_pods(data),
        created_at=parse_time(data.get("GmtCreateTime")),
        started_at=_transition_time(transitions, ["Running"]),
        finished_at=finished,
        duration_seconds=as_float(data.get("Duration")),
        reason=as_str(data.get("ReasonMessage")),
        reason_code=as_str(data.get("ReasonCode")),
        max_runtime_minutes=max_minutes,
        tags=training_labels(data),
        priority=as_int(data.get("Priority")),
        resource_id=as_str(compute.get("ResourceId")),
        hyperparameters=training_hyperparameters(data),
        spot=compute.get("UseSpotInstance") is True,
    )


def training_hyperparameters(data: Mapping[str, Any]) -> dict[str, str]:
    """GetTrainingJob ``HyperParameters: [{"Name", "Value"}]``."""
    return {
        str(h["Name"]): str(h.get("Value") if h.get("Value") is not None else "")
        for h in data.get("HyperParameters") or []
        if isinstance(h, dict) and h.get("Name")
    }


MAX_OUTPUT_MODELS = 200


def output_models_from(job_id: str, data: Mapping[str, Any]) -> OutputModels:
    """ListTrainingJobOutputModels → OutputModels: name = ``OutputChannelName``, uri = ``Uri``; the API
    gives no size or time. At most MAX_OUTPUT_MODELS (``total`` counts them all)."""
    items = [
        m
        for m in data.get("OutputModels") or []
        if isinstance(m, dict) and (m.get("Uri") or m.get("OutputChannelName"))
    ]
    models = [
        OutputModel(name=str(m.get("OutputChannelName") or m.get("Uri")), uri=str(m.get("Uri") or ""))
        for m in items[:MAX_OUTPUT_MODELS]
    ]
    note = (
        "Models PaiStudio registered for the training job (ListTrainingJobOutputModels: output channel and URI)."
        if items
        else "PaiStudio lists no output models for this training job (none registered, or it has not finished)."
    )
    return OutputModels(
        job_id=job_id, models=models, total=len(items), truncated=len(items) > MAX_OUTPUT_MODELS, note=note
    )


# ------------------------------------------------------------------------------ metrics


def metric_type(metric: str) -> str:
    try:
        return METRIC_TYPES[metric]
    except (KeyError, TypeError):
        raise InvalidRequest(f"Unknown metric {metric!r}; allowed: {', '.join(METRIC_TYPES)}.") from None


def _needed_step(start: datetime | None, end: datetime | None) -> int:
    """The smallest step that keeps the window within MAX_SERIES_POINTS points."""
    if start is None or end is None or end <= start:
        return 1
    return max(1, math.ceil((end - start).total_seconds() / MAX_SERIES_POINTS))


def dlc_time_step(step_seconds: int | None, start: datetime | None, end: datetime | None) -> str:
    """GetJobMetrics TimeStep: the asked step (default 5 minutes), raised so the window stays within
    MAX_SERIES_POINTS points; ``Ns`` below a minute, else whole minutes (``Nm``) or hours (``Nh``)."""
    step = max(step_seconds or DLC_DEFAULT_STEP, _needed_step(start, end))
    if step < 60:
        return f"{step}s"
    minutes = math.ceil(step / 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def studio_time_step(step_seconds: int | None, start: datetime | None, end: datetime | None) -> str:
    """ListTrainingJobInstanceMetrics TimeStep: the smallest of 10s/5m/30m/1h not below what is needed."""
    step = max(step_seconds or DLC_DEFAULT_STEP, _needed_step(start, end))
    chosen = next((s for s in STUDIO_STEPS if s >= step), STUDIO_STEPS[-1])
    return {10: "10s", 300: "5m", 1800: "30m", 3600: "1h"}[chosen]


def downsample(points: Sequence[MetricPoint], limit: int = MAX_SERIES_POINTS) -> list[MetricPoint]:
    """Oldest first, at most ``limit`` points: the newest point is kept as it is (it is the "latest"),
    the others are averaged in consecutive buckets, each stamped with its last time."""
    ordered = sorted({p.time: p for p in points}.values(), key=lambda p: p.time)
    if len(ordered) <= limit:
        return ordered
    head, last = ordered[:-1], ordered[-1]
    buckets = max(1, limit - 1)
    bounds = [len(head) * i // buckets for i in range(buckets + 1)]  # near-equal consecutive buckets
    out = [
        MetricPoint(time=chunk[-1].time, value=sum(p.value for p in chunk) / len(chunk))
        for chunk in (head[a:b] for a, b in itertools.pairwise(bounds))
        if chunk
    ]
    return [*out, last]


def metric_points(raw: Iterable[Any], *, epoch_ms: bool) -> list[MetricPoint]:
    points = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        when = from_epoch_ms(item.get("Time")) if epoch_ms else parse_time(item.get("Time"))
        value = as_float(item.get("Value"))
        if when is not None and value is not None:
            points.append(MetricPoint(time=when, value=value))
    return downsample(points)


# ------------------------------------------------------------------------------ sanity checks


def sanity_items(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Items of ListJobSanityCheckResults (``SanityCheckResults``: a list of lists) or of
    GetJobSanityCheckResult (``SanityCheckResult``: a flat list); a flat list is accepted in either."""
    items: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            items.append(value)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data.get("SanityCheckResults"))
    walk(data.get("SanityCheckResult"))
    return items


def sanity_result_from(item: Mapping[str, Any]) -> SanityCheckResult:
    return SanityCheckResult(
        check_number=as_int(item.get("CheckNumber")) or 0,
        phase=str(item.get("Phase") or ""),
        status=str(item.get("Status") or "Unknown"),
        message=str(item.get("Message") or ""),
        started_at=parse_time(item.get("StartedAt")),
        finished_at=parse_time(item.get("FinishedAt")),
    )


# ------------------------------------------------------------------------------ workload info


def seed_status(status: Status) -> str:
    """The seed's WorkloadStatus (Pending, Running, Succeeded, Failed); a stopped job says Stopped."""
    return {
        Status.CREATING: "Pending",
        Status.QUEUING: "Pending",
        Status.RUNNING: "Running",
        Status.STOPPING: "Running",
        Status.SUCCEEDED: "Succeeded",
        Status.FAILED: "Failed",
        Status.STOPPED: "Stopped",
    }[status]


def scheduled_from_status(status: Status) -> bool:
    return status not in (Status.CREATING, Status.QUEUING)


def queue_entry(data: Mapping[str, Any], job_id: str) -> dict[str, Any] | None:
    """The ListQuotaWorkloads ``Workloads[]`` item of ``job_id`` (exact id match)."""
    for item in data.get("Workloads") or []:
        if isinstance(item, dict) and str(item.get("WorkloadId") or "") == job_id:
            return item
    return None


def queue_scheduled(entry: Mapping[str, Any]) -> bool | None:
    """A QueueInfo that was dequeued has been scheduled; one still ``Enqueued`` has not."""
    queue_status = str(entry.get("Status") or "").lower()
    if entry.get("GmtDequeuedTime") or queue_status in ("dequeued", "scheduled", "running", "allocated"):
        return True
    if queue_status in ("enqueued", "queuing", "pending", "waiting"):
        return False
    return None


def queue_meta(entry: Mapping[str, Any], quota_id: str) -> QueueMeta:
    return QueueMeta(
        queue=str(entry.get("Name") or entry.get("QuotaId") or quota_id),
        position=as_int(entry.get("Position")),
        quota_id=as_str(entry.get("QuotaId")) or quota_id,
    )


def queue_note(entry: Mapping[str, Any], quota_id: str, scheduled: bool | None) -> str:
    parts = [f"in resource quota {entry.get('QuotaId') or quota_id}"]
    if entry.get("Status"):
        parts.append(f"queue status {entry['Status']}")
    if entry.get("WorkloadStatus"):
        parts.append(f"workload status {entry['WorkloadStatus']}")
    if entry.get("QueueStrategy"):
        parts.append(f"queue strategy {entry['QueueStrategy']}")
    if not scheduled and (entry.get("Code") or entry.get("Reason")):
        parts.append("waiting because " + one_line(as_str(entry.get("Code")), as_str(entry.get("Reason")), limit=300))
    return "; ".join(parts)


def error_info_line(data: Mapping[str, Any]) -> str | None:
    """GetTrainingJobErrorInfo → ``Code: Message (AdditionalInfo)`` on one line; None without an error
    (an empty ErrorInfo, or the ``{"Code": "200", "Message": "success"}`` seed 001 shows)."""
    info = data.get("ErrorInfo")
    if not isinstance(info, dict):
        return None
    code = as_str(info.get("Code"))
    message = as_str(info.get("Message"))
    extra = as_str(info.get("AdditionalInfo"))
    ok_code = (code or "").strip().lower() in ("", "200", "0", "ok", "success")
    if ok_code and (message or "").strip().lower() in ("", "ok", "success"):
        return None
    head = one_line(code) + (": " if code and message else "") + one_line(message)
    return one_line(head, f"({one_line(extra)})" if extra else None) or None
