"""PAI-DLC jobs in the sandbox: CreateJob validation, pod layout, the status timeline, and the GetJob /
ListJobs / events shapes.

A job is a row of the sandbox's own table (``store.py``) and, once its queuing time is over, an
executor run with the same id. What the API reports is a :class:`JobView` built fresh on every read:

1. the base timeline from the row and the run — ``Creating`` (``creating_seconds``), ``Queuing``
   (``queuing_seconds``), ``EnvPreparing`` (launched, pods not started), ``Running``, ``Stopping``,
   ``Succeeded`` / ``Failed`` / ``Stopped`` — with pods, job events and Kubernetes-style pod events;
2. each of the job's faults (``faults.py``) reshapes it (ImagePullBackOff keeps it in EnvPreparing
   with failing pulls; queue-forever keeps it Queuing ...);
3. a stop that came before the pods were launched ends it ``Stopped`` at that moment.

Event strings are ``"YYYY-MM-DD HH:MM:SS <message>"`` (UTC), as GetJobEvents / GetPodEvents return them;
times in bodies are ``YYYY-MM-DDTHH:MM:SSZ``. ReasonCodes other than ``JobStoppedByUser`` (the only one
the SDK documents) are the sandbox's own: ``JobSucceeded``, ``PodFailed``, ``MaxRuntimeExceeded``,
``ImagePullBackOff``, ``SandboxLaunchFailed``, ``SanityCheckFailed``, ``SpotInstanceReclaimed``.

A job created with ``Settings.EnableSanityCheck=true`` has a ``SanityChecking`` phase between EnvPreparing
and Running (the executor's pre-flight checks, see ``observe.py``); a job with a ``ResourceId`` queues in
that resource quota (``quotas.py``). A job created from a template (``TemplateId``, see ``templates.py``)
records TemplateId / TemplateVersion / TemplateName; ListJobs reports TemplateId and TemplateName. Resource
tags (TagResources, ``tags.py``) live in ``Settings.Tags``, where CreateJob puts them, so GetJob, ListJobs and
its ``Tags`` filter see both. A job with ``JobSpecs[].UseSpotInstance`` gets a job event about its spot
instances (SpotSpec's strategy and limit) at creation.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cloudjobs_mcp.server.providers.local.executor import MAX_RUNTIME_EXCEEDED, STOPPED_BY_USER, RunState, SanityCheck
from cloudjobs_mcp.server.sandbox.catalog import EcsSpec, spec_by_type
from cloudjobs_mcp.server.sandbox.errors import ApiError, invalid, missing

JOB_TYPES = (
    "TFJob",
    "PyTorchJob",
    "MPIJob",
    "XGBoostJob",
    "OneFlowJob",
    "ElasticBatchJob",
    "SlurmJob",
    "RayJob",
    "DataJuicerJob",
)
# Roles each job type accepts in JobSpecs[].Type (reference §2.2); the first listed that is present leads.
ROLES: dict[str, tuple[str, ...]] = {
    "TFJob": ("Chief", "PS", "Worker", "Evaluator", "GraphLearn"),
    "PyTorchJob": ("Master", "Worker"),
    "XGBoostJob": ("Master", "Worker"),
    "OneFlowJob": ("Master", "Worker"),
    "ElasticBatchJob": ("Master", "Worker"),
    "MPIJob": ("Launcher", "Master", "Worker"),
    "RayJob": ("Head", "Worker"),
    "SlurmJob": ("Master", "Worker"),
    "DataJuicerJob": ("Master", "Head", "Worker"),
}
SINGLETON_ROLES = ("Master", "Chief", "Head", "Launcher")
# The main container's name, as the training operators name it (shown in pod events and GetPodLogs).
CONTAINERS = {
    "TFJob": "tensorflow",
    "PyTorchJob": "pytorch",
    "XGBoostJob": "xgboost",
    "MPIJob": "mpi",
    "RayJob": "ray",
}
TERMINAL = ("Succeeded", "Failed", "Stopped")
# Executor run statuses (DLC-like names, see server/providers/local/executor.py).
RUN_QUEUING, RUN_STOPPING, SUCCEEDED, FAILED, STOPPED = "Queuing", "Stopping", "Succeeded", "Failed", "Stopped"
DISPLAY_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,256}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NAMESPACE = "pai-dlc"

# JobSpec / JobSettings fields the SDK models know: only these are echoed back.
JOB_SPEC_FIELDS = frozenset(
    "AssignNodeSpec AutoScalingSpec ConsiderInSuccessPolicy Driver EcsSpec ElasticSpotSpecs ExtraPodSpec "
    "HyperNodeSchedulingConfig Image ImageConfig IsCheif IsChief LocalMountSpecs OversoldType PodCount QuotaId "
    "ResourceConfig RestartPolicy ServiceSpec SpotSpec StartupDependencies SystemDisk Type UseSpotInstance "
    "UserCommand".split()
)
JOB_SETTINGS_FIELDS = frozenset(
    "AdvancedSettings AllocateAllRDMADevices AllowUnschedulableNodes BusinessUserId Caller DataJuicerConfig "
    "DisableEcsStockCheck Driver ElasticSpotJobMaxRestartTimes EnableCPUAffinity EnableDSWDev "
    "EnableErrorMonitoringInAIMaster EnableOssAppend EnableRDMA EnableSanityCheck EnableTideResource "
    "ErrorMonitoringArgs JobReservedMinutes JobReservedPolicy ModelConfig OversoldType PipelineId "
    "SanityCheckArgs Shell Tags TerminationGracePeriodSeconds".split()
)


# ------------------------------------------------------------------------------------------ time


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_line(ts: float, message: str) -> str:
    return f"{datetime.fromtimestamp(ts, UTC):%Y-%m-%d %H:%M:%S} {message}"


def parse_iso(name: str, raw: str) -> float:
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise invalid(name, f"{raw!r} is not a UTC time like 2024-01-01T00:00:00Z") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


CHINA_TIME = timezone(timedelta(hours=8))


def iso_checked(ts: float | None) -> str | None:
    """A sanity check's StartedAt/FinishedAt: ``2023-11-30T16:47:30.343005+08:00`` (microseconds and the
    +08:00 offset, as the SanityCheckResultItem documentation shows them)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, CHINA_TIME).isoformat(timespec="microseconds")


