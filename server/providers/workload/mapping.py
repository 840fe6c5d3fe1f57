"""Primus-SaFE JSON → the shared models: phases, workloads, pods, specs, quantities and times.

Shapes are the seed-era code's (``WorkloadResponseItem`` / ``GetWorkloadResponse``), with HEAD's renames
read too (``duration`` for ``runtime``, ``queuePosition`` for ``schedulerOrder``, ``resources[]`` for
``resource``). Times are ``YYYY-MM-DDTHH:MM:SS`` in UTC without a zone (the seed shows ``.000Z``), ``""``
when unset.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudjobs_mcp.server.models import Job, JobStatus, Pod, Spec

# The platform's phases → the shared statuses. NotReady (Deployment/StatefulSet) and Updating are
# running workloads; "" is a row the exporter has not filled yet (just created).
PHASES: dict[str, JobStatus] = {
    "": JobStatus.CREATING,
    "Pending": JobStatus.QUEUING,
    "Running": JobStatus.RUNNING,
    "Updating": JobStatus.RUNNING,
    "NotReady": JobStatus.RUNNING,
    "Succeeded": JobStatus.SUCCEEDED,
    "Failed": JobStatus.FAILED,
    "Stopped": JobStatus.STOPPED,
}
# The phase filter of a listing for each status (None: the platform has no phase for it).
PHASE_FILTER: dict[JobStatus, str | None] = {
    JobStatus.QUEUING: "Pending",
    JobStatus.RUNNING: "Running,Updating,NotReady",
    JobStatus.SUCCEEDED: "Succeeded",
    JobStatus.FAILED: "Failed",
    JobStatus.STOPPED: "Stopped",
    JobStatus.CREATING: None,
    JobStatus.STOPPING: None,
}
TAGS_MARK = "cloudjobs-tags:"
_TAG = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.:/+@-]*)=([^;\s]*);")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]i?|m|k)?\s*$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "m": 1e-3}
GIB = 2**30
GPU_MEMORY_GB = {"MI355X": 288.0, "MI325X": 256.0, "MI300X": 192.0, "MI300A": 128.0, "MI250X": 128.0, "MI210": 64.0}


def status_of(phase: str | None) -> JobStatus:
    return PHASES.get(phase or "", JobStatus.RUNNING)


def parse_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip().replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """The list filter's ``since``/``until`` form (``2006-01-02T15:04:05``, UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_duration(raw: Any) -> float | None:
    """Go's ``time.Duration`` string (``1h2m3s``, ``0s``) → seconds."""
    if not isinstance(raw, str) or not raw:
        return None
    parts = _DURATION.findall(raw)
    if not parts:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def quantity(raw: Any) -> float:
    """A Kubernetes quantity (``"256"``, ``"2Ti"``, ``"500m"``) or a plain number → a float (bytes for memory)."""
    if isinstance(raw, int | float):
        return float(raw)
    match = _QUANTITY.match(str(raw or "0"))
    if not match:
        return 0.0
    number, unit = float(match.group(1)), match.group(2) or ""
    return number * (_BINARY.get(unit) or _DECIMAL.get(unit) or 1.0)


def encode_tags(text: str, tags: Mapping[str, str]) -> str:
    """The description the provider sends: the user's text, then ``cloudjobs-tags: k=v; k2=v2;``."""
    if not tags:
        return text
    marks = " ".join(f"{k}={v};" for k, v in tags.items())
    return f"{text} {TAGS_MARK} {marks}".strip()


def decode_tags(description: Any) -> dict[str, str]:
    if not isinstance(description, str) or TAGS_MARK not in description:
        return {}
    return dict(_TAG.findall(description.split(TAGS_MARK, 1)[1]))


def tag_token(key: str, value: str) -> str:
    """The substring a listing's ``description`` filter (SQL LIKE) finds one tag by."""
    return f"{key}={value};"


def encode_entry_point(command: str) -> str:
    """Always base64: the webhook takes a plain command that happens to be valid base64 as encoded."""
    return base64.b64encode(command.encode()).decode()


