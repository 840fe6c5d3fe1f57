"""PaiStudio 2022-01-12 in the sandbox: training jobs (``train…`` ids) and resource-quota queues.

A training job is a row of ``sandbox_training_jobs`` plus the PAI-DLC job that runs it (its ``DlcJobId``):
CreateTrainingJob (or :meth:`Sandbox.create_training_job <server.sandbox.app.Sandbox.create_training_job>`)
turns the PaiStudio body into a DLC CreateJob body — ``ComputeResource.EcsSpec`` × ``EcsCount`` (or
``ResourceId`` + ``InstanceSpec`` × ``InstanceCount`` on a quota) pods of ``AlgorithmSpec.JobType``,
``AlgorithmSpec.Command`` as the command, ``Environments``, ``Priority``, ``Settings`` — and runs it through
the executor like any DLC job, so faults, logs, events, metrics and sanity checks are the DLC job's. Its
instances are the DLC job's pods, named after the training job (``train…-master-0``, ``train…-worker-0``).

Statuses (the PAI Python SDK's ``TrainingJobStatus`` values) from the DLC job's: Creating → ``Creating``,
Queuing → ``Submitted``, EnvPreparing / SanityChecking → ``Initializing``, Running → ``Running`` (also while
Stopping: PaiStudio has no stopping status), Succeeded → ``Succeed``, Failed → ``Failed``, Stopped →
``Terminated``. StatusTransitions are those phases, merged where two map to one status.

Shapes follow the SDK's models (alibabacloud-paistudio20220112 2.6.2): GetTrainingJob's ``Scheduler`` values
are strings, ListTrainingJobs' an int; ListTrainingJobs items have no Instances / AlgorithmSpec / Priority /
Duration; ``TotalCount`` of logs and events is a string; instance metrics stamp ``Time`` as ISO-8601.
Unknown training jobs answer 404 ``TRAINING_JOB_NOT_FOUND`` and unknown (or not yet started) instances 404
``TRAINING_JOB_INSTANCE_NOT_FOUND``, unknown quotas 404 ``QUOTA_NOT_FOUND`` (the first two codes follow the
one the provider has seen, ``TRAINING_JOB_INSTANCE_NOT_FOUND``; the wording is ours). ListTrainingJobLogs
serves at most ``MAX_LOG_PAGE`` lines a page (a cap of ours: clients page by TotalCount).

Labels: UpdateTrainingJobLabels (``POST …/labels``, ``{"Labels": [{Key, Value}]}``) adds or overwrites by
key, DeleteTrainingJobLabels (``DELETE …/labels?Keys=a,b``) removes keys; GetTrainingJob and ListTrainingJobs
(and its ``Labels`` filter, a JSON map) show the result.

Hyperparameters: ``HyperParameters`` [{Name, Value}] (values strings; numbers are turned into strings) reach
every instance as ``HP_<NAME>`` (upper-cased, other characters than letters and digits as ``_``; a clash with
``Environments`` or another name is refused), as ``PAI_HPS`` (a JSON object name → value) and as a JSON file
(the same object) at ``$CLOUDJOBS_HYPERPARAMETERS_FILE`` (``<state_dir>/sandbox-runs/<dlc job>/config/
hyperparameters.json``); GetTrainingJob returns them.

Outputs: every pod (of any job) gets ``CLOUDJOBS_OUTPUT_DIR`` = ``<state_dir>/sandbox-runs/<dlc job>/outputs``;
a training job's instances also get ``PAI_OUTPUT_MODEL`` (``…/outputs/model``) and ``PAI_OUTPUT_<NAME>`` for
each of its OutputChannels (``…/outputs/<name>``). ListTrainingJobOutputModels lists the files under the
outputs directory (at most ``MAX_OUTPUT_MODELS``, by path) as OutputModels: ``OutputChannelName`` (the
channel whose directory holds the file, else ``model``), ``Uri`` (``file://`` + its absolute path),
``SourceType`` ``TrainingService``, ``SourceId`` ``region=…,workspaceId=…,kind=TrainingJob,id=train…``,
``Labels`` ``Name`` (its path under the outputs directory), ``SizeBytes``, ``GmtModifiedTime``, and
``Metrics`` (the job's latest metrics, name → value). The SDK's OutputModel has no Name field: the path is
the ``Name`` label. DeleteJob / DeleteTrainingJob remove the directory.

GetTrainingJobErrorInfo: for a Failed job ``{"Code": ReasonCode, "Message": ReasonMessage,
"AdditionalInfo": the last lines of the failing instance's log}``; otherwise an empty ``ErrorInfo``.
Training metrics (GetTrainingJobLatestMetrics, ``LatestMetrics``) are read from the instances' logs with
``AlgorithmSpec.MetricDefinitions`` (``[{"Name", "Regex"}]``, the first group is the value).
"""

from __future__ import annotations

