"""Domain models shared by every provider and every tool.

Provider-specific JSON never leaves its provider: each provider maps its platform's shapes onto these
models, keeping the platform's own status strings in ``raw_status`` / ``sub_status`` so nothing is lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Accelerator = Literal["CPU", "GPU"]
JobType = Literal["PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "RayJob"]
JOB_TYPES: tuple[str, ...] = ("PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "RayJob")


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobStatus(StrEnum):
    """Normalized job status. Every provider maps each raw status it has onto one of these."""

    CREATING = "Creating"
    QUEUING = "Queuing"
    RUNNING = "Running"
    STOPPING = "Stopping"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED})


class Model(BaseModel):
    """The project's pydantic base. A model's validator and serializer are built on its first use
    (``defer_build``), not when its module is imported: a start imports some 70 models, and tools/list needs
    none of them built (tool schemas come from server/tool_schemas.json)."""

    model_config = ConfigDict(defer_build=True)


class _Model(Model):
    model_config = ConfigDict(extra="forbid")


class MetricDefinition(_Model):
    """A training metric read from the log (PaiStudio's MetricDefinitions idea)."""

    name: str = Field(description="Metric name, e.g. loss")
    regex: str = Field(description="Regular expression whose first group is the value, e.g. 'loss=([0-9.]+)'")


class Spec(_Model):
    """One machine type a job's workers can run on."""

    instance_type: str = Field(description="Spec name to pass as ecs_spec, e.g. ecs.c6.large")
    accelerator: Accelerator
    cpu: int = Field(description="vCPUs per worker")
    memory_gb: float = Field(description="Memory per worker in GiB")
    gpu_count: int = 0
    gpu_type: str | None = None
    gpu_memory_gb: float | None = Field(default=None, description="Memory of one GPU in GiB")
    available: bool = True
    free_now: int | None = Field(
        default=None, description="Workers of this spec that fit in what the cluster has unused right now (Ray)"
    )
    price_per_hour: float | None = Field(default=None, description="On-demand price of one worker per hour")
    currency: str | None = None
    spot_stock: str | None = Field(default=None, description="Spot stock status where the platform reports it")
    spot_discount: float | None = None
    payment_types: list[str] = Field(default_factory=list)
    max_workers: int | None = Field(default=None, description="Most workers (nodes) one job may have; None: no limit")


class Image(_Model):
    """The container image a job will use (or, for the local provider, the host environment)."""

    uri: str
    job_type: str
    chip_type: Accelerator
    name: str = ""
    used: bool = Field(default=True, description="False when the provider records the image but does not use it")
    note: str = ""


class Price(_Model):
    """The platform's hourly price for one worker of a spec; ``per_worker_hourly`` None: price unknown."""

    instance_type: str
    per_worker_hourly: float | None
    currency: str
    source: str = Field(description="Where the price came from, e.g. 'ECS DescribePrice'")


class Quote(_Model):
    """A cost quote. ``create_training_job`` needs a matching, unexpired, confirmed one."""

    quote_id: str
    provider: str
    region: str
    ecs_spec: str
    worker_count: int
    job_type: str
    per_worker_hourly: float | None = Field(description="None: price unknown (then so are the totals)")
    total_hourly: float | None
    estimated_minutes: float
    max_runtime_minutes: float = Field(description="The job is stopped when it has run this long")
    estimated_total: float | None
    worst_case_total: float | None
    currency: str
    created_at: datetime
    expires_at: datetime
    display_text: str
    job_id: str | None = Field(default=None, description="Set once a job was created from this quote")
    spot: bool = Field(default=False, description="A spot quote: expected at the latest spot price")
    spot_price_limit: float | None = None
    template_id: str | None = Field(default=None, description="The template (and version) the quote binds")
    template_version: int | None = None
    identity: str = Field(default="local", description="Who asked for the quote: only they can use it")


class JobRequest(_Model):
    """Everything a provider needs to create a job; built by the engine after the gate passed."""

    display_name: str
    user_command: str
    job_type: str
    ecs_spec: str
    worker_count: int
    max_runtime_minutes: float = Field(description="From the quote; platforms with whole minutes round up")
    image: str | None = None
    envs: dict[str, str] = Field(default_factory=dict)
    thirdparty_libs: list[str] = Field(default_factory=list)
    workspace_id: str | None = None
    resource_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    priority: int | None = Field(default=None, description="Scheduling priority, higher first (DLC: 1-9)")
    sanity_check: bool = Field(default=False, description="Run the platform's pre-flight checks first")
    sanity_check_args: str | None = None
    hyperparameters: dict[str, str] = Field(default_factory=dict, description="Reach the program; recorded")
    metric_definitions: list[MetricDefinition] = Field(default_factory=list)
    spot: bool = Field(default=False, description="Run on spot (preemptible) capacity")
    spot_price_limit: float | None = Field(default=None, description="Highest spot price per worker-hour")
    template_id: str | None = None
    template_version: int | None = None


class Pod(_Model):
    pod_id: str
    role: str = Field(description="Master, Worker, Head, ...")
    status: str = Field(description="The platform's pod status, e.g. Pending, Running, Succeeded, Failed")
    sub_status: str | None = None
    exit_code: int | None = None
    ip: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Job(_Model):
    job_id: str
    name: str
    provider: str
    status: JobStatus
    raw_status: str = Field(description="The platform's own status string")
    sub_status: str | None = None
    job_type: str | None = None
    ecs_spec: str | None = None
    worker_count: int | None = None
    image: str | None = None
    user_command: str | None = None
    pods: list[Pod] = Field(default_factory=list)
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    reason: str | None = None
    reason_code: str | None = None
    max_runtime_minutes: float | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    priority: int | None = None
    resource_id: str | None = Field(default=None, description="Resource quota the job runs on; None: public")
    hyperparameters: dict[str, str] = Field(default_factory=dict)
    metric_definitions: list[MetricDefinition] = Field(default_factory=list)
    spot: bool = False
    template_id: str | None = None
    template_version: int | None = None


class Event(_Model):
    time: datetime | None
    source: str = Field(description="The job or pod the event is about")
    message: str


class LogPage(_Model):
    """Log lines of one pod, as the provider returned them (already bounded by the provider)."""

    pod_id: str
    lines: list[str]
    truncated: bool = Field(default=False, description="True when the provider had more lines than returned")


MetricKind = Literal["cpu", "memory", "gpu_core", "gpu_memory"]
METRIC_KINDS: tuple[MetricKind, ...] = ("cpu", "memory", "gpu_core", "gpu_memory")


class MetricPoint(_Model):
    time: datetime
    value: float


class PodMetricSeries(_Model):
    """One resource metric of one pod over time, as the platform samples it."""

    pod_id: str
    metric: MetricKind
    unit: str = Field(default="%", description="'%' of what the pod was allocated")
    points: list[MetricPoint] = Field(description="Oldest first")


class SanityCheckResult(_Model):
    """One pre-flight check (DLC: SanityCheckResultItem)."""

    check_number: int
    phase: str = Field(
        description="e.g. CheckInit, DeviceCheck, SingleNodeCommCheck, TwoNodeCommCheck, AllNodeCommCheck"
    )
    status: str = Field(description="e.g. Succeeded, Failed, Running")
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class QueueMeta(_Model):
    queue: str
    position: int | None = None
    quota_id: str | None = None


class WorkloadInfo(_Model):
    """Seed 000's GetWorkloadInfo view of a job: where it stands in a queue, if it is in one."""

    job_id: str
    name: str | None = None
    workload_type: str | None = None
    workspace_id: str | None = None
    workspace_name: str | None = None
    status: str = Field(description="Pending, Running, Succeeded or Failed (the seed's WorkloadStatus)")
    created_at: datetime | None = None
    enqueued_at: datetime | None = None
    user_id: str | None = None
    user_name: str | None = None
    tenant_id: str | None = None
    priority: int | None = None
    is_scheduled: bool | None = None
    in_quota: bool = Field(description="False when the job runs on public resources and is not queued in a quota")
    queue_position: int | None = Field(default=None, description="1 = next to be scheduled")
    quota_id: str | None = None
    quota_name: str | None = None
    queue_metas: list[QueueMeta] = Field(default_factory=list)
    pending_seconds: float | None = Field(default=None, description="How long the job has waited in its queue")
    running_seconds: float | None = Field(default=None, description="How long the job has run")
    source: str = Field(description="Where the information came from, e.g. 'PaiStudio ListQuotaWorkloads'")
    unavailable: list[str] = Field(default_factory=list, description="Seed fields this platform does not report")
    note: str = ""


TemplateConstraint = Literal["locked", "overridable", "required"]


class TemplateConfig(_Model):
    """A job configuration as a template keeps it; what it leaves out, each run gives."""

    display_name: str | None = None
    user_command: str | None = None
    job_type: str | None = None
    ecs_spec: str | None = None
    worker_count: int | None = None
    image: str | None = None
    envs: dict[str, str] = Field(default_factory=dict)
    thirdparty_libs: list[str] = Field(default_factory=list)
    resource_id: str | None = None
    max_runtime_minutes: float | None = None
    priority: int | None = None
    hyperparameters: dict[str, str] = Field(default_factory=dict)


class JobTemplate(_Model):
    template_id: str
    name: str
    version: int = Field(description="The version shown")
    default_version: int = Field(description="The version a run uses when it names none")
    versions: list[int]
    description: str = ""
    config: TemplateConfig
    constraints: dict[str, TemplateConstraint] = Field(
        default_factory=dict,
        description="JSONPath of a config field ('$.ecs_spec', '$.envs.LR') → locked | overridable | required",
    )
    created_at: datetime | None = None
    source: str = Field(description="Where the template lives, e.g. 'PAI-DLC job templates' or 'server state'")


class SpotPricePoint(_Model):
    time: datetime
    price: float = Field(description="Spot price of one instance per hour")
    zone: str | None = None


class OutputModel(_Model):
    name: str
    uri: str = Field(description="Path or URI of the model/file")
    size_bytes: int | None = None
    created_at: datetime | None = None


class OutputModels(_Model):
    job_id: str
    models: list[OutputModel]
    total: int
    truncated: bool
    note: str = ""


class PoolResources(_Model):
    flavor: str
    count: int


class Pool(_Model):
    """A dedicated resource pool (ModelArts): a group of nodes one account's jobs queue on."""

    pool_id: str = Field(description="The pool's id (ModelArts metadata.name): pass it as pool_name")
    display_name: str | None = None
    phase: str = Field(description="e.g. Running, Creating, Abnormal")
    pool_type: str | None = Field(default=None, description="Dedicate or Logical")
    scopes: list[str] = Field(default_factory=list, description="Enabled job types, e.g. Train, Infer")
    usable_for_training: bool
    resources: list[PoolResources] = Field(default_factory=list, description="Nodes by flavor")
    created_at: datetime | None = None
    description: str | None = None


class PoolWorkload(_Model):
    """One job (training, inference, notebook) on a dedicated pool, as the pool's scheduler sees it."""

    name: str = Field(description="The scheduler's name, e.g. modelarts-job-<job id>")
    job_id: str | None = Field(default=None, description="The upper-layer job's id (a training job id for train)")
    job_name: str | None = None
    workload_type: str | None = Field(default=None, description="train, infer, notebook or x-infer")
    status: str = Field(description="Queue, Pending, Abnormal, Terminating, Creating, Running, Completed, ...")
    priority: int | None = None
    queue_position: int | None = Field(default=None, description="Position in the pool's queue; None: not queued")
    pending_seconds: float | None = None
    running_seconds: float | None = None
    created_at: datetime | None = None
    flavor: str | None = None
    user_name: str | None = None
    resources: dict[str, str] = Field(default_factory=dict, description="Requested cpu, memory, accelerators")
    host_ips: list[str] = Field(default_factory=list)


class PoolWorkloadPage(_Model):
    pool_id: str
    workloads: list[PoolWorkload]
    total: int | None = Field(default=None, description="All matching workloads, when the platform says")
    offset: int
    limit: int