def decode_entry_point(raw: Any) -> str | None:
    """GET returns the entry point decoded (plain text); tolerate a build that returns it encoded."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        decoded = base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return raw
    return decoded if decoded.isprintable() or "\n" in decoded else raw


def _int(raw: Any) -> int | None:
    try:
        return int(raw) if raw is not None and raw != "" else None
    except (TypeError, ValueError):
        return None


def resource_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """``resource`` (seed-era) or the first of ``resources[]`` (HEAD)."""
    res = data.get("resource")
    if isinstance(res, dict):
        return res
    many = data.get("resources")
    if isinstance(many, list) and many and isinstance(many[0], dict):
        return dict(many[0])
    return {}


SEED_CREATE_FIELDS = ("resource", "image", "entryPoint")
# What a build after 2026-01-09 answers (400) to a seed-era create body: it reads only the plural fields.
RESOURCES_EMPTY = "the resources are empty"


def plural_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The create body of a build after 2026-01-09 from a seed-era one: ``resources[]``, ``images[]`` and
    ``entryPoints[]`` with one entry per role (a PyTorchJob's pods are one role here: ``replica`` = workers)."""
    out = {k: v for k, v in body.items() if k not in SEED_CREATE_FIELDS}
    out["resources"] = [dict(body["resource"])]
    out["images"] = [body["image"]]
    out["entryPoints"] = [body["entryPoint"]]
    return out


def spec_name(workspace: str, cpu: int, gpu: int) -> str:
    return f"{workspace}:gpu{gpu}" if gpu else f"{workspace}:cpu{cpu}"


def role_of(pod_id: str) -> str:
    match = re.search(r"-(master|worker|launcher|head)-\d+$", pod_id)
    return match.group(1).capitalize() if match else "Worker"


def pod_from(data: Mapping[str, Any]) -> Pod:
    containers = [c for c in data.get("containers") or [] if isinstance(c, dict)]
    codes = [_int(c.get("exitCode")) for c in containers]
    known = [c for c in codes if c is not None]
    exit_code = next((c for c in known if c != 0), known[0] if known else None)
    reasons = [str(c.get("reason") or "") for c in containers if c.get("reason")]
    pod_id = str(data.get("podId") or "")
    return Pod(
        pod_id=pod_id,
        role=role_of(pod_id),
        status=str(data.get("phase") or "Pending"),
        sub_status=reasons[0] if reasons else None,
        exit_code=exit_code,
        ip=str(data.get("podIP") or "") or None,
        started_at=parse_time(data.get("startTime")),
        finished_at=parse_time(data.get("endTime")),
    )


