"""Fault injection, set per sandbox instance: ``sandbox.faults``.

Two kinds of faults, each a small class registered under a ``kind`` name so that the Python API, the
admin route (``POST /_sandbox/faults``) and the CLI flags all build them the same way::

    faults = sandbox.faults
    faults.throttle(5, retry_after_ms=200)      # the next 5 API calls: 429 Throttling.User + x-acs-retry-after
    faults.fail_503(2)                          # the next 2 calls: 503 ServiceUnavailable (nothing happens)
    faults.fail_503(1, after=True)              # the next call happens, then answers 503 (outcome unknown)
    faults.latency(0.5)                         # every call waits 0.5 s first (count=N: the next N calls)
    faults.unpriced("ecs.gn7i")                 # DescribePrice refuses instance types containing this
    faults.image_pull_backoff("pytorch:2.3")    # new jobs whose image contains this end in ImagePullBackOff
    faults.queue_forever("nightly")             # new jobs whose DisplayName contains this stay Queuing
    faults.queue_forever()                      # ... every new job
    faults.sanity_check_failure("DeviceCheck")  # new jobs with EnableSanityCheck fail that phase, then Failed
    faults.idle_gpus("bench")                   # GPU jobs named *bench* report ~1-3 % GPU use (GetJobMetrics)
    faults.spot_reclaim(after_seconds=2)        # new jobs lose their (spot) instances 2 s into Running
    faults.spot_reclaim(2, spot_only=True)      # ... only those with UseSpotInstance
    faults.quota_queue(position=3)              # new quota jobs wait in their quota at position 3, until cleared
    faults.add_spec({"kind": "throttle", "count": 3})   # what the admin route and CLI use
    faults.clear()                              # remove them all (clear("throttle"): one kind)
    faults.discard(fault)                       # remove one (a quota_queue fault: its jobs are scheduled)

Request faults (:class:`RequestFault`) act on API calls (after the signature check): ``before``
may answer instead of the handler, ``after`` may replace a successful answer. They can be limited to
some actions (``actions={"CreateJob"}``). Once their count is used up they are removed.

Job faults (:class:`JobFault`) are matched when CreateJob (or CreateTrainingJob) accepts a job and stored
with it (so they survive a restart and do not affect jobs created before). Each one reshapes the job's
:class:`~server.sandbox.jobs.JobView` on every read (``shape``), may keep its pods from ever starting
(``blocks_launch``; with ``until_cleared`` only while the fault itself is still set: clearing it releases
the jobs it holds), may act on the running job from the scheduler (``tick``), may answer the job's sanity
check results (``sanity_items``) and is visible to the metrics handlers (``idle_gpus``). Every job fault gets
an ``fault_id`` when it is added; the id is stored with the jobs it matched.

Adding a fault: subclass one of the two, give it a ``kind``, implement its hooks, decorate it with
:func:`register`, and add a convenience method to :class:`Faults` if tests will use it often.

ReasonCodes the faults set are not documented by Alibaba; ``SanityCheckFailed`` and
``SpotInstanceReclaimed`` are our choices (see each class).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import anyio
import anyio.to_thread

from cloudjobs_mcp.server.errors import NotFound
from cloudjobs_mcp.server.providers.local.executor import MAX_RUNTIME_EXCEEDED
from cloudjobs_mcp.server.sandbox.errors import ApiError
from cloudjobs_mcp.server.sandbox.jobs import (
    NAMESPACE,
    SANITY_CHECK_FAILED,
    SANITY_PHASES,
    JobRecord,
    JobView,
    iso_checked,
    sanity_phases,
)

if TYPE_CHECKING:
    from cloudjobs_mcp.server.sandbox.app import Sandbox

F = TypeVar("F", bound="RequestFault | JobFault")
REQUEST_FAULTS: dict[str, type[RequestFault]] = {}
JOB_FAULTS: dict[str, type[JobFault]] = {}


def register(cls: type[Any]) -> type[Any]:
    """Class decorator: make a fault buildable by its ``kind`` (admin route, CLI, stored jobs)."""
    if issubclass(cls, RequestFault):
        REQUEST_FAULTS[cls.kind] = cls
    elif issubclass(cls, JobFault):
        JOB_FAULTS[cls.kind] = cls
    else:  # pragma: no cover - programming error
        raise TypeError(f"{cls!r} is not a fault")
    return cls


@dataclass(frozen=True)
class Call:
    """The API call a request fault sees."""

    product: str  # dlc | aiworkspace | ecs
    action: str
    method: str
    path: str
    query: Mapping[str, str]


# --------------------------------------------------------------------------------- request faults


class RequestFault:
    """A fault on API calls. ``count`` None: until cleared."""

    kind: ClassVar[str] = ""

    def __init__(self, *, count: int | None = None, actions: Iterable[str] | None = None) -> None:
        if count is not None and count < 0:
            raise ValueError("count must be >= 0")
        self.count = count
        self.actions = frozenset(actions) if actions else None
        self.used = 0

    def applies(self, call: Call) -> bool:
        return self.actions is None or call.action in self.actions

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.used >= self.count

    def _take(self) -> bool:
        if self.exhausted:
            return False
        self.used += 1
        return True

    async def before(self, call: Call) -> ApiError | None:
        """Called before the handler; an ApiError answers the call instead."""
        return None

    def after(self, call: Call) -> ApiError | None:
        """Called after the handler succeeded; an ApiError replaces its answer."""
        return None

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count}
        if self.actions:
            out["actions"] = sorted(self.actions)
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params(), "used": self.used}


@register
class Throttle(RequestFault):
    """429 ``Throttling.User`` with ``x-acs-retry-after`` (ms) for the next ``count`` calls."""

    kind = "throttle"

    def __init__(
        self,
        count: int = 1,
        retry_after_ms: int = 1000,
        *,
        code: str = "Throttling.User",
        actions: Iterable[str] | None = None,
    ) -> None:
        super().__init__(count=count, actions=actions)
        self.retry_after_ms = int(retry_after_ms)
        self.code = code

    async def before(self, call: Call) -> ApiError | None:
        if not self._take():
            return None
        return ApiError(
            429,
            self.code,
            "Request was denied due to user flow control.",
            headers={"x-acs-retry-after": str(self.retry_after_ms)},
        )

    def params(self) -> dict[str, Any]:
        return {**super().params(), "retry_after_ms": self.retry_after_ms, "code": self.code}


@register
class Fail503(RequestFault):
    """503 ``ServiceUnavailable`` for the next ``count`` calls; with ``after`` the call is carried out
    first (a create then really happened: the client cannot know)."""

    kind = "fail_503"

    def __init__(self, count: int = 1, *, after: bool = False, actions: Iterable[str] | None = None) -> None:
        super().__init__(count=count, actions=actions)
        self.after_handler = after

    def _error(self) -> ApiError:
        return ApiError(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")

    async def before(self, call: Call) -> ApiError | None:
        if self.after_handler or not self._take():
            return None
        return self._error()

    def after(self, call: Call) -> ApiError | None:
        if not self.after_handler or not self._take():
            return None
        return self._error()

    def params(self) -> dict[str, Any]:
        return {**super().params(), "after": self.after_handler}


@register
class Latency(RequestFault):
    """Every call (or the next ``count``) waits ``seconds`` before it is answered."""

    kind = "latency"

    def __init__(self, seconds: float, count: int | None = None, *, actions: Iterable[str] | None = None) -> None:
        super().__init__(count=count, actions=actions)
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.seconds = float(seconds)

    async def before(self, call: Call) -> ApiError | None:
        if self._take():
            await anyio.sleep(self.seconds)
        return None

    def params(self) -> dict[str, Any]:
        return {**super().params(), "seconds": self.seconds}


@register
class Unpriced(RequestFault):
    """ECS DescribePrice refuses instance types containing ``instance_type`` with
    ``InvalidInstanceType.ValueNotSupported``, as it does for DLC specs that ECS does not sell (e.g. Lingjun
    ``ml.*`` types): a spec ListEcsSpecs offers but no API prices. Until cleared."""

    kind = "unpriced"

    def __init__(self, instance_type: str = "", *, count: int | None = None) -> None:
        super().__init__(count=count, actions={"DescribePrice"})
        self.instance_type = instance_type

    async def before(self, call: Call) -> ApiError | None:
        if self.instance_type not in call.query.get("InstanceType", "") or not self._take():
            return None
        return ApiError(
            400,
            "InvalidInstanceType.ValueNotSupported",
            "The specified InstanceType does not exist or beyond the permitted range.",
        )

    def params(self) -> dict[str, Any]:
        return {"count": self.count, "instance_type": self.instance_type}


# ------------------------------------------------------------------------------------- job faults


class JobFault:
    """A fault that changes how one job goes. Matched at CreateJob, stored with the job as ``params()``
    (rebuilt with ``cls(**params)``) and its ``fault_id``, applied on every read."""

    kind: ClassVar[str] = ""
    blocks_launch: ClassVar[bool] = False  # True: the job's pods never start
    until_cleared: ClassVar[bool] = False  # with blocks_launch: only while this fault is still set
    fault_id: str = ""

    def matches(self, record: JobRecord) -> bool:
        return True

    def params(self) -> dict[str, Any]:
        return {}

    def shape(self, view: JobView) -> None:
        """Reshape ``view`` (status phases, pods, events) in place."""

    async def tick(self, view: JobView, sandbox: Sandbox) -> None:
        """Called by the scheduler for each of the fault's jobs that is not finished (may act on it)."""

    def sanity_items(self, view: JobView) -> list[dict[str, Any]] | None:
        """The job's sanity check run 1 (SanityCheckResultItem dicts) when this fault decides it."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params(), "id": self.fault_id}


def _named(substring: str | None, record: JobRecord) -> bool:
    return substring is None or substring in record.display_name


def _instance_id(pod_id: str) -> str:
    """A stable ECS instance id for a pod's node (``i-bp1`` + 17 characters, Hangzhou style)."""
    return "i-bp1" + hashlib.sha256(pod_id.encode()).hexdigest()[:17]