import json
import math
import re
import shlex
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from cloudjobs_mcp.server.errors import NotFound
from cloudjobs_mcp.server.hyperparameters import env_name
from cloudjobs_mcp.server.sandbox import observe, quotas
from cloudjobs_mcp.server.sandbox.errors import ApiError, invalid, missing
from cloudjobs_mcp.server.sandbox.faults import job_faults
from cloudjobs_mcp.server.sandbox.jobs import (
    DISPLAY_NAME,
    JOB_SETTINGS_FIELDS,
    JOB_TYPES,
    JobView,
    clean,
    duration,
    event_line,
    iso,
    parse_iso,
    str_map,
)
from cloudjobs_mcp.server.sandbox.store import TrainingJob

if TYPE_CHECKING:
    from cloudjobs_mcp.server.sandbox.app import Ctx, Sandbox

STATUS = {
    "Creating": "Creating",
    "Queuing": "Submitted",
    "EnvPreparing": "Initializing",
    "SanityChecking": "Initializing",
    "Running": "Running",
    "Stopping": "Running",
    "Succeeded": "Succeed",
    "Failed": "Failed",
    "Stopped": "Terminated",
}
# Every status the PAI Python SDK knows (ListTrainingJobs' Status filter accepts them all).
STUDIO_STATUSES = (
    "Creating", "Created", "Submitted", "Initializing", "Running", "Succeed", "Failed", "CreateFailed",
    "InitializeFailed", "Terminated",
)  # fmt: skip
TRAINING_JOB_NOT_FOUND = "TRAINING_JOB_NOT_FOUND"
INSTANCE_NOT_FOUND = "TRAINING_JOB_INSTANCE_NOT_FOUND"
QUOTA_NOT_FOUND = "QUOTA_NOT_FOUND"
MAX_LOG_PAGE = 200
MAX_PAGE = 100
ERROR_LINES = 10
LIST_WINDOW = 7 * 24 * 3600.0

# The fields of the SDK's models, so that only those are echoed.
SETTINGS_FIELDS = frozenset(
    "AdvancedSettings BusinessUserId Caller Driver EnableErrorMonitoringInAIMaster EnableOssAppend EnableRDMA "
    "EnableSanityCheck EnableTideResource ErrorMonitoringArgs JobReservedMinutes JobReservedPolicy OversoldType "
    "PipelineId SanityCheckArgs Tags".split()
)
ALGORITHM_FIELDS = frozenset(
    "CodeDir Command ComputeResource Customization HyperParameters Image InputChannels JobType MetricDefinitions "
    "OutputChannels ProgressDefinitions ResourceRequirements SupportedInstanceTypes SupportsDistributedTraining".split()
)
INSTANCE_SPEC_FIELDS = ("CPU", "GPU", "GPUType", "Memory", "SharedMemory")
INPUT_FIELDS = ("DatasetId", "InputUri", "Name", "Options", "RoleArn", "VersionName")
OUTPUT_FIELDS = ("DatasetId", "Name", "OutputUri", "RoleArn", "VersionName")
HYPERPARAMETERS_FILE = "hyperparameters.json"
DEFAULT_CHANNEL = "model"
MAX_OUTPUT_MODELS = 100
SHELLS = ("sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash")


def not_found(training_job_id: str) -> ApiError:
    return ApiError(404, TRAINING_JOB_NOT_FOUND, f"training job {training_job_id} not found")


def instance_not_found(training_job_id: str, instance_id: str, why: str = "not found") -> ApiError:
    return ApiError(404, INSTANCE_NOT_FOUND, f"instance {instance_id} of training job {training_job_id} {why}")


def new_training_job_id() -> str:
    """``train`` + 11 lower-case letters and digits (like ``train129f212o89d``)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "train" + "".join(alphabet[b % len(alphabet)] for b in uuid.uuid4().bytes[:11])


def user_command(command: Sequence[str]) -> str:
    """``AlgorithmSpec.Command`` as the pods' ``bash -c`` line (``[sh, -c, X]`` is X itself)."""
    if len(command) == 3 and command[0] in SHELLS and command[1] == "-c":
        return command[2]
    return shlex.join(command)


# ----------------------------------------------------------------------------------------- create


def _objects(value: Any, name: str, fields: Sequence[str]) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid(name, "must be a list of objects")
    return [{k: v for k, v in item.items() if k in fields} for item in value]


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(name, "must be an integer of at least 1")
    return value


hp_env = env_name  # the local provider's rule (server/hyperparameters.py)


def _hyperparameters(value: Any, envs: Mapping[str, str]) -> list[dict[str, str]]:
    items = _objects(value, "HyperParameters", ("Name", "Value"))
    seen: dict[str, str] = {}
    out = []
    for i, item in enumerate(items, start=1):
        name, raw = item.get("Name"), item.get("Value")
        if not isinstance(name, str) or not name.strip():
            raise missing(f"HyperParameters.{i}.Name")
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise invalid(f"HyperParameters.{i}.Value", "must be a string")
        var = hp_env(name)
        if var in seen:
            raise invalid(f"HyperParameters.{i}.Name", f"{seen[var]!r} and {name!r} both become {var}")
        if var in envs:
            raise invalid(f"HyperParameters.{i}.Name", f"{name!r} becomes {var}, which Environments sets too")
        seen[var] = name
        out.append({"Name": name, "Value": str(raw)})
    return out