def new_job_id(now: float) -> str:
    """``dlc-<UTC yyyymmddHHMMSS>-<13 lower-case letters and digits>``, like the service's ids."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    tail = "".join(alphabet[b % len(alphabet)] for b in uuid.uuid4().bytes[:13])
    return f"dlc-{datetime.fromtimestamp(now, UTC):%Y%m%d%H%M%S}-{tail}"


# ------------------------------------------------------------------------------------ validation


def _need_str(body: Mapping[str, Any], name: str, label: str | None = None) -> str:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise missing(label or name)
    if not isinstance(value, str):
        raise invalid(label or name, "must be a string")
    return value


def str_map(value: Any, name: str) -> dict[str, str]:
    """A request's map of strings (``Envs``, ``Tags``, ``Environments``); None → empty."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid(name, "must be a map of strings to strings")
    return dict(value)


def _int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid(name, "must be an integer")
    try:
        number = float(value)
    except ValueError:
        raise invalid(name, f"{value!r} is not an integer") from None
    if not number.is_integer():
        raise invalid(name, f"{value!r} is not an integer")
    result = int(number)
    if minimum is not None and result < minimum:
        raise invalid(name, f"must be at least {minimum}, got {result}")
    if maximum is not None and result > maximum:
        raise invalid(name, f"must be at most {maximum}, got {result}")
    return result


def unknown_quota(resource_id: str, workspace: str, name: str = "ResourceId") -> ApiError:
    """A ``ResourceId`` that names no resource quota of this account. (The wording is ours; the code is the
    gateway's generic InvalidParameter, which is what the service answers for an id it cannot resolve.)"""
    return invalid(
        name,
        f"resource quota {resource_id} does not exist in this region or workspace {workspace} has no access to it; "
        "use the id of a quota attached to the workspace (PAI console: AI Computing Resources > Resource Quotas), "
        "or omit ResourceId to run on public resources",
    )


SPOT_STRATEGIES = ("SpotWithPriceLimit", "SpotAsPriceGo")