@register
class ImagePullBackOff(JobFault):
    """New jobs with an image containing ``image`` never start: after queuing they stay in
    EnvPreparing with Pending pods whose events are Kubernetes' failed-pull cycle — ``Pulling image``,
    ``Failed to pull image ...: rpc error: code = NotFound``, ``Error: ErrImagePull`` after
    ``pull_seconds``, then ``Back-off pulling image`` / ``Error: ImagePullBackOff`` every
    ``backoff_seconds``."""

    kind = "image_pull_backoff"
    blocks_launch = True
    MAX_REPEATS = 30

    def __init__(self, image: str = "", pull_seconds: float = 2.0, backoff_seconds: float = 10.0) -> None:
        if pull_seconds < 0 or backoff_seconds <= 0:
            raise ValueError("pull_seconds must be >= 0 and backoff_seconds > 0")
        self.image = image
        self.pull_seconds = float(pull_seconds)
        self.backoff_seconds = float(backoff_seconds)

    def matches(self, record: JobRecord) -> bool:
        return any(self.image in image for image in record.images)

    def params(self) -> dict[str, Any]:
        return {"image": self.image, "pull_seconds": self.pull_seconds, "backoff_seconds": self.backoff_seconds}

    def shape(self, view: JobView) -> None:
        record = view.record
        start = record.launch_at
        if view.now < start or record.launched_at is not None:
            return
        bad = next((i for i in record.images if self.image in i), record.images[0])
        view.enter("EnvPreparing", start, "ImagePullBackOff", f'Back-off pulling image "{bad}"')
        failed_at = start + self.pull_seconds
        for plan, pod in zip(record.pods, view.pods, strict=True):
            image = record.image_of(plan.role)
            pod.status, pod.sub_status = "Pending", "Normal"
            view.job_event(start, f"Created pod: {pod.pod_id}")
            view.pod_event(pod.pod_id, start, f"Successfully assigned {NAMESPACE}/{pod.pod_id} to {view.node}")
            view.pod_event(pod.pod_id, start, f'Pulling image "{image}"')
            if self.image not in image:
                view.pod_event(pod.pod_id, failed_at, f'Successfully pulled image "{image}" in 0s')
                continue
            view.pod_event(
                pod.pod_id,
                failed_at,
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack '
                f'image "{image}": failed to resolve reference "{image}": {image}: not found',
            )
            view.pod_event(pod.pod_id, failed_at, "Error: ErrImagePull")
            at = failed_at
            for _ in range(self.MAX_REPEATS):
                at += self.backoff_seconds if at > failed_at else 0.5
                if at > view.now:
                    break
                view.pod_event(pod.pod_id, at, f'Back-off pulling image "{image}"')
                view.pod_event(pod.pod_id, at, "Error: ImagePullBackOff")