def validate_training(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(stored PaiStudio body, DLC CreateJob body)`` from a CreateTrainingJob body; the PaiStudio fields'
    own errors (the DLC body is validated again by ``jobs.validate_create``)."""
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    name = body.get("TrainingJobName")
    if not name:
        raise missing("TrainingJobName")
    if not isinstance(name, str) or not DISPLAY_NAME.match(name):
        raise invalid("TrainingJobName", "use 1-256 characters from letters, digits, '_', '.' and '-'")
    if not body.get("WorkspaceId"):
        raise missing("WorkspaceId")
    spec = body.get("AlgorithmSpec")
    if spec is None:
        if body.get("AlgorithmName"):
            raise invalid(
                "AlgorithmName",
                "registered algorithms are not available in the PAI sandbox; pass AlgorithmSpec (Image, Command, "
                "JobType) instead",
            )
        raise missing("AlgorithmSpec")
    if not isinstance(spec, dict):
        raise invalid("AlgorithmSpec", "must be an object")
    image = spec.get("Image")
    if not image:
        raise missing("AlgorithmSpec.Image")
    if not isinstance(image, str) or any(c.isspace() for c in image):
        raise invalid("AlgorithmSpec.Image", f"{image!r} is not an image URI")
    command = spec.get("Command")
    if not command:
        raise missing("AlgorithmSpec.Command")
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise invalid("AlgorithmSpec.Command", 'must be a list of strings, e.g. ["python", "train.py"]')
    job_type = spec.get("JobType")
    if not job_type:
        raise missing("AlgorithmSpec.JobType")
    if job_type not in JOB_TYPES:
        raise invalid("AlgorithmSpec.JobType", f"{job_type!r} is not a job type; valid values: {', '.join(JOB_TYPES)}")
    definitions = _objects(
        spec.get("MetricDefinitions"), "AlgorithmSpec.MetricDefinitions", ("Name", "Regex", "Description")
    )
    for i, d in enumerate(definitions, start=1):
        try:
            pattern = re.compile(str(d.get("Regex") or ""))
        except re.error as exc:
            raise invalid(f"AlgorithmSpec.MetricDefinitions.{i}.Regex", str(exc)) from None
        if not d.get("Name") or pattern.groups < 1:
            raise invalid(f"AlgorithmSpec.MetricDefinitions.{i}", "needs a Name and a Regex with a group")

    compute = body.get("ComputeResource")
    if not isinstance(compute, dict):
        raise missing("ComputeResource")
    resource_id = compute.get("ResourceId") or ""
    resource: dict[str, Any]
    if resource_id:
        instance_spec = compute.get("InstanceSpec")
        if not isinstance(instance_spec, dict) or not instance_spec.get("CPU") or not instance_spec.get("Memory"):
            raise missing("ComputeResource.InstanceSpec")
        if not all(isinstance(v, str) for v in instance_spec.values()):
            raise invalid("ComputeResource.InstanceSpec", 'values are strings, e.g. {"CPU": "8", "Memory": "32Gi"}')
        count = _count(compute.get("InstanceCount", compute.get("EcsCount", 1)), "ComputeResource.InstanceCount")
        config = {k: instance_spec[k] for k in ("CPU", "Memory", "GPU", "GPUType") if instance_spec.get(k)}
        resource = {"ResourceConfig": config}
    else:
        if not compute.get("EcsSpec"):
            raise missing("ComputeResource.EcsSpec")
        count = _count(compute.get("EcsCount", 1), "ComputeResource.EcsCount")
        resource = {"EcsSpec": str(compute["EcsSpec"])}
    spot = compute.get("UseSpotInstance")
    if spot is not None and not isinstance(spot, bool):
        raise invalid("ComputeResource.UseSpotInstance", "must be a boolean")

    scheduler = body.get("Scheduler") or {}
    if not isinstance(scheduler, dict):
        raise invalid("Scheduler", "must be an object")
    seconds = 0
    for key, factor in (("MaxRunningTimeInSeconds", 1), ("MaxRunningTimeInMinutes", 60)):
        raw = scheduler.get(key)
        if raw in (None, ""):
            continue
        try:
            seconds = int(raw) * factor
        except (TypeError, ValueError):
            raise invalid(f"Scheduler.{key}", f"{raw!r} is not an integer") from None
        if seconds < 0:
            raise invalid(f"Scheduler.{key}", "must be 0 (no limit) or more")
        break
    envs = str_map(body.get("Environments"), "Environments")
    hyperparameters = _hyperparameters(body.get("HyperParameters"), envs)
    labels = _objects(body.get("Labels"), "Labels", ("Key", "Value"))
    settings = body.get("Settings")
    if settings is not None and not isinstance(settings, dict):
        raise invalid("Settings", "must be an object")
    priority = body.get("Priority")
    requirements = body.get("PythonRequirements")
    if requirements is not None and (
        not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements)
    ):
        raise invalid("PythonRequirements", "must be a list of strings")

    stored: dict[str, Any] = {
        "TrainingJobName": name,
        "WorkspaceId": str(body["WorkspaceId"]),
        "AlgorithmSpec": {
            "Image": image,
            "Command": list(command),
            "JobType": job_type,
            **({"MetricDefinitions": definitions} if definitions else {}),
        },
        "ComputeResource": {
            k: v
            for k, v in compute.items()
            if k
            in ("EcsSpec", "EcsCount", "InstanceCount", "InstanceSpec", "ResourceId", "UseSpotInstance", "SpotSpec")
        },
        "Scheduler": {"MaxRunningTimeInSeconds": seconds},
        "Environments": envs,
        "Labels": labels,
        "HyperParameters": hyperparameters,
        "InputChannels": _objects(body.get("InputChannels"), "InputChannels", INPUT_FIELDS),
        "OutputChannels": _objects(body.get("OutputChannels"), "OutputChannels", OUTPUT_FIELDS),
        "PythonRequirements": list(requirements or []),
        "Settings": {k: v for k, v in (settings or {}).items() if k in SETTINGS_FIELDS},
    }
    if isinstance(body.get("TrainingJobDescription"), str):
        stored["TrainingJobDescription"] = body["TrainingJobDescription"]
    if priority is not None:
        stored["Priority"] = priority
    dlc: dict[str, Any] = {
        "DisplayName": name,
        "JobType": job_type,
        "JobSpecs": [
            {
                "Type": "Worker",
                "Image": image,
                "PodCount": count,
                **resource,
                **({"UseSpotInstance": spot} if spot is not None else {}),
                **({"SpotSpec": dict(compute["SpotSpec"])} if isinstance(compute.get("SpotSpec"), dict) else {}),
            }
        ],
        "UserCommand": user_command(command),
        "WorkspaceId": str(body["WorkspaceId"]),
        "Envs": envs,
        "ThirdpartyLibs": list(requirements or []),
    }
    if resource_id:
        dlc["ResourceId"] = resource_id
    if priority is not None:
        dlc["Priority"] = priority
    if seconds:
        dlc["JobMaxRunningTimeMinutes"] = math.ceil(seconds / 60)
    dlc_settings = {k: v for k, v in stored["Settings"].items() if k in JOB_SETTINGS_FIELDS}
    if dlc_settings:
        dlc["Settings"] = dlc_settings
    return stored, dlc


# ----------------------------------------------------------------------------------------- shapes


def status_of(view: JobView) -> str:
    return STATUS.get(view.status, "Running")


def transitions(view: JobView) -> list[dict[str, Any]]:
    """StatusTransitions: the DLC phases under PaiStudio's names, consecutive equal ones merged."""
    merged: list[dict[str, Any]] = []
    for phase in view.phases:
        status = STATUS.get(phase.status, "Running")
        if merged and merged[-1]["Status"] == status:
            merged[-1].update(ReasonCode=phase.reason_code, ReasonMessage=phase.reason_message)
            continue
        if merged:
            merged[-1]["EndTime"] = iso(phase.start)
        merged.append(
            {
                "Status": status,
                "StartTime": iso(phase.start),
                "ReasonCode": phase.reason_code,
                "ReasonMessage": phase.reason_message,
            }
        )
    return merged


def _compute(training: TrainingJob, *, detail: bool) -> dict[str, Any]:
    compute = dict(training.body.get("ComputeResource") or {})
    if compute.get("ResourceId"):
        compute["ResourceName"] = compute["ResourceId"]
        spec = compute.get("InstanceSpec") or {}
        compute["InstanceSpec"] = {k: str(spec[k]) for k in INSTANCE_SPEC_FIELDS if spec.get(k)}
        compute.setdefault("InstanceCount", compute.pop("EcsCount", 1))
    else:
        compute.setdefault("EcsCount", 1)
        compute.pop("InstanceSpec", None)
    if not detail:
        compute.pop("UseSpotInstance", None)
        compute.pop("SpotSpec", None)
    elif isinstance(compute.get("SpotSpec"), dict):
        compute["SpotSpec"] = {
            k: v for k, v in compute["SpotSpec"].items() if k in ("SpotDiscountLimit", "SpotStrategy")
        }
    return compute


def _common(view: JobView, training: TrainingJob, *, account_id: str, detail: bool) -> dict[str, Any]:
    body = training.body
    last = view.phases[-1]
    out: dict[str, Any] = {
        "TrainingJobId": training.training_job_id,
        "TrainingJobName": training.name,
        "WorkspaceId": training.workspace_id,
        "UserId": account_id,
        "Status": status_of(view),
        "ReasonCode": last.reason_code,
        "ReasonMessage": last.reason_message,
        "GmtCreateTime": iso(training.created_at),
        "GmtModifiedTime": iso(max(p.start for p in view.phases)),
        "ComputeResource": _compute(training, detail=detail),
        "StatusTransitions": transitions(view),
        "Environments": body.get("Environments") or {},
        "Labels": body.get("Labels") or [],
        "HyperParameters": body.get("HyperParameters") or [],
        "InputChannels": [
            {k: v for k, v in c.items() if detail or k != "Options"} for c in body.get("InputChannels") or []
        ],
        "OutputChannels": body.get("OutputChannels") or [],
        "PythonRequirements": body.get("PythonRequirements") or [],
        "IsTempAlgo": True,
    }
    if body.get("TrainingJobDescription"):
        out["TrainingJobDescription"] = body["TrainingJobDescription"]
    return out


def get_body(
    view: JobView, training: TrainingJob, *, account_id: str, region: str, latest: list[dict[str, Any]]
) -> dict[str, Any]:
    """The GetTrainingJob response body (without RequestId)."""
    body = training.body
    out = _common(view, training, account_id=account_id, detail=True)
    seconds = int((body.get("Scheduler") or {}).get("MaxRunningTimeInSeconds") or 0)
    out.update(
        Priority=view.record.priority,
        Duration=duration(view),
        TrainingJobUrl=(
            f"https://pai.console.aliyun.com/?regionId={region}&workspaceId={training.workspace_id}"
            f"#/training/jobs/{training.training_job_id}"
        ),
        AlgorithmSpec={k: v for k, v in (body.get("AlgorithmSpec") or {}).items() if k in ALGORITHM_FIELDS},
        Instances=[{"Name": p.pod_id, "Role": p.role, "Status": p.status} for p in view.pods],
        Scheduler={"MaxRunningTimeInSeconds": str(seconds), "MaxRunningTimeInMinutes": str(seconds // 60)},
        Settings=body.get("Settings") or {},
        LatestMetrics=latest,
    )
    return dict(clean(out))


def list_item(view: JobView, training: TrainingJob, *, account_id: str) -> dict[str, Any]:
    """A ListTrainingJobs ``TrainingJobs[]`` element (the SDK's list model: no Instances, AlgorithmSpec ...)."""
    out = _common(view, training, account_id=account_id, detail=False)
    seconds = int((training.body.get("Scheduler") or {}).get("MaxRunningTimeInSeconds") or 0)
    out.update(DlcJobId=training.dlc_job_id, Scheduler={"MaxRunningTimeInSeconds": seconds})
    return dict(clean(out))


def rename(text: str, view: JobView, training: TrainingJob) -> str:
    """DLC event text about the job, told about the training job."""
    return text.replace(view.record.job_id, training.training_job_id)


def latest_metrics(
    definitions: Sequence[Mapping[str, Any]], logs: Mapping[str, list[str]], at: float, names: set[str] | None
) -> list[dict[str, Any]]:
    """The last value each metric definition finds in the instances' logs."""
    out = []
    for d in definitions:
        name = str(d.get("Name") or "")
        if not name or (names is not None and name not in names):
            continue
        pattern = re.compile(str(d.get("Regex") or ""))
        found: float | None = None
        for lines in logs.values():
            for line in lines:
                for match in pattern.finditer(line):
                    try:
                        number = float(match.group(1))
                    except (ValueError, IndexError):
                        continue
                    if math.isfinite(number):
                        found = number
        if found is not None:
            out.append({"Name": name, "Value": found, "Timestamp": iso(at)})
    return out


# --------------------------------------------------------------------------------------- handlers


def _page(ctx: Ctx, default: int, maximum: int) -> tuple[int, int]:
    page = ctx.number("PageNumber", 1)
    size = min(ctx.number("PageSize", default), maximum)
    return page, size


def _window(ctx: Ctx, start: float, end: float) -> tuple[float, float]:
    q = ctx.query
    since = parse_iso("StartTime", q["StartTime"]) if q.get("StartTime") else start
    until = observe.window_end(q["EndTime"]) if q.get("EndTime") else end
    return since, until


@dataclass
class StudioApi:
    """The PaiStudio handlers of one sandbox."""

    sandbox: Sandbox

    # -- lookups
    async def _training(self, training_job_id: str) -> tuple[TrainingJob, JobView]:
        sb = self.sandbox
        if not sb._scheduler_running:
            await sb.launch_due()

        def load() -> tuple[TrainingJob, JobView] | None:
            training = sb.store.training_job(training_job_id)
            if training is None:
                return None
            view = sb._load_view(training.dlc_job_id)
            return (training, view) if view is not None else None

        found = await anyio.to_thread.run_sync(load)
        if found is None:
            raise not_found(training_job_id)
        return found

    def _instance(self, training: TrainingJob, view: JobView, instance_id: str) -> None:
        if not any(p.pod_id == instance_id for p in view.pods):
            raise instance_not_found(training.training_job_id, instance_id)

    async def _logs(
        self, view: JobView, pods: Sequence[str], since: float | None, until: float | None
    ) -> dict[str, list[str]]:
        executor = self.sandbox.executor
        job_id = view.record.job_id

        def read() -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for pod_id in pods:
                try:
                    if since is None and until is None:
                        out[pod_id] = executor.tail_log(job_id, pod_id, None).lines
                    else:
                        out[pod_id] = executor.read_log(
                            job_id,
                            pod_id,
                            None,
                            since=datetime.fromtimestamp(since, UTC) if since is not None else None,
                            until=datetime.fromtimestamp(until, UTC) if until is not None else None,
                        ).lines
                except NotFound:
                    out[pod_id] = []
            return out

        if view.record.launched_at is None:
            return {p: [] for p in pods}
        return await anyio.to_thread.run_sync(read)

    async def _latest(self, training: TrainingJob, view: JobView, names: set[str] | None) -> list[dict[str, Any]]:
        definitions = (training.body.get("AlgorithmSpec") or {}).get("MetricDefinitions") or []
        if not definitions:
            return []
        logs = await self._logs(view, [p.pod_id for p in view.pods], None, None)
        at = view.finished_at if view.finished_at is not None else view.now
        return latest_metrics(definitions, logs, at, names)

    # -- training jobs
    async def create_training_job(self, ctx: Ctx) -> dict[str, Any]:
        training_job_id = await anyio.to_thread.run_sync(self.sandbox.insert_training_job, ctx.json(), ctx.now)
        return {"TrainingJobId": training_job_id}

    async def get_training_job(self, ctx: Ctx) -> dict[str, Any]:
        training, view = await self._training(ctx.params["TrainingJobId"])
        latest = await self._latest(training, view, None)
        settings = self.sandbox.settings
        return get_body(view, training, account_id=settings.account_id, region=settings.region, latest=latest)

    async def list_training_jobs(self, ctx: Ctx) -> dict[str, Any]:
        sb = self.sandbox
        q = ctx.query
        page, size = _page(ctx, 20, MAX_PAGE)
        order = ctx.choice("Order", ("desc", "asc"), "desc")
        sort_by = ctx.choice("SortBy", ("GmtCreateTime", "GmtModifiedTime", "TrainingJobName", "Status"))
        status = ctx.choice("Status", STUDIO_STATUSES)
        start, end = _window(ctx, ctx.now - LIST_WINDOW, float("inf"))
        labels: dict[str, str] = {}
        if q.get("Labels"):
            try:
                raw = json.loads(q["Labels"])
            except ValueError:
                raise invalid("Labels", 'must be a JSON map, e.g. {"k":"v"}') from None
            if not isinstance(raw, dict):
                raise invalid("Labels", 'must be a JSON map, e.g. {"k":"v"}')
            labels = {str(k): str(v) for k, v in raw.items()}
        if not sb._scheduler_running:
            await sb.launch_due()

        def load() -> list[tuple[TrainingJob, JobView]]:
            out = []
            for training in sb.store.training_jobs():
                view = sb._load_view(training.dlc_job_id)
                if view is not None:
                    out.append((training, view))
            return out

        def keep(item: tuple[TrainingJob, JobView]) -> bool:
            training, view = item
            mine = {str(label.get("Key")): str(label.get("Value")) for label in training.body.get("Labels") or []}
            return (
                start <= training.created_at <= end
                and (not q.get("TrainingJobId") or training.training_job_id == q["TrainingJobId"])
                and (not q.get("TrainingJobName") or q["TrainingJobName"].lower() in training.name.lower())
                and (not q.get("WorkspaceId") or training.workspace_id == q["WorkspaceId"])
                and (status is None or status_of(view) == status)
                and all(mine.get(k) == v for k, v in labels.items())
            )

        matching = [i for i in await anyio.to_thread.run_sync(load) if keep(i)]
        keys = {
            "GmtCreateTime": lambda i: i[0].created_at,
            "GmtModifiedTime": lambda i: max(p.start for p in i[1].phases),
            "TrainingJobName": lambda i: i[0].name,
            "Status": lambda i: status_of(i[1]),
        }
        matching.sort(key=keys[sort_by or "GmtCreateTime"], reverse=order == "desc")
        chosen = matching[(page - 1) * size : page * size]
        items = [list_item(v, t, account_id=sb.settings.account_id) for t, v in chosen]
        return {"TotalCount": len(matching), "TrainingJobs": items}

    async def stop_training_job(self, ctx: Ctx) -> dict[str, Any]:
        training, _ = await self._training(ctx.params["TrainingJobId"])
        await anyio.to_thread.run_sync(self.sandbox.stop_dlc_job, training.dlc_job_id)
        return {}

    async def delete_training_job(self, ctx: Ctx) -> dict[str, Any]:
        training, view = await self._training(ctx.params["TrainingJobId"])
        if not view.terminal:
            raise ApiError(
                400,
                "InvalidJobStatus",
                f"Training job {training.training_job_id} is {status_of(view)} and cannot be deleted; stop it first "
                "(StopTrainingJob) and delete it once it is Terminated.",
            )
        await anyio.to_thread.run_sync(self.sandbox.delete_dlc_job, view)
        return {}

    # -- labels
    async def update_training_job_labels(self, ctx: Ctx) -> dict[str, Any]:
        training_job_id = ctx.params["TrainingJobId"]
        body = ctx.json()
        if not isinstance(body, dict):
            raise invalid("body", "the request body must be a JSON object")
        raw = body.get("Labels")
        if not raw:
            raise missing("Labels")
        labels = _objects(raw, "Labels", ("Key", "Value"))
        for i, label in enumerate(labels, start=1):
            if not isinstance(label.get("Key"), str) or not label["Key"]:
                raise missing(f"Labels.{i}.Key")
            if not isinstance(label.get("Value", ""), str):
                raise invalid(f"Labels.{i}.Value", "must be a string")

        def edit(stored: dict[str, Any]) -> None:
            mine = {str(x.get("Key")): x for x in stored.get("Labels") or []}
            for label in labels:
                mine[label["Key"]] = {"Key": label["Key"], "Value": label.get("Value", "")}
            stored["Labels"] = list(mine.values())

        if await anyio.to_thread.run_sync(self.sandbox.store.edit_training_body, training_job_id, edit) is None:
            raise not_found(training_job_id)
        return {}

    async def delete_training_job_labels(self, ctx: Ctx) -> dict[str, Any]:
        training_job_id = ctx.params["TrainingJobId"]
        keys = {k.strip() for k in (ctx.query.get("Keys") or "").split(",") if k.strip()}
        if not keys:
            raise missing("Keys")

        def edit(stored: dict[str, Any]) -> None:
            stored["Labels"] = [x for x in stored.get("Labels") or [] if str(x.get("Key")) not in keys]

        if await anyio.to_thread.run_sync(self.sandbox.store.edit_training_body, training_job_id, edit) is None:
            raise not_found(training_job_id)
        return {}

    # -- outputs
    async def list_training_job_output_models(self, ctx: Ctx) -> dict[str, Any]:
        training, view = await self._training(ctx.params["TrainingJobId"])
        sb = self.sandbox
        root = sb.outputs_dir(training.dlc_job_id)
        channels = {str(c.get("Name")) for c in training.body.get("OutputChannels") or [] if c.get("Name")}
        latest = await self._latest(training, view, None)
        metrics = {m["Name"]: m["Value"] for m in latest}
        source = (
            f"region={sb.settings.region},workspaceId={training.workspace_id},kind=TrainingJob,"
            f"id={training.training_job_id}"
        )

        def scan() -> list[dict[str, Any]]:
            if not root.is_dir():
                return []
            files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
            out = []
            for path in files[:MAX_OUTPUT_MODELS]:
                rel = path.relative_to(root).as_posix()
                first = rel.split("/", 1)[0]
                stat = path.stat()
                out.append(
                    {
                        "OutputChannelName": first if first in channels and "/" in rel else DEFAULT_CHANNEL,
                        "Uri": path.as_uri(),
                        "SourceType": "TrainingService",
                        "SourceId": source,
                        "Labels": [
                            {"Key": "Name", "Value": rel},
                            {"Key": "SizeBytes", "Value": str(stat.st_size)},
                            {"Key": "GmtModifiedTime", "Value": iso(stat.st_mtime) or ""},
                        ],
                        "Metrics": metrics,
                    }
                )
            return out

        return {"OutputModels": await anyio.to_thread.run_sync(scan)}

    # -- events, logs, metrics
    def _events(
        self, ctx: Ctx, view: JobView, training: TrainingJob, events: list[tuple[float, str]]
    ) -> dict[str, Any]:
        page, size = _page(ctx, 100, MAX_PAGE)
        since, until = _window(ctx, view.record.created_at, view.now)
        chosen = [rename(event_line(t, m), view, training) for t, m in events if since <= t <= until]
        return {"TotalCount": str(len(chosen)), "Events": chosen[(page - 1) * size : page * size]}

    async def list_training_job_events(self, ctx: Ctx) -> dict[str, Any]:
        training, view = await self._training(ctx.params["TrainingJobId"])
        return self._events(ctx, view, training, view.job_events)

    async def list_training_job_instance_events(self, ctx: Ctx) -> dict[str, Any]:
        training, view = await self._training(ctx.params["TrainingJobId"])
        instance = ctx.params["InstanceId"]
        self._instance(training, view, instance)
        return self._events(ctx, view, training, view.pod_events.get(instance, []))

    async def list_training_job_logs(self, ctx: Ctx) -> dict[str, Any]:
        training, view = await self._training(ctx.params["TrainingJobId"])
        instance = ctx.query.get("InstanceId") or ctx.query.get("WorkerId")
        page, size = _page(ctx, 100, MAX_LOG_PAGE)
        if instance:
            self._instance(training, view, instance)
            pod = next(p for p in view.pods if p.pod_id == instance)
            if pod.started_at is None:
                raise instance_not_found(training.training_job_id, instance, "has not started: it has no logs yet")
        pods = [instance] if instance else [p.pod_id for p in view.pods]
        q = ctx.query
        since = parse_iso("StartTime", q["StartTime"]) if q.get("StartTime") else None
        until = observe.window_end(q["EndTime"]) if q.get("EndTime") else None
        logs = await self._logs(view, pods, since, until)
        lines = [line for p in pods for line in logs.get(p, [])]
        return {"TotalCount": str(len(lines)), "Logs": lines[(page - 1) * size : page * size]}

    async def list_training_job_instance_metrics(self, ctx: Ctx) -> dict[str, Any]:
        training, view = await self._training(ctx.params["TrainingJobId"])
        kind = observe.metric_kind(ctx.query.get("MetricType"))
        raw_step = ctx.query.get("TimeStep") or "5m"
        if raw_step not in observe.STUDIO_STEPS:
            raise invalid("TimeStep", f"{raw_step!r} is not one of {', '.join(observe.STUDIO_STEPS)}")
        step = observe.STUDIO_STEPS[raw_step]
        start, end = _window(ctx, view.record.created_at, view.now)
        observe.check_window(start, end, step)
        instance = ctx.query.get("InstanceId")
        if instance:
            self._instance(training, view, instance)
        series = await anyio.to_thread.run_sync(
            observe.samples, self.sandbox.executor, view, kind, start, end, job_faults(view.record.faults)
        )
        return {
            "InstanceMetrics": [
                {
                    "InstanceId": s.pod_id,
                    "NodeName": view.node,
                    "Metrics": [
                        {"Time": iso(t), "Value": observe.value(v)} for t, v in observe.buckets(s.points, start, step)
                    ],
                }
                for s in series
                if not instance or s.pod_id == instance
            ]
        }

    async def get_training_job_error_info(self, ctx: Ctx) -> dict[str, Any]:
        _, view = await self._training(ctx.params["TrainingJobId"])
        if view.status != "Failed":
            return {"ErrorInfo": {}}
        last = view.phases[-1]
        # The pod the reason names (the first to fail; the others were terminated), else the first failed one.
        pod = next((p for p in view.pods if p.pod_id in last.reason_message), None) or next(
            (p for p in view.pods if p.exit_code not in (None, 0)), view.pods[0] if view.pods else None
        )
        extra = ""
        if pod is not None:
            lines = (await self._logs(view, [pod.pod_id], None, None)).get(pod.pod_id, [])
            tail = [line for line in lines if line.strip()][-ERROR_LINES:]
            if tail:
                extra = f"last lines of {pod.pod_id}:\n" + "\n".join(tail)
        return {"ErrorInfo": {"Code": last.reason_code, "Message": last.reason_message, "AdditionalInfo": extra}}

    async def get_training_job_latest_metrics(self, ctx: Ctx) -> dict[str, Any]:
        training, view = await self._training(ctx.params["TrainingJobId"])
        raw = ctx.query.get("Names")
        names = {n.strip() for n in raw.split(",") if n.strip()} if raw else None
        return {"Metrics": await self._latest(training, view, names)}

    # -- quotas
    async def list_quota_workloads(self, ctx: Ctx) -> dict[str, Any]:
        sb = self.sandbox
        quota = ctx.params["QuotaId"]
        if quota not in sb.settings.quotas:
            raise ApiError(404, QUOTA_NOT_FOUND, f"resource quota {quota} not found")
        page, size = _page(ctx, 20, MAX_PAGE)
        historical = ctx.flag("WithHistoricalData", False)
        ctx.flag("ShowOwn", False)
        sort_by = ctx.choice("SortBy", tuple(quotas.SORT_KEYS), "GmtEnqueuedTime")
        order = ctx.choice("Order", ("asc", "desc"), "asc")
        if not sb._scheduler_running:
            await sb.launch_due()

        def load() -> list[dict[str, Any]]:
            return quotas.entries(
                sb._load_views(),
                quota,
                training_ids=sb.store.training_ids(),
                workspace_names=sb.store.workspace_names(),
                account_id=sb.settings.account_id,
            )

        items = quotas.select(await anyio.to_thread.run_sync(load), ctx.query, historical=historical)
        assert sort_by is not None
        items.sort(key=quotas.SORT_KEYS[sort_by], reverse=order == "desc")
        return {"TotalCount": len(items), "Workloads": items[(page - 1) * size : page * size]}
