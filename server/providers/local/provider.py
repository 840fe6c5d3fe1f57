"""The ``local`` provider: jobs run as real processes on this machine, through the ``Executor``.

A job is one executor run with the same id (``local-<UTC timestamp>-<8 hex>``). The provider adds the
job's metadata (name, job type, spec, worker count, image, max runtime, tags) in its own tables of the
executor's database (``<state_dir>/executor.db``), inserted in the same transaction as the run.

Pods are named as on the cloud: PyTorchJob/XGBoostJob with more than one worker get ``<job>-master-0``
(RANK 0) then ``<job>-worker-0..N-2``; RayJob gets ``<job>-head-0`` then workers; every other job
``<job>-worker-0..N-1``. Each pod gets the job's ``envs`` plus RANK, WORLD_SIZE, LOCAL_RANK=0,
MASTER_ADDR=127.0.0.1, MASTER_PORT (a free port), CLOUDJOBS_JOB_ID, CLOUDJOBS_POD_ID,
PYTHONUNBUFFERED=1, PATH starting with the directory of this server's Python (so ``python`` is the
environment whose packages ``thirdparty_libs`` is checked against) and CUDA_VISIBLE_DEVICES (the pod's
own GPUs for a GPU spec, "" for a CPU spec; set when the job leaves the queue).

Outputs and hyperparameters: every job has ``<state_dir>/jobs/<job>/outputs`` (CLOUDJOBS_OUTPUT_DIR in each
pod; ``output_models`` lists what is there) and ``<state_dir>/jobs/<job>/hyperparameters.json`` (its path in
CLOUDJOBS_HYPERPARAMETERS_FILE); each hyperparameter NAME is also the variable ``HP_<NAME>`` (upper-cased,
other characters than letters and digits → '_'). Hyperparameters, metric definitions, spot and template
id/version are stored with the job (columns added to older databases on open). Labels are the job's tags
(``label_job``/``unlabel_job``). No spot capacity: ``spot=True`` is refused. Templates are kept by the
server (``template_backend()`` is None).

The queue: each worker holds its spec's CPUs, memory and GPUs while the job runs (by spec, not by use;
see ``scheduler.py``). A request that could never fit the machine is refused (``validate_request``); one
that fits the machine but not what running jobs leave free waits in Queuing, higher ``priority`` first
(1-9, default 1) then in arrival order, and starts when resources free up, started by its own supervisor
whether or not a server is running. ``workload_info`` gives its position. One queue per state directory.

Observability: ``metrics`` (CPU, memory, GPU % of what each pod was allocated, sampled every
``metrics_interval`` s by the supervisor), ``events`` (the executor's: queued, resources allocated,
pod started/exited/killed, OOM evidence, stopped, max runtime, sanity checks), ``sanity_checks``
(``sanity_check=True``: real pre-flight checks before the workers start) and ``error_info``.

Limits: workers are not pinned to CPUs and memory is not capped; the spec bounds what a request may ask
for and what the queue hands out. Pod log lines carry no timestamps of their own: ``pod_logs``
maps ``since``/``until`` through the log's time index, which the job's supervisor samples every 0.5 s (so
a line's time may be up to ~0.5 s late); jobs without an index get their whole log.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import TypeAdapter

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.hyperparameters import env_name
from cloudjobs_mcp.server.models import (
    JOB_TYPES,
    METRIC_KINDS,
    Accelerator,
    Event,
    Image,
    Job,
    JobRequest,
    JobStatus,
    LogPage,
    MetricDefinition,
    MetricKind,
    MetricPoint,
    OutputModel,
    OutputModels,
    Pod,
    PodMetricSeries,
    Price,
    QueueMeta,
    SanityCheckResult,
    Spec,
    SpotPricePoint,
    WorkloadInfo,
)
from cloudjobs_mcp.server.pricing import PriceTable
from cloudjobs_mcp.server.providers.base import TemplateBackend, pod_layout
from cloudjobs_mcp.server.providers.common import WORKLOAD_STATUS, failure_summary
from cloudjobs_mcp.server.providers.local.executor import (
    DEFAULT_PRIORITY,
    Capacity,
    Executor,
    PodSpec,
    Resources,
    RunState,
    SanityOptions,
    check_env,
    record_event,
)
from cloudjobs_mcp.server.providers.local.machine import Machine, build_specs, detect_machine
from cloudjobs_mcp.server.providers.local.sanity import parse_args as parse_sanity_args
from cloudjobs_mcp.server.providers.local.store import Database, to_datetime

PRICE_SOURCE = "CLOUDJOBS_LOCAL_PRICE_PER_HOUR"
# Set by the provider for every pod; a request may not set them in envs.
RESERVED_ENVS = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "CLOUDJOBS_JOB_ID",
    "CLOUDJOBS_POD_ID",
    "CLOUDJOBS_RUN_ID",
    "CLOUDJOBS_OUTPUT_DIR",
    "CLOUDJOBS_HYPERPARAMETERS_FILE",
    "CUDA_VISIBLE_DEVICES",
)
OUTPUT_DIR_ENV = "CLOUDJOBS_OUTPUT_DIR"
HYPERPARAMETERS_FILE_ENV = "CLOUDJOBS_HYPERPARAMETERS_FILE"
HYPERPARAMETERS_FILE = "hyperparameters.json"
OUTPUTS_DIR = "outputs"
MAX_OUTPUT_MODELS = 100  # output_models(): most files listed (newest first)
NO_SPOT = (
    "the local provider has no spot capacity: jobs run on this machine at the price set by "
    "CLOUDJOBS_LOCAL_PRICE_PER_HOUR; quote without spot"
)
STOP_WAIT_SECONDS = 2.0  # stop_job waits this long (at most) for the job to reach Stopped
MAX_SERIES_POINTS = 500  # metrics(): most points per series returned (older ones averaged together)
PRIORITY_RANGE = (1, 9)  # DLC's
QUEUE_NAME = "local"
QUOTA_NAME = "local machine"
WORKLOAD_SOURCE = "local scheduler"

_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS local_jobs (
        job_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        job_type TEXT NOT NULL,
        ecs_spec TEXT NOT NULL,
        worker_count INTEGER NOT NULL,
        image TEXT,
        max_runtime_minutes REAL NOT NULL,
        created_at REAL NOT NULL,
        tags TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS local_job_tags (
        job_id TEXT NOT NULL REFERENCES local_jobs(job_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (job_id, key)
    )
    """,
    "CREATE INDEX IF NOT EXISTS local_job_tags_by_kv ON local_job_tags(key, value)",
    "CREATE INDEX IF NOT EXISTS local_jobs_by_created ON local_jobs(created_at)",
)
# Columns added to local_jobs after its first release; ``_migrate`` adds the missing ones to older files.
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hyperparameters", "TEXT NOT NULL DEFAULT '{}'"),
    ("metric_definitions", "TEXT NOT NULL DEFAULT '[]'"),
    ("spot", "INTEGER NOT NULL DEFAULT 0"),
    ("template_id", "TEXT"),
    ("template_version", "INTEGER"),
    # Recorded so a job can become a template (save_job_template from_job_id); envs stay in memory only.
    ("user_command", "TEXT"),
)
_METRIC_DEFINITIONS = TypeAdapter(list[MetricDefinition])

