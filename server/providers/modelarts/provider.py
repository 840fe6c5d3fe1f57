"""``ModelArtsProvider``: the Provider protocol on Huawei Cloud ModelArts training jobs (v2) over signed HTTP.

What each method calls (all through :class:`~.api.ModelArtsApi`, SDK-HMAC-SHA256, retried by ``server.http``):

* ``list_specs``    training-job flavors (CPU, GPU, Ascend; Ascend flavors are listed as accelerator GPU with
  ``gpu_type`` ``Ascend …``, the shared models know CPU and GPU only).
* ``resolve_image`` training-job engines: the newest non-legacy engine of the job type's framework with an
  image for the chip (``cpu_image_url`` / ``gpu_image_url``), used as a custom image with the command.
* ``price``         BSS on-demand rating of the flavor's billing code (cached 24 h; an account that may not read
  prices is remembered and not asked again), else the user's price table, else "price unknown".
* ``create_job``    ``POST /training-jobs`` with the flavor, node count, image, command, environment and
  ``auto_stop`` = the quote's max runtime in whole hours (rounded up). ModelArts has no tags at creation,
  so the **job name carries the quote** (``<display name>-<quote id>``, at most 64 characters) and the
  description says so; a create that meets ``ModelArts.2751`` (duplicate name) or whose answer was lost
  looks the job up by name and returns it — never a second job.
* ``get_job`` / ``list_jobs`` / ``stop_job`` / ``delete_job``: show, search (every page, 50 a page), the
  ``terminate`` action (``ModelArts.2796`` = already finished: done), delete.
* ``pod_logs`` / ``events`` / ``metrics``: per task (``worker-0`` …) log preview (the newest ≤ 5 MB), the
  job's events (every page), per task 1-minute metrics.
* ``workload_info`` a job on a dedicated pool is found in the pool's workloads (queue position, priority,
  durations); a public-pool job is in no queue and says so. ``list_pools`` / ``list_pool_workloads``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote as quote_text
from urllib.parse import unquote

import anyio
import httpx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest, NotFound, PermissionDenied, ProviderError
from cloudjobs_mcp.server.http import RetryPolicy, submit_once
from cloudjobs_mcp.server.hyperparameters import env_name as hp_env_name
from cloudjobs_mcp.server.models import (
    JOB_TYPES,
    Accelerator,
    Event,
    Image,
    Job,
    JobRequest,
    JobStatus,
    LogPage,
    MetricKind,
    MetricPoint,
    OutputModels,
    Pod,
    PodMetricSeries,
    Pool,
    PoolResources,
    PoolWorkload,
    PoolWorkloadPage,
    Price,
    SanityCheckResult,
    Spec,
    SpotPricePoint,
    WorkloadInfo,
)
from cloudjobs_mcp.server.pricing import PriceTable
from cloudjobs_mcp.server.providers.base import TAG_CREATED_BY, TAG_OWNER, TAG_QUOTE_ID, TemplateBackend
from cloudjobs_mcp.server.providers.common import (
    METRIC_DEFINITIONS_ENV,
    PooledClient,
    check_job_shape,
    check_max_lines,
    job_for_quote,
    look_again,
    metric_definitions_from,
    untracked_outputs,
)
from cloudjobs_mcp.server.providers.modelarts import errormap
from cloudjobs_mcp.server.providers.modelarts.api import ModelArtsApi
from cloudjobs_mcp.server.providers.modelarts.credentials import Credentials, CredentialsProvider, as_provider

logger = logging.getLogger("cloudjobs.modelarts")

STATUS_MAP: dict[str, JobStatus] = {
    "Creating": JobStatus.CREATING,
    "Pending": JobStatus.QUEUING,
    "Running": JobStatus.RUNNING,
    "Completed": JobStatus.SUCCEEDED,
    "Failed": JobStatus.FAILED,
    "Abnormal": JobStatus.FAILED,
    "Terminating": JobStatus.STOPPING,
    "Terminated": JobStatus.STOPPED,
}
RAW_STATUSES: dict[JobStatus, list[str]] = {s: [r for r, n in STATUS_MAP.items() if n is s] for s in JobStatus}
FRAMEWORKS = {
    "PyTorchJob": ("pytorch",),
    "TFJob": ("tensorflow",),
    "MPIJob": ("mindspore", "horovod", "pytorch"),
    "XGBoostJob": ("xgboost", "scikit_learn", "pytorch"),
    "RayJob": ("ray", "pytorch"),
}
NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME = 64
MARKER = "cloudjobs-mcp quote"
DESCRIPTION = re.compile(r"cloudjobs-mcp quote (?P<quote>\S+)(?: max_hours (?P<hours>\d+))?(?: owner (?P<owner>\S+))?")
SEARCH_PAGE = 50  # the search API's limit
MAX_SEARCH_PAGES = 40
EVENT_PAGE = 100
MAX_EVENTS = 2000
PRICE_TTL = timedelta(hours=24)
RECONCILE_DELAYS = (0.0, 1.0, 2.0, 4.0)
WORKLOAD_PAGE = 500
METRIC_NAMES: dict[MetricKind, tuple[str, ...]] = {
    "cpu": ("cpuUsage",),
    "memory": ("memUsage",),
    "gpu_core": ("gpuUtil", "npuUtil"),
    "gpu_memory": ("gpuMemUsage", "npuMemUsage"),
}
POOL_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
WORKLOAD_TYPES = ("train", "infer", "notebook", "x-infer")
WORKLOAD_STATUSES = (
    "Queue",
    "Pending",
    "Abnormal",
    "Terminating",
    "Creating",
    "Running",
    "Completed",
    "Terminated",
    "Failed",
)
HYPERPARAMETERS_ENV = "CLOUDJOBS_HYPERPARAMETERS"


# ----------------------------------------------------------------------------------- mapping


def normalize_status(raw: str | None) -> JobStatus:
    """ModelArts phase → normalized status; an unknown phase counts as running (non-terminal)."""
    return STATUS_MAP.get(raw or "", JobStatus.RUNNING if raw else JobStatus.CREATING)


def from_ms(raw: Any) -> datetime | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(value / 1000.0, UTC) if value > 0 else None


def _int(raw: Any) -> int | None:
    try:
        return int(float(raw)) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _str(raw: Any) -> str | None:
    return str(raw) if raw not in (None, "") else None


def _dict(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}


def environments(raw: Any) -> dict[str, str]:
    """``algorithm.environments``: a map in requests, a *list of one-key maps* in responses."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            out.update({str(k): str(v) for k, v in item.items()})
    return out


