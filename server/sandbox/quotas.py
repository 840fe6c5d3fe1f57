"""Resource quotas: the jobs created with a ``ResourceId`` and their queue, as PaiStudio's ListQuotaWorkloads
(``GET /api/v1/quotas/{QuotaId}/workloads``) reports them.

A job on a quota is ``Enqueued`` from the end of its Creating phase until the sandbox schedules it (its
queuing time, or until a ``quota_queue`` fault holding it is cleared), then ``Dequeued`` (with
``GmtDequeuedTime``). Without ``WithHistoricalData=true`` only the enqueued ones are listed. Positions count
from 1 (next to be scheduled) by priority (higher first), then enqueue time; a ``quota_queue`` fault pins its
jobs at its position. A job stopped while it waited leaves the queue as ``Withdrawn`` (our name: the
service's is undocumented). A PaiStudio training job's entry carries the training job's id (``train…``) as
WorkloadId, its name, and WorkloadType ``dlc`` (it runs as a PAI-DLC job).

QueueInfo times are ``YYYY-MM-DDTHH:MM:SSZ``. Code / CodeType / Reason of a waiting entry (why it waits)
are our wording; the real service's codes (``roleMaximumResource`` / ``ConfigRule`` ...) depend on the
quota's rules, which the sandbox does not model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cloudjobs_mcp.server.sandbox.faults import QuotaQueue, job_faults
from cloudjobs_mcp.server.sandbox.jobs import JobView, iso, requests

QUEUE_STRATEGY = "PaiStrategyIntelligent"
ENQUEUED, DEQUEUED, WITHDRAWN = "Enqueued", "Dequeued", "Withdrawn"


def queue_state(view: JobView) -> tuple[str, float | None] | None:
    """``(queue status, left the queue at)``, or None before the job reached the queue. A job leaves it when
    it is scheduled (its first phase after Queuing: EnvPreparing ...), or is withdrawn when it was stopped
    (or failed to start) while it waited."""
    record = view.record
    if view.now < record.queue_at and record.launched_at is None:
        return None
    if record.launched_at is not None:
        return DEQUEUED, record.launched_at
    after = next((p for p in view.phases if p.status not in ("Creating", "Queuing")), None)
    if after is None:
        return ENQUEUED, None
    if after.status in ("Stopped", "Failed"):
        return WITHDRAWN, after.start
    return DEQUEUED, after.start


def entries(
    views: Sequence[JobView],
    quota: str,
    *,
    training_ids: Mapping[str, str],
    workspace_names: Mapping[str, str],
    account_id: str,
) -> list[dict[str, Any]]:
    """Every workload the quota has seen (QueueInfo dicts), in enqueue order."""
    mine = [v for v in views if v.record.resource_id == quota and queue_state(v) is not None]
    mine.sort(key=lambda v: (v.record.queue_at, v.record.job_id))
    pinned: dict[str, QuotaQueue] = {}
    for v in mine:
        for held in job_faults(v.record.faults):
            if isinstance(held, QuotaQueue):
                pinned[v.record.job_id] = held
    waiting = [v for v in mine if queue_state(v) == (ENQUEUED, None) and v.record.job_id not in pinned]
    waiting.sort(key=lambda v: (-v.record.priority, v.record.queue_at, v.record.job_id))
    ranks = {v.record.job_id: i for i, v in enumerate(waiting, start=1)}
    out = []
    for view in mine:
        record = view.record
        state = queue_state(view)
        assert state is not None
        status, dequeued = state
        cpu, gpu, memory = requests(record)
        share = record.allocation(record.pods[0].role)
        item: dict[str, Any] = {
            "WorkloadId": training_ids.get(record.job_id, record.job_id),
            "WorkloadName": record.display_name,
            "WorkloadType": "dlc",
            "WorkloadStatus": view.status,
            "Status": status,
            "QuotaId": quota,
            "Name": quota,
            "QueueStrategy": QUEUE_STRATEGY,
            "Priority": record.priority,
            "WorkspaceId": record.workspace_id,
            "WorkspaceName": workspace_names.get(record.workspace_id, ""),
            "UserId": account_id,
            "UserName": f"sandbox-user-{account_id[-4:]}",
            "GmtCreatedTime": iso(record.created_at),
            "GmtEnqueuedTime": iso(record.queue_at),
            "GmtPositionModifiedTime": iso(record.queue_at),
            "Resource": {
                "CPU": str(cpu),
                "Memory": f"{memory:g}Gi",
                "GPU": f"{gpu:g}",
                "GPUType": share.gpu_type,
            },
            "UseOversoldResource": False,
        }
        if status == DEQUEUED and dequeued is not None:
            item["GmtDequeuedTime"] = iso(dequeued)
        if status == ENQUEUED:
            fault = pinned.get(record.job_id)
            position = fault.position if fault is not None else ranks.get(record.job_id, 1)
            item.update(
                Position=position,
                Code="QuotaResourceNotEnough",
                CodeType="Resource",
                Reason=fault.reason(quota)
                if fault is not None
                else f"Waiting for resources in resource quota {quota} (position {position}).",
            )
        out.append(item)
    return out


def select(items: list[dict[str, Any]], query: Mapping[str, str], *, historical: bool) -> list[dict[str, Any]]:
    """ListQuotaWorkloads' filters."""

    def listed(name: str) -> set[str] | None:
        raw = query.get(name)
        return {x.strip() for x in raw.split(",") if x.strip()} if raw else None

    ids, types = listed("WorkloadIds"), listed("WorkloadType")
    workspaces, names = listed("WorkspaceIds"), listed("WorkloadNames")
    statuses, workload_statuses = listed("Status"), listed("WorkloadStatuses")
    users = listed("UserIds")
    return [
        i
        for i in items
        if (historical or i["Status"] == ENQUEUED)
        and (ids is None or i["WorkloadId"] in ids)
        and (types is None or i["WorkloadType"] in types)
        and (workspaces is None or i["WorkspaceId"] in workspaces)
        and (names is None or i["WorkloadName"] in names)
        and (statuses is None or i["Status"] in statuses)
        and (workload_statuses is None or i["WorkloadStatus"] in workload_statuses)
        and (users is None or i["UserId"] in users)
    ]


SORT_KEYS = {
    "GmtEnqueuedTime": lambda i: i.get("GmtEnqueuedTime") or "",
    "GmtCreatedTime": lambda i: i.get("GmtCreatedTime") or "",
    "GmtDequeuedTime": lambda i: i.get("GmtDequeuedTime") or "",
    "Position": lambda i: i.get("Position") or 0,
    "Priority": lambda i: i.get("Priority") or 0,
}