_REQ_NAME_RE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$")


def new_job_id() -> str:
    return f"local-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _host_python_note() -> str:
    return (
        f"the local provider runs jobs in this machine's own Python environment ({sys.executable}) "
        "and pulls no container image"
    )


def _check_libs(libs: list[str]) -> None:
    """Refuse any requested package that is not installed (or whose installed version does not match)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging is nearly always there
        Requirement = None  # type: ignore[assignment,misc]
        InvalidRequirement = ValueError  # type: ignore[assignment,misc]
    missing: list[str] = []
    mismatched: list[str] = []
    invalid: list[str] = []
    for raw in libs:
        entry = raw.strip()
        if not entry:
            continue
        name: str | None = None
        specifier: Any = None
        if Requirement is not None:
            try:
                req = Requirement(entry)
                name, specifier = req.name, req.specifier
                if req.url:
                    name = None
            except InvalidRequirement:
                name = None
        else:
            m = _REQ_NAME_RE.match(entry)
            name = m.group(1) if m else None
        if name is None:
            invalid.append(entry)
            continue
        try:
            version = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            missing.append(entry)
            continue
        if specifier is not None and str(specifier) and not specifier.contains(version, prereleases=True):
            mismatched.append(f"{entry} (installed: {version})")
    problems = []
    if missing:
        problems.append(f"not installed: {', '.join(missing)}")
    if mismatched:
        problems.append(f"installed with another version: {', '.join(mismatched)}")
    if invalid:
        problems.append(f"not a package requirement: {', '.join(invalid)}")
    if problems:
        raise InvalidRequest(
            f"thirdparty_libs: the local provider runs jobs in this machine's own Python environment "
            f"({sys.executable}) and never installs packages into it; "
            f"{'; '.join(problems)}. Install them into that environment yourself, or remove them from "
            "thirdparty_libs (packages already installed there are accepted)."
        )


class LocalProvider:
    """Runs jobs as processes on this machine. See the module docstring."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.region = "local"
        self.currency = settings.local_currency
        self.state_dir = settings.state_dir
        self._executor: Executor | None = None
        self._machine: Machine | None = None
        self._executor_lock = threading.Lock()
        self._machine_lock = threading.Lock()
        # Seconds between two resource samples of a pod (CLOUDJOBS_LOCAL_METRICS_INTERVAL_SECONDS once the
        # setting exists; tests set the attribute).
        self.metrics_interval = settings.local_metrics_interval_seconds

    # ----- lazily initialised state

    @property
    def executor(self) -> Executor:
        with self._executor_lock:
            if self._executor is None:
                ex = Executor(self.state_dir)
                ex.db.ensure_schema(_SCHEMA)
                _migrate(ex.db)
                self._executor = ex
            return self._executor

    def machine(self) -> Machine:
        """This machine's CPUs, memory and GPUs, detected once per provider (runs nvidia-smi)."""
        with self._machine_lock:
            if self._machine is None:
                self._machine = detect_machine()
            return self._machine

    def specs(self) -> list[Spec]:
        """This machine's specs, priced by the price table where it names local (by spec or per resource),
        else at CLOUDJOBS_LOCAL_PRICE_PER_HOUR."""
        table = PriceTable.from_settings(self.settings)
        specs = build_specs(self.machine(), self.settings.local_price_per_hour, self.currency)
        return [self._priced(spec, table.lookup(self.name, spec)) for spec in specs]

    @staticmethod
    def _priced(spec: Spec, price: Price | None) -> Spec:
        if price is None:
            return spec
        return spec.model_copy(update={"price_per_hour": price.per_worker_hourly, "currency": price.currency})

    async def credential_source(self) -> str:
        return "none needed"

    def _spec(self, instance_type: str) -> Spec:
        specs = self.specs()
        for spec in specs:
            if spec.instance_type == instance_type:
                return spec
        raise NotFound(
            f"unknown spec {instance_type!r} for the local provider; this machine offers: "
            f"{', '.join(s.instance_type for s in specs)}"
        )

    # ----- catalogue

    async def list_specs(self, accelerator: Accelerator | None = None) -> list[Spec]:
        specs = await anyio.to_thread.run_sync(self.specs)
        return [s for s in specs if accelerator is None or s.accelerator == accelerator]

    async def resolve_image(self, job_type: str, chip_type: Accelerator) -> Image:
        _check_job_type(job_type)
        return Image(
            uri=f"local:{sys.executable}",
            job_type=job_type,
            chip_type=chip_type,
            name="host Python environment",
            used=False,
            note=f"No image is used: {_host_python_note()}.",
        )

    async def price(self, instance_type: str) -> Price:
        spec = await anyio.to_thread.run_sync(self._spec, instance_type)
        listed = PriceTable.from_settings(self.settings).lookup(self.name, spec)
        return listed or Price(
            instance_type=spec.instance_type,
            per_worker_hourly=self.settings.local_price_per_hour,
            currency=self.currency,
            source=PRICE_SOURCE,
        )

    def validate_request(self, request: JobRequest, spec: Spec) -> None:
        """Raise NotFound/InvalidRequest when this machine cannot run ``request``.

        Checks the spec against this machine's own list (``spec`` is only a hint), so it may run
        nvidia-smi the first time it is called on a provider."""
        spec = self._spec(request.ecs_spec)
        _check_job_type(request.job_type)
        n = request.worker_count
        if n < 1:
            raise InvalidRequest(f"worker_count must be at least 1, got {n}")
        if not request.user_command.strip():
            raise InvalidRequest(
                "user_command is empty; give the shell command each worker runs, e.g. 'python train.py'"
            )
        if "\0" in request.user_command:
            raise InvalidRequest("user_command contains a NUL character")
        if not 0 < request.max_runtime_minutes < math.inf:
            raise InvalidRequest(
                f"max_runtime_minutes must be a positive number of minutes, got {request.max_runtime_minutes}"
            )
        if request.spot:
            raise InvalidRequest(NO_SPOT)
        check_env(request.envs, "envs")
        reserved = [k for k in request.envs if k in RESERVED_ENVS]
        if reserved:
            raise InvalidRequest(
                f"envs: {', '.join(reserved)} {'is' if len(reserved) == 1 else 'are'} set by the local "
                f"provider for each worker; remove {'it' if len(reserved) == 1 else 'them'} from envs "
                f"(reserved: {', '.join(RESERVED_ENVS)})"
            )
        if request.priority is not None:
            lo, hi = PRIORITY_RANGE
            if isinstance(request.priority, bool) or not lo <= request.priority <= hi:
                raise InvalidRequest(
                    f"priority must be an integer from {lo} to {hi} (higher runs first; default {DEFAULT_PRIORITY}), "
                    f"got {request.priority}"
                )
        _sanity_options(request)
        hyperparameter_envs(request.hyperparameters, request.envs)
        _check_metric_definitions(request.metric_definitions)
        machine = self.machine()
        needs = []
        if n * spec.cpu > machine.cpus:
            needs.append(f"{n * spec.cpu} CPUs")
        if n * spec.memory_gb > machine.memory_gb:
            needs.append(f"{n * spec.memory_gb:g} GiB memory")
        if spec.gpu_count:
            have = len(machine.gpus_of(spec.gpu_type or ""))
            if n * spec.gpu_count > have:
                needs.append(f"{n * spec.gpu_count} {spec.gpu_type} GPUs (it has {have})")
        if needs:
            workers = f"{n} worker{'s' if n != 1 else ''}"
            raise InvalidRequest(
                f"this machine has {machine.describe()}; {workers} of {spec.instance_type} need "
                f"{_and(needs)}. Use fewer workers or a smaller spec."
            )
        _check_libs(request.thirdparty_libs)

    # ----- jobs

    async def create_job(self, request: JobRequest) -> Job:
        await anyio.to_thread.run_sync(self.machine)  # detect off the event loop
        spec = self._spec(request.ecs_spec)
        self.validate_request(request, spec)
        return await anyio.to_thread.run_sync(self._create, request, spec)

    def _create(self, request: JobRequest, spec: Spec) -> Job:
        job_id = new_job_id()
        layout = pod_layout(job_id, request.job_type, request.worker_count)
        port = str(free_port())
        python_dir = os.path.dirname(sys.executable)
        path = os.environ.get("PATH", os.defpath)
        if path.split(os.pathsep)[0] != python_dir:
            path = python_dir + os.pathsep + path
        machine = self.machine()
        run_dir = self.executor.run_dir(job_id)
        outputs = run_dir / OUTPUTS_DIR
        hp_file = run_dir / HYPERPARAMETERS_FILE
        hp_envs = hyperparameter_envs(request.hyperparameters, request.envs)
        pods = []
        for rank, (pod_id, role) in enumerate(layout):
            env = {"PATH": path, "PYTHONUNBUFFERED": "1", **request.envs, **hp_envs}
            env.update(
                RANK=str(rank),
                WORLD_SIZE=str(len(layout)),
                LOCAL_RANK="0",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
                CLOUDJOBS_JOB_ID=job_id,
                CLOUDJOBS_POD_ID=pod_id,
                CLOUDJOBS_OUTPUT_DIR=str(outputs),
                CLOUDJOBS_HYPERPARAMETERS_FILE=str(hp_file),
            )
            pods.append(PodSpec(pod_id, role, env, request.user_command))
        # Each pod holds the spec's CPUs, memory and GPUs (of the spec's model) while the job is allocated;
        # the queue gives it CUDA_VISIBLE_DEVICES=<its own GPUs> ("" for a CPU spec).
        resources = Resources(
            cpus=float(spec.cpu),
            memory_gb=float(spec.memory_gb),
            gpus=spec.gpu_count,
            gpu_pool=tuple(g.index for g in machine.gpus_of(spec.gpu_type or "")) if spec.gpu_count else None,
        )
        capacity = Capacity(float(machine.cpus), float(machine.memory_gb), tuple(g.index for g in machine.gpus))
        now = time.time()

        def record(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO local_jobs (job_id, name, job_type, ecs_spec, worker_count, image, "
                "max_runtime_minutes, created_at, tags, hyperparameters, metric_definitions, spot, "
                "template_id, template_version, user_command) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    request.display_name or job_id,
                    request.job_type,
                    spec.instance_type,
                    request.worker_count,
                    request.image,
                    request.max_runtime_minutes,
                    now,
                    json.dumps(request.tags, sort_keys=True),
                    json.dumps(request.hyperparameters, sort_keys=True),
                    _METRIC_DEFINITIONS.dump_json(request.metric_definitions).decode(),
                    int(request.spot),
                    request.template_id,
                    request.template_version,
                    request.user_command,
                ),
            )
            conn.executemany(
                "INSERT INTO local_job_tags (job_id, key, value) VALUES (?, ?, ?)",
                [(job_id, k, v) for k, v in request.tags.items()],
            )
            if request.image:
                record_event(
                    conn, job_id, None, f"image {request.image!r} recorded but not used: {_host_python_note()}"
                )
            # The run's directory exists once its row does; the pods find these when they start.
            outputs.mkdir(parents=True, exist_ok=True)
            hp_file.write_text(json.dumps(request.hyperparameters, indent=2, sort_keys=True) + "\n")

        try:
            self._launch(job_id, request, pods, resources, capacity, record)
        except BaseException:
            if not self.executor.get_many([job_id]):  # nothing was recorded: leave no directory behind
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        return self._get(job_id)

    def _launch(
        self,
        job_id: str,
        request: JobRequest,
        pods: list[PodSpec],
        resources: Resources,
        capacity: Capacity,
        record: Callable[[sqlite3.Connection], None],
    ) -> None:
        self.executor.launch(
            job_id,
            pods,
            max_runtime_seconds=request.max_runtime_minutes * 60.0,
            grace_seconds=self.settings.local_stop_grace_seconds,
            record=record,
            resources=resources,
            capacity=capacity,
            priority=DEFAULT_PRIORITY if request.priority is None else request.priority,
            metrics_interval=self.metrics_interval,
            sanity=_sanity_options(request),
        )

    async def find_job_by_tag(self, key: str, value: str) -> Job | None:
        return await anyio.to_thread.run_sync(self._find_by_tag, key, value)

    def _find_by_tag(self, key: str, value: str) -> Job | None:
        with self.executor.db.read() as conn:
            row = conn.execute(
                "SELECT j.job_id FROM local_job_tags t JOIN local_jobs j ON j.job_id = t.job_id "
                "WHERE t.key = ? AND t.value = ? ORDER BY j.created_at DESC, j.job_id DESC LIMIT 1",
                (key, value),
            ).fetchone()
        return None if row is None else self._get(row["job_id"])

    async def get_job(self, job_id: str) -> Job:
        return await anyio.to_thread.run_sync(self._get, job_id)

    def _get(self, job_id: str) -> Job:
        return _to_job(*self._record(job_id))

    def _record(self, job_id: str) -> tuple[sqlite3.Row, RunState]:
        """The job's metadata row and its run's state; NotFound when either is missing."""
        with self.executor.db.read() as conn:
            row = conn.execute("SELECT * FROM local_jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise _not_found(job_id)
        states = self.executor.get_many([job_id])
        if job_id not in states:
            raise _not_found(job_id)
        return row, states[job_id]

    async def list_jobs(
        self,
        status: JobStatus | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        limit: int = 100,
        *,
        include_training_jobs: bool = False,  # no PaiStudio training jobs run here: nothing to add
    ) -> list[Job]:
        if limit < 1:
            raise InvalidRequest(f"limit must be at least 1, got {limit}")
        return await anyio.to_thread.run_sync(self._list, status, tags or {}, created_after, limit)

    def _list(
        self, status: JobStatus | None, tags: dict[str, str], created_after: datetime | None, limit: int
    ) -> list[Job]:
        sql = "SELECT * FROM local_jobs j WHERE 1 = 1"
        args: list[Any] = []
        if created_after is not None:
            if created_after.tzinfo is None:
                created_after = created_after.replace(tzinfo=UTC)
            sql += " AND ROUND(j.created_at, 6) > ROUND(?, 6)"  # datetimes keep microseconds
            args.append(created_after.timestamp())
        for key, value in tags.items():
            sql += (
                " AND EXISTS (SELECT 1 FROM local_job_tags t WHERE t.job_id = j.job_id AND t.key = ? AND t.value = ?)"
            )
            args += [key, value]
        sql += " ORDER BY j.created_at DESC, j.job_id DESC"
        if status is None:
            sql += " LIMIT ?"
            args.append(limit)
        with self.executor.db.read() as conn:
            rows = conn.execute(sql, args).fetchall()
        jobs: list[Job] = []
        for start in range(0, len(rows), 200):
            chunk = rows[start : start + 200]
            states = self.executor.get_many([r["job_id"] for r in chunk])
            for r in chunk:
                state = states.get(r["job_id"])
                if state is None:
                    continue
                job = _to_job(r, state)
                if status is None or job.status == status:
                    jobs.append(job)
                    if len(jobs) >= limit:
                        return jobs
        return jobs

    async def stop_job(self, job_id: str) -> Job:
        return await anyio.to_thread.run_sync(self._stop, job_id)

    def _stop(self, job_id: str) -> Job:
        job = self._get(job_id)
        if job.status.is_terminal:
            return job
        wait = min(self.settings.local_stop_grace_seconds + 0.5, STOP_WAIT_SECONDS)
        self.executor.stop(job_id, wait_seconds=wait)
        return self._get(job_id)

    async def delete_job(self, job_id: str) -> None:
        await anyio.to_thread.run_sync(self._delete, job_id)

    def _delete(self, job_id: str) -> None:
        job = self._get(job_id)
        if not job.status.is_terminal:
            raise InvalidRequest(
                f"job {job_id} is {job.status.value}; stop it first, then delete it "
                "(only Succeeded, Failed or Stopped jobs can be deleted)"
            )
        self.executor.delete(job_id)

    async def pod_logs(
        self,
        job_id: str,
        pod_id: str,
        *,
        max_lines: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> LogPage:
        """The pod's log (stdout and stderr merged): the lines written in ``[since, until)`` (either bound
        optional; naive datetimes are UTC), then the last ``max_lines`` of them when given. Without
        ``max_lines`` the whole log (or window) comes back, up to 64 MiB read from its end; ``truncated``
        says older lines were left out.

        Lines have no timestamps of their own: the window is mapped through the log's time index, kept by
        the job's supervisor (sampled every 0.5 s, so a line counts as written up to ~0.5 s late), and only
        that part of the file is read. A log without an index (a job from before indexes existed) is
        returned whole, as if no window had been asked."""
        if max_lines is not None and max_lines < 0:
            raise InvalidRequest(f"max_lines must be 0 or more, got {max_lines}")
        return await anyio.to_thread.run_sync(self._pod_logs, job_id, pod_id, max_lines, since, until)

    def _pod_logs(
        self, job_id: str, pod_id: str, max_lines: int | None, since: datetime | None, until: datetime | None
    ) -> LogPage:
        job = self._get(job_id)
        _check_pod(job, pod_id)
        tail = self.executor.read_log(job_id, pod_id, max_lines, since, until)
        return LogPage(pod_id=pod_id, lines=tail.lines, truncated=tail.truncated)

    async def events(self, job_id: str, pod_id: str | None = None) -> list[Event]:
        return await anyio.to_thread.run_sync(self._events, job_id, pod_id)

    def _events(self, job_id: str, pod_id: str | None) -> list[Event]:
        job = self._get(job_id)
        if pod_id is not None:
            _check_pod(job, pod_id)
        return [
            Event(time=e.time, source=e.pod_id or e.run_id, message=e.message)
            for e in self.executor.events(job_id, pod_id)
        ]

    async def metrics(
        self, job_id: str, metric: MetricKind, *, since: datetime | None = None, step_seconds: int | None = None
    ) -> list[PodMetricSeries]:
        """One resource metric (cpu, memory, gpu_core, gpu_memory; % of what each pod was allocated) for
        every pod of the job, oldest point first, sampled by the job's supervisor every
        ``metrics_interval`` seconds (2 s by default) while the pod runs.

        ``since`` keeps points from then on (naive = UTC). ``step_seconds`` averages points into buckets
        of that many seconds (aligned to the epoch; a point's time is its bucket's start). Either way a
        series has at most ``MAX_SERIES_POINTS`` points: beyond that, consecutive points are averaged
        together. A pod with no sample (not started yet, no GPU for gpu_* metrics) has no points."""
        if metric not in METRIC_KINDS:
            raise InvalidRequest(f"unknown metric {metric!r}; known: {', '.join(METRIC_KINDS)}")
        if step_seconds is not None and (isinstance(step_seconds, bool) or not step_seconds > 0):
            raise InvalidRequest(f"step_seconds must be a positive number of seconds, got {step_seconds}")
        return await anyio.to_thread.run_sync(self._metrics, job_id, metric, since, step_seconds)

    def _metrics(
        self, job_id: str, metric: MetricKind, since: datetime | None, step_seconds: int | None
    ) -> list[PodMetricSeries]:
        job = self._get(job_id)
        raw = self.executor.metrics(job_id, metric, since)
        out = []
        for pod in job.pods:
            points = raw.get(pod.pod_id, [])
            if step_seconds is not None:
                points = _buckets(points, float(step_seconds))
            points = _thin(points, MAX_SERIES_POINTS)
            out.append(
                PodMetricSeries(
                    pod_id=pod.pod_id,
                    metric=metric,
                    unit="%",
                    points=[MetricPoint(time=datetime.fromtimestamp(t, UTC), value=round(v, 2)) for t, v in points],
                )
            )
        return out

    async def sanity_checks(self, job_id: str) -> list[SanityCheckResult]:
        """The pre-flight checks the job's supervisor ran before its workers (create with
        ``sanity_check=True``); empty when the job did not ask for them."""
        return await anyio.to_thread.run_sync(self._sanity_checks, job_id)

    def _sanity_checks(self, job_id: str) -> list[SanityCheckResult]:
        self._get(job_id)
        return [
            SanityCheckResult(
                check_number=c.check_number,
                phase=c.phase,
                status=c.status,
                message=c.message,
                started_at=c.started_at,
                finished_at=c.finished_at,
            )
            for c in self.executor.sanity_checks(job_id)
        ]

    async def workload_info(self, job_id: str) -> WorkloadInfo:
        """The job's place in this machine's queue (one queue per state directory: 'local')."""
        return await anyio.to_thread.run_sync(self._workload_info, job_id)

    def _workload_info(self, job_id: str) -> WorkloadInfo:
        row, state = self._record(job_id)
        job = _to_job(row, state)
        position = state.queue_position
        if state.resources is not None:
            scheduled = state.allocated_at is not None
        else:  # a job from before the queue existed
            scheduled = state.started_at is not None
        user_id, user_name = _os_user()
        note = (
            "One queue per machine (state directory): jobs wait until the CPUs, memory and GPUs of their "
            "spec are free, higher priority first, then in arrival order; position 1 starts next."
        )
        if job.status == JobStatus.QUEUING and job.reason:
            note += f" Now: {job.reason}."
        return WorkloadInfo(
            job_id=job_id,
            name=job.name,
            workload_type=job.job_type,
            status=WORKLOAD_STATUS[job.status],
            created_at=job.created_at,
            enqueued_at=state.enqueued_at or job.created_at,
            user_id=user_id,
            user_name=user_name,
            priority=job.priority,
            is_scheduled=scheduled,
            in_quota=True,
            queue_position=position,
            quota_name=QUOTA_NAME,
            queue_metas=[QueueMeta(queue=QUEUE_NAME, position=position)],
            source=WORKLOAD_SOURCE,
            unavailable=["WorkspaceId", "WorkspaceName", "TenantId", "QuotaId"],
            note=note,
        )

    async def error_info(self, job_id: str) -> str | None:
        """For a Failed job, ``"<reason_code>: <reason>"`` (the executor's own diagnosis: the failing pod's
        exit code or signal, OOM evidence, the failed sanity check, ...); None for any other status."""
        return failure_summary(await self.get_job(job_id))

    # ----- labels

    async def label_job(self, job_id: str, labels: dict[str, str]) -> Job:
        """Add or change labels (the job's tags, which ``list_jobs(tags=...)`` filters on); returns the job
        with all its labels. The engine keeps the server's own tag keys out of here."""
        _check_labels(labels)
        return await anyio.to_thread.run_sync(self._relabel, job_id, dict(labels), [])

    async def unlabel_job(self, job_id: str, keys: list[str]) -> Job:
        """Remove labels by key (absent keys are ignored); returns the job."""
        return await anyio.to_thread.run_sync(self._relabel, job_id, {}, list(keys))

    def _relabel(self, job_id: str, labels: dict[str, str], remove: list[str]) -> Job:
        with self.executor.db.write() as conn:
            row = conn.execute("SELECT tags FROM local_jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise _not_found(job_id)
            tags: dict[str, str] = json.loads(row["tags"])
            for key in remove:
                tags.pop(key, None)
            tags.update(labels)
            conn.execute("UPDATE local_jobs SET tags = ? WHERE job_id = ?", (json.dumps(tags, sort_keys=True), job_id))
            conn.executemany("DELETE FROM local_job_tags WHERE job_id = ? AND key = ?", [(job_id, k) for k in remove])
            conn.executemany(
                "INSERT INTO local_job_tags (job_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value",
                [(job_id, k, v) for k, v in labels.items()],
            )
        return self._get(job_id)

    # ----- spot, outputs, templates

    async def spot_price_history(self, instance_type: str, hours: float) -> list[SpotPricePoint]:
        """Always InvalidRequest: this machine has no spot capacity."""
        raise InvalidRequest(NO_SPOT)

    def output_dir(self, job_id: str) -> Path:
        """``<state_dir>/jobs/<job_id>/outputs``: each pod gets it as CLOUDJOBS_OUTPUT_DIR."""
        return self.executor.run_dir(job_id) / OUTPUTS_DIR

    async def output_models(self, job_id: str) -> OutputModels:
        """The files the job wrote under its output directory ($CLOUDJOBS_OUTPUT_DIR), recursively, newest
        first, at most ``MAX_OUTPUT_MODELS`` (``total`` counts them all); ``uri`` is the file's path."""
        return await anyio.to_thread.run_sync(self._output_models, job_id)

    def _output_models(self, job_id: str) -> OutputModels:
        self._record(job_id)
        root = self.output_dir(job_id)
        found: list[tuple[float, str, Path, int]] = []
        if root.is_dir():
            for dirpath, _dirs, files in os.walk(root):
                for fname in files:
                    path = Path(dirpath) / fname
                    try:
                        st = path.stat()
                    except OSError:  # a dangling link, or removed meanwhile
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    found.append((st.st_mtime, path.relative_to(root).as_posix(), path, st.st_size))
            note = (
                f"Files the job wrote under its output directory {root} (given to each worker as "
                f"${OUTPUT_DIR_ENV}), newest first; removed with the job."
            )
        else:
            note = (
                f"The job has no output directory ({root} does not exist: it was created before output "
                f"directories existed, or it was removed). Jobs write outputs to ${OUTPUT_DIR_ENV}."
            )
        found.sort(key=lambda f: (-f[0], f[1]))
        models = [
            OutputModel(name=name, uri=str(path), size_bytes=size, created_at=datetime.fromtimestamp(mtime, UTC))
            for mtime, name, path, size in found[:MAX_OUTPUT_MODELS]
        ]
        return OutputModels(
            job_id=job_id, models=models, total=len(found), truncated=len(found) > MAX_OUTPUT_MODELS, note=note
        )

    def template_backend(self) -> TemplateBackend | None:
        """None: the server keeps local templates itself (``server.templates.TemplateStore``)."""
        return None

    async def aclose(self) -> None:
        """Nothing to release: jobs run under their own supervisor processes and keep running."""


def hyperparameter_envs(hyperparameters: Mapping[str, str], envs: Mapping[str, str]) -> dict[str, str]:
    """``HP_<NAME>`` variables of the hyperparameters (name upper-cased, every character other than a
    letter or digit → '_'); InvalidRequest for a bad name or value, or when two names (or a name and
    an ``envs`` entry) give the same variable."""
    out: dict[str, str] = {}
    origin: dict[str, str] = {}
    for name, value in hyperparameters.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest(f"hyperparameters: invalid name {name!r}; give a non-empty name, e.g. 'lr'")
        if not isinstance(value, str) or "\0" in value:
            raise InvalidRequest(f"hyperparameters: the value of {name!r} must be a string without NUL characters")
        var = env_name(name)
        if var in origin:
            raise InvalidRequest(
                f"hyperparameters: {origin[var]!r} and {name!r} both become the environment variable {var} "
                "(names are upper-cased, other characters than letters and digits become '_'); rename one"
            )
        if var in envs:
            raise InvalidRequest(
                f"hyperparameters: {name!r} becomes the environment variable {var}, which envs sets too; "
                f"remove {var} from envs or rename the hyperparameter"
            )
        origin[var] = name
        out[var] = value
    return out


def _check_metric_definitions(definitions: list[MetricDefinition]) -> None:
    seen: set[str] = set()
    for d in definitions:
        if not d.name.strip():
            raise InvalidRequest("metric_definitions: a metric needs a name, e.g. 'loss'")
        if d.name in seen:
            raise InvalidRequest(f"metric_definitions: {d.name!r} is defined twice")
        seen.add(d.name)
        try:
            groups = re.compile(d.regex).groups
        except re.error as exc:
            raise InvalidRequest(f"metric_definitions: {d.name}: invalid regex {d.regex!r}: {exc}") from None
        if groups < 1:
            raise InvalidRequest(
                f"metric_definitions: {d.name}: the regex {d.regex!r} needs a group capturing the value, "
                "e.g. 'loss=([0-9.eE+-]+)'"
            )


def _check_labels(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if not isinstance(key, str) or not key.strip():
            raise InvalidRequest(f"labels: invalid key {key!r}; give a non-empty key")
        if not isinstance(value, str):
            raise InvalidRequest(f"labels: the value of {key!r} must be a string")


def _migrate(db: Database) -> None:
    """Add the columns of ``_ADDED_COLUMNS`` that an older local_jobs table lacks (one writer at a time)."""
    with db.read() as conn:
        have = {r["name"] for r in conn.execute("PRAGMA table_info(local_jobs)")}
    if all(name in have for name, _ in _ADDED_COLUMNS):
        return
    with db.write() as conn:
        have = {r["name"] for r in conn.execute("PRAGMA table_info(local_jobs)")}
        for name, decl in _ADDED_COLUMNS:
            if name not in have:
                conn.execute(f"ALTER TABLE local_jobs ADD COLUMN {name} {decl}")


def _sanity_options(request: JobRequest) -> SanityOptions | None:
    """The sanity check options of ``request`` (None without sanity_check); InvalidRequest on bad args."""
    args = (request.sanity_check_args or "").strip()
    if not request.sanity_check:
        if args:
            raise InvalidRequest("sanity_check_args is given but sanity_check is false; set sanity_check=true")
        return None
    try:
        return parse_sanity_args(args)
    except ValueError as exc:
        raise InvalidRequest(f"sanity_check_args {args!r}: {exc}") from None


def _buckets(points: list[tuple[float, float]], step: float) -> list[tuple[float, float]]:
    """Means of the points in each ``step``-second bucket (aligned to the epoch), at the bucket's start."""
    sums: dict[float, list[float]] = {}
    for t, v in points:
        key = math.floor(t / step) * step
        acc = sums.setdefault(key, [0.0, 0.0])
        acc[0] += v
        acc[1] += 1
    return [(k, total / n) for k, (total, n) in sorted(sums.items())]


def _thin(points: list[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most ``limit`` points: groups of consecutive points averaged, at the group's first time."""
    if len(points) <= limit:
        return points
    size = math.ceil(len(points) / limit)
    out = []
    for i in range(0, len(points), size):
        group = points[i : i + size]
        out.append((group[0][0], sum(v for _, v in group) / len(group)))
    return out


def _os_user() -> tuple[str | None, str | None]:
    """The OS user running the jobs (this server's): (uid, name)."""
    try:
        uid: str | None = str(os.getuid())
    except AttributeError:  # pragma: no cover - not POSIX
        uid = None
    try:
        name: str | None = getpass.getuser()
    except (KeyError, OSError):
        name = None
    return uid, name


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _check_job_type(job_type: str) -> None:
    if job_type not in JOB_TYPES:
        raise InvalidRequest(f"unknown job_type {job_type!r}; allowed: {', '.join(JOB_TYPES)}")


def _check_pod(job: Job, pod_id: str) -> None:
    if not any(p.pod_id == pod_id for p in job.pods):
        raise NotFound(f"job {job.job_id} has no pod {pod_id!r}; its pods are: {', '.join(p.pod_id for p in job.pods)}")


def _not_found(job_id: str) -> NotFound:
    return NotFound(f"no local job {job_id!r}; list the jobs (list_jobs) to see the ids that exist")


def _to_job(row: sqlite3.Row, state: RunState) -> Job:
    sub_status = None
    if state.sanity_checking and not state.terminal:
        sub_status = "SanityChecking"
    return Job(
        job_id=row["job_id"],
        name=row["name"],
        provider=LocalProvider.name,
        status=JobStatus(state.status),
        raw_status=state.status,
        sub_status=sub_status,
        job_type=row["job_type"],
        ecs_spec=row["ecs_spec"],
        worker_count=row["worker_count"],
        image=row["image"],
        user_command=row["user_command"],
        pods=[
            Pod(
                pod_id=p.pod_id,
                role=p.role,
                status=p.status,
                sub_status=p.detail,
                exit_code=p.exit_code,
                ip="127.0.0.1" if p.started_at is not None else None,
                started_at=p.started_at,
                finished_at=p.finished_at,
            )
            for p in state.pods
        ],
        created_at=to_datetime(row["created_at"]),
        started_at=state.started_at,
        finished_at=state.finished_at,
        duration_seconds=None if state.duration_seconds is None else round(state.duration_seconds, 3),
        reason=state.reason,
        reason_code=state.reason_code,
        max_runtime_minutes=row["max_runtime_minutes"],
        tags=json.loads(row["tags"]),
        priority=state.priority,
        resource_id=None,
        hyperparameters=json.loads(row["hyperparameters"]),
        metric_definitions=_METRIC_DEFINITIONS.validate_json(row["metric_definitions"]),
        spot=bool(row["spot"]),
        template_id=row["template_id"],
        template_version=row["template_version"],
    )