def job_name(display_name: str, quote_id: str) -> str:
    """``<display name>-<quote id>`` in ModelArts' alphabet, at most 64 characters: the quote survives."""
    suffix = NAME_CHARS.sub("-", quote_id)
    base = NAME_CHARS.sub("-", display_name)[: MAX_NAME - len(suffix) - 1].rstrip("-") or "job"
    return f"{base}-{suffix}"


def quote_of(data: Mapping[str, Any]) -> tuple[str | None, int | None, str | None]:
    """The quote id, max hours and owner this server wrote into a job's description, if it did."""
    match = DESCRIPTION.search(str(_dict(data.get("metadata")).get("description") or ""))
    if not match:
        return None, None, None
    owner = unquote(match.group("owner")) if match.group("owner") else None
    return match.group("quote"), _int(match.group("hours")), owner


def display_name(name: str, quote: str | None) -> str:
    if quote:
        suffix = "-" + NAME_CHARS.sub("-", quote)
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def job_from(data: Mapping[str, Any], provider: str = "modelarts") -> Job:
    """A job object (create/show/stop answer, search item) → Job."""
    meta, status = _dict(data.get("metadata")), _dict(data.get("status"))
    algorithm, spec = _dict(data.get("algorithm")), _dict(data.get("spec"))
    resource = _dict(spec.get("resource"))
    raw = str(status.get("phase") or "")
    normalized = normalize_status(raw)
    quote, hours, owner = quote_of(data)
    name = str(meta.get("name") or "")
    tasks = [str(t) for t in status.get("tasks") or [] if t]
    exits = {str(t.get("task")): t for t in status.get("task_statuses") or [] if isinstance(t, dict)}
    started = from_ms(status.get("start_time"))
    duration_ms = _int(status.get("duration"))
    finished = (
        started + timedelta(milliseconds=duration_ms) if normalized.is_terminal and started and duration_ms else None
    )
    pod_status = {
        JobStatus.CREATING: "Pending",
        JobStatus.QUEUING: "Pending",
        JobStatus.RUNNING: "Running",
        JobStatus.STOPPING: "Terminating",
        JobStatus.SUCCEEDED: "Succeeded",
        JobStatus.FAILED: "Failed",
        JobStatus.STOPPED: "Stopped",
    }[normalized]
    pods = [
        Pod(
            pod_id=task,
            role="Worker",
            status=pod_status,
            exit_code=_int(exits.get(task, {}).get("exit_code")),
            started_at=started,
            finished_at=finished,
        )
        for task in tasks
    ]
    reasons = [str(t.get("message")) for t in exits.values() if t.get("message")]
    records = [r for r in status.get("running_records") or [] if isinstance(r, dict)]
    if not reasons and records and records[-1].get("end_reason"):
        reasons = [str(records[-1]["end_reason"])]
    envs = environments(algorithm.get("environments"))
    tags = {TAG_CREATED_BY: "true", TAG_QUOTE_ID: quote} if quote else {}
    if quote and owner:
        tags[TAG_OWNER] = owner
    return Job(
        job_id=str(meta.get("id") or ""),
        name=display_name(name, quote),
        provider=provider,
        status=normalized,
        raw_status=raw or "Unknown",
        sub_status=_str(status.get("secondary_phase")),
        ecs_spec=_str(resource.get("flavor_id")),
        worker_count=_int(resource.get("node_count")),
        image=_str(_dict(algorithm.get("engine")).get("image_url")),
        user_command=_str(algorithm.get("command")),
        pods=pods,
        created_at=from_ms(meta.get("create_time")),
        started_at=started,
        finished_at=finished,
        duration_seconds=duration_ms / 1000.0 if duration_ms is not None else None,
        reason="; ".join(dict.fromkeys(reasons)) or None,
        max_runtime_minutes=hours * 60 if hours else None,
        tags=tags,
        priority=_int(_dict(spec.get("schedule_policy")).get("priority")),
        resource_id=_str(resource.get("pool_id")),
        hyperparameters=_hyperparameters(envs),
        metric_definitions=metric_definitions_from(envs),
    )