def _check_spot_spec(value: Any, name: str) -> None:
    """``JobSpecs[].SpotSpec``: ``{"SpotStrategy", "SpotDiscountLimit", "SpotPriceLimit"}`` (the SDK's SpotSpec)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise invalid(name, 'must be an object, e.g. {"SpotStrategy": "SpotWithPriceLimit", "SpotDiscountLimit": 0.3}')
    strategy = value.get("SpotStrategy")
    if strategy is not None and strategy not in SPOT_STRATEGIES:
        raise invalid(f"{name}.SpotStrategy", f"{strategy!r} is not one of {', '.join(SPOT_STRATEGIES)}")
    for key in ("SpotDiscountLimit", "SpotPriceLimit"):
        limit = value.get(key)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0):
            raise invalid(f"{name}.{key}", "must be a positive number")
    if value.get("SpotDiscountLimit") is not None and value["SpotDiscountLimit"] > 1:
        raise invalid(f"{name}.SpotDiscountLimit", "is a fraction of the pay-as-you-go price (0 < limit <= 1)")


def validate_create(
    body: Any,
    *,
    workspaces: set[str],
    max_pods: int,
    specs: Mapping[str, EcsSpec] | None = None,
    quotas: Collection[str] | None = None,
) -> dict[str, Any]:
    """The CreateJob body as stored (known JobSpec/Settings fields only); raises the cloud's errors.

    ``quotas``: the resource quota ids that exist (None: any ``ResourceId`` is accepted)."""
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    display_name = _need_str(body, "DisplayName")
    if not DISPLAY_NAME.match(display_name):
        raise invalid("DisplayName", "use 1-256 characters from letters, digits, '_', '.' and '-'")
    job_type = _need_str(body, "JobType")
    if job_type not in JOB_TYPES:
        raise invalid("JobType", f"{job_type!r} is not a job type; valid values: {', '.join(JOB_TYPES)}")
    _need_str(body, "UserCommand")
    raw_specs = body.get("JobSpecs")
    if raw_specs is None or raw_specs == []:
        raise missing("JobSpecs")
    if not isinstance(raw_specs, list) or not all(isinstance(s, dict) for s in raw_specs):
        raise invalid("JobSpecs", "must be a list of JobSpec objects")

    workspace = body.get("WorkspaceId")
    if workspace in (None, ""):
        raise ApiError(
            403,
            "OperationForbidden",
            "The operation is forbidden: WorkspaceId is required. Call ListWorkspaces (AIWorkspace) to find "
            "your workspace, or CreateWorkspace to create one.",
        )
    if str(workspace) not in workspaces:
        raise ApiError(
            403,
            "OperationForbidden",
            f"The operation is forbidden: workspace {workspace} does not exist or you have no access to it.",
        )
    resource_id = body.get("ResourceId") or ""
    if resource_id and not isinstance(resource_id, str):
        raise invalid("ResourceId", "must be a string (a resource quota id)")
    if resource_id and quotas is not None and resource_id not in quotas:
        raise unknown_quota(resource_id, str(workspace))
    roles = ROLES[job_type]
    seen: set[str] = set()
    total = 0
    job_specs: list[dict[str, Any]] = []
    for i, spec in enumerate(raw_specs, start=1):
        label = f"JobSpecs.{i}"
        role = _need_str(spec, "Type", f"{label}.Type")
        if role not in roles:
            raise invalid(f"{label}.Type", f"{role!r} is not a role of {job_type}; valid values: {', '.join(roles)}")
        if role in seen:
            raise invalid(f"{label}.Type", f"role {role} appears twice")
        seen.add(role)
        image = _need_str(spec, "Image", f"{label}.Image")
        if any(c.isspace() for c in image):
            raise invalid(f"{label}.Image", f"{image!r} is not an image URI")
        if spec.get("PodCount") is None:
            raise missing(f"{label}.PodCount")
        count = _int(spec["PodCount"], f"{label}.PodCount", minimum=1)
        if role in SINGLETON_ROLES and count != 1:
            raise invalid(f"{label}.PodCount", f"a {job_type} has exactly one {role}, got {count}")
        total += count
        if resource_id:
            config = spec.get("ResourceConfig")
            if not isinstance(config, dict) or not config.get("CPU") or not config.get("Memory"):
                raise missing(f"{label}.ResourceConfig")
            if not all(isinstance(v, str) for v in config.values()):
                raise invalid(f"{label}.ResourceConfig", 'values are strings, e.g. {"CPU": "8", "Memory": "32Gi"}')
        else:
            ecs = spec.get("EcsSpec")
            if not ecs:
                raise missing(f"{label}.EcsSpec")
            known = specs.get(str(ecs)) if specs is not None else spec_by_type(str(ecs))
            if known is None:
                raise invalid(
                    f"{label}.EcsSpec", f"{ecs} is not an instance type PAI-DLC offers here; call ListEcsSpecs"
                )
            if not known.available:
                raise ApiError(
                    400,
                    "InvalidParameter.EcsSpecNotAvailable",
                    f"The instance type {ecs} is sold out in this region; choose another from ListEcsSpecs.",
                )
        command = spec.get("UserCommand")
        if command is not None and not isinstance(command, str):
            raise invalid(f"{label}.UserCommand", "must be a string")
        if spec.get("UseSpotInstance") is not None and not isinstance(spec["UseSpotInstance"], bool):
            raise invalid(f"{label}.UseSpotInstance", "must be a boolean")
        _check_spot_spec(spec.get("SpotSpec"), f"{label}.SpotSpec")
        job_specs.append({k: v for k, v in spec.items() if k in JOB_SPEC_FIELDS})
    if total > max_pods:
        raise invalid(
            "JobSpecs",
            f"{total} pods in all; the PAI sandbox runs every pod as a process on this machine and allows at most "
            f"{max_pods} per job",
        )

    envs = str_map(body.get("Envs"), "Envs")
    for key in envs:
        if not ENV_NAME.match(key):
            raise invalid("Envs", f"{key!r} is not an environment variable name")
    libs = body.get("ThirdpartyLibs")
    if libs is not None and (not isinstance(libs, list) or not all(isinstance(x, str) for x in libs)):
        raise invalid("ThirdpartyLibs", "must be a list of strings")
    settings = body.get("Settings")
    if settings is not None and not isinstance(settings, dict):
        raise invalid("Settings", "must be an object")
    tags = str_map((settings or {}).get("Tags"), "Settings.Tags")
    sanity = (settings or {}).get("EnableSanityCheck")
    if sanity is not None and not isinstance(sanity, bool):
        raise invalid("Settings.EnableSanityCheck", "must be a boolean")
    sanity_args = (settings or {}).get("SanityCheckArgs")
    if sanity_args is not None and not isinstance(sanity_args, str):
        raise invalid("Settings.SanityCheckArgs", "must be a string")
    if body.get("JobMaxRunningTimeMinutes") not in (None, ""):
        _int(body["JobMaxRunningTimeMinutes"], "JobMaxRunningTimeMinutes", minimum=0)
    if body.get("Priority") is not None:
        _int(body["Priority"], "Priority", minimum=1, maximum=9)

    stored: dict[str, Any] = {
        "DisplayName": display_name,
        "JobType": job_type,
        "JobSpecs": job_specs,
        "UserCommand": body["UserCommand"],
        "WorkspaceId": str(workspace),
        "Envs": envs,
        "ThirdpartyLibs": list(libs or []),
        "Priority": _int(body["Priority"], "Priority") if body.get("Priority") is not None else 1,
    }
    if body.get("TemplateId") and body.get("TemplateVersion") is not None:
        stored["TemplateVersion"] = _int(body["TemplateVersion"], "TemplateVersion", minimum=1)
    template_keys = ("TemplateId", "TemplateName") if body.get("TemplateId") else ()
    for key in ("ResourceId", "ThirdpartyLibDir", "Description", "Accessibility", *template_keys):
        if isinstance(body.get(key), str) and body[key]:
            stored[key] = body[key]
    if body.get("JobMaxRunningTimeMinutes") not in (None, ""):
        stored["JobMaxRunningTimeMinutes"] = _int(body["JobMaxRunningTimeMinutes"], "JobMaxRunningTimeMinutes")
    if settings is not None:
        stored["Settings"] = {k: v for k, v in settings.items() if k in JOB_SETTINGS_FIELDS}
        if "Tags" in stored["Settings"]:
            stored["Settings"]["Tags"] = tags
    return stored


# --------------------------------------------------------------------------------- sanity checks

# The phases of one DLC sanity check run, in order (SanityCheckResultItem.Phase).
SANITY_PHASES = ("CheckInit", "DeviceCheck", "SingleNodeCommCheck", "TwoNodeCommCheck", "AllNodeCommCheck")
# The ReasonCode of a job failed by its sanity check. The service's own code is not documented; this one is
# our choice (the local executor's, which diagnose_job also recognises).
SANITY_CHECK_FAILED = "SanityCheckFailed"


def sanity_phases(record: JobRecord, also: str | None = None) -> list[str]:
    """The phases a job's sanity check runs: device checks for GPU jobs, the two- and all-node
    communication checks for jobs of two pods or more (``also``: a phase to include in any case)."""
    wanted = {"CheckInit", "SingleNodeCommCheck"}
    if record.gpu_job:
        wanted.add("DeviceCheck")
    if len(record.pods) > 1:
        wanted |= {"TwoNodeCommCheck", "AllNodeCommCheck"}
    if also:
        wanted.add(also)
    return [p for p in SANITY_PHASES if p in wanted]


# ------------------------------------------------------------------------------------------ pods


@dataclass(frozen=True)
class PodPlan:
    pod_id: str
    role: str  # JobSpecs[].Type
    rank: int  # RANK: index over all pods, leader first


def plan_pods(job_id: str, job_type: str, job_specs: list[dict[str, Any]]) -> list[PodPlan]:
    """The pods of a job, leader first. A PyTorchJob given only Workers gets ``<job>-master-0`` for its
    first one, as PAI-DLC does; other pods are ``<job>-<role>-<n>``."""
    order = {role: i for i, role in enumerate((*SINGLETON_ROLES, "PS", "Worker", "Evaluator", "GraphLearn"))}
    counts = sorted(((str(s["Type"]), int(s["PodCount"])) for s in job_specs), key=lambda rc: order.get(rc[0], 99))
    roles = {r for r, _ in counts}
    names: list[tuple[str, str]] = []  # (pod name role, JobSpecs role)
    for role, count in counts:
        if role == "Worker" and job_type == "PyTorchJob" and "Master" not in roles and count > 1:
            names.append(("master", "Worker"))
            count -= 1
        names.extend((role.lower(), role) for _ in range(count))
    plans: list[PodPlan] = []
    seen: dict[str, int] = {}
    for rank, (name, role) in enumerate(names):
        index = seen.get(name, 0)
        seen[name] = index + 1
        plans.append(PodPlan(f"{job_id}-{name}-{index}", role, rank))
    return plans


def pod_uid(pod_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pai-sandbox/{pod_id}"))


# ---------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Allocation:
    """One pod's share: vCPUs, memory (GiB), GPUs and their type."""

    cpus: float
    memory_gib: float
    gpus: float = 0.0
    gpu_type: str = ""