@register
class QueueForever(JobFault):
    """New jobs whose DisplayName contains ``display_name`` (every job when None) stay Queuing."""

    kind = "queue_forever"
    blocks_launch = True

    def __init__(self, display_name: str | None = None) -> None:
        self.display_name = display_name

    def matches(self, record: JobRecord) -> bool:
        return self.display_name is None or self.display_name in record.display_name

    def params(self) -> dict[str, Any]:
        return {"display_name": self.display_name}

    def shape(self, view: JobView) -> None:
        if view.status == "Queuing":
            view.phases[-1].reason_message = "Waiting for resources: the public resource pool has no free capacity."


@register
class SanityCheckFailure(JobFault):
    """New jobs created with ``Settings.EnableSanityCheck=true`` (whose DisplayName contains
    ``display_name_substring``, when given) fail their sanity check in ``phase``: after queuing the pods are
    created and run the check (status ``SanityChecking``, the phases before ``phase`` passing) and
    ``check_seconds`` later the job is ``Failed`` — before any pod runs the user command — with ReasonCode
    ``SanityCheckFailed`` (the service's code is undocumented: ours) and the failing phase's Message in
    ReasonMessage, ListJobSanityCheckResults / GetJobSanityCheckResult and the pods' events. ``message``
    replaces the phase's default Message."""

    kind = "sanity_check_failure"
    blocks_launch = True

    MESSAGES: ClassVar[dict[str, str]] = {
        "CheckInit": "environment check failed on {pod}: the GPU runtime did not initialise (nvidia-smi: NVIDIA-SMI "
        "has failed because it couldn't communicate with the NVIDIA driver); the node was isolated",
        "DeviceCheck": "single-card computing power check failed on {pod}: GPU 0 reached 21.4 TFLOPS in the GEMM "
        "test, below 70% of the expected 65.1 TFLOPS (Xid 79: GPU has fallen off the bus); the node was isolated",
        "SingleNodeCommCheck": "intra-node communication check failed on {pod}: NCCL all_reduce bus bandwidth "
        "3.2 GB/s, below the threshold of 150 GB/s (NVLink degraded)",
        "TwoNodeCommCheck": "two-node communication check failed between {pod} and {peer}: NCCL all_reduce timed "
        "out after 300 s (ncclRemoteError: a remote process exited or there was a network error)",
        "AllNodeCommCheck": "all-node communication check failed across {pods} pods: NCCL all_reduce bus bandwidth "
        "0.8 GB/s, below the threshold of 20 GB/s (slowest link {pod} <-> {peer})",
    }

    def __init__(
        self,
        phase: str = "DeviceCheck",
        display_name_substring: str | None = None,
        message: str | None = None,
        check_seconds: float = 1.0,
    ) -> None:
        if phase not in SANITY_PHASES:
            raise ValueError(f"phase must be one of {', '.join(SANITY_PHASES)}, not {phase!r}")
        if check_seconds <= 0:
            raise ValueError("check_seconds must be > 0")
        self.phase = phase
        self.display_name_substring = display_name_substring
        self.message = message
        self.check_seconds = float(check_seconds)

    def matches(self, record: JobRecord) -> bool:
        return record.sanity_enabled and _named(self.display_name_substring, record)

    def params(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "display_name_substring": self.display_name_substring,
            "message": self.message,
            "check_seconds": self.check_seconds,
        }

    def _message(self, record: JobRecord) -> str:
        if self.message:
            return self.message
        pods = [p.pod_id for p in record.pods]
        return self.MESSAGES[self.phase].format(pod=pods[-1], peer=pods[0], pods=len(pods))

    def _schedule(self, record: JobRecord) -> list[tuple[str, float, float]]:
        """``(phase, start, end)`` of every phase that runs, the failing one last."""
        phases = sanity_phases(record, self.phase)
        phases = phases[: phases.index(self.phase) + 1]
        begin = record.launch_at + 0.1 * self.check_seconds
        step = 0.9 * self.check_seconds / len(phases)
        return [(p, begin + i * step, begin + (i + 1) * step) for i, p in enumerate(phases)]

    def _horizon(self, view: JobView) -> float:
        stop = view.record.stop_requested_at
        return min(view.now, stop) if stop is not None else view.now

    def sanity_items(self, view: JobView) -> list[dict[str, Any]] | None:
        record = view.record
        horizon = self._horizon(view)
        items: list[dict[str, Any]] = []
        for phase, start, end in self._schedule(record):
            if start > horizon:
                break
            item: dict[str, Any] = {"CheckNumber": 1, "Phase": phase, "StartedAt": iso_checked(start)}
            if end > horizon:
                stopped = record.stop_requested_at is not None and record.stop_requested_at <= view.now
                item.update(Status="Failed" if stopped else "Running", Message="stopped by user" if stopped else "")
                if stopped:
                    item["FinishedAt"] = iso_checked(horizon)
            elif phase == self.phase:
                item.update(Status="Failed", Message=self._message(record), FinishedAt=iso_checked(end))
            else:
                item.update(Status="Succeeded", Message=f"{phase} passed", FinishedAt=iso_checked(end))
            items.append(item)
        return items

    def shape(self, view: JobView) -> None:
        record = view.record
        start = record.launch_at
        horizon = self._horizon(view)
        if horizon < start or record.launched_at is not None:
            return
        schedule = self._schedule(record)
        checking, failed_at = schedule[0][1], schedule[-1][2]
        view.enter("EnvPreparing", start)
        container = record.container
        for plan, pod in zip(record.pods, view.pods, strict=True):
            image = record.image_of(plan.role)
            pod.created_at = start
            view.job_event(start, f"Created pod: {pod.pod_id}")
            view.pod_event(pod.pod_id, start, f"Successfully assigned {NAMESPACE}/{pod.pod_id} to {view.node}")
            view.pod_event(pod.pod_id, start, f'Pulling image "{image}"')
            view.pod_event(pod.pod_id, start, f'Successfully pulled image "{image}" in 0s')
            view.pod_event(pod.pod_id, start, f"Created container {container}")
            view.pod_event(pod.pod_id, start, f"Started container {container}")
            pod.status, pod.started_at = "Running", start
        if horizon < checking:
            return
        phases = ", ".join(p for p, _, _ in schedule)
        view.enter("SanityChecking", checking)
        view.job_event(checking, f"Job {record.job_id} started sanity check 1 ({phases}) before the user command.")
        if horizon < failed_at:
            return
        message = self._message(record)
        view.enter("Failed", failed_at, SANITY_CHECK_FAILED, f"Sanity check failed in phase {self.phase}: {message}.")
        view.job_event(failed_at, f"Job {record.job_id} failed: sanity check 1 failed in phase {self.phase}: {message}")
        for pod in view.pods:
            view.pod_event(pod.pod_id, failed_at, f"Sanity check {self.phase} failed: {message}")
            view.pod_event(pod.pod_id, failed_at, f"Container {container} exited with code 1")
            pod.status, pod.finished_at, pod.exit_code = "Failed", failed_at, 1


