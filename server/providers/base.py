"""The async interface every provider implements.

Tool handlers never see a provider directly: they go through the engine, which goes through the gate
for anything billable. A provider maps its platform's JSON onto the shared models in ``server.models``
and raises only ``server.errors`` exceptions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from cloudjobs_mcp.server.models import (
    Accelerator,
    Event,
    Image,
    Job,
    JobRequest,
    JobStatus,
    JobTemplate,
    LogPage,
    MetricKind,
    OutputModels,
    PodMetricSeries,
    Pool,
    PoolWorkloadPage,
    Price,
    SanityCheckResult,
    Spec,
    SpotPricePoint,
    TemplateConfig,
    TemplateConstraint,
    WorkloadInfo,
)

# Tag keys the server puts on every job it creates; cleanup and idempotent retries rely on them.
TAG_CREATED_BY = "cloudjobs-mcp"
TAG_QUOTE_ID = "cloudjobs-quote"
TAG_OWNER = "cloudjobs-owner"  # the identity that created the job (the quote's)


def pod_layout(job_id: str, job_type: str, worker_count: int) -> list[tuple[str, str]]:
    """``(pod_id, role)`` of each pod, in RANK order."""
    if job_type in ("PyTorchJob", "XGBoostJob") and worker_count > 1:
        first = [(f"{job_id}-master-0", "Master")]
    elif job_type == "RayJob":
        first = [(f"{job_id}-head-0", "Head")]
    else:
        return [(f"{job_id}-worker-{i}", "Worker") for i in range(worker_count)]
    return first + [(f"{job_id}-worker-{i}", "Worker") for i in range(worker_count - 1)]


@runtime_checkable
class Provider(Protocol):
    name: str
    region: str
    currency: str

    async def list_specs(self, accelerator: Accelerator | None = None) -> list[Spec]:
        """Every spec the platform offers (all pages), with price where the listing has one."""
        ...

    async def resolve_image(self, job_type: str, chip_type: Accelerator) -> Image: ...

    async def price(self, instance_type: str) -> Price:
        """On-demand hourly price of one worker of ``instance_type``."""
        ...

    def validate_request(self, request: JobRequest, spec: Spec) -> None:
        """Raise InvalidRequest when the platform cannot run ``request`` (before any quote/creation)."""
        ...

    async def create_job(self, request: JobRequest) -> Job: ...

    async def find_job_by_tag(self, key: str, value: str) -> Job | None:
        """The job carrying tag ``key=value``, if one exists; used to make creation idempotent."""
        ...

    async def get_job(self, job_id: str) -> Job: ...

    async def list_jobs(
        self,
        status: JobStatus | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        limit: int = 100,
        *,
        include_training_jobs: bool = False,
    ) -> list[Job]:
        """Jobs newest first; ``include_training_jobs`` adds PaiStudio training jobs where a platform has them."""
        ...

    async def stop_job(self, job_id: str) -> Job: ...

    async def delete_job(self, job_id: str) -> None: ...

    async def pod_logs(
        self,
        job_id: str,
        pod_id: str,
        *,
        max_lines: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> LogPage:
        """The pod's log written in [since, until), the last ``max_lines`` lines when given; with no
        ``max_lines`` the whole log up to the provider's cap (``truncated`` when older lines were dropped)."""
        ...

    async def events(self, job_id: str, pod_id: str | None = None) -> list[Event]:
        """The job's events (and its pods' when ``pod_id`` is None), oldest first."""
        ...

    async def metrics(
        self, job_id: str, metric: MetricKind, *, since: datetime | None = None, step_seconds: int | None = None
    ) -> list[PodMetricSeries]:
        """One resource metric for every pod of the job, oldest point first (bounded by the platform)."""
        ...

    async def sanity_checks(self, job_id: str) -> list[SanityCheckResult]:
        """The job's pre-flight check results; empty when it ran without them."""
        ...

    async def workload_info(self, job_id: str) -> WorkloadInfo:
        """Queue position, priority and quota of the job (seed 000's view)."""
        ...

    async def error_info(self, job_id: str) -> str | None:
        """The platform's own diagnosis of a failed job, when it has one (PaiStudio GetTrainingJobErrorInfo)."""
        ...

    async def label_job(self, job_id: str, labels: dict[str, str]) -> Job:
        """Add or change labels (tags); returns the job with all its labels."""
        ...

    async def unlabel_job(self, job_id: str, keys: list[str]) -> Job:
        """Remove labels by key (absent keys are ignored); returns the job."""
        ...

    async def spot_price_history(self, instance_type: str, hours: float) -> list[SpotPricePoint]:
        """Spot prices of one instance over the last ``hours``, oldest first. InvalidRequest without spot."""
        ...

    async def output_models(self, job_id: str) -> OutputModels:
        """What the job produced (models, files), bounded; the note says where outputs go when unknown."""
        ...

    def template_backend(self) -> TemplateBackend | None:
        """The platform's own job templates (PAI-DLC), or None: the server keeps templates itself."""
        ...

    async def aclose(self) -> None: ...


class TemplateBackend(Protocol):
    """Job templates with versions: PAI-DLC's API, or the server's own store (server/templates.py)."""

    source: str

    async def create(
        self, name: str, config: TemplateConfig, constraints: dict[str, TemplateConstraint], description: str
    ) -> JobTemplate:
        """A new template at version 1; an existing name → InvalidRequest (update it instead)."""
        ...

    async def update(
        self,
        template_id: str,
        config: TemplateConfig,
        constraints: dict[str, TemplateConstraint],
        description: str | None = None,
    ) -> JobTemplate:
        """A new version (the default version stays unless set)."""
        ...

    async def list(self) -> list[JobTemplate]: ...

    async def get(self, template_id: str, version: int | None = None) -> JobTemplate:
        """The given version, else the default one; NotFound for an unknown id or version."""
        ...

    async def delete(self, template_id: str) -> None: ...

    async def set_default_version(self, template_id: str, version: int) -> JobTemplate: ...


@runtime_checkable
class PoolProvider(Protocol):
    """A provider with dedicated resource pools (ModelArts): the pools and the jobs queued or running on them."""

    name: str

    async def list_pools(self) -> list[Pool]: ...

    async def list_pool_workloads(
        self,
        pool_name: str,
        *,
        types: list[str] | None = None,
        status: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> PoolWorkloadPage:
        """One page of the pool's workloads (training, inference, notebook jobs), in the platform's order."""
        ...