def _quantity(raw: Any) -> float:
    try:
        return max(0.0, float(str(raw or "0").strip() or 0))
    except ValueError:
        return 0.0


_MEMORY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGT]i?)?[Bb]?\s*$")
_MEMORY_UNITS = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}


def memory_gib(raw: Any) -> float:
    """``"32Gi"`` / ``"32768Mi"`` / ``"32"`` (GiB) → GiB; anything else → 0."""
    match = _MEMORY.match(str(raw or ""))
    if not match:
        return 0.0
    unit = (match.group(2) or "G")[0]
    return float(match.group(1)) * _MEMORY_UNITS[unit]


@dataclass
class JobRecord:
    """One row of ``sandbox_jobs``."""

    job_id: str
    display_name: str
    job_type: str
    workspace_id: str
    created_at: float
    queue_at: float  # Creating -> Queuing
    launch_at: float  # Queuing -> launched (EnvPreparing)
    body: dict[str, Any]
    pods: list[PodPlan]
    faults: list[dict[str, Any]]
    launched_at: float | None = None
    stop_requested_at: float | None = None
    launch_error: str | None = None

    @property
    def tags(self) -> dict[str, str]:
        return dict((self.body.get("Settings") or {}).get("Tags") or {})

    @property
    def max_minutes(self) -> int | None:
        value = self.body.get("JobMaxRunningTimeMinutes")
        return int(value) if value else None

    def spec_of(self, role: str) -> dict[str, Any]:
        return next((s for s in self.body["JobSpecs"] if s.get("Type") == role), self.body["JobSpecs"][0])

    def image_of(self, role: str) -> str:
        return str(self.spec_of(role).get("Image") or "")

    @property
    def images(self) -> list[str]:
        return list(dict.fromkeys(str(s.get("Image") or "") for s in self.body["JobSpecs"]))

    @property
    def ecs_specs(self) -> list[str]:
        return list(dict.fromkeys(str(s["EcsSpec"]) for s in self.body["JobSpecs"] if s.get("EcsSpec")))

    def command_of(self, role: str) -> str:
        return str(self.spec_of(role).get("UserCommand") or self.body["UserCommand"])

    @property
    def resource_id(self) -> str:
        """The resource quota the job runs on ("": public resources)."""
        return str(self.body.get("ResourceId") or "")

    @property
    def priority(self) -> int:
        return int(self.body.get("Priority") or 1)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.body.get("Settings") or {})

    @property
    def sanity_enabled(self) -> bool:
        """Created with ``Settings.EnableSanityCheck=true``."""
        return self.settings.get("EnableSanityCheck") is True

    @property
    def uses_spot(self) -> bool:
        return any(s.get("UseSpotInstance") is True for s in self.body["JobSpecs"])

    def allocation(self, role: str) -> Allocation:
        """What one pod of ``role`` is allocated: its EcsSpec's figures, or its ResourceConfig on a quota."""
        spec = self.spec_of(role)
        known = spec_by_type(str(spec.get("EcsSpec") or ""))
        if known is not None:
            return Allocation(float(known.cpu), float(known.memory_gib), float(known.gpu), known.gpu_type)
        config = spec.get("ResourceConfig") or {}
        return Allocation(
            _quantity(config.get("CPU")),
            memory_gib(config.get("Memory")),
            _quantity(config.get("GPU")),
            str(config.get("GPUType") or ""),
        )

    @property
    def gpu_job(self) -> bool:
        return any(self.allocation(p.role).gpus > 0 for p in self.pods)

    @property
    def container(self) -> str:
        return CONTAINERS.get(self.job_type, "main")


