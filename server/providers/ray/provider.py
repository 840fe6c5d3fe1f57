"""The ``ray`` provider: distributed training on a Ray cluster through the Ray Jobs REST API.

A job is one Ray job (its ``submission_id`` is the job id, ``cloudjobs-<quote id>``: a create retried after
a lost response meets Ray's "already exists" and returns the job it made). The job's entrypoint is this
package's driver (``driver.py``, uploaded to the head as a ``py_modules`` package, content-addressed) which
places ``worker_count`` workers with a placement group and runs the user's command in each; see driver.py
for the environment contract and how each worker's output is kept. Pods are named as on every platform
(``<job>-master-0`` then ``<job>-worker-N`` for a multi-worker PyTorchJob, ...) and their status, node IP,
exit code and events come from the driver's ``state.json`` on the driver's node.

Statuses: Ray PENDING → Queuing, RUNNING → Running (Queuing while the workers wait for resources),
SUCCEEDED, FAILED, STOPPED; ``raw_status`` keeps Ray's, ``sub_status`` the driver's phase or Ray's
error_type. Jobs not made by this server (``ray job submit``) are listed too, with one pod: the driver.

Price: the price table (``CLOUDJOBS_PRICE_TABLE``, per spec or per CPU/GPU hour) or, without an entry,
zero: the cluster is taken to be one's own, and the quote says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import secrets
import shlex
import zipfile
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import anyio
import httpx

from cloudjobs_mcp.server import __version__
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest, NotFound, ProviderError
from cloudjobs_mcp.server.http import RetryPolicy
from cloudjobs_mcp.server.hyperparameters import env_name
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
from cloudjobs_mcp.server.providers.base import TAG_QUOTE_ID, TemplateBackend, pod_layout
from cloudjobs_mcp.server.providers.common import (
    WORKLOAD_STATUS,
    PooledClient,
    failure_summary,
    first_error,
    gather,
    untracked_outputs,
)
from cloudjobs_mcp.server.providers.ray.api import ALREADY_EXISTS, JOB_ID_RE, RayApi, address_of, dumps
from cloudjobs_mcp.server.providers.ray.specs import Shape, cluster_shapes

DRIVER_MODULE = "cloudjobs_ray_driver"
TOKEN_ENV = "RAY_AUTH_TOKEN"
META = "cloudjobs."  # the server's own metadata keys; every other key is a label
STATE_DIR = "cloudjobs"
GRACE_SECONDS = 2.0  # under Ray's 3 s stop wait (RAY_JOB_STOP_WAIT_TIME_S), after which it SIGKILLs
LOG_CAP_LINES = 50_000
STOP_WAIT_SECONDS = 8.0
RESERVED_ENVS = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "CLOUDJOBS_JOB_ID",
    "CLOUDJOBS_POD_ID",
    "CUDA_VISIBLE_DEVICES",
)
_STATUS = {
    "PENDING": JobStatus.QUEUING,
    "RUNNING": JobStatus.RUNNING,
    "SUCCEEDED": JobStatus.SUCCEEDED,
    "FAILED": JobStatus.FAILED,
    "STOPPED": JobStatus.STOPPED,
}
NEVER_STARTS = (
    "Stop requested, but Ray cannot stop a job whose driver has not started: it stays PENDING until the "
    "cluster's start timeout (RAY_JOB_START_TIMEOUT_SECONDS, 900 s by default) and then ends FAILED. "
    "Nothing runs meanwhile."
)
NO_SPOT = "the ray provider has no spot capacity: jobs run on the cluster's own nodes; quote without spot"


def submission_id_for(quote_id: str) -> str:
    return f"cloudjobs-{quote_id}"


def driver_package() -> tuple[str, bytes]:
    """The driver as a py_modules zip (``cloudjobs_ray_driver.py`` at its root) and its content name."""
    source = resources.files("cloudjobs_mcp.server.providers.ray").joinpath("driver.py").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(f"{DRIVER_MODULE}.py", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        z.writestr(info, source)
    data = buf.getvalue()
    return f"_ray_pkg_{hashlib.sha1(data).hexdigest()}.zip", data


def _ms(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if isinstance(value, int | float) and value else None


def _sec(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) and value else None


def _short(text: str | None, limit: int = 600) -> str | None:
    if not text:
        return None
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RayProvider(PooledClient):
    """Jobs on a Ray cluster. See the module docstring."""

    name = "ray"

    def __init__(
        self,
        settings: Settings,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        address: str | None = None,
    ) -> None:
        """``token``: the cluster's token; None reads RAY_AUTH_TOKEN (Ray's own variable), "" sends none."""
        self.settings = settings
        self.region = "ray"
        self.currency = settings.local_currency
        if token is None:
            token = os.environ.get(TOKEN_ENV, "").strip()
        self._token = token or None
        self.address = address_of(address or settings.ray_address)
        self.api = RayApi(
            self.address, token, self._open_client(settings, transport=transport), RetryPolicy.from_settings(settings)
        )
        self._shapes: dict[str, Shape] = {}

    def known_secrets(self) -> tuple[str, ...]:
        """The cluster token: masked wherever it could show up (job logs, events)."""
        return (self._token,) if self._token else ()

    # ----- catalogue

    async def shapes(self) -> list[Shape]:
        nodes: list[dict[str, Any]] = []
        usage: dict[str, dict[str, list[float]]] = {}

        async def get_nodes() -> None:
            nodes.extend(await self.api.nodes())

        async def get_usage() -> None:
            usage.update(await self.api.usage_by_node())

        await gather([get_nodes, get_usage])
        shapes = cluster_shapes(nodes, usage)
        self._shapes = {s.name: s for s in shapes}
        return shapes

    async def list_specs(self, accelerator: Accelerator | None = None) -> list[Spec]:
        specs = [_spec_of(s) for s in await self.shapes()]
        return [s for s in specs if accelerator is None or s.accelerator == accelerator]

    async def _shape(self, instance_type: str, *, fresh: bool = False) -> Shape:
        if fresh or instance_type not in self._shapes:
            await self.shapes()
        shape = self._shapes.get(instance_type)
        if shape is None:
            known = ", ".join(list(self._shapes)[:20]) or "none (no live node)"
            raise NotFound(
                f"Unknown spec {instance_type!r} on the Ray cluster at {self.address}; its nodes offer: {known}. "
                "Call list_ecs_specs."
            )
        return shape

    async def resolve_image(self, job_type: str, chip_type: Accelerator) -> Image:
        return Image(
            uri="ray:cluster-environment",
            job_type=job_type,
            chip_type=chip_type,
            name="the Ray cluster's own Python environment",
            used=False,
            note="No image is used: Ray runs each worker in the Python environment its node's Ray was started "
            "with (`python` on that PATH). Install what the job needs on the nodes.",
        )

    async def price(self, instance_type: str) -> Price:
        shape = await self._shape(instance_type)
        listed = PriceTable.from_settings(self.settings).lookup(self.name, _spec_of(shape))
        return listed or Price(
            instance_type=shape.name,
            per_worker_hourly=0.0,
            currency=self.currency,
            source="your own Ray cluster, quoted at 0: CLOUDJOBS_PRICE_TABLE has no price for ray (give one per "
            "spec or per CPU/GPU hour there if this cluster costs money)",
        )

    def validate_request(self, request: JobRequest, spec: Spec) -> None:
        """Refuse what the cluster could never run, before any quote or submission: an unknown spec, more
        workers than the live nodes can ever hold (Ray would leave them waiting for many minutes), spot,
        the contract's own variables in envs, labels in the server's metadata namespace."""
        shape = self._shapes.get(request.ecs_spec)
        if shape is None:
            raise NotFound(f"Unknown spec {request.ecs_spec!r} on the Ray cluster: call list_ecs_specs.")
        if request.spot:
            raise InvalidRequest(NO_SPOT)
        if not 0 < request.max_runtime_minutes < math.inf:
            raise InvalidRequest(f"max_runtime_minutes must be a positive number, got {request.max_runtime_minutes}")
        reserved = [k for k in request.envs if k in RESERVED_ENVS]
        if reserved:
            raise InvalidRequest(
                f"envs: {', '.join(reserved)} are set by the ray provider for each worker; remove them "
                f"(reserved: {', '.join(RESERVED_ENVS)})."
            )
        ours = [k for k in request.tags if k.startswith(META)]
        if ours:
            raise InvalidRequest(f"labels {', '.join(ours)}: keys starting with {META!r} belong to the server.")
        _check_capacity(shape, request.worker_count)

    # ----- jobs

    async def create_job(self, request: JobRequest) -> Job:
        shape = await self._shape(request.ecs_spec, fresh=True)
        self.validate_request(request, _spec_of(shape))
        quote_id = request.tags.get(TAG_QUOTE_ID)
        job_id = submission_id_for(quote_id) if quote_id else f"cloudjobs-{secrets.token_hex(8)}"
        if not JOB_ID_RE.match(job_id):
            raise InvalidRequest(f"quote id {quote_id!r} cannot make a Ray job id (letters, digits, . _ -).")
        package, data = driver_package()
        if not await self.api.has_package(package):
            await self.api.put_package(package, data)
        pods = [p for p, _ in pod_layout(job_id, request.job_type, request.worker_count)]
        envs = {**request.envs, **{env_name(k): v for k, v in request.hyperparameters.items()}}
        entrypoint = shlex.join(
            [
                "python",
                "-m",
                DRIVER_MODULE,
                "--job",
                job_id,
                "--pods",
                ",".join(pods),
                "--bundle",
                dumps(shape.bundle),
                "--max-runtime-seconds",
                f"{request.max_runtime_minutes * 60:g}",
                "--grace-seconds",
                f"{GRACE_SECONDS:g}",
                *(["--cpu-only"] if shape.accelerator == "CPU" else []),
                "--",
                request.user_command,
            ]
        )
        metadata = {
            **request.tags,
            META + "server": f"cloudjobs-mcp {__version__}",
            META + "name": request.display_name,
            META + "job_type": request.job_type,
            META + "spec": shape.name,
            META + "workers": str(request.worker_count),
            META + "max_runtime_minutes": f"{request.max_runtime_minutes:g}",
            META + "command": request.user_command,
        }
        if request.hyperparameters:
            metadata[META + "hyperparameters"] = dumps(request.hyperparameters)
        if request.image:
            metadata[META + "image"] = request.image
        body = {
            "entrypoint": entrypoint,
            "submission_id": job_id,
            "runtime_env": {"py_modules": [f"gcs://{package}"], "env_vars": envs},
            "metadata": metadata,
        }
        try:
            await self.api.submit(body)
        except ProviderError as exc:
            if exc.code != ALREADY_EXISTS:
                raise
            # A retry of a submission that reached Ray: the job is there. Make sure it is this one.
            existing = await self.api.get_job(job_id)
            if (existing.get("metadata") or {}).get(TAG_QUOTE_ID) != quote_id:
                raise ProviderError(
                    f"Ray already has a job {job_id} that this quote did not create; not reusing it.",
                    code=ALREADY_EXISTS,
                ) from None
        return await self.get_job(job_id)

    async def find_job_by_tag(self, key: str, value: str) -> Job | None:
        if key == TAG_QUOTE_ID:
            try:
                return await self.get_job(submission_id_for(value))
            except NotFound:
                return None
        jobs = await self.list_jobs(tags={key: value}, limit=1)
        return jobs[0] if jobs else None

    async def get_job(self, job_id: str) -> Job:
        raw = await self.api.get_job(job_id)
        return _to_job(raw, await self._state(raw))

    async def _state(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The driver's state.json, for a job of ours whose driver has started."""
        sid, node = raw.get("submission_id"), raw.get("driver_node_id")
        if not _ours(raw) or not sid or not node:
            return None
        try:
            text = await self.api.node_file(str(node), f"{STATE_DIR}/{sid}/state.json", -1)
        except ProviderError:
            return None  # the node left: the job still shows, without pod details
        if not text:
            return None
        try:
            state = json.loads(text)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    async def list_jobs(
        self,
        status: JobStatus | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        limit: int = 100,
        *,
        include_training_jobs: bool = False,  # Ray has no separate training jobs
    ) -> list[Job]:
        """Ray returns every job, unordered: filtered by labels and time here, newest first."""
        if limit < 1:
            raise InvalidRequest(f"limit must be at least 1, got {limit}")
        wanted = tags or {}
        after = created_after.replace(tzinfo=created_after.tzinfo or UTC) if created_after else None
        raws = [
            r
            for r in await self.api.list_jobs()
            if all((r.get("metadata") or {}).get(k) == v for k, v in wanted.items())
            and (after is None or (_ms(r.get("start_time")) or after) > after)
        ]
        raws.sort(key=lambda r: (r.get("start_time") or 0, str(r.get("submission_id") or "")), reverse=True)
        if status is None:
            raws = raws[:limit]
        jobs: list[Job | None] = [None] * len(raws)
        limiter = anyio.CapacityLimiter(8)

        async def one(i: int, raw: dict[str, Any]) -> None:
            async with limiter:
                jobs[i] = _to_job(raw, await self._state(raw))

        async with first_error(), anyio.create_task_group() as tg:
            for i, raw in enumerate(raws):
                tg.start_soon(one, i, raw)
        out = [j for j in jobs if j is not None and (status is None or j.status == status)]
        return out[:limit]

    async def stop_job(self, job_id: str) -> Job:
        job = await self.get_job(job_id)
        if job.status.is_terminal:
            return job
        await self.api.stop(job.job_id)
        with anyio.move_on_after(STOP_WAIT_SECONDS):
            while True:
                job = await self.get_job(job.job_id)
                if job.status.is_terminal or job.raw_status == "PENDING":
                    break
                await anyio.sleep(0.25)
        if job.raw_status == "PENDING":
            return job.model_copy(update={"reason": NEVER_STARTS, "reason_code": "StopPendingUntilStartTimeout"})
        return job

    async def delete_job(self, job_id: str) -> None:
        job = await self.get_job(job_id)
        if not job.status.is_terminal:
            hint = (
                " It cannot be stopped before its driver starts; it ends at the start timeout."
                if (job.raw_status == "PENDING")
                else " Stop it first (stop_job)."
            )
            raise InvalidRequest(
                f"Job {job_id} is {job.status.value} (Ray: {job.raw_status}); only finished jobs can be deleted.{hint}"
            )
        await self.api.delete(job.job_id)

    # ----- logs and events

    async def pod_logs(
        self,
        job_id: str,
        pod_id: str,
        *,
        max_lines: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> LogPage:
        """The worker's output (stdout and stderr merged), read from the driver's node; the last
        ``max_lines`` (of the [since, until) window when given), else up to ``LOG_CAP_LINES`` lines."""
        if max_lines is not None and max_lines < 0:
            raise InvalidRequest(f"max_lines must be 0 or more, got {max_lines}")
        raw = await self.api.get_job(job_id)
        job = _to_job(raw, None)
        if pod_id not in {p.pod_id for p in job.pods}:
            raise NotFound(f"job {job_id} has no pod {pod_id!r}; its pods are: {', '.join(p.pod_id for p in job.pods)}")
        node, sid = raw.get("driver_node_id"), str(raw.get("submission_id") or job_id)
        if not node or max_lines == 0:
            return LogPage(pod_id=pod_id, lines=[])
        windowed = since is not None or until is not None
        want = LOG_CAP_LINES + 1 if (max_lines is None or windowed) else max_lines
        if not _ours(raw):
            text = await self.api.driver_log(sid, str(node), want)
            lines = text.splitlines()
            stamped = None
        else:
            text = await self.api.node_file(str(node), f"{STATE_DIR}/{sid}/{pod_id}.log", want) or ""
            stamped = [_split_stamp(line) for line in text.splitlines()]
            if windowed:
                lo = since.replace(tzinfo=since.tzinfo or UTC).timestamp() if since else -math.inf
                hi = until.replace(tzinfo=until.tzinfo or UTC).timestamp() if until else math.inf
                stamped = [(t, s) for t, s in stamped if lo <= t < hi]
            lines = [s for _, s in stamped]
        truncated = False
        if max_lines is not None and len(lines) > max_lines:
            lines, truncated = lines[-max_lines:], True
        elif max_lines is None and len(lines) > LOG_CAP_LINES:
            lines, truncated = lines[-LOG_CAP_LINES:], True
        return LogPage(pod_id=pod_id, lines=lines, truncated=truncated)

    async def events(self, job_id: str, pod_id: str | None = None) -> list[Event]:
        raw = await self.api.get_job(job_id)
        state = await self._state(raw)
        job = _to_job(raw, state)
        if pod_id is not None and pod_id not in {p.pod_id for p in job.pods}:
            raise NotFound(f"job {job_id} has no pod {pod_id!r}; its pods are: {', '.join(p.pod_id for p in job.pods)}")
        out = [Event(time=job.created_at, source=job.job_id, message="submitted to Ray")]
        for e in (state or {}).get("events", []):
            source = e.get("source") or job.job_id
            if pod_id is None or source == pod_id:
                out.append(Event(time=_sec(e.get("time")), source=source, message=str(e.get("message"))))
        if job.finished_at is not None:
            said = _short(raw.get("message"), 300)
            message = f"Ray: {raw.get('status')}" + (f" ({said})" if said else "")
            out.append(Event(time=job.finished_at, source=job.job_id, message=message))
        if pod_id is not None:
            out = [e for e in out if e.source == pod_id]
        return sorted(out, key=lambda e: e.time or datetime.min.replace(tzinfo=UTC))

    # ----- what Ray does not have

    async def metrics(
        self, job_id: str, metric: MetricKind, *, since: datetime | None = None, step_seconds: int | None = None
    ) -> list[PodMetricSeries]:
        raise InvalidRequest(
            "The ray provider does not sample per-worker metrics: use the Ray dashboard's Metrics view "
            "(Prometheus/Grafana) for CPU, memory and GPU use."
        )

    async def sanity_checks(self, job_id: str) -> list[SanityCheckResult]:
        await self.api.get_job(job_id)
        return []

    async def workload_info(self, job_id: str) -> WorkloadInfo:
        job = await self.get_job(job_id)
        waiting = job.status == JobStatus.QUEUING
        return WorkloadInfo(
            job_id=job.job_id,
            name=job.name,
            workload_type=job.job_type,
            status=WORKLOAD_STATUS[job.status],
            created_at=job.created_at,
            is_scheduled=not waiting,
            in_quota=False,
            source="Ray Jobs API and the job's driver",
            unavailable=["WorkspaceId", "WorkspaceName", "TenantId", "QuotaId", "QueuePosition", "UserId"],
            note="Ray has no queue positions: a job waits until its placement group (one bundle per worker) fits"
            + (f". Now: {job.reason}" if waiting and job.reason else "."),
        )

    async def error_info(self, job_id: str) -> str | None:
        return failure_summary(await self.get_job(job_id))

    async def label_job(self, job_id: str, labels: dict[str, str]) -> Job:
        raise InvalidRequest(
            "Ray fixes a job's metadata (where its labels live) when it is submitted: labels cannot be changed "
            "afterwards. Give labels when creating the job."
        )

    async def unlabel_job(self, job_id: str, keys: list[str]) -> Job:
        return await self.label_job(job_id, {})

    async def spot_price_history(self, instance_type: str, hours: float) -> list[SpotPricePoint]:
        raise InvalidRequest(NO_SPOT)

    async def output_models(self, job_id: str) -> OutputModels:
        await self.api.get_job(job_id)
        return untracked_outputs(
            job_id,
            "A Ray cluster has no shared output store: the job writes its outputs where its program puts "
            "them (shared storage or object store of your own).",
        )

    def template_backend(self) -> TemplateBackend | None:
        return None


def _spec_of(shape: Shape) -> Spec:
    return Spec(
        instance_type=shape.name,
        accelerator="GPU" if shape.accelerator == "GPU" else "CPU",
        cpu=shape.cpu,
        memory_gb=shape.memory_gb,
        gpu_count=shape.gpu_count,
        gpu_type=shape.gpu_type,
        available=shape.free > 0,
        free_now=shape.free,
    )


def _check_capacity(shape: Shape, workers: int) -> None:
    if workers <= shape.capacity:
        return
    where = ", ".join(shape.nodes) or "no live node"
    raise InvalidRequest(
        f"No placement can ever hold {workers} workers of {shape.name} ({dumps(shape.bundle)} each): the "
        f"cluster's live nodes ({where}) hold at most {shape.capacity}. Ray would leave the job waiting; use "
        "fewer workers or a smaller spec, or add nodes."
    )


def _ours(raw: dict[str, Any]) -> bool:
    return META + "workers" in (raw.get("metadata") or {})


def _split_stamp(line: str) -> tuple[float, str]:
    stamp, _, text = line.partition(" ")
    try:
        return float(stamp), text
    except ValueError:
        return 0.0, line


def _to_job(raw: dict[str, Any], state: dict[str, Any] | None) -> Job:
    meta: dict[str, str] = {str(k): str(v) for k, v in (raw.get("metadata") or {}).items()}
    job_id = str(raw.get("submission_id") or raw.get("job_id") or "")
    ray_status = str(raw.get("status") or "PENDING")
    status = _STATUS.get(ray_status, JobStatus.QUEUING)
    phase = (state or {}).get("phase")
    ours = _ours(raw)
    reason: str | None = None
    reason_code: str | None = raw.get("error_type")
    if status == JobStatus.RUNNING and ours and phase in (None, "WaitingForResources"):
        status = JobStatus.QUEUING  # the driver runs, the workers wait for their placement group
        reason = "waiting for resources: the placement group (one bundle per worker) does not fit yet"
    if ray_status == "PENDING":
        reason = _short(raw.get("message"))
    if state and state.get("reason"):
        reason, reason_code = str(state["reason"]), state.get("reason_code") or reason_code
    elif status == JobStatus.FAILED:
        reason = _short(raw.get("message"))
    pods: list[Pod] = []
    if ours:
        by_id = {str(p.get("pod_id")): p for p in (state or {}).get("pods", [])}
        layout = pod_layout(job_id, meta.get(META + "job_type", "PyTorchJob"), int(meta.get(META + "workers", "1")))
        for pod_id, role in layout:
            p = by_id.get(pod_id, {})
            pod_status = str(p.get("status") or ("Failed" if status == JobStatus.FAILED else "Pending"))
            if status == JobStatus.STOPPED and pod_status in ("Pending", "Running"):
                pod_status = "Stopped"
            pods.append(
                Pod(
                    pod_id=pod_id,
                    role=role,
                    status=pod_status,
                    sub_status=p.get("reason"),
                    exit_code=p.get("exit_code"),
                    ip=p.get("ip"),
                    started_at=_sec(p.get("started_at")),
                    finished_at=_sec(p.get("finished_at")),
                )
            )
    else:
        pods.append(
            Pod(
                pod_id=f"{job_id}-driver",
                role="Driver",
                status=ray_status.title(),
                exit_code=raw.get("driver_exit_code"),
                started_at=_ms(raw.get("start_time")),
                finished_at=_ms(raw.get("end_time")),
            )
        )
    starts = [p.started_at for p in pods if p.started_at is not None]
    created, finished = _ms(raw.get("start_time")), _ms(raw.get("end_time"))
    started = min(starts) if starts else None
    hyper = meta.get(META + "hyperparameters")
    return Job(
        job_id=job_id,
        name=meta.get(META + "name") or job_id,
        provider=RayProvider.name,
        status=status,
        raw_status=ray_status,
        sub_status=phase or raw.get("error_type"),
        job_type=meta.get(META + "job_type"),
        ecs_spec=meta.get(META + "spec"),
        worker_count=int(meta[META + "workers"]) if ours else None,
        image=meta.get(META + "image"),
        user_command=meta.get(META + "command") or raw.get("entrypoint"),
        pods=pods,
        created_at=created,
        started_at=started,
        finished_at=finished,
        duration_seconds=round((finished - started).total_seconds(), 3) if started and finished else None,
        reason=reason,
        reason_code=reason_code,
        max_runtime_minutes=float(meta[META + "max_runtime_minutes"]) if META + "max_runtime_minutes" in meta else None,
        tags={k: v for k, v in meta.items() if not k.startswith(META)},
        hyperparameters=json.loads(hyper) if hyper else {},
    )
