"""``PaiProvider``: the Provider protocol on Alibaba Cloud PAI-DLC (with AIWorkspace and ECS pricing).

What each method calls (all through :class:`~.api.PaiApi`, signed ACS3, retried by ``server.http``):

* ``list_specs``    DLC ListEcsSpecs, every page, ``AcceleratorType`` filter server-side.
* ``resolve_image`` AIWorkspace ListImages (:mod:`.images` strategy), cached per provider.
* ``price``         ECS DescribePrice (pay-as-you-go hourly, ``cloud_essd`` 120 GiB system disk).
* ``create_job``    workspace auto-management (given → ``CLOUDJOBS_PAI_WORKSPACE_ID`` → first existing →
  create one), DLC CreateJob with the request's tags in ``Settings.Tags``. Idempotent by the quote tag:
  an existing job with the same quote tag is returned instead of creating a second one, and a
  CreateJob whose outcome is unknown (timeout after sending) is followed by a lookup, not a resend.
* ``get_job`` / ``list_jobs`` / ``find_job_by_tag`` / ``stop_job`` / ``delete_job`` DLC GetJob,
  ListJobs (pages; ``StartTime`` one year back so jobs older than the API's 7-day default are found),
  StopJob, DeleteJob.
* ``pod_logs`` / ``job_logs`` / ``events`` DLC GetPodLogs, GetJobEvents, GetPodEvents (pods
  concurrently), merged by the events' ``YYYY-MM-DD HH:MM:SS`` prefix, the newest ``MAX_EVENTS`` kept.
* ``metrics``       DLC GetJobMetrics (``MetricType`` per metric kind, ``TimeStep`` chosen so a series
  has at most 500 points, then downsampled to that bound), one series per pod.
* ``sanity_checks`` DLC ListJobSanityCheckResults (``RequestID``, list of lists flattened);
  ``sanity_check`` GetJobSanityCheckResult for one check number.
* ``workload_info`` GetJob's ``ResourceId`` (the quota) → PaiStudio ListQuotaWorkloads; public jobs say so.
* ``error_info``    DLC GetJob ReasonCode/ReasonMessage; PaiStudio GetTrainingJobErrorInfo.

``train…`` ids are PaiStudio 2022-01-12 training jobs and go to its APIs instead (:mod:`.studio` maps
them): GetTrainingJob (instances as pods), StopTrainingJob, DeleteTrainingJob, ListTrainingJobLogs per
instance (pages chosen from the string ``TotalCount`` so only the tail is read), ListTrainingJobEvents
+ ListTrainingJobInstanceEvents, ListTrainingJobInstanceMetrics, and ListTrainingJobs' ``DlcJobId`` for
the DLC job whose sanity checks it ran. ``create_job``/``list_jobs`` stay PAI-DLC only.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest, NotFound, ProviderError
from cloudjobs_mcp.server.http import OutcomeUnknown, RetryPolicy, submit_once
from cloudjobs_mcp.server.models import (
    Accelerator,
    Event,
    Image,
    Job,
    JobRequest,
    JobStatus,
    LogPage,
    MetricKind,
    OutputModels,
    Pod,
    PodMetricSeries,
    Price,
    SanityCheckResult,
    Spec,
    SpotPricePoint,
    WorkloadInfo,
)
from cloudjobs_mcp.server.pricing import PriceTable
from cloudjobs_mcp.server.providers.base import TAG_QUOTE_ID, TemplateBackend
from cloudjobs_mcp.server.providers.common import (
    METRIC_DEFINITIONS_ENV,
    PooledClient,
    check_job_shape,
    check_max_lines,
    gather,
    job_for_quote,
    look_again,
    metric_definitions_from,
)
from cloudjobs_mcp.server.providers.pai import images, studio, templates
from cloudjobs_mcp.server.providers.pai.api import PaiApi, QueryValue
from cloudjobs_mcp.server.providers.pai.credentials import Credentials, CredentialsProvider, as_provider
from cloudjobs_mcp.server.providers.pai.studio import check_job_id, is_training_job

logger = logging.getLogger("cloudjobs.pai")

# AIWorkspace limits WorkspaceName to 3-23 characters, so the seed's name is kept as the display name.
DEFAULT_WORKSPACE_NAME = "alibabacloud_compute"
DEFAULT_WORKSPACE_DISPLAY_NAME = "alibabacloud_compute_default"
DEFAULT_WORKSPACE_DESCRIPTION = "Created by cloudjobs-mcp for PAI-DLC training jobs"

LOOKBACK = timedelta(days=365)
SPEC_PAGE_SIZE = 100
JOB_PAGE_SIZE = 50
IMAGE_PAGE_SIZE = 100
WORKSPACE_PAGE_SIZE = 20
MAX_PAGES = 50
DEFAULT_MAX_LOG_LINES = 2000  # GetPodLogs' own default
SYSTEM_DISK_CATEGORY = "cloud_essd"
SYSTEM_DISK_SIZE_GB = 120
RECONCILE_DELAYS = (0.0, 1.0, 2.0, 4.0)  # lookups after a CreateJob of unknown outcome (list is eventually consistent)
MAX_CONCURRENCY = 8
SPEC_SORT_FIELDS = ("CPU", "GPU", "Memory", "GmtCreateTime")
DISPLAY_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,256}$")
MAX_EVENTS = 2000  # newest events kept after merging (GetJobEvents' own MaxEventsNum default)
STUDIO_EVENT_PAGE_SIZE = 100  # ListTrainingJobEvents' default PageSize
STUDIO_LOG_PAGE_SIZE = 500
MAX_SANITY_RESULTS = 200
PRIORITY_RANGE = (1, 9)
INSTANCE_NOT_FOUND = "TRAINING_JOB_INSTANCE_NOT_FOUND"  # PaiStudio: an instance without logs yet
TAG_RESOURCE_TYPE = "Job"  # TagResources/UntagResources ResourceType for DLC jobs
MAX_TAGS_PER_CALL = 20  # TagResources/UntagResources: at most 20 tags (keys) a call
MAX_TAG_KEY = 128
MAX_SPOT_HOURS = 7 * 24  # GetSpotPriceHistory: StartTime at most 7 days before EndTime
MAX_SPOT_POINTS = 200
SPOT_PAGE_SIZE = 100
SPOT_MAX_PAGES = 10
TRAINING_LIST_PAGES = 2
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

STATUS_MAP: dict[str, JobStatus] = {
    "Creating": JobStatus.CREATING,
    "Queuing": JobStatus.QUEUING,
    "Bidding": JobStatus.QUEUING,
    "EnvPreparing": JobStatus.CREATING,
    "SanityChecking": JobStatus.RUNNING,
    "Running": JobStatus.RUNNING,
    "Restarting": JobStatus.RUNNING,
    "Stopping": JobStatus.STOPPING,
    "SucceededReserving": JobStatus.SUCCEEDED,
    "FailedReserving": JobStatus.FAILED,
    "Succeeded": JobStatus.SUCCEEDED,
    "Failed": JobStatus.FAILED,
    "Stopped": JobStatus.STOPPED,
}
RAW_STATUSES: dict[JobStatus, tuple[str, ...]] = {
    s: tuple(raw for raw, norm in STATUS_MAP.items() if norm is s) for s in JobStatus
}
_EVENT_TIME = re.compile(
    r"^\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s*(.*)$", re.DOTALL
)


# ----------------------------------------------------------------------------------- mapping


def normalize_status(raw: str | None) -> JobStatus:
    """DLC status → normalized status; unknown values count as running (non-terminal)."""
    if not raw:
        return JobStatus.CREATING
    return STATUS_MAP.get(raw, JobStatus.RUNNING)


def parse_time(raw: Any) -> datetime | None:
    """DLC times are UTC ISO-8601 (``2021-01-12T14:35:01Z``, sometimes with milliseconds)."""
    if not raw or not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(raw: Any) -> int | None:
    """Numbers arrive as numbers or strings (``TotalCount``, ``NodeCount``, ``RequestGPU`` ...)."""
    if raw is None or raw == "":
        return None
    try:
        return int(float(raw))
    except (TypeError, ValueError):
        return None


def _float(raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _str(raw: Any) -> str | None:
    return str(raw) if raw not in (None, "") else None


def job_tags(data: Mapping[str, Any]) -> dict[str, str] | None:
    """``Settings.Tags`` of a GetJob body / ListJobs item; None when the body does not say."""
    settings = data.get("Settings")
    if not isinstance(settings, dict):
        return None
    tags = settings.get("Tags")
    if tags is None:
        return {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def pod_from(data: Mapping[str, Any]) -> Pod:
    return Pod(
        pod_id=str(data.get("PodId") or ""),
        role=str(data.get("Type") or ""),
        status=str(data.get("Status") or "Unknown"),
        sub_status=_str(data.get("SubStatus")),
        ip=_str(data.get("Ip")) or _str(data.get("PodIp")),
        started_at=parse_time(data.get("GmtStartTime")),
        finished_at=parse_time(data.get("GmtFinishTime")),
    )


def job_from(data: Mapping[str, Any], provider: str = "pai") -> Job:
    """A GetJob body or a ListJobs item → Job."""
    raw = str(data.get("Status") or "")
    specs = [s for s in data.get("JobSpecs") or [] if isinstance(s, dict)]
    pod_counts = [_int(s.get("PodCount")) for s in specs]
    worker_count = sum(c for c in pod_counts if c) if any(pod_counts) else _int(data.get("NodeCount"))
    main = next((s for s in specs if s.get("Type") == "Worker"), specs[0] if specs else {})
    envs = studio.as_dict(data.get("Envs"))
    finished = (
        parse_time(data.get("GmtFinishTime"))
        or parse_time(data.get("GmtSuccessedTime"))
        or parse_time(data.get("GmtFailedTime"))
        or parse_time(data.get("GmtStoppedTime"))
    )
    return Job(
        job_id=str(data.get("JobId") or ""),
        name=str(data.get("DisplayName") or ""),
        provider=provider,
        status=normalize_status(raw),
        raw_status=raw or "Unknown",
        sub_status=_str(data.get("SubStatus")),
        job_type=_str(data.get("JobType")),
        ecs_spec=_str(main.get("EcsSpec")),
        worker_count=worker_count,
        image=_str(main.get("Image")),
        pods=[pod_from(p) for p in data.get("Pods") or [] if isinstance(p, dict)],
        created_at=parse_time(data.get("GmtCreateTime")),
        started_at=parse_time(data.get("GmtRunningTime")),
        finished_at=finished if normalize_status(raw).is_terminal else None,
        duration_seconds=_float(data.get("Duration")),
        reason=_str(data.get("ReasonMessage")),
        reason_code=_str(data.get("ReasonCode")),
        max_runtime_minutes=_int(data.get("JobMaxRunningTimeMinutes")),
        tags=job_tags(data) or {},
        priority=_int(data.get("Priority")),
        resource_id=_str(data.get("ResourceId")),
        hyperparameters=templates.hyperparameters_from_envs(envs),
        metric_definitions=metric_definitions_from(envs),
        spot=any(s.get("UseSpotInstance") is True for s in specs),
        template_id=_str(data.get("TemplateId")),
        template_version=_int(data.get("TemplateVersion")),
    )


def downsample_spot(points: list[SpotPricePoint], limit: int = MAX_SPOT_POINTS) -> list[SpotPricePoint]:
    """Oldest first, at most ``limit`` points, evenly spaced; the newest (the current price) is kept."""
    if len(points) <= limit:
        return points
    if limit <= 1:
        return points[-1:]
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _gib(raw: Any) -> float:
    """ListEcsSpecs documents Memory as "MiB or GiB": values above 3 TiB-as-GiB are taken as MiB."""
    value = _float(raw) or 0.0
    return value / 1024.0 if value > 3072 else value


def spec_from(data: Mapping[str, Any], price: Price | None = None) -> Spec:
    gpu = _int(data.get("Gpu")) or 0
    accelerator: Accelerator = "GPU" if str(data.get("AcceleratorType") or "").upper() == "GPU" or gpu else "CPU"
    gpu_memory = _float(data.get("GpuMemory"))
    available = data.get("IsAvailable")
    return Spec(
        instance_type=str(data.get("InstanceType") or ""),
        accelerator=accelerator,
        cpu=_int(data.get("Cpu")) or 0,
        memory_gb=_gib(data.get("Memory")),
        gpu_count=gpu,
        gpu_type=_str(data.get("GpuType")),
        gpu_memory_gb=(gpu_memory / 1024.0 if gpu_memory > 1024 else gpu_memory) if gpu_memory else None,
        available=True if available is None else bool(available),
        price_per_hour=price.per_worker_hourly if price else None,
        currency=price.currency if price else None,
        spot_stock=_str(data.get("SpotStockStatus")),
        spot_discount=_float(data.get("NonProtectSpotDiscount")),
        payment_types=[str(p) for p in data.get("PaymentTypes") or []],
    )


def parse_event(line: str, source: str) -> Event:
    """``YYYY-MM-DD HH:MM:SS message`` (DLC); ISO prefixes with ``T``, fractions, ``Z`` or an offset too."""
    match = _EVENT_TIME.match(line)
    if match:
        when = studio.parse_time(match.group(1))
        if when is not None:
            return Event(time=when, source=source, message=match.group(2).strip())
    return Event(time=None, source=source, message=line.strip())


def merge_events(events: list[Event], limit: int | None = None) -> list[Event]:
    """Oldest first; events without a time keep their order after the dated ones; the newest ``limit``."""
    ordered = sorted(events, key=lambda e: (e.time is None, e.time or datetime.min.replace(tzinfo=UTC)))
    return ordered[-limit:] if limit else ordered


# ---------------------------------------------------------------------------------- provider


class PaiProvider(PooledClient):
    """The ``pai`` provider. Owns its httpx client unless one is passed in."""

    name = "pai"

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
        nonce: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self.region = settings.region
        self.currency = "CNY"  # replaced by DescribePrice's Currency (USD on the international site)
        self._open_client(settings, client)
        self._sleep = sleep
        self._now = now
        self._credentials = as_provider(
            credentials,
            client=self._client,
            sts_endpoint_override=settings.pai_endpoint_sts,
            env=env,
            home=home,
            now=now,
            sleep=sleep,
            rand=rand,
        )
        extra: dict[str, Any] = {"nonce": nonce} if nonce else {}
        self.api = PaiApi(
            settings,
            self._client,
            self._credentials,
            policy=policy,
            sleep=sleep,
            rand=rand,
            clock=clock,
            now=now,
            **extra,
        )
        self._images: dict[tuple[str, str], Image] = {}
        self._specs: dict[str, Spec] = {}
        self._prices: dict[str, Price] = {}
        self._workspace_id: str | None = settings.pai_workspace_id or None
        self._workspace_lock = anyio.Lock()
        self._image_lock = anyio.Lock()
        self._templates: templates.DlcTemplates | None = None

    def known_secrets(self) -> tuple[str, ...]:
        """The access key secret and STS token in use: masked in job logs and event text."""
        return self.api.secrets_in_use

    async def credential_source(self) -> str:
        """Where the credentials come from, by name (never a value); CredentialsNotFound when nowhere."""
        source = (await self._credentials.get()).source
        if source.startswith("cli_profile:"):
            return f"~/.aliyun/config.json (profile {source.split(':', 1)[1]})"
        return source

    # ------------------------------------------------------------------------ pagination

    async def _paged(
        self,
        fetch: Callable[[Mapping[str, QueryValue]], Awaitable[dict[str, Any]]],
        query: Mapping[str, QueryValue],
        items_key: str,
        page_size: int,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Items of every page, until a short/empty page or ``TotalCount`` is reached."""
        seen = 0
        for page in range(1, MAX_PAGES + 1):
            data = await fetch({**query, "PageNumber": page, "PageSize": page_size})
            items = [i for i in data.get(items_key) or [] if isinstance(i, dict)]
            for item in items:
                yield item
            seen += len(items)
            total = _int(data.get("TotalCount"))
            if not items or len(items) < page_size or (total is not None and seen >= total):
                return

    # ------------------------------------------------------------------------- specs/price

    async def list_specs(
        self,
        accelerator: Accelerator | None = None,
        *,
        sort_by: str | None = None,
        order: str | None = None,
    ) -> list[Spec]:
        """Every ECS spec DLC offers (all pages), with the price where one was already quoted."""
        if sort_by is not None and sort_by not in SPEC_SORT_FIELDS:
            raise InvalidRequest(f"sort_by must be one of {', '.join(SPEC_SORT_FIELDS)}, not {sort_by!r}")
        if order is not None and order.lower() not in ("asc", "desc"):
            raise InvalidRequest(f"order must be 'asc' or 'desc', not {order!r}")
        query: dict[str, QueryValue] = {
            "AcceleratorType": accelerator,
            "SortBy": sort_by,
            "Order": order.lower() if order else None,
        }
        specs: list[Spec] = []
        async for item in self._paged(self.api.list_ecs_specs, query, "EcsSpecs", SPEC_PAGE_SIZE):
            spec = spec_from(item, self._prices.get(str(item.get("InstanceType") or "")))
            if not spec.instance_type or (accelerator and spec.accelerator != accelerator):
                continue
            self._specs[spec.instance_type] = spec
            specs.append(spec)
        return specs

    async def price(self, instance_type: str) -> Price:
        """ECS DescribePrice; for a spec ECS does not sell (DLC-only types), the price table, else unknown."""
        try:
            data = await self.api.describe_price(
                {
                    "RegionId": self.region,
                    "InstanceType": instance_type,
                    "PriceUnit": "Hour",
                    "SystemDisk.Category": SYSTEM_DISK_CATEGORY,
                    "SystemDisk.Size": SYSTEM_DISK_SIZE_GB,
                }
            )
        except ProviderError as exc:
            if not exc.code.startswith("InvalidInstanceType"):
                raise
            spec = self._specs.get(instance_type)
            listed = PriceTable.from_settings(self.settings).lookup(self.name, spec) if spec else None
            return listed or Price(
                instance_type=instance_type,
                per_worker_hourly=None,
                currency=self.currency,
                source=f"none: ECS DescribePrice does not price {instance_type} ({exc.code}) and the price table "
                "has no entry for it",
            )
        price_info = data.get("PriceInfo")
        body = price_info.get("Price") if isinstance(price_info, dict) else None
        if not isinstance(body, dict):
            body = {}
        trade = _float(body.get("TradePrice"))
        if trade is None:
            raise ProviderError(
                f"ECS DescribePrice returned no TradePrice for {instance_type}",
                code="InvalidResponse",
                request_id=str(data.get("RequestId") or ""),
            )
        currency = str(body.get("Currency") or self.currency)
        self.currency = currency
        price = Price(
            instance_type=instance_type,
            per_worker_hourly=trade,
            currency=currency,
            source=(
                f"ECS DescribePrice (pay-as-you-go, per hour, {SYSTEM_DISK_CATEGORY} "
                f"{SYSTEM_DISK_SIZE_GB} GiB system disk)"
            ),
        )
        self._prices[instance_type] = price
        return price

    # ------------------------------------------------------------------------------ images

    def chip_type(self, instance_type: str) -> Accelerator:
        known = self._specs.get(instance_type)
        return known.accelerator if known else images.chip_type_for_spec(instance_type)

    async def resolve_image(self, job_type: str, chip_type: Accelerator) -> Image:
        key = (job_type, chip_type)
        if key in self._images:
            return self._images[key]
        async with self._image_lock:
            if key in self._images:
                return self._images[key]
            framework = images.framework_for(job_type)
            query: dict[str, QueryValue] = {
                "Labels": images.labels_filter(chip_type),
                "Name": framework,
                "Verbose": True,
            }
            found = [i async for i in self._paged(self.api.list_images, query, "Images", IMAGE_PAGE_SIZE)]
            ranked = images.rank(found, job_type, chip_type)
            if not ranked:
                raise NotFound(
                    f"No official PAI-DLC {chip_type} image for {job_type} (looked for names starting with "
                    f"'{framework}:' or '{framework}-training:' in region {self.region}); pass image=<uri> "
                    "explicitly."
                )
            best = ranked[0]
            image = Image(
                uri=str(best["ImageUri"]),
                job_type=job_type,
                chip_type=chip_type,
                name=str(best.get("Name") or ""),
                note=f"official PAI image chosen from {len(ranked)} candidate(s)",
            )
            self._images[key] = image
            return image

    # -------------------------------------------------------------------------- workspace

    def _pick_workspace(self, items: list[dict[str, Any]]) -> str | None:
        usable = [w for w in items if str(w.get("Status") or "ENABLED").upper() == "ENABLED"]
        for workspace in usable or items:
            if workspace.get("WorkspaceId"):
                return str(workspace["WorkspaceId"])
        return None

    async def workspace_id(self, *, create: bool = True) -> str | None:
        """The workspace jobs go to: setting → cached → first existing → a new simple-mode one."""
        if self._workspace_id:
            return self._workspace_id
        async with self._workspace_lock:
            if self._workspace_id:
                return self._workspace_id
            data = await self.api.list_workspaces({"PageNumber": 1, "PageSize": WORKSPACE_PAGE_SIZE})
            found = self._pick_workspace([w for w in data.get("Workspaces") or [] if isinstance(w, dict)])
            if found is None and create:
                found = await self._create_workspace()
            if found:
                self._workspace_id = found
                logger.info("using PAI workspace %s", found)
            return found

    async def _create_workspace(self) -> str:
        body = {
            "WorkspaceName": DEFAULT_WORKSPACE_NAME,
            "DisplayName": DEFAULT_WORKSPACE_DISPLAY_NAME,
            "Description": DEFAULT_WORKSPACE_DESCRIPTION,
            "EnvTypes": ["prod"],
        }
        try:
            data = await self.api.create_workspace(body)
        except OutcomeUnknown:
            data = {}
        workspace = str(data.get("WorkspaceId") or "")
        if not workspace:  # the outcome was unknown, or the answer lacked the id: look it up by name
            again = await self.api.list_workspaces(
                {"WorkspaceName": DEFAULT_WORKSPACE_NAME, "PageNumber": 1, "PageSize": WORKSPACE_PAGE_SIZE}
            )
            workspace = self._pick_workspace([w for w in again.get("Workspaces") or [] if isinstance(w, dict)]) or ""
        if not workspace:
            raise ProviderError(
                "PAI AIWorkspace CreateWorkspace did not return a workspace; create one in the PAI console "
                "and set CLOUDJOBS_PAI_WORKSPACE_ID",
                code="InvalidResponse",
            )
        logger.info("created PAI workspace %s (%s)", workspace, DEFAULT_WORKSPACE_NAME)
        return workspace

    # ---------------------------------------------------------------------------- validate

    def validate_request(self, request: JobRequest, spec: Spec) -> None:
        check_job_shape(request)
        if not request.user_command.strip():
            raise InvalidRequest("user_command is empty; give the command every worker runs, e.g. 'python train.py'")
        if not DISPLAY_NAME.match(request.display_name):
            raise InvalidRequest(
                f"display_name {request.display_name!r} is not allowed by PAI-DLC: use 1-256 characters from "
                "letters, digits, '_', '.' and '-'"
            )
        if request.max_runtime_minutes <= 0:
            raise InvalidRequest(f"max_runtime_minutes must be > 0, got {request.max_runtime_minutes:g}")
        if request.ecs_spec != spec.instance_type:
            raise InvalidRequest(f"ecs_spec {request.ecs_spec!r} does not match the spec {spec.instance_type!r}")
        if self._specs and request.ecs_spec not in self._specs:
            raise InvalidRequest(
                f"ecs_spec {request.ecs_spec!r} is not offered by PAI-DLC in {self.region}; "
                "pick one from list_ecs_specs"
            )
        if not spec.available:
            raise InvalidRequest(
                f"ecs_spec {spec.instance_type!r} is currently not available in {self.region}; "
                "pick another from list_ecs_specs"
            )
        if request.image is not None and (not request.image.strip() or any(c.isspace() for c in request.image)):
            raise InvalidRequest(f"image {request.image!r} is not a valid image URI")
        for key in request.envs:
            if not key or "=" in key:
                raise InvalidRequest(f"environment variable name {key!r} is not valid")
        low, high = PRIORITY_RANGE
        if request.priority is not None and not low <= request.priority <= high:
            raise InvalidRequest(
                f"priority must be an integer from {low} (lowest, the default) to {high} (highest) on PAI-DLC, "
                f"got {request.priority}"
            )
        if request.sanity_check_args is not None and not request.sanity_check:
            raise InvalidRequest("sanity_check_args needs sanity_check=true (they configure PAI's sanity check)")
        if request.sanity_check_args is not None and not request.sanity_check_args.strip():
            raise InvalidRequest("sanity_check_args is empty; omit it to use PAI's default sanity check")
        if request.spot_price_limit is not None and not request.spot:
            raise InvalidRequest("spot_price_limit needs spot=true")
        if request.spot_price_limit is not None and not request.spot_price_limit > 0:
            raise InvalidRequest(f"spot_price_limit must be > 0, got {request.spot_price_limit:g}")
        if request.template_version is not None and not request.template_id:
            raise InvalidRequest("template_version needs template_id")
        self._run_envs(request)  # hyperparameter names, reserved variables

    @staticmethod
    def _run_envs(request: JobRequest) -> dict[str, str]:
        """The request's envs plus ``HP_<NAME>``/``CLOUDJOBS_HYPERPARAMETERS`` and
        ``CLOUDJOBS_METRIC_DEFINITIONS``; a clash with the request's own envs → InvalidRequest."""
        added: dict[str, str] = {}
        for name in request.hyperparameters:
            if not name or not ENV_NAME.match(templates.hp_env_name(name)):
                raise InvalidRequest(f"hyperparameter name {name!r} is not valid: use letters, digits and '_'")
        added.update(templates.hyperparameter_envs(request.hyperparameters))
        if request.metric_definitions:
            added[METRIC_DEFINITIONS_ENV] = json.dumps(
                [d.model_dump() for d in request.metric_definitions], ensure_ascii=False, separators=(",", ":")
            )
        clash = sorted(k for k in added if k in request.envs and request.envs[k] != added[k])
        if clash:
            raise InvalidRequest(
                f"envs {', '.join(clash)} are set by this server from hyperparameters/metric_definitions; "
                "pass the values there instead"
            )
        return {**request.envs, **added}

    # ------------------------------------------------------------------------------ create

    async def _resource(self, request: JobRequest) -> dict[str, Any]:
        """``EcsSpec`` for public resources; ``ResourceConfig`` (strings) with a resource quota."""
        if not request.resource_id:
            return {"EcsSpec": request.ecs_spec}
        spec = self._specs.get(request.ecs_spec)
        if spec is None:
            data = await self.api.list_ecs_specs({"InstanceTypes": request.ecs_spec, "PageNumber": 1, "PageSize": 10})
            match = [i for i in data.get("EcsSpecs") or [] if i.get("InstanceType") == request.ecs_spec]
            spec = spec_from(match[0]) if match else None
        if spec is None:
            return {"EcsSpec": request.ecs_spec}
        config = {"CPU": str(spec.cpu), "Memory": f"{round(spec.memory_gb)}Gi"}
        if spec.gpu_count:
            config["GPU"] = str(spec.gpu_count)
            if spec.gpu_type:
                config["GPUType"] = spec.gpu_type
        return {"ResourceConfig": config}

    @staticmethod
    def job_specs(job_type: str, worker_count: int, image: str, resource: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``worker_count`` pods in all: Worker × n; XGBoostJob Master + Workers; RayJob Head + Workers."""

        def role(kind: str, count: int) -> dict[str, Any]:
            return {"Type": kind, "Image": image, "PodCount": count, **resource}

        lead = {"XGBoostJob": "Master", "RayJob": "Head"}.get(job_type)
        if lead is None:
            return [role("Worker", worker_count)]
        return [role(lead, 1)] + ([role("Worker", worker_count - 1)] if worker_count > 1 else [])

    async def create_job_body(self, request: JobRequest) -> dict[str, Any]:
        workspace = request.workspace_id or await self.workspace_id()
        image = request.image or (await self.resolve_image(request.job_type, self.chip_type(request.ecs_spec))).uri
        body: dict[str, Any] = {
            "DisplayName": request.display_name,
            "JobType": request.job_type,
            "JobSpecs": self.job_specs(request.job_type, request.worker_count, image, await self._resource(request)),
            "UserCommand": request.user_command,
            "WorkspaceId": workspace,
            # DLC takes whole minutes; rounding up never stops a job before its quoted limit.
            "JobMaxRunningTimeMinutes": math.ceil(request.max_runtime_minutes),
        }
        envs = self._run_envs(request)
        if envs:
            body["Envs"] = envs
        if request.spot:
            spot_spec: dict[str, Any] = (
                # SpotSpec.SpotPriceLimit is per minute (the SDK: "Unit: CNY/minute"); the request's is per hour.
                {"SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": round(request.spot_price_limit / 60.0, 6)}
                if request.spot_price_limit is not None
                else {"SpotStrategy": "SpotAsPriceGo"}
            )
            for role in body["JobSpecs"]:
                role["UseSpotInstance"] = True
                role["SpotSpec"] = dict(spot_spec)
        if request.template_id:
            body["TemplateId"] = request.template_id
            if request.template_version is not None:
                body["TemplateVersion"] = request.template_version
        if request.thirdparty_libs:
            body["ThirdpartyLibs"] = list(request.thirdparty_libs)
        if request.resource_id:
            body["ResourceId"] = request.resource_id
        if request.priority is not None:
            body["Priority"] = request.priority
        settings: dict[str, Any] = {}
        if request.tags:
            settings["Tags"] = dict(request.tags)
        if request.sanity_check:
            settings["EnableSanityCheck"] = True
            if request.sanity_check_args:
                settings["SanityCheckArgs"] = request.sanity_check_args
        if settings:
            body["Settings"] = settings
        return body

    async def create_job(self, request: JobRequest) -> Job:
        existing = await job_for_quote(request, self.find_job_by_tag, logger)
        if existing is not None:
            return existing
        quote = request.tags.get(TAG_QUOTE_ID)
        body = await self.create_job_body(request)
        job_id = await self._submit(body, quote)
        try:
            return await self.get_job(job_id)
        except NotFound:  # just created: GetJob may lag a moment behind CreateJob
            return Job(
                job_id=job_id,
                name=request.display_name,
                provider=self.name,
                status=JobStatus.CREATING,
                raw_status="Creating",
                job_type=request.job_type,
                ecs_spec=request.ecs_spec,
                worker_count=request.worker_count,
                image=body["JobSpecs"][0]["Image"],
                max_runtime_minutes=request.max_runtime_minutes,
                tags=dict(request.tags),
                priority=request.priority,
                resource_id=request.resource_id,
                hyperparameters=dict(request.hyperparameters),
                metric_definitions=list(request.metric_definitions),
                spot=request.spot,
                template_id=request.template_id,
                template_version=request.template_version,
            )

    async def _submit(self, body: Mapping[str, Any], quote: str | None) -> str:
        """CreateJob exactly once: after an unknown outcome, look the job up before sending again."""

        async def submit() -> str:
            data = await self.api.create_job(body)
            job_id = str(data.get("JobId") or "")
            if not job_id:
                raise ProviderError(
                    "PAI-DLC CreateJob returned no JobId",
                    code="InvalidResponse",
                    request_id=str(data.get("RequestId") or ""),
                )
            return job_id

        find = functools.partial(self._reconcile, quote) if quote else None
        return await submit_once(submit, find, attempts=self.api.policy.max_attempts, what="job")

    async def _reconcile(self, quote: str) -> str | None:
        find = functools.partial(self._find_job_id, TAG_QUOTE_ID, quote)
        return await look_again(find, RECONCILE_DELAYS, self._sleep)

    # ------------------------------------------------------------------------------ lookup

    async def _confirmed_tags(self, item: Mapping[str, Any]) -> dict[str, str]:
        """The job's tags; fetched with GetJob when the list item does not carry ``Settings``."""
        tags = job_tags(item)
        if tags is None:
            try:
                tags = job_tags(await self.api.get_job(str(item.get("JobId") or ""), need_detail=True)) or {}
            except NotFound:
                tags = {}
        return tags

    def _list_query(self, workspace: str | None, start: datetime, **extra: QueryValue) -> dict[str, QueryValue]:
        return {
            "WorkspaceId": workspace,
            "StartTime": iso(start),
            "SortBy": "GmtCreateTime",
            "Order": "desc",
            **extra,
        }

    async def _find_job_id(self, key: str, value: str) -> str | None:
        workspace = await self.workspace_id(create=False)
        query = self._list_query(workspace, self._now() - LOOKBACK, Tags={key: value})
        async with aclosing(self._paged(self.api.list_jobs, query, "Jobs", JOB_PAGE_SIZE)) as items:
            async for item in items:
                if item.get("IsDeleted") or not item.get("JobId"):
                    continue
                if (await self._confirmed_tags(item)).get(key) == value:
                    return str(item["JobId"])
        return None

    async def find_job_by_tag(self, key: str, value: str) -> Job | None:
        job_id = await self._find_job_id(key, value)
        return await self.get_job(job_id) if job_id else None

    async def get_job(self, job_id: str) -> Job:
        """DLC GetJob, or PaiStudio GetTrainingJob for a ``train…`` id."""
        check_job_id(job_id)
        if is_training_job(job_id):
            return studio.training_job_from(await self.api.get_training_job(job_id), self.name)
        return job_from(await self.api.get_job(job_id, need_detail=True), self.name)

    async def list_jobs(
        self,
        status: JobStatus | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        limit: int = 100,
        *,
        include_training_jobs: bool = False,
    ) -> list[Job]:
        """Jobs newest first; ``tags`` are verified on each job, never trusted to the server filter.

        ``include_training_jobs`` adds PaiStudio training jobs (ListTrainingJobs, at most
        TRAINING_LIST_PAGES pages) and drops the PAI-DLC jobs that run them (their ``DlcJobId``). It is
        off by default: one more API (and RAM permission) per listing."""
        if limit <= 0:
            return []
        workspace = await self.workspace_id(create=False)
        start = created_after or (self._now() - LOOKBACK)
        raws: tuple[str | None, ...] = RAW_STATUSES[status] if status else (None,)
        jobs: dict[str, Job] = {}
        for raw in raws:
            query = self._list_query(workspace, start, Status=raw, Tags=dict(tags) if tags else None)
            taken = 0
            async with aclosing(self._paged(self.api.list_jobs, query, "Jobs", JOB_PAGE_SIZE)) as items:
                async for item in items:
                    if item.get("IsDeleted") or not item.get("JobId"):
                        continue
                    job = job_from(item, self.name)
                    if status is not None and job.status != status:
                        continue
                    if created_after is not None and job.created_at is not None and job.created_at < created_after:
                        continue
                    if tags:
                        actual = await self._confirmed_tags(item)
                        if any(actual.get(k) != v for k, v in tags.items()):
                            continue
                        job = job.model_copy(update={"tags": actual})
                    jobs[job.job_id] = job
                    taken += 1
                    if taken >= limit:
                        break
        if include_training_jobs:
            training, runners = await self._training_jobs(status, tags, created_after, limit)
            jobs = {k: v for k, v in jobs.items() if k not in runners}
            jobs.update({j.job_id: j for j in training})
        ordered = sorted(jobs.values(), key=lambda j: j.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return ordered[:limit]

    async def stop_job(self, job_id: str) -> Job:
        check_job_id(job_id)
        if is_training_job(job_id):
            await self.api.stop_training_job(job_id)
        else:
            await self.api.stop_job(job_id)
        return await self.get_job(job_id)

    async def delete_job(self, job_id: str) -> None:
        check_job_id(job_id)
        if is_training_job(job_id):
            await self.api.delete_training_job(job_id)
        else:
            await self.api.delete_job(job_id)

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
        check_max_lines(max_lines)
        check_job_id(job_id)
        if is_training_job(job_id):
            return await self._training_pod_logs(job_id, pod_id, max_lines=max_lines, since=since, until=until)
        query: dict[str, QueryValue] = {
            "MaxLines": max_lines,
            "StartTime": iso(since),
            "EndTime": iso(until),
            "DownloadToFile": False,
        }
        data = await self.api.get_pod_logs(job_id, pod_id, query)
        lines = [str(line) for line in data.get("Logs") or []]
        bound = max_lines or DEFAULT_MAX_LOG_LINES
        truncated = len(lines) >= bound
        return LogPage(pod_id=pod_id, lines=lines[-bound:], truncated=truncated)

    async def job_logs(self, job_id: str, *, max_lines: int | None = None) -> dict[str, LogPage]:
        """Logs of every pod of the job, fetched concurrently (pod id → page)."""
        job = await self.get_job(job_id)
        results: dict[str, LogPage] = {}
        limiter = anyio.CapacityLimiter(MAX_CONCURRENCY)

        async def one(pod_id: str) -> None:
            async with limiter:
                try:
                    results[pod_id] = await self.pod_logs(job_id, pod_id, max_lines=max_lines)
                except NotFound:
                    results[pod_id] = LogPage(pod_id=pod_id, lines=[])

        await gather([functools.partial(one, p.pod_id) for p in job.pods if p.pod_id])
        return {p.pod_id: results[p.pod_id] for p in job.pods if p.pod_id in results}

    async def events(self, job_id: str, pod_id: str | None = None) -> list[Event]:
        """The job's and its pods' events merged oldest first, the newest ``MAX_EVENTS`` kept."""
        check_job_id(job_id)
        if is_training_job(job_id):
            return await self._training_events(job_id, pod_id)
        if pod_id is not None:
            data = await self.api.get_pod_events(job_id, pod_id, {})
            return merge_events([parse_event(str(e), pod_id) for e in data.get("Events") or []], MAX_EVENTS)

        collected: list[Event] = []
        limiter = anyio.CapacityLimiter(MAX_CONCURRENCY)

        async def job_events() -> None:
            async with limiter:
                data = await self.api.get_job_events(job_id, {})
            collected.extend(parse_event(str(e), job_id) for e in data.get("Events") or [])

        async def pod_events(pid: str) -> None:
            async with limiter:
                try:
                    data = await self.api.get_pod_events(job_id, pid, {})
                except NotFound:
                    return
            collected.extend(parse_event(str(e), pid) for e in data.get("Events") or [])

        job = await self.get_job(job_id)
        await gather([job_events, *(functools.partial(pod_events, p.pod_id) for p in job.pods if p.pod_id)])
        return merge_events(collected, MAX_EVENTS)

    # --------------------------------------------------------------- PaiStudio logs/events

    async def _tail_pages(
        self,
        fetch: Callable[[Mapping[str, QueryValue]], Awaitable[dict[str, Any]]],
        query: Mapping[str, QueryValue],
        items_key: str,
        bound: int,
        page_size: int,
    ) -> tuple[list[str], int | None]:
        """The last ``bound`` items of a PaiStudio page-numbered listing, oldest first, and its total.

        Page 1 gives ``TotalCount`` (a string); the pages holding the tail are then read concurrently, so
        a long log costs about ``bound / page_size`` calls, not the whole log. A server that caps
        ``PageSize`` (a full-looking first page shorter than asked, below the total) is paged at its size."""

        async def page(number: int, size: int) -> tuple[list[str], int | None]:
            data = await fetch({**query, "PageNumber": number, "PageSize": size})
            return [str(i) for i in data.get(items_key) or []], studio.as_int(data.get("TotalCount"))

        first, total = await page(1, page_size)
        if total is None:  # no total: read on until a short page, keeping the tail
            items, last, number = list(first), first, 1
            while len(last) >= page_size and number < MAX_PAGES:
                number += 1
                last, _ = await page(number, page_size)
                items = (items + last)[-bound:]
            return items[-bound:], None
        if not first or total <= len(first):
            return first[-bound:], total
        size = len(first)
        pages = math.ceil(total / size)
        wanted = range(max(1, pages - math.ceil(bound / size)), pages + 1)[-MAX_PAGES:]
        results: dict[int, list[str]] = {1: first} if 1 in wanted else {}
        limiter = anyio.CapacityLimiter(MAX_CONCURRENCY)

        async def one(number: int) -> None:
            async with limiter:
                results[number] = (await page(number, size))[0]

        await gather([functools.partial(one, n) for n in wanted if n not in results])
        items = [line for n in sorted(results) for line in results[n]]
        return items[-bound:], total

    async def _training_pod_logs(
        self,
        job_id: str,
        instance_id: str,
        *,
        max_lines: int | None,
        since: datetime | None,
        until: datetime | None,
    ) -> LogPage:
        """PaiStudio ListTrainingJobLogs for one instance: its last ``max_lines`` lines (default 2000)."""
        bound = max_lines or DEFAULT_MAX_LOG_LINES
        query: dict[str, QueryValue] = {
            "InstanceId": instance_id,
            "StartTime": studio.studio_time(since),
            "EndTime": studio.studio_time(until, ceil=True),
        }

        async def fetch(q: Mapping[str, QueryValue]) -> dict[str, Any]:
            return await self.api.list_training_job_logs(job_id, q)

        try:
            lines, total = await self._tail_pages(fetch, query, "Logs", bound, STUDIO_LOG_PAGE_SIZE)
        except ProviderError as exc:
            if exc.code == INSTANCE_NOT_FOUND:  # the instance has not written anything yet
                return LogPage(pod_id=instance_id, lines=[])
            raise
        truncated = total > len(lines) if total is not None else len(lines) >= bound
        return LogPage(pod_id=instance_id, lines=lines, truncated=truncated)

    async def _training_events(self, job_id: str, instance_id: str | None) -> list[Event]:
        """ListTrainingJobEvents and every instance's ListTrainingJobInstanceEvents, merged."""
        collected: list[Event] = []
        limiter = anyio.CapacityLimiter(MAX_CONCURRENCY)

        async def job_events() -> None:
            async def fetch(q: Mapping[str, QueryValue]) -> dict[str, Any]:
                return await self.api.list_training_job_events(job_id, q)

            async with limiter:
                lines, _ = await self._tail_pages(fetch, {}, "Events", MAX_EVENTS, STUDIO_EVENT_PAGE_SIZE)
            collected.extend(parse_event(line, job_id) for line in lines)

        async def instance_events(iid: str, missing_ok: bool) -> None:
            async def fetch(q: Mapping[str, QueryValue]) -> dict[str, Any]:
                return await self.api.list_training_job_instance_events(job_id, iid, q)

            async with limiter:
                try:
                    lines, _ = await self._tail_pages(fetch, {}, "Events", MAX_EVENTS, STUDIO_EVENT_PAGE_SIZE)
                except NotFound:
                    if not missing_ok:
                        raise
                    return
            collected.extend(parse_event(line, iid) for line in lines)

        if instance_id is not None:
            await instance_events(instance_id, missing_ok=False)
            return merge_events(collected, MAX_EVENTS)
        job = await self.get_job(job_id)
        await gather([job_events, *(functools.partial(instance_events, p.pod_id, True) for p in job.pods if p.pod_id)])
        return merge_events(collected, MAX_EVENTS)

    # ------------------------------------------------------------------------------ metrics

    async def metrics(
        self, job_id: str, metric: MetricKind, *, since: datetime | None = None, step_seconds: int | None = None
    ) -> list[PodMetricSeries]:
        """One resource metric per pod, oldest point first, at most 500 points a series.

        DLC GetJobMetrics (``Time`` epoch ms) or PaiStudio ListTrainingJobInstanceMetrics (``Time`` ISO)
        with ``MetricType`` = CpuCoreUsage | MemoryUsage | GpuCoreUsage | GpuMemoryUsage. Without
        ``since`` the window is the job's own run (GetJob: running/creation time to its finish or now;
        DLC's default would be the last hour only); a job that never started has no series. Values are
        passed through as the platform reports them (% of the pod's allocation)."""
        check_job_id(job_id)
        metric_type = studio.metric_type(metric)
        if step_seconds is not None and step_seconds < 1:
            raise InvalidRequest(f"step must be at least 1 second, got {step_seconds}")
        end = self._now()
        start = since
        if start is None:
            job = await self.get_job(job_id)
            start = job.started_at or job.created_at
            if start is None or (job.status in (JobStatus.CREATING, JobStatus.QUEUING) and not job.started_at):
                return []
            if job.finished_at is not None:
                end = min(end, job.finished_at + timedelta(minutes=1))
        if start >= end:
            return []
        if is_training_job(job_id):
            data = await self.api.list_training_job_instance_metrics(
                job_id,
                {
                    "MetricType": metric_type,
                    "StartTime": studio.studio_time(start),
                    "EndTime": studio.studio_time(end, ceil=True),
                    "TimeStep": studio.studio_time_step(step_seconds, start, end),
                },
            )
            raw = [
                (m.get("InstanceId"), m.get("Metrics"))
                for m in data.get("InstanceMetrics") or []
                if isinstance(m, dict)
            ]
            epoch_ms = False
        else:
            data = await self.api.get_job_metrics(
                job_id,
                {
                    "MetricType": metric_type,
                    "StartTime": iso(start),
                    "EndTime": iso(end),
                    "TimeStep": studio.dlc_time_step(step_seconds, start, end),
                },
            )
            raw = [(m.get("PodId"), m.get("Metrics")) for m in data.get("PodMetrics") or [] if isinstance(m, dict)]
            epoch_ms = True
        return [
            PodMetricSeries(
                pod_id=str(pod), metric=metric, points=studio.metric_points(points or [], epoch_ms=epoch_ms)
            )
            for pod, points in raw
            if pod
        ]

    # ------------------------------------------------------------------------ sanity checks

    async def _dlc_job_of(self, training_job_id: str) -> str | None:
        """The PAI-DLC job that runs a PaiStudio training job (ListTrainingJobs' ``DlcJobId``)."""
        data = await self.api.list_training_jobs(
            {
                "TrainingJobId": training_job_id,
                "StartTime": studio.studio_time(self._now() - LOOKBACK),  # the API's default is 7 days
                "PageNumber": 1,
                "PageSize": 10,
            }
        )
        for item in data.get("TrainingJobs") or []:
            if isinstance(item, dict) and item.get("TrainingJobId") == training_job_id:
                return _str(item.get("DlcJobId"))
        raise NotFound(f"PaiStudio has no training job {training_job_id!r} (ListTrainingJobs found none)")

    async def sanity_checks(self, job_id: str) -> list[SanityCheckResult]:
        """DLC ListJobSanityCheckResults (Order=asc), the list of lists flattened, ordered by check number
        and start; empty when the job ran without sanity checks. A ``train…`` id is looked up through the
        DLC job that runs it."""
        check_job_id(job_id)
        dlc_id = await self._dlc_job_of(job_id) if is_training_job(job_id) else job_id
        if not dlc_id:
            return []
        data = await self.api.list_job_sanity_check_results(dlc_id, {"Order": "asc"})
        results = [studio.sanity_result_from(item) for item in studio.sanity_items(data)]
        results.sort(key=lambda r: (r.check_number, r.started_at or datetime.min.replace(tzinfo=UTC)))
        return results[-MAX_SANITY_RESULTS:]

    async def sanity_check(self, job_id: str, check_number: int, phase: str | None = None) -> list[SanityCheckResult]:
        """DLC GetJobSanityCheckResult: the phases of one check run (``phase`` narrows it to one)."""
        check_job_id(job_id)
        if check_number < 0:
            raise InvalidRequest(f"check_number must be 0 or more, got {check_number}")
        dlc_id = await self._dlc_job_of(job_id) if is_training_job(job_id) else job_id
        if not dlc_id:
            return []
        query: dict[str, QueryValue] = {"SanityCheckNumber": check_number, "SanityCheckPhase": phase}
        data = await self.api.get_job_sanity_check_result(dlc_id, query)
        return [studio.sanity_result_from(item) for item in studio.sanity_items(data)]

    # ------------------------------------------------------------------------ workload info

    async def workload_info(self, job_id: str) -> WorkloadInfo:
        """Seed 000's view. A job on a resource quota (GetJob ``ResourceId`` / GetTrainingJob
        ``ComputeResource.ResourceId``) is looked up with PaiStudio ListQuotaWorkloads; a job on public
        resources is not in any queue, and says so. ``unavailable`` names the seed fields left empty."""
        check_job_id(job_id)
        if is_training_job(job_id):
            raw = await self.api.get_training_job(job_id)
            job = studio.training_job_from(raw, self.name)
            compute = studio.as_dict(raw.get("ComputeResource"))
            source = "PaiStudio GetTrainingJob"
            base: dict[str, Any] = {
                "workload_type": "TrainingJob",
                "workspace_name": None,
                "tenant_id": None,
                "quota_name": _str(compute.get("ResourceName")),
            }
        else:
            raw = await self.api.get_job(job_id, need_detail=True)
            job = job_from(raw, self.name)
            source = "PAI-DLC GetJob"
            base = {
                "workload_type": "dlc",
                "workspace_name": _str(raw.get("WorkspaceName")),
                "tenant_id": _str(raw.get("TenantId")),
                "quota_name": None,
            }
        fields: dict[str, Any] = {
            "job_id": job.job_id or job_id,
            "name": job.name or None,
            "workspace_id": _str(raw.get("WorkspaceId")),
            "status": studio.seed_status(job.status),
            "created_at": job.created_at,
            "user_id": _str(raw.get("UserId")),
            "user_name": None,
            "priority": job.priority,
            "is_scheduled": studio.scheduled_from_status(job.status),
            **base,
        }
        quota = job.resource_id
        if not quota:
            info = WorkloadInfo(
                **fields, in_quota=False, source=source, note=f"{job.job_id or job_id} {studio.PUBLIC_NOTE}"
            )
            return self._with_unavailable(info, public=True)
        data = await self.api.list_quota_workloads(
            quota, {"WorkloadIds": job_id, "WithHistoricalData": True, "PageNumber": 1, "PageSize": 10}
        )
        source = f"PaiStudio ListQuotaWorkloads + {source}"
        entry = studio.queue_entry(data, job_id)
        if entry is None:
            note = (
                f"in resource quota {quota}, but ListQuotaWorkloads lists no queue entry for it "
                f"(job status {job.raw_status})"
            )
            info = WorkloadInfo(**fields, in_quota=True, quota_id=quota, source=source, note=note)
            return self._with_unavailable(info, public=False)
        scheduled = studio.queue_scheduled(entry)
        if scheduled is None:
            scheduled = studio.scheduled_from_status(job.status)
        fields.update(
            {
                "name": _str(entry.get("WorkloadName")) or fields["name"],
                "workload_type": _str(entry.get("WorkloadType")) or fields["workload_type"],
                "workspace_id": _str(entry.get("WorkspaceId")) or fields["workspace_id"],
                "workspace_name": _str(entry.get("WorkspaceName")) or fields["workspace_name"],
                "created_at": studio.parse_time(entry.get("GmtCreatedTime")) or fields["created_at"],
                "user_id": _str(entry.get("UserId")) or fields["user_id"],
                "user_name": _str(entry.get("UserName")),
                "priority": studio.as_int(entry.get("Priority")) if entry.get("Priority") is not None else job.priority,
                "is_scheduled": scheduled,
            }
        )
        info = WorkloadInfo(
            **fields,
            in_quota=True,
            enqueued_at=studio.parse_time(entry.get("GmtEnqueuedTime")),
            queue_position=None if scheduled else studio.as_int(entry.get("Position")),
            quota_id=_str(entry.get("QuotaId")) or quota,
            queue_metas=[studio.queue_meta(entry, quota)],
            source=source,
            note=studio.queue_note(entry, quota, scheduled),
        )
        return self._with_unavailable(info, public=False)

    @staticmethod
    def _with_unavailable(info: WorkloadInfo, *, public: bool) -> WorkloadInfo:
        missing = [
            seed
            for seed, attr in studio.SEED_WORKLOAD_FIELDS
            if getattr(info, attr) in (None, "", [])
            and not (public and attr == "queue_metas")  # not queued at all: nothing is missing
        ]
        return info.model_copy(update={"unavailable": missing})

    # --------------------------------------------------------------------------- error info

    async def error_info(self, job_id: str) -> str | None:
        """PaiStudio GetTrainingJobErrorInfo (``Code: Message (AdditionalInfo)``) for ``train…`` ids;
        DLC GetJob ``ReasonCode: ReasonMessage`` otherwise. None when the platform says nothing."""
        check_job_id(job_id)
        if is_training_job(job_id):
            return studio.error_info_line(await self.api.get_training_job_error_info(job_id))
        data = await self.api.get_job(job_id, need_detail=True)
        code, message = _str(data.get("ReasonCode")), _str(data.get("ReasonMessage"))
        line = studio.one_line(f"{code}:" if code and message else code, message)
        return line or None

    # ------------------------------------------------------------------------------- labels

    @staticmethod
    def _check_labels(labels: Mapping[str, str]) -> None:
        bad = [
            k
            for k in labels
            if not k
            or len(k) > MAX_TAG_KEY
            or k.lower().startswith(("aliyun", "acs:"))
            or "http://" in k
            or "https://" in k
        ]
        if bad:
            raise InvalidRequest(
                f"label keys {', '.join(map(repr, bad))} are not allowed by PAI: 1-{MAX_TAG_KEY} characters, not "
                "starting with 'aliyun' or 'acs:', without 'http://' or 'https://'"
            )

    async def label_job(self, job_id: str, labels: dict[str, str]) -> Job:
        """DLC TagResources (ResourceType Job), or PaiStudio UpdateTrainingJobLabels for ``train…`` ids;
        then GetJob / GetTrainingJob. The returned tags are the job's as GetJob reports them
        (``Settings.Tags``) with ``labels`` laid over them: DLC 2020-12-03 has no ListTagResources to
        read resource tags apart, and GetJob may lag a moment behind TagResources."""
        check_job_id(job_id)
        if not labels:
            return await self.get_job(job_id)
        self._check_labels(labels)
        if is_training_job(job_id):
            await self.api.update_training_job_labels(job_id, labels)
        else:
            items = list(labels.items())
            for start in range(0, len(items), MAX_TAGS_PER_CALL):
                chunk = items[start : start + MAX_TAGS_PER_CALL]
                await self.api.tag_resources(
                    {
                        "RegionId": self.region,
                        "ResourceType": TAG_RESOURCE_TYPE,
                        "ResourceId": [job_id],
                        "Tag": [{"Key": k, "Value": v} for k, v in chunk],
                    }
                )
        job = await self.get_job(job_id)
        return job.model_copy(update={"tags": {**job.tags, **labels}})

    async def unlabel_job(self, job_id: str, keys: list[str]) -> Job:
        """DLC UntagResources (``ResourceId``/``TagKey`` as JSON strings in the query), or PaiStudio
        DeleteTrainingJobLabels (``Keys`` a comma list); then the job, without ``keys`` in its tags."""
        check_job_id(job_id)
        wanted = list(dict.fromkeys(k for k in keys if k))
        if not wanted:
            return await self.get_job(job_id)
        if is_training_job(job_id):
            await self.api.delete_training_job_labels(job_id, wanted)
        else:
            for start in range(0, len(wanted), MAX_TAGS_PER_CALL):
                await self.api.untag_resources(
                    {
                        "ResourceType": TAG_RESOURCE_TYPE,
                        "ResourceId": [job_id],
                        "TagKey": wanted[start : start + MAX_TAGS_PER_CALL],
                    }
                )
        job = await self.get_job(job_id)
        return job.model_copy(update={"tags": {k: v for k, v in job.tags.items() if k not in wanted}})

    # --------------------------------------------------------------------------------- spot

    async def spot_price_history(self, instance_type: str, hours: float) -> list[SpotPricePoint]:
        """PaiStudio GetSpotPriceHistory over the last ``hours`` (at most 7 days, the API's limit), oldest
        first, at most MAX_SPOT_POINTS points (evenly thinned, the newest kept).

        The API reports ``SpotDiscount`` — the fraction of the on-demand price — not a price, so each
        point's price is ECS DescribePrice's pay-as-you-go price × the discount (a discount above 1 is
        read as a percentage). No history (a type without spot) → an empty list."""
        name = (instance_type or "").strip()
        if not name or any(c.isspace() or c in "/?#" for c in name):
            raise InvalidRequest(f"{instance_type!r} is not an instance type")
        if not hours > 0:
            raise InvalidRequest(f"hours must be > 0, got {hours:g}")
        if hours > MAX_SPOT_HOURS:
            raise InvalidRequest(f"PAI keeps spot prices for at most {MAX_SPOT_HOURS} hours (7 days), not {hours:g}")
        end = self._now()
        start = end - timedelta(hours=hours)
        query: dict[str, QueryValue] = {"StartTime": iso(start), "EndTime": iso(end), "Order": "asc"}
        raw: list[dict[str, Any]] = []
        for number in range(1, SPOT_MAX_PAGES + 1):
            data = await self.api.get_spot_price_history(
                name, {**query, "PageNumber": number, "PageSize": SPOT_PAGE_SIZE}
            )
            items = [i for i in data.get("SpotPriceHistory") or [] if isinstance(i, dict)]
            raw.extend(items)
            total = _int(data.get("TotalCount"))
            # ECS types ignore the paging and answer everything at once; Lingjun types page.
            if total is None or len(raw) >= total or len(items) < SPOT_PAGE_SIZE:
                break
        discounts: list[tuple[datetime, float, str | None]] = []
        for item in raw:
            when = studio.parse_time(item.get("Timestamp"))
            discount = studio.as_float(item.get("SpotDiscount"))
            if when is None or discount is None or discount <= 0:
                continue
            discounts.append((when, discount / 100.0 if discount > 1 else discount, _str(item.get("ZoneId"))))
        if not discounts:
            return []
        on_demand = self._prices.get(name) or await self.price(name)
        if on_demand.per_worker_hourly is None:
            return []  # no on-demand price to apply the discounts to
        points = sorted(
            (
                SpotPricePoint(time=when, price=round(on_demand.per_worker_hourly * d, 6), zone=zone)
                for when, d, zone in discounts
            ),
            key=lambda p: (p.time, p.zone or ""),
        )
        return downsample_spot(points)

    # ------------------------------------------------------------------------------ outputs

    async def output_models(self, job_id: str) -> OutputModels:
        """PaiStudio ListTrainingJobOutputModels for ``train…`` ids. PAI-DLC keeps no list of outputs:
        the note names the storage mounted into the job (GetJob ``DataSources``: MountPath ← Uri)."""
        check_job_id(job_id)
        if is_training_job(job_id):
            return studio.output_models_from(job_id, await self.api.list_training_job_output_models(job_id))
        data = await self.api.get_job(job_id, need_detail=True)
        mounts = [
            f"{d.get('MountPath') or '?'} ← {d.get('Uri') or d.get('DataSourceId') or '?'}"
            for d in data.get("DataSources") or []
            if isinstance(d, dict) and (d.get("MountPath") or d.get("Uri") or d.get("DataSourceId"))
        ]
        note = (
            "PAI-DLC keeps no list of outputs: they are in the storage mounted into the job (DataSources "
            "MountPath / OSS); read the job's command and data sources to find them."
        )
        note += (" Mounted: " + "; ".join(mounts) + ".") if mounts else " This job mounts no data sources."
        return OutputModels(job_id=job_id, models=[], total=0, truncated=False, note=note)

    # ---------------------------------------------------------------------------- templates

    def template_backend(self) -> TemplateBackend | None:
        """PAI-DLC's own job templates (:class:`~.templates.DlcTemplates`) in the provider's workspace."""
        if self._templates is None:
            self._templates = templates.DlcTemplates(self.api, self.workspace_id)
        return self._templates

    # ------------------------------------------------------------------- PaiStudio listing

    async def list_training_jobs(
        self,
        status: JobStatus | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """PaiStudio ListTrainingJobs (``train…`` jobs), newest first, at most TRAINING_LIST_PAGES pages;
        ``Labels`` filters server-side (a JSON string), verified on each job."""
        return (await self._training_jobs(status, tags, created_after, limit))[0]

    async def _training_jobs(
        self,
        status: JobStatus | None,
        tags: dict[str, str] | None,
        created_after: datetime | None,
        limit: int,
    ) -> tuple[list[Job], set[str]]:
        """The training jobs and the ``DlcJobId`` of each (the PAI-DLC job that runs it)."""
        workspace = await self.workspace_id(create=False)
        query: dict[str, QueryValue] = {
            "WorkspaceId": workspace,
            "StartTime": studio.studio_time(created_after or (self._now() - LOOKBACK)),
            "SortBy": "GmtCreateTime",
            "Order": "desc",
            "Labels": dict(tags) if tags else None,
        }
        jobs: list[Job] = []
        dlc_ids: set[str] = set()
        size = min(JOB_PAGE_SIZE, max(1, limit))
        for number in range(1, TRAINING_LIST_PAGES + 1):
            data = await self.api.list_training_jobs({**query, "PageNumber": number, "PageSize": size})
            items = [i for i in data.get("TrainingJobs") or [] if isinstance(i, dict) and i.get("TrainingJobId")]
            for item in items:
                if item.get("DlcJobId"):
                    dlc_ids.add(str(item["DlcJobId"]))
                job = studio.training_job_from(item, self.name)
                if status is not None and job.status != status:
                    continue
                if created_after is not None and job.created_at is not None and job.created_at < created_after:
                    continue
                if tags and any(job.tags.get(k) != v for k, v in tags.items()):
                    continue
                jobs.append(job)
            total = _int(data.get("TotalCount"))
            if len(items) < size or (total is not None and number * size >= total) or len(jobs) >= limit:
                break
        return jobs[:limit], dlc_ids