# ------------------------------------------------------------------------------------------- views


@dataclass
class Phase:
    status: str
    start: float
    reason_code: str = ""
    reason_message: str = ""


@dataclass
class PodView:
    pod_id: str
    role: str
    status: str = "Pending"  # Pending | Running | Succeeded | Failed
    sub_status: str = "Normal"
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None


@dataclass
class JobView:
    """What the API says about one job right now; faults edit it before it is serialised."""

    record: JobRecord
    region: str
    now: float
    phases: list[Phase]
    pods: list[PodView]
    running_at: float | None = None
    job_events: list[tuple[float, str]] = field(default_factory=list)
    pod_events: dict[str, list[tuple[float, str]]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.phases[-1].status

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def finished_at(self) -> float | None:
        return self.phases[-1].start if self.terminal else None

    def enter(self, status: str, at: float, reason_code: str = "", reason_message: str = "") -> None:
        """Append a phase (dropping any that would start after it)."""
        self.phases = [p for p in self.phases if p.start <= at]
        self.phases.append(Phase(status, at, reason_code, reason_message))

    def job_event(self, at: float, message: str) -> None:
        if at <= self.now:
            self.job_events.append((at, message))

    def pod_event(self, pod_id: str, at: float, message: str) -> None:
        if at <= self.now:
            self.pod_events.setdefault(pod_id, []).append((at, message))

    @property
    def node(self) -> str:
        return f"{self.region}.127.0.0.1"


_POD_STATUS = {"Pending": "Pending", "Running": "Running", "Succeeded": "Succeeded", "Failed": "Failed"}


def base_view(record: JobRecord, run: RunState | None, *, region: str, now: float) -> JobView:
    """The timeline before faults and pre-launch stops (see the module docstring)."""
    view = JobView(record, region, now, [Phase("Creating", record.created_at)], [])
    job_id = record.job_id
    specs = ", ".join(record.ecs_specs) or "a resource quota"
    view.job_event(
        record.created_at, f"Job {job_id} is created: {record.job_type} with {len(record.pods)} pod(s) on {specs}."
    )
    view.job_event(
        record.created_at,
        f"Sandbox: image {', '.join(record.images)} is recorded but not pulled; the pods run as processes on "
        "this machine (GPU specs run on its CPU).",
    )
    if record.uses_spot:
        spot = [
            f"{s.get('Type')} on {s.get('EcsSpec') or 'a quota'} "
            f"({(s.get('SpotSpec') or {}).get('SpotStrategy') or 'SpotAsPriceGo'}"
            + (
                f", discount limit {(s.get('SpotSpec') or {})['SpotDiscountLimit']}"
                if (s.get("SpotSpec") or {}).get("SpotDiscountLimit") is not None
                else ""
            )
            + ")"
            for s in record.body["JobSpecs"]
            if s.get("UseSpotInstance") is True
        ]
        view.job_event(
            record.created_at,
            f"Job {job_id} runs on spot (preemptible) instances: {'; '.join(spot)}. ECS may reclaim them at any time.",
        )
    libs = record.body.get("ThirdpartyLibs") or []
    if libs:
        view.job_event(
            record.created_at,
            f"Sandbox: ThirdpartyLibs {', '.join(libs)} are not installed (the sandbox is offline); the pods use "
            "this machine's Python environment.",
        )
    launched = record.launched_at
    if now >= record.queue_at or launched is not None:
        queue_at = min(record.queue_at, launched) if launched is not None else record.queue_at
        view.enter("Queuing", queue_at)
        pool = f"resource quota {record.resource_id}" if record.resource_id else "the public resource pool"
        view.job_event(queue_at, f"Job {job_id} is queuing for resources in {pool}.")
    run_pods = {p.pod_id: p for p in run.pods} if run is not None else {}
    for plan in record.pods:
        pod = PodView(plan.pod_id, plan.role, created_at=launched or record.created_at)
        state = run_pods.get(plan.pod_id)
        if state is not None:
            pod.status = _POD_STATUS.get(state.status, "Failed")
            pod.started_at = state.started_at.timestamp() if state.started_at else None
            pod.finished_at = state.finished_at.timestamp() if state.finished_at else None
            pod.exit_code = state.exit_code
        view.pods.append(pod)

    if record.launch_error is not None:
        at = record.launched_at or record.launch_at
        view.enter(
            "Failed", at, "SandboxLaunchFailed", f"The sandbox could not start the job's pods: {record.launch_error}"
        )
        view.job_event(at, f"Job {job_id} failed: {record.launch_error}")
        for pod in view.pods:
            pod.status = "Failed"
        return view
    if launched is None or run is None or (run.status == RUN_QUEUING and run.started_at is None):
        return view  # not launched, or waiting in the executor's own queue for this machine's capacity

    view.enter("EnvPreparing", launched)
    container = record.container
    for plan, pod in zip(record.pods, view.pods, strict=True):
        image = record.image_of(plan.role)
        view.job_event(launched, f"Created pod: {pod.pod_id}")
        view.pod_event(pod.pod_id, launched, f"Successfully assigned {NAMESPACE}/{pod.pod_id} to {view.node}")
        view.pod_event(pod.pod_id, launched, f'Pulling image "{image}"')
        view.pod_event(
            pod.pod_id, launched, f'Successfully pulled image "{image}" in 0s (sandbox: nothing was downloaded)'
        )
        if pod.started_at is not None:
            view.pod_event(pod.pod_id, pod.started_at, f"Created container {container}")
            view.pod_event(pod.pod_id, pod.started_at, f"Started container {container}")
        if pod.finished_at is not None and pod.exit_code is not None:
            if pod.status == "Failed" and run.status == STOPPED:
                view.pod_event(pod.pod_id, pod.finished_at, f"Stopping container {container}")
            else:
                view.pod_event(pod.pod_id, pod.finished_at, f"Container {container} exited with code {pod.exit_code}")

    if run.started_at is not None:
        view.running_at = run.started_at.timestamp()
        view.enter("Running", view.running_at)
        view.job_event(view.running_at, f"Job {job_id} is running.")
    if run.status == RUN_STOPPING:
        view.enter("Stopping", record.stop_requested_at or now)
    finished = run.finished_at.timestamp() if run.finished_at else now
    if run.status == SUCCEEDED:
        view.enter(
            "Succeeded", finished, "JobSucceeded", f"Job succeeded: {run.reason or 'all pods exited with code 0'}."
        )
        view.job_event(finished, f"Job {job_id} succeeded.")
    elif run.status == FAILED:
        message = f"Job failed: {run.reason or 'a pod failed'}."
        view.enter("Failed", finished, run.reason_code or "JobFailed", message)
        view.job_event(finished, f"Job {job_id} failed: {run.reason or 'a pod failed'}.")
    elif run.status == STOPPED:
        if run.reason_code == MAX_RUNTIME_EXCEEDED:
            limit = record.max_minutes
            message = (
                f"Job is stopped: it ran for longer than JobMaxRunningTimeMinutes ({limit} minute"
                f"{'s' if limit != 1 else ''})."
            )
            view.enter("Stopped", finished, MAX_RUNTIME_EXCEEDED, message)
        else:
            view.enter("Stopped", finished, STOPPED_BY_USER, "Job is stopped by user.")
        view.job_event(finished, f"Job {job_id} is stopped: {view.phases[-1].reason_message}")
    return view


def apply_sanity_checks(view: JobView, checks: Sequence[SanityCheck]) -> None:
    """A job created with ``Settings.EnableSanityCheck``: the executor's pre-flight checks are its
    ``SanityChecking`` phase, between EnvPreparing and Running (or the Failed they end it with)."""
    times = [c.started_at.timestamp() for c in checks if c.started_at is not None]
    if not times or view.record.launched_at is None:
        return
    start = min(times)
    at = next((i for i, p in enumerate(view.phases) if p.start > start), len(view.phases))
    view.phases.insert(at, Phase("SanityChecking", start))
    job_id = view.record.job_id
    phases = sanity_phases(view.record)
    view.job_event(start, f"Job {job_id} started sanity check 1 ({', '.join(phases)}) before the user command.")
    done = [c.finished_at.timestamp() for c in checks if c.finished_at is not None]
    if len(done) == len(checks) and all(c.status == "Succeeded" for c in checks):
        view.job_event(max(done), f"Sanity check 1 of job {job_id} passed: all {len(phases)} phases succeeded.")


def apply_stop_before_launch(view: JobView) -> None:
    """A stop that came before the pods were launched ends the job right then."""
    record = view.record
    at = record.stop_requested_at
    if at is None or record.launched_at is not None or view.terminal:
        return
    view.enter("Stopped", at, STOPPED_BY_USER, "Job is stopped by user.")
    view.job_event(at, f"Job {record.job_id} is stopped by user.")
    for pod in view.pods:
        if pod.status in ("Pending", "Running"):
            pod.status = "Failed"
            pod.finished_at = at


# ----------------------------------------------------------------------------------------- shapes


def clean(value: Any) -> Any:
    """Drop ``None`` values (the SDK's ``to_map`` would drop them too)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


_clean = clean


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 3)


def requests(record: JobRecord) -> tuple[int, float, float]:
    """(RequestCPU, RequestGPU, RequestMemory GiB) of the whole job."""
    cpu, gpu, mem = 0, 0.0, 0.0
    for spec in record.body["JobSpecs"]:
        count = int(spec.get("PodCount") or 0)
        share = record.allocation(str(spec.get("Type") or ""))
        cpu += int(share.cpus) * count
        gpu += share.gpus * count
        mem += share.memory_gib * count
    return cpu, gpu, mem


def duration(view: JobView) -> int:
    if view.running_at is None:
        return 0
    end = view.finished_at if view.finished_at is not None else view.now
    return max(0, math.floor(end - view.running_at))


def _times(view: JobView) -> dict[str, Any]:
    record = view.record
    starts = {p.status: p.start for p in view.phases}
    finished = view.finished_at
    status = view.status
    return {
        "GmtCreateTime": iso(record.created_at),
        "GmtSubmittedTime": iso(starts.get("Queuing")),
        "GmtRunningTime": iso(view.running_at),
        "GmtFinishTime": iso(finished),
        "GmtSuccessedTime": iso(finished) if status == "Succeeded" else None,
        "GmtFailedTime": iso(finished) if status == "Failed" else None,
        "GmtStoppedTime": iso(finished) if status == "Stopped" else None,
    }


def status_history(view: JobView) -> list[dict[str, Any]]:
    items = []
    for i, phase in enumerate(view.phases):
        end = view.phases[i + 1].start if i + 1 < len(view.phases) else None
        items.append(
            {
                "Status": phase.status,
                "StartTime": iso(phase.start),
                "EndTime": iso(end),
                "ReasonCode": phase.reason_code,
                "ReasonMessage": phase.reason_message,
            }
        )
    return items


def _pod_body(view: JobView, pod: PodView, *, detail: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "PodId": pod.pod_id,
        "PodUid": pod_uid(pod.pod_id),
        "Type": pod.role,
        "Status": pod.status,
        "SubStatus": pod.sub_status,
        "NodeName": view.node if pod.started_at is not None else "",
        "GmtCreateTime": iso(pod.created_at),
        "GmtStartTime": iso(pod.started_at),
        "GmtFinishTime": iso(pod.finished_at),
        "HistoryPods": [],
        "supportedProfilingTypes": "",
    }
    if pod.started_at is not None:
        body["Ip"] = "127.0.0.1"
        body["PodIps"] = [{"InterfaceName": "eth0", "Ip": "127.0.0.1"}]
    if detail:  # GetJob's pod model has Duration and ResourceType; ListJobs' PodItem has PodIp
        if pod.started_at is not None:
            body["Duration"] = round((pod.finished_at or view.now) - pod.started_at, 3)
        body["ResourceType"] = "ECS"
    elif pod.started_at is not None:
        body["PodIp"] = "127.0.0.1"
    return body


def _common(view: JobView, *, account_id: str, workspace_name: str) -> dict[str, Any]:
    record = view.record
    body = record.body
    last = view.phases[-1]
    out: dict[str, Any] = {
        "JobId": record.job_id,
        "DisplayName": record.display_name,
        "JobType": record.job_type,
        "WorkspaceId": record.workspace_id,
        "WorkspaceName": workspace_name,
        "ResourceId": body.get("ResourceId", ""),
        "ResourceType": "ECS",
        "ResourceLevel": "L0",
        "Status": last.status,
        "SubStatus": "",
        "ReasonCode": last.reason_code,
        "ReasonMessage": last.reason_message,
        "Duration": duration(view),
        **_times(view),
        "Priority": body.get("Priority", 1),
        "RestartTimes": "0/0",
        "UserCommand": body["UserCommand"],
        "Envs": body.get("Envs") or {},
        "ThirdpartyLibs": body.get("ThirdpartyLibs") or [],
        "ThirdpartyLibDir": body.get("ThirdpartyLibDir"),
        "JobSpecs": body["JobSpecs"],
        "Settings": body.get("Settings"),
        "Accessibility": body.get("Accessibility", "PRIVATE"),
        "UserId": account_id,
        "TenantId": account_id,
        "ClusterId": "sandbox",
        "StatusHistory": status_history(view),
        "supportedProfilingTypes": "",
    }
    return out


def get_job_body(view: JobView, *, account_id: str, workspace_name: str, need_detail: bool = True) -> dict[str, Any]:
    """The GetJob response body (without RequestId): only fields ``GetJobResponseBody`` knows."""
    cpu, gpu, mem = requests(view.record)
    body = _common(view, account_id=account_id, workspace_name=workspace_name)
    body.update(RequestCPU=cpu, RequestGPU=float(gpu), RequestMemory=float(mem))
    if view.record.body.get("Description"):
        body["Description"] = view.record.body["Description"]
    if need_detail:
        body["Pods"] = [_pod_body(view, p, detail=True) for p in view.pods]
    return _clean(body)


def list_item(view: JobView, *, account_id: str, workspace_name: str) -> dict[str, Any]:
    """A ListJobs ``Jobs[]`` element: GetJob's fields plus NodeCount etc., GPU/memory as strings."""
    cpu, gpu, mem = requests(view.record)
    body = _common(view, account_id=account_id, workspace_name=workspace_name)
    body.update(
        RequestCPU=cpu,
        RequestGPU=str(_number(gpu)),
        RequestMemory=str(_number(mem)),
        NodeCount=str(len(view.pods)),
        NodeNames=[view.node] if any(p.started_at for p in view.pods) else [],
        IsDeleted=False,
        GmtModifiedTime=iso(max([p.start for p in view.phases])),
        JobMaxRunningTimeMinutes=view.record.max_minutes,
        Username=account_id,
        Pods=[_pod_body(view, p, detail=False) for p in view.pods],
        TemplateId=view.record.body.get("TemplateId"),
        TemplateName=view.record.body.get("TemplateName"),
    )
    return _clean(body)