def last_condition(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    conditions = [c for c in data.get("conditions") or [] if isinstance(c, dict)]
    return conditions[-1] if conditions else None


def job_from(data: Mapping[str, Any], provider: str) -> Job:
    phase = str(data.get("phase") or "")
    status = status_of(phase)
    res = resource_of(data)
    gpu = _int(res.get("gpu")) or 0
    cpu = int(quantity(res.get("cpu")))
    workspace = str(data.get("workspaceId") or data.get("workspace") or "")
    condition = last_condition(data)
    reason: str | None = str(data.get("message") or "") or None  # the scheduler's reason, while Pending
    reason_code: str | None = None
    if status.is_terminal and condition is not None:
        reason = str(condition.get("message") or "") or reason
        reason_code = str(condition.get("type") or "") or None
    timeout = _int(data.get("timeout"))
    pods = [pod_from(p) for p in data.get("pods") or [] if isinstance(p, dict)]
    if status == JobStatus.FAILED and reason is None:
        failed = next((p for p in pods if p.exit_code not in (None, 0)), None)
        if failed is not None:
            reason = f"pod {failed.pod_id} exited with code {failed.exit_code}"
    gvk = data.get("groupVersionKind") or {}
    return Job(
        job_id=str(data.get("workloadId") or ""),
        name=str(data.get("displayName") or ""),
        provider=provider,
        status=status,
        raw_status=phase,
        sub_status=reason_code,
        job_type=str(gvk.get("kind") or "") or None if isinstance(gvk, dict) else None,
        ecs_spec=spec_name(workspace, cpu, gpu) if workspace and (cpu or gpu) else None,
        worker_count=_int(res.get("replica")),
        image=_image_of(data),
        user_command=decode_entry_point(data.get("entryPoint") or _first(data.get("entryPoints"))),
        pods=pods,
        created_at=parse_time(data.get("creationTime")),
        started_at=parse_time(data.get("startTime")),
        finished_at=parse_time(data.get("endTime")),
        duration_seconds=parse_duration(data.get("runtime") or data.get("duration")),
        reason=reason,
        reason_code=reason_code,
        max_runtime_minutes=timeout / 60 if timeout else None,
        tags=decode_tags(data.get("description")),
        priority=_int(data.get("priority")),
    )


def _first(raw: Any) -> Any:
    return raw[0] if isinstance(raw, list) and raw else None


def _image_of(data: Mapping[str, Any]) -> str | None:
    image = data.get("image") or _first(data.get("images"))
    return str(image) if image else None


def queue_position(data: Mapping[str, Any]) -> int | None:
    """``schedulerOrder`` (seed-era) or ``queuePosition`` (HEAD), while Pending; 1 = next."""
    if str(data.get("phase") or "") != "Pending":
        return None
    raw = _int(data.get("queuePosition", data.get("schedulerOrder")))
    return raw if raw is not None and raw > 0 else None


@dataclass(frozen=True)
class SpecShape:
    """What one spec asks of a node (per pod), and where it runs."""

    workspace: str
    flavor: str
    cpu: int
    memory_gib: int
    gpu: int
    gpu_resource: str
    nodes: int  # nodes of the workspace: the most pods (replicas) one workload may have

    @property
    def name(self) -> str:
        return spec_name(self.workspace, self.cpu, self.gpu)


def _sizes(top: int) -> list[int]:
    sizes = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) if n < top]
    return [*sizes, top] if top > 0 else []


def shapes_of(workspace: Mapping[str, Any], flavor: Mapping[str, Any], avail: Mapping[str, Any]) -> list[SpecShape]:
    """The specs of one workspace: slices of what one node of its flavor can allocate.

    A GPU flavor offers 1, 2, 4, … up to its GPUs per node, with CPU and memory in proportion; a CPU
    flavor offers 1, 2, 4, … up to its allocatable CPUs. Replicas: at most the workspace's nodes."""
    gpu_info: Mapping[str, Any] = flavor["gpu"] if isinstance(flavor.get("gpu"), dict) else {}
    resource = str(gpu_info.get("resourceName") or "amd.com/gpu")
    per_node_gpus = int(quantity(avail.get(resource, gpu_info.get("quantity"))))
    cpus = int(quantity(avail.get("cpu")))
    memory = quantity(avail.get("memory"))
    ws_id = str(workspace.get("workspaceId") or "")
    flavor_id = str(flavor.get("flavorId") or "")
    nodes = int(_int(workspace.get("currentNodeCount")) or 0) - int(_int(workspace.get("abnormalNodeCount")) or 0)
    out: list[SpecShape] = []
    if per_node_gpus > 0:
        for g in _sizes(per_node_gpus):
            share = g / per_node_gpus
            out.append(
                SpecShape(ws_id, flavor_id, int(cpus * share), int(memory * share / GIB), g, resource, max(nodes, 0))
            )
    else:
        for c in _sizes(cpus):
            out.append(SpecShape(ws_id, flavor_id, c, int(memory * c / cpus / GIB), 0, resource, max(nodes, 0)))
    return [s for s in out if s.cpu > 0 and s.memory_gib > 0]


def spec_from(shape: SpecShape, flavor: Mapping[str, Any], *, available: bool) -> Spec:
    gpu_info: Mapping[str, Any] = flavor["gpu"] if isinstance(flavor.get("gpu"), dict) else {}
    product = str(gpu_info.get("product") or "") or None
    short = product.split()[-1] if product else ""
    return Spec(
        instance_type=shape.name,
        accelerator="GPU" if shape.gpu else "CPU",
        cpu=shape.cpu,
        memory_gb=float(shape.memory_gib),
        gpu_count=shape.gpu,
        gpu_type=product if shape.gpu else None,
        gpu_memory_gb=GPU_MEMORY_GB.get(short) if shape.gpu else None,
        available=available,
    )