@register
class IdleGpus(JobFault):
    """New jobs (whose DisplayName contains ``display_name_substring``, when given) on GPU specs report their
    GPUs allocated but idle: GetJobMetrics / ListTrainingJobInstanceMetrics answer GpuCoreUsage ~1-3 % and
    GpuMemoryUsage ~0.5-2 % instead of the busy 60-90 % / 45-75 % (GPU metrics are synthetic in the sandbox)."""

    kind = "idle_gpus"

    def __init__(self, display_name_substring: str | None = None) -> None:
        self.display_name_substring = display_name_substring

    def matches(self, record: JobRecord) -> bool:
        return _named(self.display_name_substring, record)

    def params(self) -> dict[str, Any]:
        return {"display_name_substring": self.display_name_substring}


# The ReasonCode of a job whose spot instance was reclaimed: undocumented by Alibaba, our choice.
SPOT_RECLAIMED = "SpotInstanceReclaimed"


@register
class SpotReclaim(JobFault):
    """New jobs (whose DisplayName contains ``display_name_substring``, when given; spot or not) lose their
    instances ``after_seconds`` into Running: the scheduler kills the pods (SIGTERM, then SIGKILL after the
    grace period) and the job ends **Failed** — PAI-DLC fails a job whose spot instance is released (it
    restarts it only with a restart policy / ElasticSpotSpecs, which the sandbox does not model) — with
    ReasonCode ``SpotInstanceReclaimed`` (ours), and job and pod events about the interruption notice and the
    reclaimed spot instance. With ``spot_only`` only jobs with ``JobSpecs[].UseSpotInstance=true`` (a PaiStudio
    job's ``ComputeResource.UseSpotInstance``) are reclaimed."""

    kind = "spot_reclaim"

    def __init__(
        self, after_seconds: float = 1.0, display_name_substring: str | None = None, spot_only: bool = False
    ) -> None:
        if after_seconds < 0:
            raise ValueError("after_seconds must be >= 0")
        self.after_seconds = float(after_seconds)
        self.display_name_substring = display_name_substring
        self.spot_only = bool(spot_only)

    def matches(self, record: JobRecord) -> bool:
        return _named(self.display_name_substring, record) and (not self.spot_only or record.uses_spot)

    def params(self) -> dict[str, Any]:
        return {
            "after_seconds": self.after_seconds,
            "display_name_substring": self.display_name_substring,
            "spot_only": self.spot_only,
        }

    def _due(self, view: JobView) -> float | None:
        return None if view.running_at is None else view.running_at + self.after_seconds

    async def tick(self, view: JobView, sandbox: Sandbox) -> None:
        due = self._due(view)
        if view.status != "Running" or due is None or view.now < due or view.record.stop_requested_at is not None:
            return

        def evict() -> None:
            try:
                state = sandbox.executor.get(view.record.job_id)
                if not state.stop_requested and not state.terminal:
                    sandbox.executor.stop(view.record.job_id)
            except NotFound:
                pass

        await anyio.to_thread.run_sync(evict)

    def shape(self, view: JobView) -> None:
        due = self._due(view)
        record = view.record
        if due is None or view.now < due:
            return
        user_stop = record.stop_requested_at
        last = view.phases[-1]
        evicted = (
            last.status in ("Stopping", "Stopped")
            and last.reason_code != MAX_RUNTIME_EXCEEDED
            and (user_stop is None or user_stop > due)
        )
        if not evicted and last.status != "Running":
            return  # it ended (or was stopped) before the reclaim
        kind = "spot instance" if record.uses_spot else "spot (preemptible) instance"
        container = record.container
        view.job_event(
            due,
            f"Job {record.job_id}: ECS sent the interruption notice for the {kind}(s) of its pods: the instances "
            "are being reclaimed (the spot price rose above the limit or the spot stock ran out).",
        )
        for pod in view.pods:
            if pod.started_at is None:
                continue
            view.pod_event(
                pod.pod_id,
                due,
                f"Spot instance {_instance_id(pod.pod_id)} of node {view.node} is being reclaimed by ECS "
                "(interruption notice); the pod is evicted",
            )
        if not evicted:
            return
        while view.phases[-1].status in ("Stopping", "Stopped"):
            view.phases.pop()
        view.job_events = [e for e in view.job_events if not e[1].startswith(f"Job {record.job_id} is stopped")]
        for pod_id, events in view.pod_events.items():
            view.pod_events[pod_id] = [e for e in events if e[1] != f"Stopping container {container}"]
        if last.status == "Stopping":
            return  # the pods are being killed; it fails once they are gone
        end = last.start
        message = (
            f"Job failed: the {kind} running its pods was reclaimed by ECS (SpotInstanceReclaimed) and the "
            "pods were killed; resume from a checkpoint or run on pay-as-you-go instances."
        )
        view.enter("Failed", end, SPOT_RECLAIMED, message)
        view.job_event(end, f"Job {record.job_id} failed: its {kind} was reclaimed and its pods were killed.")
        for pod in view.pods:
            if pod.started_at is not None:
                view.pod_event(pod.pod_id, end, f"Killing container {container}: the spot instance was reclaimed")
                pod.status = "Failed"