def _hyperparameters(envs: Mapping[str, str]) -> dict[str, str]:
    try:
        data = json.loads(envs.get(HYPERPARAMETERS_ENV) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _gib(block: Any) -> float:
    """``{"size": 8, "unit": "GB"}`` → GiB (ModelArts' GB are the binary ones its consoles show)."""
    b = _dict(block)
    size = float(b.get("size") or 0)
    unit = str(b.get("unit") or "GB").upper()
    return size / 1024.0 if unit in ("MB", "MI", "MIB") else size


def spec_from(flavor: Mapping[str, Any]) -> Spec:
    info = _dict(flavor.get("flavor_info"))
    gpu, npu = _dict(info.get("gpu")), _dict(info.get("npu"))
    kind = str(flavor.get("flavor_type") or "CPU")
    accelerator: Accelerator = "CPU"
    count, gpu_type, gpu_memory = 0, None, None
    if gpu or kind == "GPU":
        accelerator, count, gpu_type = "GPU", _int(gpu.get("unit_num")) or 0, _str(gpu.get("product_name"))
        gpu_memory = _memory_gib(gpu.get("memory"))
    elif npu or kind == "Ascend":
        accelerator, count = "GPU", _int(npu.get("unit_num")) or 0
        gpu_type = f"Ascend {npu.get('product_name') or ''}".strip()
        gpu_memory = _memory_gib(npu.get("memory"))
    return Spec(
        instance_type=str(flavor.get("flavor_id") or ""),
        accelerator=accelerator,
        cpu=_int(_dict(info.get("cpu")).get("core_num")) or 0,
        memory_gb=_gib(info.get("memory")),
        gpu_count=count,
        gpu_type=gpu_type,
        gpu_memory_gb=gpu_memory,
        payment_types=["PostPaid"],
        max_workers=_int(info.get("max_num")) or _int(flavor.get("max_num")),
    )


def _memory_gib(raw: Any) -> float | None:
    match = re.match(r"^\s*([\d.]+)\s*([A-Za-z]*)", str(raw or ""))
    if not match:
        return None
    value = float(match.group(1))
    return value / 1024.0 if match.group(2).upper().startswith("M") else value


def event_from(item: Mapping[str, Any], job_id: str) -> Event:
    when = None
    raw = item.get("time")
    if isinstance(raw, int | float):
        when = from_ms(raw)
    elif raw:
        try:
            when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    message = str(item.get("message") or "")
    task = re.search(r"\[(?:Pod: [^\]]*-)?((?:worker|master|launcher|server)-\d+)\]", message)
    level = str(item.get("level") or "")
    text = f"{level}: {message}" if level and level != "Info" else message
    return Event(time=when, source=task.group(1) if task else job_id, message=text)


def workload_from(item: Mapping[str, Any]) -> PoolWorkload:
    requirement = item.get("resourceRequirement")
    if isinstance(requirement, list):  # the seed's table says array; the example and the SDK say object
        merged: dict[str, Any] = {}
        for part in requirement:
            merged.update(_dict(part))
        requirement = merged
    position = _int(item.get("pendingPosition"))
    return PoolWorkload(
        name=str(item.get("name") or ""),
        job_id=_str(item.get("jobUUID")),
        job_name=_str(item.get("jobName")),
        workload_type=_str(item.get("type")),
        status=str(item.get("status") or "Unknown"),
        priority=_int(item.get("priority")),
        queue_position=position if position is not None and position >= 0 else None,
        pending_seconds=float(item["pendingDuration"]) if item.get("pendingDuration") is not None else None,
        running_seconds=float(item["runningDuration"]) if item.get("runningDuration") is not None else None,
        created_at=from_ms(item.get("createTime")),
        flavor=_str(item.get("flavor")),
        user_name=_str(item.get("userName")),
        resources={str(k): str(v) for k, v in _dict(requirement).items()},
        host_ips=[h.strip() for h in str(item.get("hostIps") or "").split(",") if h.strip()],
    )


def pool_from(item: Mapping[str, Any]) -> Pool:
    meta, spec, status = _dict(item.get("metadata")), _dict(item.get("spec")), _dict(item.get("status"))
    scopes = [
        str(s.get("scopeType"))
        for s in status.get("scope") or []
        if isinstance(s, dict) and s.get("state") == "Enabled"
    ]
    phase = str(status.get("phase") or "Unknown")
    created = None
    if meta.get("creationTimestamp"):
        raw = meta["creationTimestamp"]
        created = from_ms(raw) if str(raw).isdigit() else _iso(str(raw))
    return Pool(
        pool_id=str(meta.get("name") or ""),
        display_name=_str(_dict(meta.get("labels")).get("os.modelarts/name")),
        phase=phase,
        pool_type=_str(spec.get("type")),
        scopes=scopes,
        usable_for_training=phase == "Running" and "Train" in scopes,
        resources=[
            PoolResources(flavor=str(r.get("flavor") or ""), count=_int(r.get("count")) or 0)
            for r in spec.get("resources") or []
            if isinstance(r, dict)
        ],
        created_at=created,
        description=_str(_dict(meta.get("annotations")).get("os.modelarts/description")),
    )


def _iso(raw: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_pool_name(pool_name: str) -> str:
    name = (pool_name or "").strip()
    if not POOL_NAME.match(name):
        raise InvalidRequest(
            f"pool_name {pool_name!r} is not a ModelArts pool id: it is the pool's metadata.name, lower-case letters, "
            "digits and '-', starting with a letter (e.g. pool-a1b2c3d4...); list_pools shows them."
        )
    return name


# ---------------------------------------------------------------------------------- provider


class ModelArtsProvider(PooledClient):
    """The ``modelarts`` provider. Owns its httpx client unless one is passed in."""

    name = "modelarts"

    def __init__(
        self,
        settings: Settings,
        credentials: Credentials | CredentialsProvider | None = None,
        client: httpx.AsyncClient | None = None,
        *,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        import os

        self.settings = settings
        self.region = settings.modelarts_region
        self.currency = "CNY" if self.region.startswith("cn-") else "USD"
        self._open_client(settings, client)
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._sleep, self._now = sleep, now
        self._credentials = as_provider(credentials, client=self._client, env=self._env, home=home, now=now)
        self.api = ModelArtsApi(
            settings,
            self._client,
            self._credentials,
            env=self._env,
            policy=policy,
            sleep=sleep,
            rand=rand,
            clock=clock,
            now=now,
        )
        self._flavors: dict[str, dict[str, Any]] = {}
        self._specs: dict[str, Spec] = {}
        self._prices: dict[str, tuple[datetime, Price]] = {}
        self._bss_denied = False
        self._bss_lock = anyio.Lock()
        self._engines: list[dict[str, Any]] | None = None

    def known_secrets(self) -> tuple[str, ...]:
        return self.api.secrets_in_use

    # ------------------------------------------------------------------------- specs/price

    async def list_specs(self, accelerator: Accelerator | None = None) -> list[Spec]:
        """Every training flavor (one call: the API does not page), CPU/GPU/Ascend."""
        data = await self.api.list_flavors()
        specs: list[Spec] = []
        for flavor in data.get("flavors") or []:
            if not isinstance(flavor, dict) or not flavor.get("flavor_id"):
                continue
            self._flavors[str(flavor["flavor_id"])] = flavor
            spec = spec_from(flavor)
            cached = self._prices.get(spec.instance_type)
            if cached:
                spec = spec.model_copy(
                    update={"price_per_hour": cached[1].per_worker_hourly, "currency": cached[1].currency}
                )
            self._specs[spec.instance_type] = spec
            if accelerator is None or spec.accelerator == accelerator:
                specs.append(spec)
        return specs

    async def price(self, instance_type: str) -> Price:
        cached = self._prices.get(instance_type)
        if cached and self._now() - cached[0] < PRICE_TTL:
            return cached[1]
        if instance_type not in self._flavors:
            await self.list_specs()
        flavor = self._flavors.get(instance_type)
        if flavor is None:
            raise NotFound(f"ModelArts has no training flavor {instance_type!r} in {self.region}; see list_ecs_specs")
        price = await self._bss_price(instance_type, flavor)
        if price is None:
            return self._table_price(instance_type)  # read afresh each time: the table may be edited
        self._prices[instance_type] = (self._now(), price)
        return price

    async def _bss_price(self, instance_type: str, flavor: Mapping[str, Any]) -> Price | None:
        # One inquiry at a time: an account BSS refuses is then refused once, not once per concurrent quote.
        async with self._bss_lock:
            if self._bss_denied:
                return None
            return await self._bss_rate(instance_type, flavor)

    async def _bss_rate(self, instance_type: str, flavor: Mapping[str, Any]) -> Price | None:
        billing = _dict(flavor.get("billing"))
        code = str(billing.get("code") or instance_type)
        body = {
            "project_id": await self.api.project_id(),
            "inquiry_precision": 1,
            "product_infos": [
                {
                    "id": "1",
                    "cloud_service_type": "hws.service.type.modelarts",
                    "resource_type": "hws.resource.type.modelarts",
                    "resource_spec": code,
                    "region": self.region,
                    "usage_factor": "Duration",
                    "usage_value": 1,
                    "usage_measure_id": 4,
                    "subscription_num": 1,
                    "resource_size": 1,
                    "size_measure_id": 14,
                }
            ],
        }
        try:
            data = await self.api.rate_on_demand(body)
        except (PermissionDenied, ProviderError) as exc:
            if isinstance(exc, PermissionDenied) or (exc.status or 0) in (400, 403, 404):
                self._bss_denied = isinstance(exc, PermissionDenied)
                logger.info("BSS price of %s not available (%s); using the price table", instance_type, exc.code)
                return None
            raise
        amount: Any = data.get("amount")
        results = [r for r in data.get("product_rating_results") or [] if isinstance(r, dict)]
        if results and results[0].get("amount") is not None:
            amount = results[0]["amount"]
        try:
            hourly = float(amount)
        except (TypeError, ValueError):
            return None
        currency = str(data.get("currency") or self.currency)
        self.currency = currency
        return Price(
            instance_type=instance_type,
            per_worker_hourly=round(hourly, 6),
            currency=currency,
            source=f"Huawei Cloud BSS on-demand rating (billing code {code}, 1 hour, after account discounts)",
        )

    def _table_price(self, instance_type: str) -> Price:
        """The user's price table, else "price unknown" (a quote says so, and any budget cap refuses it)."""
        spec = self._specs.get(instance_type)
        listed = PriceTable.from_settings(self.settings).lookup(self.name, spec) if spec else None
        return listed or Price(
            instance_type=instance_type,
            per_worker_hourly=None,
            currency=self.currency,
            source=f"none: BSS gives no price for {instance_type} to these credentials and the price table "
            "(CLOUDJOBS_PRICE_TABLE) has no entry for it; see the ModelArts price calculator",
        )

    async def credential_source(self) -> str:
        """Where the credentials come from, by name (never a value); CredentialsNotFound when nowhere."""
        source = (await self._credentials.get()).source
        if source.startswith("profile:"):
            return f"~/.huaweicloud/credentials [{source.split(':', 1)[1]}]"
        return {"ecs-metadata": "ECS metadata agency"}.get(source, source)

    def enforced_max_runtime(self, minutes: float) -> float:
        """The limit ModelArts really enforces for ``minutes``: auto_stop counts whole hours (rounded up)."""
        return float(self.max_hours(minutes) * 60)

    # ------------------------------------------------------------------------------ images

    async def _engine_list(self) -> list[dict[str, Any]]:
        if self._engines is None:
            data = await self.api.list_engines()
            self._engines = [e for e in data.get("items") or [] if isinstance(e, dict)]
        return self._engines

    async def resolve_image(self, job_type: str, chip_type: Accelerator) -> Image:
        frameworks = FRAMEWORKS.get(job_type)
        if frameworks is None:
            raise InvalidRequest(f"job_type {job_type!r} is not supported; allowed: {', '.join(JOB_TYPES)}")
        key = "cpu_image_url" if chip_type == "CPU" else "gpu_image_url"
        engines = await self._engine_list()
        for framework in frameworks:
            candidates = [
                e
                for e in engines
                if str(e.get("engine_name") or "").lower().replace("-", "_") == framework
                and not e.get("v1_compatible")
                and _dict(e.get("image_info")).get(key)
            ]
            if chip_type == "GPU":
                candidates.sort(key=lambda e: "cuda" in str(e.get("engine_version") or ""), reverse=True)
            candidates.sort(key=lambda e: str(e.get("engine_version") or ""), reverse=True)
            if candidates:
                best = candidates[0]
                return Image(
                    uri=str(_dict(best.get("image_info"))[key]),
                    job_type=job_type,
                    chip_type=chip_type,
                    name=str(best.get("engine_id") or best.get("engine_version") or ""),
                    note=f"ModelArts preset engine {best.get('engine_name')} {best.get('engine_version')}, used as the "
                    f"job's image with its command ({len(candidates)} candidate(s))",
                )
        raise NotFound(
            f"ModelArts lists no {chip_type} training engine for {job_type} ({', '.join(frameworks)}) in "
            f"{self.region}; "
            "pass image=<SWR image path> explicitly."
        )

    # ---------------------------------------------------------------------------- validate

    def validate_request(self, request: JobRequest, spec: Spec) -> None:
        check_job_shape(request)
        flavor = self._flavors.get(spec.instance_type)
        if flavor is not None:
            info = _dict(flavor.get("flavor_info"))
            max_num = _int(info.get("max_num")) or _int(flavor.get("max_num"))
            if max_num and request.worker_count > max_num:
                raise InvalidRequest(
                    f"ModelArts flavor {spec.instance_type} allows at most {max_num} node(s)"
                    + (" (it does not run distributed jobs)" if max_num == 1 else "")
                    + f", not {request.worker_count}; pick a flavor whose max_num allows it"
                )
        if request.max_runtime_minutes <= 0:
            raise InvalidRequest(f"max_runtime_minutes must be > 0, got {request.max_runtime_minutes:g}")
        if request.spot or request.spot_price_limit is not None:
            raise InvalidRequest("ModelArts training jobs have no spot option in cloudjobs-mcp; quote without spot")
        if request.sanity_check or request.sanity_check_args:
            raise InvalidRequest("ModelArts has no pre-flight sanity check; create the job without sanity_check")
        if request.thirdparty_libs:
            raise InvalidRequest(
                "ModelArts custom-image jobs install no extra libraries: build them into the image, or install "
                "them at the start of user_command (pip install ... && python train.py)"
            )
        if request.priority is not None and not 1 <= request.priority <= 3:
            raise InvalidRequest(
                "priority on ModelArts is 1 (lowest) to 3 (highest), and only on a dedicated pool, "
                f"not {request.priority}"
            )
        if request.priority is not None and not request.resource_id:
            raise InvalidRequest("priority applies to jobs on a dedicated pool only: give resource_id=<pool id>")
        if request.resource_id:
            check_pool_name(request.resource_id)
        if request.image is not None and (not request.image.strip() or any(c.isspace() for c in request.image)):
            raise InvalidRequest(f"image {request.image!r} is not a valid SWR image path")
        self._environments(request)

    @staticmethod
    def _environments(request: JobRequest) -> dict[str, str]:
        added: dict[str, str] = {hp_env_name(k): str(v) for k, v in request.hyperparameters.items()}
        if request.hyperparameters:
            added[HYPERPARAMETERS_ENV] = json.dumps(request.hyperparameters, sort_keys=True, separators=(",", ":"))
        if request.metric_definitions:
            added[METRIC_DEFINITIONS_ENV] = json.dumps(
                [d.model_dump() for d in request.metric_definitions], separators=(",", ":")
            )
        clash = sorted(k for k in added if k in request.envs and request.envs[k] != added[k])
        if clash:
            raise InvalidRequest(
                f"envs {', '.join(clash)} are set from hyperparameters/metric_definitions; pass them there"
            )
        envs = {**request.envs, **added}
        if len(envs) > 100:
            raise InvalidRequest(f"ModelArts allows at most 100 environment variables a job, not {len(envs)}")
        return envs

    # ------------------------------------------------------------------------------ create

    @staticmethod
    def max_hours(minutes: float) -> int:
        """auto_stop takes whole hours, at least one: the quote's limit rounded up (never stops it early)."""
        return max(1, math.ceil(minutes / 60.0))

    async def create_job_body(self, request: JobRequest) -> dict[str, Any]:
        quote = request.tags.get(TAG_QUOTE_ID) or ""
        hours = self.max_hours(request.max_runtime_minutes)
        chip: Accelerator = self._specs[request.ecs_spec].accelerator if request.ecs_spec in self._specs else "CPU"
        image = request.image or (await self.resolve_image(request.job_type, chip)).uri
        resource: dict[str, Any] = {"flavor_id": request.ecs_spec, "node_count": request.worker_count}
        if request.resource_id:
            resource["pool_id"] = request.resource_id
        spec: dict[str, Any] = {"resource": resource, "auto_stop": {"time_unit": "HOURS", "duration": hours}}
        if request.priority is not None:
            spec["schedule_policy"] = {"priority": request.priority}
        algorithm: dict[str, Any] = {"command": request.user_command, "engine": {"image_url": image}}
        envs = self._environments(request)
        if envs:
            algorithm["environments"] = envs
        name = job_name(request.display_name, quote) if quote else NAME_CHARS.sub("-", request.display_name)[:MAX_NAME]
        # ModelArts takes no tags at creation: what the server needs to know again goes in the description.
        description = f"{MARKER} {quote} max_hours {hours}" if quote else f"created by cloudjobs-mcp max_hours {hours}"
        if quote and request.tags.get(TAG_OWNER):
            description += f" owner {quote_text(request.tags[TAG_OWNER], safe='')}"
        return {
            "kind": "job",
            "metadata": {
                "name": name,
                "workspace_id": self.settings.modelarts_workspace_id,
                "description": description[:256],
            },
            "algorithm": algorithm,
            "spec": spec,
        }

    async def create_job(self, request: JobRequest) -> Job:
        existing = await job_for_quote(request, self.find_job_by_tag, logger)
        if existing is not None:
            return existing
        quote = request.tags.get(TAG_QUOTE_ID)
        body = await self.create_job_body(request)
        name = body["metadata"]["name"]

        async def submit() -> Job:
            try:
                data = await self.api.create_job(body)
            except ProviderError as exc:
                if exc.code != errormap.DUPLICATE_NAME:
                    raise
                # The name carries the quote: a job by this name is the one this quote already created.
                found = await self._reconcile(name)
                if found is None:
                    raise ProviderError(
                        f"{exc.message} A job named {name} exists but search does not find it yet; check "
                        "list_jobs in a moment instead of creating it again.",
                        code=exc.code,
                        request_id=exc.request_id,
                        status=exc.status,
                    ) from None
                return found
            job = job_from(data, self.name)
            if not job.job_id:
                raise ProviderError("ModelArts CreateTrainingJob returned no metadata.id", code="InvalidResponse")
            return job

        async def find() -> Job | None:
            return await self._reconcile(name)

        # A lost answer is looked up by name before anything is sent again; a resend that meets the job
        # after all answers ModelArts.2751, which adopts it: never a second job.
        return await submit_once(
            submit, find if quote else None, attempts=self.api.policy.max_attempts, what="training job"
        )

    async def _reconcile(self, name: str) -> Job | None:
        return await look_again(functools.partial(self._find_by_name, name), RECONCILE_DELAYS, self._sleep)

    # ------------------------------------------------------------------------------ lookup

    async def _search(self, filters: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
        """Every page of training-job-searches (``offset`` is a page index), newest first, up to ``limit``."""
        items: list[dict[str, Any]] = []
        for page in range(MAX_SEARCH_PAGES):
            body = {
                "offset": page,
                "limit": SEARCH_PAGE,
                "sort_by": "create_time",
                "order": "desc",
                "workspace_id": self.settings.modelarts_workspace_id,
                "filters": filters,
            }
            data = await self.api.search_jobs(body)
            batch = [i for i in data.get("items") or [] if isinstance(i, dict)]
            items.extend(batch)
            total = _int(data.get("total"))
            if len(batch) < SEARCH_PAGE or len(items) >= limit or (total is not None and len(items) >= total):
                break
        return items[:limit]

    async def _find_by_name(self, name: str) -> Job | None:
        for item in await self._search([{"key": "name", "operator": "like", "value": [name]}], SEARCH_PAGE * 4):
            if _dict(item.get("metadata")).get("name") == name:
                return job_from(item, self.name)
        return None

    async def find_job_by_tag(self, key: str, value: str) -> Job | None:
        if key != TAG_QUOTE_ID:
            jobs = await self.list_jobs(tags={key: value}, limit=1)
            return jobs[0] if jobs else None
        suffix = "-" + NAME_CHARS.sub("-", value)
        for item in await self._search([{"key": "name", "operator": "like", "value": [suffix]}], SEARCH_PAGE * 4):
            job = job_from(item, self.name)
            if job.tags.get(TAG_QUOTE_ID) == value:
                return job
        return None

    @staticmethod
    def _check_id(job_id: str) -> str:
        job_id = (job_id or "").strip()
        if not job_id or "/" in job_id or any(c.isspace() for c in job_id):
            raise InvalidRequest(f"{job_id!r} is not a ModelArts training job id (a UUID from list_jobs)")
        return job_id

    async def get_job(self, job_id: str) -> Job:
        return job_from(await self.api.get_job(self._check_id(job_id)), self.name)

    async def list_jobs(
        self,
        status: JobStatus | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        limit: int = 100,
        *,
        include_training_jobs: bool = False,
    ) -> list[Job]:
        if limit <= 0:
            return []
        filters: list[dict[str, Any]] = []
        if status is not None:
            filters.append({"key": "phase", "operator": "in", "value": RAW_STATUSES[status]})
        if created_after is not None:
            start = int(created_after.timestamp() * 1000)
            end = int(self._now().timestamp() * 1000)
            filters.append({"key": "create_time", "operator": "between", "value": [str(start), str(end)]})
        wanted_quote = (tags or {}).get(TAG_QUOTE_ID)
        if wanted_quote:
            filters.append({"key": "name", "operator": "like", "value": ["-" + NAME_CHARS.sub("-", wanted_quote)]})
        fetch = limit if not tags else max(limit, SEARCH_PAGE * 4)
        jobs = [job_from(i, self.name) for i in await self._search(filters, fetch)]
        if tags:
            jobs = [j for j in jobs if all(j.tags.get(k) == v for k, v in tags.items())]
        if status is not None:
            jobs = [j for j in jobs if j.status == status]
        return jobs[:limit]

    async def stop_job(self, job_id: str) -> Job:
        job_id = self._check_id(job_id)
        try:
            data = await self.api.stop_job(job_id)
        except ProviderError as exc:
            if exc.code != errormap.NOT_STOPPABLE:
                raise
            return await self.get_job(job_id)  # already finished: nothing to stop
        job = job_from(data, self.name) if _dict(data.get("metadata")).get("id") else None
        return job or await self.get_job(job_id)

    async def delete_job(self, job_id: str) -> None:
        await self.api.delete_job(self._check_id(job_id))

    # ------------------------------------------------------------------------ logs/events

    async def pod_logs(
        self,
        job_id: str,
        pod_id: str,
        *,
        max_lines: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> LogPage:
        """The task's log preview (the newest ≤ 5 MB); ``truncated`` when the full log is longer or lines were cut.
        ModelArts log lines carry no times, so ``since``/``until`` are refused rather than ignored."""
        check_max_lines(max_lines)
        if since is not None or until is not None:
            raise InvalidRequest(
                "ModelArts training logs have no per-line times: since/until are not supported on modelarts; "
                "use tail_lines or grep instead"
            )
        job_id = self._check_id(job_id)
        try:
            data = await self.api.log_preview(job_id, pod_id)
        except ProviderError as exc:
            if exc.code in errormap.LOG_NOT_READY or exc.code in errormap.LOG_GONE:
                return LogPage(pod_id=pod_id, lines=[])
            raise
        if data.get("_status") == 204:  # ModelArts.2776: no log yet
            return LogPage(pod_id=pod_id, lines=[])
        content = str(data.get("content") or data.get("context") or "")  # "context" before 2022-03
        lines = content.splitlines()
        cut = max_lines is not None and len(lines) > max_lines
        if max_lines is not None:
            lines = lines[-max_lines:]
        full, current = _int(data.get("full_size")), _int(data.get("current_size"))
        longer = full is not None and current is not None and full > current
        return LogPage(pod_id=pod_id, lines=lines, truncated=cut or longer)

    async def events(self, job_id: str, pod_id: str | None = None) -> list[Event]:
        job_id = self._check_id(job_id)
        events: list[Event] = []
        offset = 0
        while len(events) < MAX_EVENTS:
            data = await self.api.events(job_id, [("offset", offset), ("limit", EVENT_PAGE), ("order", "asc")])
            batch = [e for e in data.get("events") or [] if isinstance(e, dict)]
            events.extend(event_from(e, job_id) for e in batch)
            offset += len(batch)
            total = _int(data.get("total"))
            if len(batch) < EVENT_PAGE or (total is not None and offset >= total):
                break
        if pod_id is not None:
            events = [e for e in events if e.source == pod_id]
        events.sort(key=lambda e: (e.time is None, e.time or datetime.min.replace(tzinfo=UTC)))
        return events[-MAX_EVENTS:]

    async def metrics(
        self, job_id: str, metric: MetricKind, *, since: datetime | None = None, step_seconds: int | None = None
    ) -> list[PodMetricSeries]:
        """Per task, 1-minute means ending when the job finished (or now); ``-1`` (no data) dropped."""
        job = await self.get_job(job_id)
        if not job.started_at:
            return []
        end = job.finished_at or self._now()
        series: list[PodMetricSeries] = []
        for pod in job.pods:
            data = await self.api.metrics(job.job_id, pod.pod_id)
            values: list[Any] = []
            for item in data.get("metrics") or []:
                if isinstance(item, dict) and item.get("metric") in METRIC_NAMES[metric]:
                    values = list(item.get("value") or [])
                    if any(isinstance(v, int | float) and v >= 0 for v in values):
                        break
            n = len(values)
            points = [
                MetricPoint(time=end - timedelta(minutes=n - 1 - i), value=float(v))
                for i, v in enumerate(values)
                if isinstance(v, int | float) and v >= 0
            ]
            if since is not None:
                points = [p for p in points if p.time >= since]
            series.append(PodMetricSeries(pod_id=pod.pod_id, metric=metric, points=points))
        return series

    async def sanity_checks(self, job_id: str) -> list[SanityCheckResult]:
        return []

    async def error_info(self, job_id: str) -> str | None:
        return (await self.get_job(job_id)).reason

    # ------------------------------------------------------------------------------- pools

    async def list_pools(self) -> list[Pool]:
        data = await self.api.list_pools([("workspaceId", self.settings.modelarts_workspace_id)])
        return [pool_from(i) for i in data.get("items") or [] if isinstance(i, dict)]

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
        """The pool's workloads (``type`` repeated in the query for several); the seed's and the SDK's shapes."""
        name = check_pool_name(pool_name)
        bad = [t for t in types or [] if t not in WORKLOAD_TYPES]
        if bad:
            raise InvalidRequest(f"type {', '.join(bad)} is not a workload type; allowed: {', '.join(WORKLOAD_TYPES)}")
        if status is not None and status not in WORKLOAD_STATUSES:
            raise InvalidRequest(f"status {status!r} is not a workload status; allowed: {', '.join(WORKLOAD_STATUSES)}")
        if sort is not None and sort != "create_time":
            raise InvalidRequest(f"sort {sort!r} is not supported; the only sort key is create_time")
        if order is not None and order not in ("asc", "desc"):
            raise InvalidRequest(f"order must be asc or desc, not {order!r}")
        if order is not None and sort is None:
            raise InvalidRequest("order needs sort=create_time")
        if not 1 <= limit <= WORKLOAD_PAGE:
            raise InvalidRequest(f"limit must be 1 to {WORKLOAD_PAGE}, not {limit}")
        if offset < 0:
            raise InvalidRequest(f"offset must be 0 or more, not {offset}")
        query: list[tuple[str, Any]] = [("type", t) for t in dict.fromkeys(types or [])]
        query += [("status", status), ("sort", sort), ("offset", str(offset)), ("limit", limit)]
        if order is not None:
            query.append(("ascend", order == "asc"))
        try:
            data = await self.api.list_workloads(name, query)
        except NotFound:
            raise NotFound(
                f"ModelArts has no resource pool {name!r} in {self.region}; list_pools shows the pools"
            ) from None
        items = [workload_from(i) for i in data.get("items") or [] if isinstance(i, dict)]
        return PoolWorkloadPage(
            pool_id=name, workloads=items, total=_int(data.get("total")), offset=offset, limit=limit
        )

    async def workload_info(self, job_id: str) -> WorkloadInfo:
        job = await self.get_job(job_id)
        base: dict[str, Any] = {
            "job_id": job.job_id,
            "name": job.name,
            "workload_type": "train",
            "status": {JobStatus.SUCCEEDED: "Succeeded", JobStatus.FAILED: "Failed"}.get(
                job.status, "Running" if job.status in (JobStatus.RUNNING, JobStatus.STOPPING) else "Pending"
            ),
            "created_at": job.created_at,
            "priority": job.priority,
            "running_seconds": job.duration_seconds,
        }
        unavailable = ["WorkspaceName", "TenantId", "UserId", "QueueMetas"]
        if not job.resource_id:
            return WorkloadInfo(
                **base,
                in_quota=False,
                is_scheduled=job.status not in (JobStatus.CREATING, JobStatus.QUEUING),
                source="ModelArts ShowTrainingJobDetails",
                unavailable=unavailable,
                note=f"{job.job_id} runs on the public resource pool: it is in no dedicated pool's queue",
            )
        page = await self.list_pool_workloads(job.resource_id, types=["train"], limit=WORKLOAD_PAGE)
        entry = next((w for w in page.workloads if w.job_id == job.job_id), None)
        if entry is None:
            return WorkloadInfo(
                **base,
                in_quota=True,
                quota_id=job.resource_id,
                source="ModelArts ShowTrainingJobDetails + ListWorkloads",
                unavailable=unavailable,
                note=f"on dedicated pool {job.resource_id}, whose workloads do not list it (status {job.raw_status})",
            )
        queued = entry.status in ("Queue", "Pending") and entry.queue_position is not None
        return WorkloadInfo(
            **{
                **base,
                "priority": entry.priority if entry.priority is not None else job.priority,
                "running_seconds": entry.running_seconds if entry.running_seconds is not None else job.duration_seconds,
            },
            user_name=entry.user_name,
            in_quota=True,
            is_scheduled=entry.status not in ("Queue", "Pending"),
            queue_position=entry.queue_position if queued else None,
            quota_id=job.resource_id,
            pending_seconds=entry.pending_seconds,
            source="ModelArts ListWorkloads (dedicated pool) + ShowTrainingJobDetails",
            unavailable=[u for u in unavailable if u != "UserId"],
            note=(
                f"pool {job.resource_id}: {entry.status}"
                + (f", position {entry.queue_position} in the queue" if queued else "")
                + (f", waited {entry.pending_seconds:g} s" if entry.pending_seconds is not None else "")
            ),
        )

    # --------------------------------------------------------------------- not on ModelArts

    async def label_job(self, job_id: str, labels: dict[str, str]) -> Job:
        raise InvalidRequest("labels are not supported on modelarts yet (ModelArts tags jobs only after creation)")

    async def unlabel_job(self, job_id: str, keys: list[str]) -> Job:
        raise InvalidRequest("labels are not supported on modelarts yet (ModelArts tags jobs only after creation)")

    async def spot_price_history(self, instance_type: str, hours: float) -> list[SpotPricePoint]:
        raise InvalidRequest("ModelArts training jobs have no spot prices; quote them on demand")

    async def output_models(self, job_id: str) -> OutputModels:
        job = await self.get_job(job_id)
        return untracked_outputs(
            job.job_id,
            "ModelArts keeps no list of a custom-image job's outputs: the job writes them where its command "
            "puts them (e.g. an OBS path or a mounted volume).",
        )

    def template_backend(self) -> TemplateBackend | None:
        return None
