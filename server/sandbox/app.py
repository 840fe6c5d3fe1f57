"""The sandbox: one ASGI app (Starlette) that answers PAI-DLC, AIWorkspace, ECS and PaiStudio calls.

Routing is by the ``x-acs-version`` / ``x-acs-action`` headers, so the four products share one port
and all four endpoint overrides of the ``pai`` provider can point at it:

============  ==========  ===============================================  =================
version       product     actions                                          style
============  ==========  ===============================================  =================
2020-12-03    PAI-DLC     CreateJob GetJob ListJobs StopJob DeleteJob      ROA (path + query/JSON)
                          GetPodLogs GetPodEvents GetJobEvents ListEcsSpecs
                          GetJobMetrics ListJobSanityCheckResults
                          GetJobSanityCheckResult
                          CreateJobTemplate UpdateJobTemplate
                          ListJobTemplates GetJobTemplate
                          DeleteJobTemplate SetJobTemplateDefaultVersion
                          TagResources UntagResources ListTagResources
2021-02-04    AIWorkspace ListImages ListWorkspaces CreateWorkspace        ROA
                          GetWorkspace
2014-05-26    ECS         DescribePrice                                    RPC (``POST /``, query)
2022-01-12    PaiStudio   CreateTrainingJob GetTrainingJob                 ROA
                          ListTrainingJobs StopTrainingJob
                          DeleteTrainingJob ListTrainingJobEvents
                          ListTrainingJobInstanceEvents ListTrainingJobLogs
                          ListTrainingJobInstanceMetrics
                          GetTrainingJobErrorInfo
                          GetTrainingJobLatestMetrics ListQuotaWorkloads
                          UpdateTrainingJobLabels DeleteTrainingJobLabels
                          ListTrainingJobOutputModels GetSpotPriceHistory
                          TagResources UntagResources ListTagResources
============  ==========  ===============================================  =================

Job templates are described in ``templates.py``, resource tags in ``tags.py``, spot prices in ``spot.py``,
training job labels, hyperparameters and output models in ``studio.py``.

The sanity-check APIs answer ``RequestID`` (capital ID) instead of ``RequestId``, as the real ones do.
Metrics and sanity checks are described in ``observe.py``, training jobs in ``studio.py``, quotas and
their queues in ``quotas.py``. A job runs with the executor's resource accounting (each pod holds its
spec's vCPUs and memory, against a capacity too large to ever queue on) so that its CPU and memory
samples are in % of what the pod was allocated; a job created with ``Settings.EnableSanityCheck=true``
runs the executor's pre-flight checks first (status ``SanityChecking``); ``Priority`` orders a quota's
queue and is reported by GetJob, ListJobs and ListQuotaWorkloads.

A launched job's pods are ``bash -c <UserCommand>`` (or the role's ``JobSpecs[].UserCommand``) in a
shared working directory under the state directory, with the job's ``Envs`` plus PyTorchJob-style
``RANK`` (leader first), ``WORLD_SIZE``, ``LOCAL_RANK=0``, ``MASTER_ADDR=127.0.0.1``, a free
``MASTER_PORT``, ``PYTHONUNBUFFERED=1``, ``CUDA_VISIBLE_DEVICES=""`` (GPU specs run on the CPU; a job
may override it in Envs) and ``PATH`` starting with this Python's directory. ``JobMaxRunningTimeMinutes``
is enforced (× ``minute_seconds``). Images are recorded, not pulled; ThirdpartyLibs are not installed
(job events say both).

GetPodLogs honours MaxLines and, through the executor's log time index, StartTime/EndTime; ListJobs
filters by WorkspaceId, Status, JobType, JobId(s), DisplayName (substring, any case), ResourceId, TemplateId,
Tags (JSON map) and StartTime/EndTime (default: the last 7 days, as the API does), sorts by SortBy /
Order and pages by PageNumber / PageSize.

Every call is checked in this order: signature (``auth.py``), the action and its method/path (404
``InvalidAction.NotFound`` otherwise), request faults (``faults.py``), the handler (the API's own
validation). Jobs run through the local provider's :class:`~server.providers.local.executor.Executor`
in ``<state_dir>`` (see ``jobs.py`` for the timeline). A scheduler task, started with the app's lifespan,
launches jobs whose queuing time is over; without a lifespan (e.g. ``httpx.ASGITransport``) calls do it.

Unsigned admin routes, loopback clients only: ``GET /_sandbox/info``; ``GET``/``POST``/``DELETE``
``/_sandbox/faults`` (POST a fault spec ``{"kind": "throttle", "count": 3}``, a list of them, or
``{"faults": [...]}``, as ``application/json``; DELETE takes ``?kind=`` or a job fault's ``?id=``).
``/_sandbox/info`` also lists the resource quotas.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cloudjobs_mcp.server.errors import CloudJobsError, NotFound
from cloudjobs_mcp.server.providers.local.executor import Capacity, Executor, PodSpec, Resources, RunState, SanityCheck
from cloudjobs_mcp.server.providers.local.sanity import SanityOptions
from cloudjobs_mcp.server.providers.pai import endpoints, signing
from cloudjobs_mcp.server.sandbox import catalog, observe, spot
from cloudjobs_mcp.server.sandbox.auth import Authenticator
from cloudjobs_mcp.server.sandbox.common import in_background
from cloudjobs_mcp.server.sandbox.errors import (
    ApiError,
    error_body,
    invalid,
    json_response,
    missing,
    new_request_id,
    not_found_action,
)
from cloudjobs_mcp.server.sandbox.faults import JOB_FAULTS, Call, Faults, JobFault, job_faults
from cloudjobs_mcp.server.sandbox.jobs import (
    SANITY_PHASES,
    JobRecord,
    JobView,
    apply_sanity_checks,
    apply_stop_before_launch,
    base_view,
    event_line,
    get_job_body,
    list_item,
    new_job_id,
    parse_iso,
    plan_pods,
    pod_uid,
    unknown_quota,
    validate_create,
)
from cloudjobs_mcp.server.sandbox.pods import pod_env
from cloudjobs_mcp.server.sandbox.settings import AccessKey, SandboxSettings, generate_access_key
from cloudjobs_mcp.server.sandbox.store import Store, TrainingJob, Workspace, workspace_item
from cloudjobs_mcp.server.sandbox.studio import (
    DEFAULT_CHANNEL,
    HYPERPARAMETERS_FILE,
    StudioApi,
    hp_env,
    new_training_job_id,
    validate_training,
)
from cloudjobs_mcp.server.sandbox.tags import TagApi
from cloudjobs_mcp.server.sandbox.templates import TemplateApi

logger = logging.getLogger("cloudjobs.sandbox")

PRODUCTS = {p.version: p for p in (endpoints.DLC, endpoints.AIWORKSPACE, endpoints.ECS, endpoints.PAISTUDIO)}
# What each pod's resource accounting is measured against: never a constraint (the sandbox does not queue
# on this machine's capacity; quotas queue through faults).
UNLIMITED = Capacity(cpus=1e9, memory_gb=1e12)
DEFAULT_TRAINING_IMAGE = "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/pytorch:2.3-cpu-py311-ubuntu22.04"
LIST_JOBS_WINDOW = 7 * 24 * 3600.0  # ListJobs' default StartTime: 7 days ago
WORKSPACE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,22}$")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class CallRecord:
    """One answered API call (``Sandbox.calls``)."""

    time: float
    product: str
    action: str
    method: str
    path: str
    status: int
    code: str  # "" on success
    body: dict[str, Any]  # the JSON the sandbox answered


@dataclass
class Ctx:
    """What a handler gets."""

    key: AccessKey
    query: dict[str, str]
    params: dict[str, str]
    raw_body: bytes
    now: float

    def json(self) -> Any:
        if not self.raw_body:
            return {}
        try:
            return json.loads(self.raw_body)
        except ValueError:
            raise invalid("body", "the request body is not valid JSON") from None

    def flag(self, name: str, default: bool) -> bool:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise invalid(name, f"{raw!r} is not a boolean (true or false)")

    def number(self, name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid(name, f"{raw!r} is not an integer") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise invalid(name, f"must be {bounds}, got {value}")
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str | None = None) -> str | None:
        raw = self.query.get(name) or default
        if raw is None:
            return None
        for value in allowed:
            if raw.lower() == value.lower():
                return value
        raise invalid(name, f"{raw!r} is not one of {', '.join(allowed)}")


Handler = Callable[[Ctx], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Api:
    product: str
    action: str
    methods: tuple[str, ...]
    pattern: re.Pattern[str]
    handler: Handler = field(compare=False)
    request_id_key: str = "RequestId"  # "RequestID" for DLC's sanity-check APIs


def _pattern(template: str) -> re.Pattern[str]:
    """``/api/v1/jobs/{JobId}`` → a regex on the raw (encoded) path with named groups."""
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _page(items: list[Any], page: int, size: int) -> list[Any]:
    return items[(page - 1) * size : page * size]


class _AlreadyHandled(Exception):
    """Raised inside a launch transaction: the job was stopped or launched meanwhile."""


class Sandbox:
    """One sandbox instance: its settings, credentials, faults, state and ASGI ``app``."""

    def __init__(self, settings: SandboxSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.auth = Authenticator(
            settings.access_keys or (generate_access_key(),),
            window_seconds=settings.date_window_seconds,
            max_nonces=settings.max_nonces,
            clock=clock,
        )
        self.faults = Faults()
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.executor = Executor(settings.state_dir)
        self.store = Store(self.executor.db)
        for name in settings.workspaces:
            self.store.create_workspace(name, name, "Created by the PAI sandbox", ["prod"])
        self.calls: deque[CallRecord] = deque(maxlen=settings.call_history)
        self._scheduler_running = False
        self._wake_event = anyio.Event()
        self._apis: dict[tuple[str, str], Api] = {}
        self.studio = StudioApi(self)
        self.templates = TemplateApi(self)
        self.tags = TagApi(self)
        self._register_apis()
        self.app = Starlette(
            routes=[
                Route("/_sandbox/info", self._admin_info, methods=["GET"]),
                Route("/_sandbox/faults", self._admin_faults, methods=["GET", "POST", "DELETE"]),
                Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            ],
            lifespan=self._lifespan,
        )
        self.app.state.sandbox = self

    # ------------------------------------------------------------------------------------ public

    @property
    def access_keys(self) -> list[AccessKey]:
        return self.auth.keys

    @property
    def access_key(self) -> AccessKey:
        """The first configured (or the generated) credential."""
        return self.auth.keys[0]

    def add_access_key(self, key: AccessKey) -> AccessKey:
        self.auth.add(key)
        return key

    def host_id(self, product: str) -> str:
        """The real service's host for ``product`` in this region (the error bodies' HostId)."""
        prod = endpoints.PRODUCTS.get(product)
        if prod is None:
            return f"pai-dlc.{self.settings.region}.aliyuncs.com"
        return endpoints.resolve(prod, self.settings.region).host

    def create_workspace(self, name: str) -> str:
        """Create a workspace (synchronous; for tests and rehearsal scripts); returns its id."""
        ws = self.store.create_workspace(name, name, "Created by the PAI sandbox", ["prod"])
        if ws is None:
            found = next(w for w in self.store.workspaces() if w.name == name)
            return found.workspace_id
        return ws.workspace_id

    def create_training_job(
        self,
        name: str,
        command: str | Sequence[str],
        *,
        workspace_id: str | None = None,
        ecs_spec: str | None = "ecs.c6.large",
        ecs_count: int = 1,
        job_type: str = "PyTorchJob",
        image: str = DEFAULT_TRAINING_IMAGE,
        envs: Mapping[str, str] | None = None,
        resource_id: str | None = None,
        instance_spec: Mapping[str, str] | None = None,
        priority: int | None = None,
        max_running_seconds: int | None = None,
        sanity_check: bool = False,
        sanity_check_args: str | None = None,
        labels: Mapping[str, str] | None = None,
        metric_definitions: Sequence[Mapping[str, str]] | None = None,
        use_spot: bool | None = None,
    ) -> str:
        """Create a PaiStudio training job (synchronous; for tests and rehearsal scripts), as CreateTrainingJob
        would; returns its ``train…`` id. ``command`` is ``AlgorithmSpec.Command`` (a string becomes
        ``["/bin/sh", "-c", command]``); ``resource_id`` puts it on a quota (``instance_spec`` defaults to the
        figures of ``ecs_spec``); the workspace defaults to the first one (created when there is none)."""
        compute: dict[str, Any] = {}
        if resource_id:
            spec = catalog.spec_by_type(ecs_spec or "")
            default = (
                {"CPU": str(spec.cpu), "Memory": f"{spec.memory_gib}Gi"} if spec else {"CPU": "2", "Memory": "4Gi"}
            )
            if spec and spec.gpu:
                default.update(GPU=str(spec.gpu), GPUType=spec.gpu_type)
            compute = {
                "ResourceId": resource_id,
                "InstanceCount": ecs_count,
                "InstanceSpec": dict(instance_spec or default),
            }
        else:
            compute = {"EcsSpec": ecs_spec, "EcsCount": ecs_count}
        if use_spot is not None:
            compute["UseSpotInstance"] = use_spot
        settings: dict[str, Any] = {}
        if sanity_check:
            settings["EnableSanityCheck"] = True
        if sanity_check_args:
            settings["SanityCheckArgs"] = sanity_check_args
        body: dict[str, Any] = {
            "TrainingJobName": name,
            "WorkspaceId": workspace_id or self._default_workspace(),
            "AlgorithmSpec": {
                "Image": image,
                "Command": ["/bin/sh", "-c", command] if isinstance(command, str) else list(command),
                "JobType": job_type,
                **({"MetricDefinitions": [dict(d) for d in metric_definitions]} if metric_definitions else {}),
            },
            "ComputeResource": compute,
            "Environments": dict(envs or {}),
            "Labels": [{"Key": k, "Value": v} for k, v in (labels or {}).items()],
            "Settings": settings,
        }
        if priority is not None:
            body["Priority"] = priority
        if max_running_seconds is not None:
            body["Scheduler"] = {"MaxRunningTimeInSeconds": max_running_seconds}
        return self.insert_training_job(body, self.clock())

    def run_files_dir(self, job_id: str) -> Path:
        """The sandbox's own files of a job: ``<state_dir>/sandbox-runs/<job id>/`` (outputs/, config/)."""
        return self.settings.state_dir / "sandbox-runs" / job_id

    def outputs_dir(self, job_id: str) -> Path:
        """Where a job's pods write their outputs (``CLOUDJOBS_OUTPUT_DIR``)."""
        return self.run_files_dir(job_id) / "outputs"

    def _default_workspace(self) -> str:
        existing = self.store.workspaces()
        return existing[0].workspace_id if existing else self.create_workspace("pai_sandbox")

    async def job_view(self, job_id: str) -> JobView | None:
        """The job as the API would report it now (None: no such job)."""
        return await anyio.to_thread.run_sync(self._load_view, job_id)

    async def stop_all(self, wait_seconds: float = 10.0) -> None:
        """Stop every unfinished job and wait for them (test teardown; the CLI leaves jobs running)."""

        def stop() -> None:
            now = self.clock()
            for record in self.store.jobs():
                _, launched = self.store.request_stop(record.job_id, now)
                if launched:
                    try:
                        self.executor.stop(record.job_id)
                    except NotFound:
                        pass
            deadline = time.monotonic() + wait_seconds
            for record in self.store.jobs():
                if record.launched_at is not None:
                    try:
                        self.executor.wait(record.job_id, max(0.0, deadline - time.monotonic()))
                    except NotFound:
                        pass

        await anyio.to_thread.run_sync(stop)

    # ---------------------------------------------------------------------------------- lifespan

    def _lifespan(self, app: Starlette) -> AbstractAsyncContextManager[None]:
        return in_background(self._scheduler)

    async def _scheduler(self) -> None:
        self._scheduler_running = True
        try:
            while True:
                try:
                    await self.launch_due()
                    await self._ticks()
                except Exception:  # keep scheduling; the next pass retries
                    logger.exception("sandbox scheduler pass failed")
                self._wake_event = anyio.Event()
                with anyio.move_on_after(self.settings.poll_seconds):
                    await self._wake_event.wait()
        finally:
            self._scheduler_running = False

    def _wake(self) -> None:
        self._wake_event.set()

    async def launch_due(self) -> None:
        """Start the pods of every job whose queuing time is over (unless a fault holds it)."""
        due = await anyio.to_thread.run_sync(self.store.due, self.clock())
        for record in due:
            if self.faults.holds(record):
                continue
            await anyio.to_thread.run_sync(self._launch, record)

    def _launch(self, record: JobRecord) -> None:
        port = str(free_port())
        envs = {**self._file_envs(record), **dict(record.body.get("Envs") or {})}
        pods = [
            PodSpec(
                plan.pod_id,
                plan.role,
                pod_env(envs, rank=plan.rank, world=len(record.pods), port=port),
                record.command_of(plan.role),
            )
            for plan in record.pods
        ]
        minutes = record.max_minutes
        max_runtime = minutes * self.settings.minute_seconds if minutes else None
        now = self.clock()
        # Each pod holds its spec's share, so the executor's CPU/memory samples are % of an allocation; the
        # run-wide Resources is the largest pod's (observe.samples rescales to each pod's own).
        shares = [record.allocation(p.role) for p in record.pods]
        resources = Resources(
            cpus=max((s.cpus for s in shares), default=1.0) or 1.0,
            memory_gb=max((s.memory_gib for s in shares), default=1.0) or 1.0,
            set_cuda_visible_devices=False,
        )
        sanity = SanityOptions(min_free_gb=0.0) if record.sanity_enabled else None

        def claim(conn: Any) -> None:
            if not Store.mark_launched(conn, record.job_id, now):
                raise _AlreadyHandled

        try:
            self.executor.launch(
                record.job_id,
                pods,
                max_runtime_seconds=max_runtime,
                grace_seconds=self.settings.stop_grace_seconds,
                record=claim,
                resources=resources,
                capacity=UNLIMITED,
                metrics_interval=self.settings.metrics_seconds,
                sanity=sanity,
            )
        except _AlreadyHandled:
            return
        except Exception as exc:
            if self.executor.get_many([record.job_id]):
                return  # launched meanwhile (a second launcher lost the race)
            logger.warning("sandbox: could not launch %s: %s", record.job_id, exc)
            message = str(exc) if isinstance(exc, CloudJobsError) else f"{type(exc).__name__}: {exc}"
            self.store.launch_failed(record.job_id, message)

    def _file_envs(self, record: JobRecord) -> dict[str, str]:
        """The output directory of every job and, for a training job, its hyperparameters and output channels
        (see ``studio.py``); creates the directories and the hyperparameters file."""
        outputs = self.outputs_dir(record.job_id)
        outputs.mkdir(parents=True, exist_ok=True)
        envs = {"CLOUDJOBS_OUTPUT_DIR": str(outputs)}
        training = self.store.training_for(record.job_id)
        if training is None:
            return envs
        channels = [str(c["Name"]) for c in training.body.get("OutputChannels") or [] if c.get("Name")]
        for name in dict.fromkeys([DEFAULT_CHANNEL, *channels]):
            if not re.match(r"^[A-Za-z0-9_.-]+$", name):
                continue
            (outputs / name).mkdir(exist_ok=True)
            envs["PAI_OUTPUT_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()] = str(outputs / name)
        hps = {str(h["Name"]): str(h["Value"]) for h in training.body.get("HyperParameters") or []}
        config = self.run_files_dir(record.job_id) / "config"
        config.mkdir(parents=True, exist_ok=True)
        hp_file = config / HYPERPARAMETERS_FILE
        hp_file.write_text(json.dumps(hps, indent=2, sort_keys=True) + "\n")
        envs.update({hp_env(name): value for name, value in hps.items()})
        envs.update(PAI_HPS=json.dumps(hps, sort_keys=True), CLOUDJOBS_HYPERPARAMETERS_FILE=str(hp_file))
        return envs

    async def _ticks(self) -> None:
        ticking = {kind for kind, cls in JOB_FAULTS.items() if cls.tick is not JobFault.tick}
        if not ticking:
            return
        records = await anyio.to_thread.run_sync(self.store.jobs_with_faults)
        for record in records:
            faults = [f for f in job_faults(record.faults) if f.kind in ticking]
            if not faults:
                continue
            view = await self.job_view(record.job_id)
            if view is None or view.terminal:
                continue
            for fault in faults:
                await fault.tick(view, self)

    # ----------------------------------------------------------------------------------- views

    def _build(self, record: JobRecord, run: RunState | None, now: float) -> JobView:
        view = base_view(record, run, region=self.settings.region, now=now)
        if run is not None and record.sanity_enabled:
            apply_sanity_checks(view, self._sanity_checks(record))
        for fault in job_faults(record.faults):
            fault.shape(view)
        apply_stop_before_launch(view)
        view.job_events.sort(key=lambda e: e[0])
        for events in view.pod_events.values():
            events.sort(key=lambda e: e[0])
        return view

    def _sanity_checks(self, record: JobRecord) -> list[SanityCheck]:
        if record.launched_at is None or not record.sanity_enabled:
            return []
        try:
            return self.executor.sanity_checks(record.job_id)
        except NotFound:
            return []

    def _load_view(self, job_id: str) -> JobView | None:
        record = self.store.job(job_id)
        if record is None:
            return None
        run = self.executor.get_many([job_id]).get(job_id) if record.launched_at is not None else None
        return self._build(record, run, self.clock())

    def _load_views(self) -> list[JobView]:
        records = self.store.jobs()
        runs = self.executor.get_many([r.job_id for r in records if r.launched_at is not None])
        now = self.clock()
        return [self._build(r, runs.get(r.job_id), now) for r in records]

    def stop_dlc_job(self, job_id: str) -> None:
        """StopJob's effect (synchronous): before launch the job just ends Stopped; after, its run is stopped."""
        _, launched = self.store.request_stop(job_id, self.clock())
        if launched:
            try:
                self.executor.stop(job_id)
            except NotFound:
                pass

    def delete_dlc_job(self, view: JobView) -> None:
        """DeleteJob's effect (synchronous; the job is terminal): its run, its row and its training job."""
        if view.record.launched_at is not None:
            try:
                self.executor.delete(view.record.job_id)
            except NotFound:
                pass
        self.store.delete_job(view.record.job_id)
        shutil.rmtree(self.run_files_dir(view.record.job_id), ignore_errors=True)

    def _new_record(self, stored: dict[str, Any], now: float, pod_prefix: str | None = None) -> JobRecord:
        job_id = new_job_id(now)
        queue_at = now + self.settings.creating_seconds
        record = JobRecord(
            job_id=job_id,
            display_name=stored["DisplayName"],
            job_type=stored["JobType"],
            workspace_id=stored["WorkspaceId"],
            created_at=now,
            queue_at=queue_at,
            launch_at=queue_at + self.settings.queuing_seconds,
            body=stored,
            pods=plan_pods(pod_prefix or job_id, stored["JobType"], stored["JobSpecs"]),
            faults=[],
        )
        record.faults = self.faults.for_new_job(record)
        return record

    def _validate(self, body: Any) -> dict[str, Any]:
        workspaces = {w.workspace_id for w in self.store.workspaces()}
        return validate_create(
            body, workspaces=workspaces, max_pods=self.settings.max_pods_per_job, quotas=self.settings.quotas
        )

    def insert_training_job(self, body: Any, now: float) -> str:
        """CreateTrainingJob's effect (synchronous): validate, store the training job and its DLC job."""
        stored, dlc_body = validate_training(body)
        quota = dlc_body.get("ResourceId")
        if quota and quota not in self.settings.quotas:
            raise unknown_quota(quota, dlc_body["WorkspaceId"], "ComputeResource.ResourceId")
        dlc = self._validate(dlc_body)
        training_job_id = new_training_job_id()
        record = self._new_record(dlc, now, pod_prefix=training_job_id)
        training = TrainingJob(
            training_job_id, record.job_id, stored["TrainingJobName"], dlc["WorkspaceId"], now, stored
        )
        self.store.insert_job(record, training)
        self._wake()
        return training_job_id

    async def _view_or_404(self, job_id: str) -> JobView:
        if not self._scheduler_running:
            await self.launch_due()
        view = await self.job_view(job_id)
        if view is None:
            raise ApiError(404, "JobNotFound", f"job {job_id} not found")
        return view

    def _workspace_name(self, workspace_id: str) -> str:
        ws = self.store.workspace(workspace_id)
        return ws.name if ws else ""

    # -------------------------------------------------------------------------------- dispatch

    def _register_apis(self) -> None:
        dlc, aiws, ecs, studio = "dlc", "aiworkspace", "ecs", "paistudio"
        st, tpl, tg = self.studio, self.templates, self.tags
        jobs, training = "/api/v1/jobs/{JobId}", "/api/v1/trainingjobs/{TrainingJobId}"
        template = "/api/v1/jobtemplates/{TemplateId}"
        table: list[tuple[str, str, tuple[str, ...], str, Handler]] = [
            (dlc, "CreateJobTemplate", ("POST",), "/api/v1/jobtemplates", tpl.create),
            (dlc, "ListJobTemplates", ("GET",), "/api/v1/jobtemplates", tpl.list),
            (dlc, "GetJobTemplate", ("GET",), template, tpl.get),
            (dlc, "UpdateJobTemplate", ("PUT",), template, tpl.update),
            (dlc, "DeleteJobTemplate", ("DELETE",), template, tpl.delete),
            (dlc, "SetJobTemplateDefaultVersion", ("PUT",), f"{template}/defaultversion", tpl.set_default),
            *(
                row
                for product in (dlc, studio)
                for row in (
                    (product, "TagResources", ("POST",), "/api/v1/tags", tg.tag),
                    (product, "UntagResources", ("DELETE",), "/api/v1/tags", tg.untag),
                    (product, "ListTagResources", ("GET",), "/api/v1/tags", tg.list),
                )
            ),
            (studio, "UpdateTrainingJobLabels", ("POST",), f"{training}/labels", st.update_training_job_labels),
            (studio, "DeleteTrainingJobLabels", ("DELETE",), f"{training}/labels", st.delete_training_job_labels),
            (
                studio,
                "ListTrainingJobOutputModels",
                ("GET",),
                f"{training}/outputmodels",
                st.list_training_job_output_models,
            ),
            (studio, "GetSpotPriceHistory", ("GET",), "/api/v1/spots/{InstanceType}/pricehistory", self.spot_history),
            (dlc, "CreateJob", ("POST",), "/api/v1/jobs", self.create_job),
            (dlc, "GetJobMetrics", ("GET",), f"{jobs}/metrics", self.get_job_metrics),
            (dlc, "ListJobSanityCheckResults", ("GET",), f"{jobs}/sanitycheckresults", self.list_sanity_checks),
            (dlc, "GetJobSanityCheckResult", ("GET",), f"{jobs}/sanitycheckresult", self.get_sanity_check),
            (studio, "CreateTrainingJob", ("POST",), "/api/v1/trainingjobs", st.create_training_job),
            (studio, "GetTrainingJob", ("GET",), training, st.get_training_job),
            (studio, "ListTrainingJobs", ("GET",), "/api/v1/trainingjobs", st.list_training_jobs),
            (studio, "StopTrainingJob", ("PUT",), f"{training}/stop", st.stop_training_job),
            (studio, "DeleteTrainingJob", ("DELETE",), training, st.delete_training_job),
            (studio, "ListTrainingJobEvents", ("GET",), f"{training}/events", st.list_training_job_events),
            (
                studio,
                "ListTrainingJobInstanceEvents",
                ("GET",),
                f"{training}/instances/{{InstanceId}}/events",
                st.list_training_job_instance_events,
            ),
            (studio, "ListTrainingJobLogs", ("GET",), f"{training}/logs", st.list_training_job_logs),
            (
                studio,
                "ListTrainingJobInstanceMetrics",
                ("GET",),
                f"{training}/instancemetrics",
                st.list_training_job_instance_metrics,
            ),
            (studio, "GetTrainingJobErrorInfo", ("GET",), f"{training}/errorinfo", st.get_training_job_error_info),
            (
                studio,
                "GetTrainingJobLatestMetrics",
                ("GET",),
                f"{training}/latestmetrics",
                st.get_training_job_latest_metrics,
            ),
            (studio, "ListQuotaWorkloads", ("GET",), "/api/v1/quotas/{QuotaId}/workloads", st.list_quota_workloads),
            (dlc, "GetJob", ("GET",), "/api/v1/jobs/{JobId}", self.get_job),
            (dlc, "ListJobs", ("GET",), "/api/v1/jobs", self.list_jobs),
            (dlc, "StopJob", ("POST",), "/api/v1/jobs/{JobId}/stop", self.stop_job),
            (dlc, "DeleteJob", ("DELETE",), "/api/v1/jobs/{JobId}", self.delete_job),
            (dlc, "GetPodLogs", ("GET",), "/api/v1/jobs/{JobId}/pods/{PodId}/logs", self.get_pod_logs),
            (dlc, "GetPodEvents", ("GET",), "/api/v1/jobs/{JobId}/pods/{PodId}/events", self.get_pod_events),
            (dlc, "GetJobEvents", ("GET",), "/api/v1/jobs/{JobId}/events", self.get_job_events),
            (dlc, "ListEcsSpecs", ("GET",), "/api/v1/ecsspecs", self.list_ecs_specs),
            (aiws, "ListImages", ("GET",), "/api/v1/images", self.list_images),
            (aiws, "ListWorkspaces", ("GET",), "/api/v1/workspaces", self.list_workspaces),
            (aiws, "CreateWorkspace", ("POST",), "/api/v1/workspaces", self.create_workspace_api),
            (aiws, "GetWorkspace", ("GET",), "/api/v1/workspaces/{WorkspaceId}", self.get_workspace),
            (ecs, "DescribePrice", ("POST", "GET"), "/", self.describe_price),
        ]
        upper_id = {"ListJobSanityCheckResults", "GetJobSanityCheckResult"}
        for product, action, methods, template, handler in table:
            key = "RequestID" if action in upper_id else "RequestId"
            self._apis[(product, action)] = Api(product, action, methods, _pattern(template), handler, key)

    @staticmethod
    def _raw_path(scope: Mapping[str, Any]) -> str:
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else quote(scope.get("path", "/"))
        path = path.split("?", 1)[0]
        if path.startswith(("http://", "https://")):  # absolute form: the sandbox used as an HTTP proxy
            path = urlsplit(path).path
        return path or "/"

    async def _dispatch(self, request: Request) -> Response:
        request_id = new_request_id()
        headers = {k.lower(): v for k, v in request.headers.items()}
        method = request.method.upper()
        raw_path = self._raw_path(request.scope)
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        body = await request.body()
        version, action = headers.get("x-acs-version", ""), headers.get("x-acs-action", "")
        product = PRODUCTS.get(version)
        product_key = product.key if product else "dlc"
        query = signing.parse_query(raw_query)
        call = Call(product_key, action, method, unquote(raw_path), query)
        try:
            if not action:
                raise missing("x-acs-action")
            if not version:
                raise missing("x-acs-version")
            key = self.auth.check(method, raw_path, raw_query, headers, body)
            api = self._apis.get((product_key, action)) if product else None
            match = api.pattern.match(raw_path) if api else None
            if api is None or match is None or method not in api.methods:
                raise not_found_action()
            error = await self.faults.before(call)
            if error is not None:
                raise error
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            if product_key == "ecs" and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                query = {**signing.parse_query(body.decode("utf-8", "replace")), **query}
            result = await api.handler(Ctx(key, query, params, body, self.clock()))
            error = self.faults.after(call)
            if error is not None:
                raise error
            request_key = api.request_id_key
        except ApiError as err:
            answer = error_body(
                err.code, err.message, request_id=request_id, host_id=self.host_id(product_key), product=product_key
            )
            self._record(call, err.status, err.code, answer)
            return json_response(answer, err.status, {"x-acs-request-id": request_id, **err.headers})
        except Exception:
            logger.exception("sandbox: %s %s failed", action, raw_path)
            code = "InternalError"
            answer = error_body(
                code,
                "The request processing has failed due to some unknown error, exception or failure.",
                request_id=request_id,
                host_id=self.host_id(product_key),
                product=product_key,
            )
            self._record(call, 500, code, answer)
            return json_response(answer, 500, {"x-acs-request-id": request_id})
        answer = {request_key: request_id, **result}
        self._record(call, 200, "", answer)
        return json_response(answer, 200, {"x-acs-request-id": request_id})

    def _record(self, call: Call, status: int, code: str, body: dict[str, Any]) -> None:
        self.calls.append(
            CallRecord(self.clock(), call.product, call.action, call.method, call.path, status, code, body)
        )

    # ----------------------------------------------------------------------------------- admin

    @staticmethod
    def _loopback(request: Request) -> bool:
        host = request.client.host if request.client else ""
        return host in LOOPBACK or host.startswith("127.")

    async def _admin_info(self, request: Request) -> Response:
        if not self._loopback(request):
            return json_response({"error": "the sandbox's admin routes answer loopback clients only"}, 403)
        return json_response(
            {
                "region": self.settings.region,
                "state_dir": str(self.settings.state_dir),
                "access_key_ids": [k.access_key_id for k in self.access_keys],
                "quotas": list(self.settings.quotas),
                "faults": self.faults.describe(),
            }
        )

    async def _admin_faults(self, request: Request) -> Response:
        if not self._loopback(request):
            return json_response({"error": "the sandbox's admin routes answer loopback clients only"}, 403)
        if request.method == "DELETE":
            if request.query_params.get("id"):
                self.faults.discard_id(request.query_params["id"])
            else:
                self.faults.clear(request.query_params.get("kind") or None)
        elif request.method == "POST":
            if not request.headers.get("content-type", "").startswith("application/json"):
                return json_response({"error": "POST a JSON fault spec with Content-Type: application/json"}, 415)
            try:
                data = json.loads(await request.body() or b"{}")
                specs = data.get("faults", data) if isinstance(data, dict) and "kind" not in data else data
                specs = specs if isinstance(specs, list) else [specs]
                for spec in specs:
                    if not isinstance(spec, dict):
                        raise ValueError(
                            f"a fault spec is an object like {{'kind': 'throttle', 'count': 3}}, not {spec!r}"
                        )
                    self.faults.add_spec(spec)
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response({"faults": self.faults.describe()})

    # ------------------------------------------------------------------------------------- DLC

    async def create_job(self, ctx: Ctx) -> dict[str, Any]:
        body = await anyio.to_thread.run_sync(self.templates.apply, ctx.json())
        stored = await anyio.to_thread.run_sync(self._validate, body)
        record = self._new_record(stored, ctx.now)
        await anyio.to_thread.run_sync(self.store.insert_job, record)
        if stored.get("TemplateId"):
            await anyio.to_thread.run_sync(self.templates.used, stored["TemplateId"], ctx.now)
        self._wake()
        return {"JobId": record.job_id}

    async def get_job(self, ctx: Ctx) -> dict[str, Any]:
        detail = ctx.flag("NeedDetail", True)
        view = await self._view_or_404(ctx.params["JobId"])
        name = await anyio.to_thread.run_sync(self._workspace_name, view.record.workspace_id)
        return get_job_body(view, account_id=self.settings.account_id, workspace_name=name, need_detail=detail)

    async def list_jobs(self, ctx: Ctx) -> dict[str, Any]:
        q = ctx.query
        page = ctx.number("PageNumber", 1)
        size = ctx.number("PageSize", 20, maximum=100)
        sort_by = ctx.choice("SortBy", ("DisplayName", "JobType", "Status", "GmtCreateTime", "GmtFinishTime"))
        order = ctx.choice("Order", ("desc", "asc"), "desc")
        start = parse_iso("StartTime", q["StartTime"]) if q.get("StartTime") else ctx.now - LIST_JOBS_WINDOW
        end = parse_iso("EndTime", q["EndTime"]) if q.get("EndTime") else None
        tags: dict[str, str] = {}
        if q.get("Tags"):
            try:
                raw = json.loads(q["Tags"])
            except ValueError:
                raise invalid("Tags", 'must be a JSON map, e.g. {"k":"v"}') from None
            if not isinstance(raw, dict):
                raise invalid("Tags", 'must be a JSON map, e.g. {"k":"v"}')
            tags = {str(k): str(v) for k, v in raw.items()}
        job_ids = (
            {q["JobId"]} if q.get("JobId") else ({i for i in q["JobIds"].split(",") if i} if q.get("JobIds") else None)
        )
        if not self._scheduler_running:
            await self.launch_due()
        views = await anyio.to_thread.run_sync(self._load_views)

        def keep(view: JobView) -> bool:
            r = view.record
            return (
                r.created_at >= start
                and (end is None or r.created_at <= end)
                and (not q.get("WorkspaceId") or r.workspace_id == q["WorkspaceId"])
                and (not q.get("Status") or view.status == q["Status"])
                and (not q.get("JobType") or r.job_type == q["JobType"])
                and (not q.get("DisplayName") or q["DisplayName"].lower() in r.display_name.lower())
                and (not q.get("ResourceId") or r.body.get("ResourceId") == q["ResourceId"])
                and (not q.get("TemplateId") or r.body.get("TemplateId") == q["TemplateId"])
                and (job_ids is None or r.job_id in job_ids)
                and all(r.tags.get(k) == v for k, v in tags.items())
            )

        matching = [v for v in views if keep(v)]
        sort_keys: dict[str, Callable[[JobView], Any]] = {
            "DisplayName": lambda v: v.record.display_name,
            "JobType": lambda v: v.record.job_type,
            "Status": lambda v: v.status,
            "GmtCreateTime": lambda v: v.record.created_at,
            "GmtFinishTime": lambda v: v.finished_at or 0.0,
        }
        matching.sort(key=sort_keys[sort_by or "GmtCreateTime"], reverse=order == "desc")
        names = await anyio.to_thread.run_sync(self.store.workspace_names)
        items = [
            list_item(v, account_id=self.settings.account_id, workspace_name=names.get(v.record.workspace_id, ""))
            for v in _page(matching, page, size)
        ]
        return {"TotalCount": len(matching), "Jobs": items}

    async def stop_job(self, ctx: Ctx) -> dict[str, Any]:
        job_id = ctx.params["JobId"]
        await self._view_or_404(job_id)
        await anyio.to_thread.run_sync(self.stop_dlc_job, job_id)
        return {"JobId": job_id}

    async def delete_job(self, ctx: Ctx) -> dict[str, Any]:
        job_id = ctx.params["JobId"]
        view = await self._view_or_404(job_id)
        if not view.terminal:
            raise ApiError(
                400,
                "InvalidJobStatus",
                f"Job {job_id} is {view.status} and cannot be deleted; stop it first (StopJob) and delete it "
                "once it is Stopped.",
            )

        await anyio.to_thread.run_sync(self.delete_dlc_job, view)
        return {"JobId": job_id}

    def _pod(self, view: JobView, pod_id: str) -> None:
        if pod_id not in {p.pod_id for p in view.pods}:
            raise ApiError(404, "PodNotFound", f"pod {pod_id} of job {view.record.job_id} not found")

    async def get_pod_logs(self, ctx: Ctx) -> dict[str, Any]:
        job_id, pod_id = ctx.params["JobId"], ctx.params["PodId"]
        max_lines = ctx.number("MaxLines", 2000)
        view = await self._view_or_404(job_id)
        self._pod(view, pod_id)
        since = parse_iso("StartTime", ctx.query["StartTime"]) if ctx.query.get("StartTime") else None
        until = parse_iso("EndTime", ctx.query["EndTime"]) if ctx.query.get("EndTime") else None
        lines: list[str] = []
        if view.record.launched_at is not None:

            def read() -> list[str]:
                if since is None and until is None:
                    return self.executor.tail_log(job_id, pod_id, max_lines).lines
                return self.executor.read_log(
                    job_id,
                    pod_id,
                    max_lines,
                    since=datetime.fromtimestamp(since, UTC) if since is not None else None,
                    until=datetime.fromtimestamp(until, UTC) if until is not None else None,
                ).lines

            try:
                lines = await anyio.to_thread.run_sync(read)
            except NotFound:
                lines = []
        out: dict[str, Any] = {
            "JobId": job_id,
            "PodId": pod_id,
            "PodUid": pod_uid(pod_id),
            "Logs": lines,
            "ContainerInfo": {"MainContainer": view.record.container, "SidecarContainers": []},
        }
        if ctx.query.get("Containers"):
            out["Containers"] = ctx.query["Containers"]
        return out

    @staticmethod
    def _events(ctx: Ctx, events: list[tuple[float, str]]) -> list[str]:
        start = parse_iso("StartTime", ctx.query["StartTime"]) if ctx.query.get("StartTime") else None
        end = parse_iso("EndTime", ctx.query["EndTime"]) if ctx.query.get("EndTime") else None
        limit = ctx.number("MaxEventsNum", 2000)
        chosen = [(t, m) for t, m in events if (start is None or t >= start) and (end is None or t <= end)]
        return [event_line(t, m) for t, m in chosen[-limit:]]

    async def get_pod_events(self, ctx: Ctx) -> dict[str, Any]:
        job_id, pod_id = ctx.params["JobId"], ctx.params["PodId"]
        view = await self._view_or_404(job_id)
        self._pod(view, pod_id)
        return {
            "JobId": job_id,
            "PodId": pod_id,
            "PodUid": pod_uid(pod_id),
            "Events": self._events(ctx, view.pod_events.get(pod_id, [])),
        }

    async def get_job_events(self, ctx: Ctx) -> dict[str, Any]:
        job_id = ctx.params["JobId"]
        view = await self._view_or_404(job_id)
        return {"JobId": job_id, "Events": self._events(ctx, view.job_events)}

    async def get_job_metrics(self, ctx: Ctx) -> dict[str, Any]:
        job_id = ctx.params["JobId"]
        kind = observe.metric_kind(ctx.query.get("MetricType"))
        step = observe.parse_step(ctx.query.get("TimeStep"))
        q = ctx.query
        end = observe.window_end(q["EndTime"]) if q.get("EndTime") else ctx.now
        start = parse_iso("StartTime", q["StartTime"]) if q.get("StartTime") else end - 3600.0
        observe.check_window(start, end, step)
        view = await self._view_or_404(job_id)
        series = await anyio.to_thread.run_sync(
            observe.samples, self.executor, view, kind, start, end, job_faults(view.record.faults)
        )
        return {
            "JobId": job_id,
            "PodMetrics": [
                {
                    "PodId": s.pod_id,
                    "Metrics": [
                        {"Time": round(t * 1000), "Value": observe.value(v)}
                        for t, v in observe.buckets(s.points, start, step)
                    ],
                }
                for s in series
            ],
        }

    async def _sanity_results(self, job_id: str) -> list[list[dict[str, Any]]]:
        view = await self._view_or_404(job_id)
        checks = await anyio.to_thread.run_sync(self._sanity_checks, view.record)
        return observe.sanity_results(view, checks, job_faults(view.record.faults))

    async def list_sanity_checks(self, ctx: Ctx) -> dict[str, Any]:
        order = ctx.choice("Order", ("asc", "desc"), "asc")
        results = await self._sanity_results(ctx.params["JobId"])
        results.sort(key=lambda run: run[0]["CheckNumber"] if run else 0, reverse=order == "desc")
        # TotalCount counts check runs (the inner lists), each one a check's result.
        return {"TotalCount": len(results), "SanityCheckResults": results}

    async def get_sanity_check(self, ctx: Ctx) -> dict[str, Any]:
        job_id = ctx.params["JobId"]
        if not ctx.query.get("SanityCheckNumber"):
            raise missing("SanityCheckNumber")
        number = ctx.number("SanityCheckNumber", 1, minimum=0)
        phase = ctx.choice("SanityCheckPhase", SANITY_PHASES)
        results = await self._sanity_results(job_id)
        items = [i for run in results for i in run if i["CheckNumber"] == number and phase in (None, i["Phase"])]
        return {"JobId": job_id, "SanityCheckResult": items}

    async def list_ecs_specs(self, ctx: Ctx) -> dict[str, Any]:
        accelerator = ctx.choice("AcceleratorType", ("CPU", "GPU"))
        resource_type = ctx.choice("ResourceType", ("ECS", "Lingjun"), "ECS")
        sort_by = ctx.choice("SortBy", tuple(catalog.SPEC_SORT_KEYS))
        order = ctx.choice("Order", ("asc", "desc"), "asc")
        page = ctx.number("PageNumber", 1)
        size = ctx.number("PageSize", 10, maximum=100)
        wanted = {t.strip() for t in ctx.query.get("InstanceTypes", "").split(",") if t.strip()}
        specs = [
            s
            for s in catalog.SPECS
            if resource_type == "ECS"
            and (accelerator is None or s.accelerator == accelerator)
            and (not wanted or s.instance_type in wanted)
        ]
        if sort_by is not None:
            specs.sort(key=catalog.SPEC_SORT_KEYS[sort_by], reverse=order == "desc")
        items = []
        for s in _page(specs, page, size):
            item = s.item()
            item["NonProtectSpotDiscount"] = spot.discount_at(s.instance_type, ctx.now)
            item["SpotStockStatus"] = spot.stock_status(s.spot_stock, s.instance_type, ctx.now)
            items.append(item)
        return {"TotalCount": len(specs), "EcsSpecs": items}

    # ----------------------------------------------------------------------------- AIWorkspace

    async def list_images(self, ctx: Ctx) -> dict[str, Any]:
        q = ctx.query
        verbose = ctx.flag("Verbose", False)
        page = ctx.number("PageNumber", 1)
        size = ctx.number("PageSize", 20, maximum=100)
        order = ctx.choice("Order", ("ASC", "DESC"), "ASC")
        ctx.choice("SortBy", ("GmtCreateTime",))
        wanted: dict[str, str] = {}
        for part in (q.get("Labels") or "").split(","):
            if not part.strip():
                continue
            k, sep, v = part.partition("=")
            if not sep:
                raise invalid("Labels", f"{part!r} is not Key=Value")
            wanted[k.strip()] = v.strip()
        exact = (q.get("Options") or "") == "ExactMatchName"
        region = self.settings.region

        def keep(image: catalog.PaiImage) -> bool:
            labels = {label["Key"]: label["Value"] for label in image.labels()}
            name = q.get("Name")
            text = q.get("Query")
            return (
                all(labels.get(k) == v for k, v in wanted.items())
                and (not name or (image.name == name if exact else name.lower() in image.name.lower()))
                and (not text or text.lower() in (image.name + " " + image.description).lower())
                and (not q.get("ImageUri") or image.uri(region) == q["ImageUri"])
                and (q.get("Accessibility") in (None, "", "PUBLIC"))
            )

        images = sorted((i for i in catalog.IMAGES if keep(i)), key=lambda i: i.created, reverse=order == "DESC")
        return {"TotalCount": len(images), "Images": [i.item(region, verbose) for i in _page(images, page, size)]}

    async def list_workspaces(self, ctx: Ctx) -> dict[str, Any]:
        q = ctx.query
        page = ctx.number("PageNumber", 1)
        size = ctx.number("PageSize", 20, maximum=100)
        order = ctx.choice("Order", ("ASC", "DESC"), "ASC")
        ctx.choice("SortBy", ("GmtCreateTime", "GmtModifiedTime"))
        option = ctx.choice("Option", ("GetWorkspaces", "GetResourceLimits"), "GetWorkspaces")
        if option == "GetResourceLimits":
            return {"ResourceLimits": {"DLC_share": 1000, "PAI_share": 1000}}
        ids = {i for i in (q.get("WorkspaceIds") or "").split(",") if i}
        workspaces: list[Workspace] = await anyio.to_thread.run_sync(self.store.workspaces)
        matching = [
            w
            for w in workspaces
            if (not q.get("WorkspaceName") or w.name == q["WorkspaceName"])
            and (not ids or w.workspace_id in ids)
            and (not q.get("Status") or w.status == q["Status"])
        ]
        matching.sort(key=lambda w: (w.created_at, int(w.workspace_id)), reverse=order == "DESC")
        items = [workspace_item(w, self.settings.account_id) for w in _page(matching, page, size)]
        return {"TotalCount": len(matching), "Workspaces": items}

    async def create_workspace_api(self, ctx: Ctx) -> dict[str, Any]:
        body = ctx.json()
        if not isinstance(body, dict):
            raise invalid("body", "the request body must be a JSON object")
        name = body.get("WorkspaceName")
        if not name:
            raise missing("WorkspaceName")
        if not isinstance(name, str) or not WORKSPACE_NAME.match(name):
            raise invalid(
                "WorkspaceName", "use 3-23 letters, digits or '_', starting with a letter (e.g. my_workspace)"
            )
        description = body.get("Description")
        if description is None:
            raise missing("Description")
        if not isinstance(description, str) or len(description) > 80:
            raise invalid("Description", "at most 80 characters")
        env_types = body.get("EnvTypes")
        if not env_types:
            raise missing("EnvTypes")
        if not isinstance(env_types, list) or sorted(env_types) not in (["prod"], ["dev", "prod"]):
            raise invalid("EnvTypes", '["prod"] (simple mode) or ["dev", "prod"] (standard mode)')
        display = body.get("DisplayName") or name
        ws = await anyio.to_thread.run_sync(self.store.create_workspace, name, str(display), description, env_types)
        if ws is None:
            raise invalid("WorkspaceName", f"a workspace named {name} already exists in this region")
        return {"WorkspaceId": ws.workspace_id}

    async def get_workspace(self, ctx: Ctx) -> dict[str, Any]:
        ws = await anyio.to_thread.run_sync(self.store.workspace, ctx.params["WorkspaceId"])
        if ws is None:
            raise ApiError(404, "WorkspaceNotFound", f"workspace {ctx.params['WorkspaceId']} not found")
        item = workspace_item(ws, self.settings.account_id)
        return {k: v for k, v in item.items() if k not in ("IsDefault", "resourceGroupId")}

    # ------------------------------------------------------------------------------- PaiStudio

    async def spot_history(self, ctx: Ctx) -> dict[str, Any]:
        instance_type = ctx.params["InstanceType"]
        if catalog.spec_by_type(instance_type) is None:
            raise invalid("InstanceType", f"{instance_type} is not an instance type offered here; call ListEcsSpecs")
        q = ctx.query
        duration = ctx.number("SpotDuration", 0, minimum=0, maximum=1)
        ctx.number("PageNumber", 1)
        ctx.number("PageSize", 10, maximum=1000)
        ctx.choice("Order", ("asc", "desc"))
        ctx.choice("SortBy", ("GmtCreatedTime",))
        end = parse_iso("EndTime", q["EndTime"]) if q.get("EndTime") else ctx.now
        start = parse_iso("StartTime", q["StartTime"]) if q.get("StartTime") else end - spot.DEFAULT_WINDOW
        if start > end:
            raise invalid("StartTime", "must not be after EndTime")
        if end - start > spot.MAX_WINDOW:
            raise invalid("StartTime", "must be at most 7 days before EndTime")
        items = spot.history(instance_type, start, end, region=self.settings.region, protected=duration == 1)
        return {"TotalCount": len(items), "SpotPriceHistory": items}

    # ------------------------------------------------------------------------------------- ECS

    async def describe_price(self, ctx: Ctx) -> dict[str, Any]:
        q = ctx.query
        region = q.get("RegionId")
        if not region:
            raise missing("RegionId")
        if region != self.settings.region:
            raise ApiError(
                400,
                "InvalidRegionId.NotFound",
                f"The specified RegionId does not exist (the PAI sandbox serves {self.settings.region}).",
            )
        resource_type = q.get("ResourceType") or "instance"
        if resource_type != "instance":
            raise invalid("ResourceType", "the PAI sandbox prices instances only (ResourceType=instance)")
        instance_type = q.get("InstanceType")
        if not instance_type:
            raise missing("InstanceType")
        spec = catalog.spec_by_type(instance_type)
        if spec is None:
            raise ApiError(
                400,
                "InvalidInstanceType.ValueNotSupported",
                "The specified InstanceType does not exist or beyond the permitted range.",
            )
        unit = q.get("PriceUnit") or "Hour"
        if unit != "Hour":
            raise invalid("PriceUnit", "the PAI sandbox prices pay-as-you-go hours only (PriceUnit=Hour)")
        ctx.number("Period", 1, maximum=1)
        amount = ctx.number("Amount", 1, maximum=1000)
        category = q.get("SystemDisk.Category")
        if category and category not in catalog.DISK_CATEGORIES:
            raise ApiError(
                400,
                "InvalidSystemDiskCategory.ValueNotSupported",
                f"The specified SystemDisk.Category {category} is not supported.",
            )
        ctx.number("SystemDisk.Size", 40, maximum=2048)
        strategy = ctx.choice("SpotStrategy", ("NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"), "NoSpot")
        discount = spot.discount_at(spec.instance_type, ctx.now, protected=q.get("SpotDuration") == "1")
        hourly = spec.price_per_hour * (discount if strategy != "NoSpot" else 1.0)
        price = round(hourly * amount, 4)
        detail = [
            {"Resource": "instanceType", "OriginalPrice": price, "DiscountPrice": 0.0, "TradePrice": price,
             "SubRules": {"Rule": []}},
            {"Resource": "systemDisk", "OriginalPrice": 0.0, "DiscountPrice": 0.0, "TradePrice": 0.0,
             "SubRules": {"Rule": []}},
        ]  # fmt: skip
        return {
            "PriceInfo": {
                "Price": {
                    "Currency": self.settings.currency,
                    "OriginalPrice": price,
                    "DiscountPrice": 0.0,
                    "TradePrice": price,
                    "ReservedInstanceHourPrice": 0.0,
                    "DetailInfos": {"DetailInfo": detail},
                },
                "Rules": {
                    "Rule": [
                        {
                            "RuleId": 1,
                            "Description": "PAI sandbox list price, pay-as-you-go; the system disk is included",
                        }
                    ]
                },
            }
        }


def create_app(settings: SandboxSettings) -> Starlette:
    """The ASGI app of a new :class:`Sandbox` (``app.state.sandbox`` is the sandbox)."""
    return Sandbox(settings).app
