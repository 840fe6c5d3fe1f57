"""How the ModelArts face shows the shared timeline (``server/sandbox/jobs.py``'s JobView) in ModelArts' shapes.

A ModelArts job is a row of the sandbox's job table whose body holds the ModelArts create body under
``"ModelArts"``; its pods are ``modelarts-job-<job id>-worker-<n>`` (the Kubernetes names the reference
gives), its tasks ``worker-<n>``. The shared phases map onto ModelArts' ``status.phase`` (and
``secondary_phase``): Creating → Creating; Queuing → Pending (Queuing); EnvPreparing, SanityChecking,
Running → Running; Stopping → Terminating; Succeeded → Completed; Failed → Failed; Stopped → Terminated.
Times are epoch milliseconds; durations milliseconds in jobs, **seconds** in pool workloads; event times
``2022-11-26T16:03:41+08:00``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cloudjobs_mcp.server.sandbox.faults import job_faults
from cloudjobs_mcp.server.sandbox.jobs import JobView
from cloudjobs_mcp.server.sandbox.modelarts.catalog import BY_ID

PHASES = {
    "Creating": ("Creating", "Creating"),
    "Queuing": ("Pending", "Queuing"),
    "EnvPreparing": ("Running", "Running"),
    "SanityChecking": ("Running", "Running"),
    "Running": ("Running", "Running"),
    "Stopping": ("Terminating", "Terminating"),
    "Succeeded": ("Completed", "Completed"),
    "Failed": ("Failed", "Failed"),
    "Stopped": ("Terminated", "Terminated"),
}
WORKLOAD_STATUS = {
    "Creating": "Creating",
    "Queuing": "Queue",
    "EnvPreparing": "Pending",
    "SanityChecking": "Running",
    "Running": "Running",
    "Stopping": "Terminating",
    "Succeeded": "Completed",
    "Failed": "Failed",
    "Stopped": "Terminated",
}
CHINA = timezone(timedelta(hours=8))
POD_PREFIX = "modelarts-job-"


def ms(ts: float | None) -> int:
    return round(ts * 1000) if ts is not None else 0


def pod_prefix(job_id: str) -> str:
    return f"{POD_PREFIX}{job_id}"


def task_of(job_id: str, pod_id: str) -> str:
    prefix = pod_prefix(job_id) + "-"
    return pod_id[len(prefix) :] if pod_id.startswith(prefix) else pod_id


def phase(view: JobView) -> tuple[str, str]:
    return PHASES.get(view.status, ("Running", "Running"))


def job_body(view: JobView, *, user: str) -> dict[str, Any]:
    record = view.record
    ma = record.body["ModelArts"]
    job_id = record.job_id
    phase_name, secondary = phase(view)
    resource = dict(ma["spec"]["resource"])
    flavor = BY_ID.get(str(resource.get("flavor_id") or ""))
    if flavor is not None:
        resource["flavor_name"] = flavor.name
        resource["flavor_detail"] = {
            "flavor_type": flavor.kind,
            "billing": {"code": flavor.flavor_id, "unit_num": 1},
            "flavor_info": flavor.item()["flavor_info"],
        }
    resource.setdefault("policy", "regular")
    if resource.get("pool_id"):
        resource["pool_name"] = resource["pool_id"]
    started = view.running_at
    end = view.finished_at if view.finished_at is not None else view.now
    tasks = [task_of(job_id, p.pod_id) for p in view.pods]
    last = view.phases[-1]
    task_statuses = [
        {
            "task": task_of(job_id, p.pod_id),
            "exit_code": p.exit_code,
            "message": last.reason_message if view.terminal else "",
        }
        for p in view.pods
        if p.exit_code is not None
    ]
    records = []
    if started is not None:
        records.append(
            {
                "start_at": round(started),
                "end_at": round(view.finished_at) if view.finished_at is not None else 0,
                "start_type": "init_or_rescheduled",
                "end_reason": last.reason_message if view.terminal else "",
            }
        )
    algorithm = dict(ma["algorithm"])
    # Responses give environments as a list of one-key maps (requests: one map).
    algorithm["environments"] = [{k: v} for k, v in (algorithm.get("environments") or {}).items()]
    return {
        "kind": "job",
        "metadata": {
            "id": job_id,
            "name": ma["metadata"]["name"],
            "workspace_id": ma["metadata"].get("workspace_id", "0"),
            "description": ma["metadata"].get("description", ""),
            "create_time": ms(record.created_at),
            "user_name": user,
            "annotations": ma["metadata"].get("annotations") or {},
        },
        "status": {
            "phase": phase_name,
            "secondary_phase": secondary,
            "duration": ms(end - started) if started is not None else 0,
            "start_time": ms(started),
            "tasks": tasks,
            "task_statuses": task_statuses,
            "running_records": records,
            "node_count_metrics": [],
        },
        "algorithm": algorithm,
        "spec": {**{k: v for k, v in ma["spec"].items() if k != "auto_stop"}, "resource": resource},
        "endpoints": {},
    }


def _level(message: str) -> str:
    low = message.lower()
    if any(w in low for w in ("failed", "error", "backoff", "oomkilled")):
        return "Error"
    if any(w in low for w in ("stopp", "terminat", "warning")):
        return "Warning"
    return "Info"


def _reword(view: JobView, message: str) -> str:
    """The shared timeline speaks of DLC job types and resource quotas; ModelArts of flavors and pools."""
    resource = view.record.body["ModelArts"]["spec"]["resource"]
    message = message.replace(f"{view.record.job_type} with", "training job with")
    message = message.replace("on a resource quota", f"on flavor {resource.get('flavor_id')}")
    return message.replace("resource quota", "dedicated pool")


def events(view: JobView) -> list[dict[str, Any]]:
    """Job events (source Job) and pod events (source K8S, ``[Pod: <pod>] …``), oldest first."""
    items: list[tuple[float, dict[str, Any]]] = []
    for at, message in view.job_events:
        items.append((at, {"message": _reword(view, message), "source": "Job"}))
    for pod_id, pod_events in view.pod_events.items():
        for at, message in pod_events:
            items.append((at, {"message": f"[Pod: {pod_id}] {message}", "source": "K8S"}))
    items.sort(key=lambda item: item[0])
    return [
        {
            "time": datetime.fromtimestamp(at, CHINA).isoformat(timespec="seconds"),
            "level": _level(body["message"]),
            **body,
        }
        for at, body in items
    ]


def queue_position(view: JobView, rank: int) -> int:
    """A queued job's position: a ``quota_queue`` fault's, else its rank among the pool's queued jobs."""
    for fault in job_faults(view.record.faults):
        position = getattr(fault, "position", None)
        if fault.kind == "quota_queue" and isinstance(position, int):
            return position
    return rank