@register
class QuotaQueue(JobFault):
    """New jobs on a resource quota (``ResourceId``; only ``quota_id``'s when given; whose DisplayName contains
    ``display_name_substring``, when given) wait in the quota's queue at ``position`` — Queuing, not
    scheduled, ``Enqueued`` in ListQuotaWorkloads with that Position and the reason — until this fault is
    cleared (``Faults.clear`` / ``discard`` / the admin route's DELETE, ``?id=`` for this one); then they are
    scheduled. (A restarted sandbox starts without faults, so it schedules them too.)"""

    kind = "quota_queue"
    blocks_launch = True
    until_cleared = True

    def __init__(
        self, position: int = 1, display_name_substring: str | None = None, quota_id: str | None = None
    ) -> None:
        if isinstance(position, bool) or not isinstance(position, int) or position < 1:
            raise ValueError("position must be an integer >= 1 (1: next to be scheduled)")
        self.position = position
        self.display_name_substring = display_name_substring
        self.quota_id = quota_id

    def matches(self, record: JobRecord) -> bool:
        return (
            bool(record.resource_id)
            and (self.quota_id is None or record.resource_id == self.quota_id)
            and _named(self.display_name_substring, record)
        )

    def params(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "display_name_substring": self.display_name_substring,
            "quota_id": self.quota_id,
        }

    def reason(self, quota: str) -> str:
        ahead = self.position - 1
        return (
            f"Waiting for resources in resource quota {quota}: position {self.position} in its queue, "
            f"{ahead} workload{'s' if ahead != 1 else ''} ahead; the quota's free resources are smaller than the "
            "job's request."
        )

    def shape(self, view: JobView) -> None:
        record = view.record
        if record.launched_at is not None or view.now < record.queue_at:
            return
        view.job_event(
            record.queue_at,
            f"Job {record.job_id} is enqueued in resource quota {record.resource_id}: position {self.position} "
            "in the queue, waiting for resources.",
        )
        if view.status == "Queuing":
            view.phases[-1].reason_message = self.reason(record.resource_id)


