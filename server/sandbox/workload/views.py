"""A sandbox workload and how the platform's database shows it: phase, end, conditions, pods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudjobs_mcp.server.providers.local.executor import MAX_RUNTIME_EXCEEDED, RunState
from cloudjobs_mcp.server.sandbox.workload.wire import stamp


@dataclass
class Workload:
    workload_id: str
    body: dict[str, Any]
    workspace: str
    user: str
    created_at: float
    launch_at: float
    pods: list[tuple[str, str]]  # (pod id, role)
    command: str
    timeout: int | None
    ttl: int
    launched: bool = False
    stopped_at: float | None = None  # when a stop was asked (the phase is Stopped from then on)
    stopped_by: str | None = None
    phase_override: str | None = None  # the seed-era bug: a finished workload stopped within its TTL
    deleted: bool = False
    held_message: str | None = None


def phase_of(w: Workload, run: RunState | None) -> str:
    """The workload's phase as the platform's database reports it."""
    if w.phase_override:
        return w.phase_override
    if w.stopped_at is not None:  # the platform sets Stopped first, then deletes the pods
        return "Stopped"
    if run is None:
        return "Pending"
    return {"Queuing": "Pending", "Creating": "Pending", "Stopping": "Running"}.get(run.status, run.status)


def ended_at(w: Workload, run: RunState | None) -> float | None:
    if run is None or w.stopped_at is not None:
        return w.stopped_at
    if run.finished_at is not None:
        return run.finished_at.timestamp()
    return None


def conditions(w: Workload, run: RunState | None, phase: str, now: float) -> list[dict[str, Any]]:
    """``metav1.Condition``s with the platform's types (``Admin*``/``K8s*``) and reason ``run_<n>_times``."""

    def cond(kind: str, t: float | None, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True",
            "observedGeneration": 1,
            "lastTransitionTime": stamp(t),
            "reason": "run_1_times",
            "message": message,
        }

    out = [cond("AdminScheduled", w.created_at, "the workload is scheduled")]
    if run is not None:
        out.append(cond("AdminDispatched", run.created_at.timestamp(), "the workload is dispatched"))
        if run.started_at is not None:
            out.append(cond("K8sRunning", run.started_at.timestamp(), "the workload is running"))
    end = ended_at(w, run)
    if phase == "Succeeded":
        out.append(cond("K8sSucceeded", end, "the workload has succeeded"))
    elif phase == "Failed":
        out.append(cond("K8sFailed", end, run.reason if run is not None and run.reason else "the workload failed"))
    elif phase == "Stopped":
        timed_out = run is not None and run.reason_code == MAX_RUNTIME_EXCEEDED
        message = "the workload has timed out" if timed_out else f"the workload is stopped by {w.stopped_by or w.user}"
        out.append(cond("AdminStopped", end or now, message))
    return out


def pod_items(w: Workload, run: RunState | None) -> list[dict[str, Any]]:
    """``pods[]`` of GET: ``k8sNodeName``/``adminNodeName`` (not the seed's ``nodeName``), the main container's exit."""
    if run is None:
        return []
    out = []
    for i, pod in enumerate(run.pods):
        phase = {"Stopped": "Failed"}.get(pod.status, pod.status)
        containers = []
        if pod.exit_code is not None or pod.status in ("Succeeded", "Failed", "Stopped"):
            code = pod.exit_code if pod.exit_code is not None else 137
            reason = "Completed" if code == 0 else ("OOMKilled" if pod.detail == "OOMKilled" else "Error")
            containers.append({"name": "pytorch", "reason": reason, "message": pod.detail or "", "exitCode": code})
        node = f"{w.workspace}-node-{i}"
        out.append(
            {
                "podId": pod.pod_id,
                "k8sNodeName": node,
                "adminNodeName": node,
                "phase": phase,
                "hostIP": f"10.0.1.{i + 10}",
                "podIP": f"10.244.{i}.{i + 20}",
                "rank": str(i),
                "startTime": stamp(pod.started_at.timestamp() if pod.started_at else None),
                "endTime": stamp(pod.finished_at.timestamp() if pod.finished_at else None),
                "containers": containers,
                "sshAddr": f"ssh {w.user}.{pod.pod_id}.{w.workspace}@127.0.0.1",
            }
        )
    return out