def workload(view: JobView, *, user: str, namespace: str, position: int | None) -> dict[str, Any]:
    record = view.record
    ma = record.body["ModelArts"]
    resource = ma["spec"]["resource"]
    flavor = BY_ID.get(str(resource.get("flavor_id") or ""))
    requirement = {"cpu": f"{flavor.cpu} Cores", "memory": f"{flavor.memory_gb} GiB"} if flavor else {}
    if flavor is not None and flavor.kind == "GPU":
        requirement["nvidia.com/gpu"] = str(flavor.accelerators)
    elif flavor is not None and flavor.kind == "Ascend":
        requirement["huawei.com/ascend-1980"] = str(flavor.accelerators)
    status = WORKLOAD_STATUS.get(view.status, "Running")
    queued_from = next((p.start for p in view.phases if p.status == "Queuing"), None)
    pending_end = view.running_at if view.running_at is not None else (view.finished_at or view.now)
    running_end = view.finished_at if view.finished_at is not None else view.now
    started = any(p.started_at is not None for p in view.pods)
    return {
        "apiVersion": "v1",
        "kind": "Workload",
        "type": "train",
        "namespace": namespace,
        "name": pod_prefix(record.job_id),
        "jobName": ma["metadata"]["name"],
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"modelarts-sandbox/{record.job_id}")),
        "jobUUID": record.job_id,
        "flavor": resource.get("flavor_id") or "",
        "status": status,
        "userName": user,
        "priority": str(ma["spec"].get("schedule_policy", {}).get("priority", 1)),
        "runningDuration": round(running_end - view.running_at) if view.running_at is not None else 0,
        "pendingDuration": round(max(0.0, pending_end - queued_from)) if queued_from is not None else 0,
        "pendingPosition": position if status == "Queue" and position is not None else -1,
        "createTime": ms(record.created_at),
        "gvk": "batch.volcano.sh/v1alpha1, Kind=Job",
        "hostIps": "127.0.0.1" if started else "",
        "resourceRequirement": requirement,
        "nodes": [{"hostIp": "127.0.0.1", "npuTopologyPlacement": "0" * 16, "resourceRequirement": requirement}]
        if started
        else [],
        "isDeleted": "false",
    }


def foreign_workloads(pool: str, namespace: str, created: float) -> list[dict[str, Any]]:
    """Another team's workloads on the train pool, so that filters and paging have something to sort out."""
    out = []
    for i, (kind, status, position) in enumerate((("infer", "Running", -1), ("train", "Queue", 1))):
        job = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{pool}/{i}"))
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Workload",
                "type": kind,
                "namespace": namespace,
                "name": f"{POD_PREFIX}{job}",
                "jobName": f"other-team-{kind}-{i}",
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{pool}/uid/{i}")),
                "jobUUID": job,
                "flavor": "modelarts.vm.cpu.8u",
                "status": status,
                "userName": "other-team",
                "priority": "1",
                "runningDuration": 0,
                "pendingDuration": 0,
                "pendingPosition": position,
                "createTime": ms(created - 3600 * (i + 1)),
                "gvk": "batch.volcano.sh/v1alpha1, Kind=Job",
                "resourceRequirement": {"cpu": "8 Cores", "memory": "32 GiB"},
                "isDeleted": "false",
            }
        )
    return out


def namespace_of(pool: str) -> str:
    return f"pool-train-{uuid.uuid5(uuid.NAMESPACE_URL, pool).hex}"


def iso_now(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