# ------------------------------------------------------------------------------------------ Faults


class Faults:
    """The faults of one sandbox; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.request: list[RequestFault] = []
        self.job: list[JobFault] = []

    # -- building
    def add(self, fault: F) -> F:
        with self._lock:
            if isinstance(fault, RequestFault):
                self.request.append(fault)
            else:
                fault.fault_id = fault.fault_id or uuid.uuid4().hex[:12]
                self.job.append(fault)
        return fault

    def add_spec(self, spec: Mapping[str, Any]) -> RequestFault | JobFault:
        """A fault from ``{"kind": ..., **params}`` (the admin route's and the CLI's form)."""
        params = dict(spec)
        kind = str(params.pop("kind", ""))
        params.pop("used", None)
        params.pop("id", None)
        cls: type[RequestFault] | type[JobFault] | None = REQUEST_FAULTS.get(kind) or JOB_FAULTS.get(kind)
        if cls is None:
            known = ", ".join(sorted([*REQUEST_FAULTS, *JOB_FAULTS]))
            raise ValueError(f"unknown fault kind {kind!r}; known: {known}")
        try:
            fault = cls(**params)
        except TypeError as exc:
            raise ValueError(f"bad parameters for fault {kind!r}: {exc}") from None
        return self.add(fault)

    def throttle(self, count: int = 1, retry_after_ms: int = 1000, **kw: Any) -> Throttle:
        return self.add(Throttle(count, retry_after_ms, **kw))

    def fail_503(self, count: int = 1, *, after: bool = False, **kw: Any) -> Fail503:
        return self.add(Fail503(count, after=after, **kw))

    def latency(self, seconds: float, count: int | None = None, **kw: Any) -> Latency:
        return self.add(Latency(seconds, count, **kw))

    def unpriced(self, instance_type: str = "", **kw: Any) -> Unpriced:
        return self.add(Unpriced(instance_type, **kw))

    def image_pull_backoff(self, image: str = "", **kw: Any) -> ImagePullBackOff:
        return self.add(ImagePullBackOff(image, **kw))

    def queue_forever(self, display_name: str | None = None) -> QueueForever:
        return self.add(QueueForever(display_name))

    def sanity_check_failure(
        self, phase: str = "DeviceCheck", display_name_substring: str | None = None, **kw: Any
    ) -> SanityCheckFailure:
        return self.add(SanityCheckFailure(phase, display_name_substring, **kw))

    def idle_gpus(self, display_name_substring: str | None = None) -> IdleGpus:
        return self.add(IdleGpus(display_name_substring))

    def spot_reclaim(
        self, after_seconds: float = 1.0, display_name_substring: str | None = None, spot_only: bool = False
    ) -> SpotReclaim:
        return self.add(SpotReclaim(after_seconds, display_name_substring, spot_only))

    def quota_queue(
        self, position: int = 1, display_name_substring: str | None = None, quota_id: str | None = None
    ) -> QuotaQueue:
        return self.add(QuotaQueue(position, display_name_substring, quota_id))

    def clear(self, kind: str | None = None) -> None:
        with self._lock:
            self.request = [f for f in self.request if kind is not None and f.kind != kind]
            self.job = [f for f in self.job if kind is not None and f.kind != kind]

    def discard(self, fault: RequestFault | JobFault) -> None:
        """Remove one fault (jobs a ``quota_queue`` fault holds are scheduled next)."""
        with self._lock:
            self.request = [f for f in self.request if f is not fault]
            self.job = [f for f in self.job if f is not fault]

    def discard_id(self, fault_id: str) -> None:
        """Remove the job fault with this id (``describe()`` shows each one's ``id``)."""
        with self._lock:
            self.job = [f for f in self.job if f.fault_id != fault_id]

    def active(self, fault_id: str) -> bool:
        """Whether the job fault with this id is still set."""
        with self._lock:
            return any(f.fault_id == fault_id for f in self.job)

    def holds(self, record: JobRecord) -> bool:
        """Whether a fault keeps ``record``'s pods from starting now."""
        return any(
            f.blocks_launch and (not f.until_cleared or self.active(f.fault_id)) for f in job_faults(record.faults)
        )

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self.request] + [f.describe() for f in self.job]

    # -- applying
    async def before(self, call: Call) -> ApiError | None:
        for fault in self._live(call):
            error = await fault.before(call)
            if error is not None:
                return error
        return None

    def after(self, call: Call) -> ApiError | None:
        for fault in self._live(call):
            error = fault.after(call)
            if error is not None:
                return error
        return None

    def _live(self, call: Call) -> list[RequestFault]:
        with self._lock:
            self.request = [f for f in self.request if not f.exhausted]
            return [f for f in self.request if f.applies(call)]

    def for_new_job(self, record: JobRecord) -> list[dict[str, Any]]:
        """The stored form of every job fault matching a job being created."""
        with self._lock:
            return [{"kind": f.kind, **f.params(), "_id": f.fault_id} for f in self.job if f.matches(record)]


def job_faults(stored: list[dict[str, Any]]) -> list[JobFault]:
    """Rebuild a job's stored faults (unknown kinds, e.g. from a newer version, are ignored)."""
    out: list[JobFault] = []
    for spec in stored:
        params = dict(spec)
        cls = JOB_FAULTS.get(str(params.pop("kind", "")))
        fault_id = str(params.pop("_id", "") or "")
        if cls is not None:
            try:
                fault = cls(**params)
            except (TypeError, ValueError):
                continue
            fault.fault_id = fault_id
            out.append(fault)
    return out
