"""How one workload sandbox behaves: credentials, timings, the cluster it plays."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIB = 2**30


def generate_api_key() -> str:
    """An API key shaped like the platform's: ``ak-`` + 43 url-safe characters."""
    return "ak-" + secrets.token_urlsafe(32)[:43]


def generate_password() -> str:
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Flavor:
    """A node flavor: what a node has, and what it can allocate after the system's reserve."""

    flavor_id: str
    cpu_product: str
    cpus: int
    memory_gib: int
    gpu_product: str | None = None
    gpus: int = 0
    alloc_cpus: int = 0
    alloc_memory_gib: int = 0

    def item(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flavorId": self.flavor_id,
            "cpu": {"product": self.cpu_product, "quantity": str(self.cpus)},
            "memory": f"{self.memory_gib}Gi",
            "rootDisk": {"type": "ssd", "quantity": "1Ti", "count": 1},
            "dataDisk": {"type": "nvme", "quantity": "4Ti", "count": 2},
            "extendedResources": {"ephemeral-storage": "800Gi"},
        }
        if self.gpus:
            out["gpu"] = {"product": self.gpu_product, "resourceName": "amd.com/gpu", "quantity": str(self.gpus)}
        return out

    def avail(self) -> dict[str, int]:
        out = {
            "cpu": self.alloc_cpus or self.cpus,
            "memory": (self.alloc_memory_gib or self.memory_gib) * GIB,
            "ephemeral-storage": 800 * GIB,
        }
        if self.gpus:
            out["amd.com/gpu"] = self.gpus
        return out


@dataclass(frozen=True)
class WorkspaceDef:
    workspace_id: str
    flavor_id: str
    nodes: int
    scopes: tuple[str, ...] = ("Train", "Infer", "Authoring")


CPU_FLAVOR = Flavor("cpu-32c", "AMD EPYC 9554", 32, 128, alloc_cpus=30, alloc_memory_gib=120)
GPU_FLAVOR = Flavor("mi300x-8", "AMD EPYC 9554", 256, 2048, "AMD MI300X", 8, alloc_cpus=250, alloc_memory_gib=1900)


@dataclass(frozen=True)
class WorkloadSandboxSettings:
    """``user``/``password`` log in (``POST /login``); ``api_key`` is accepted as ``Bearer ak-…`` (both
    generated when None). A workload stays ``Pending`` for ``pending_seconds`` before its pods start; GET and
    list do not see it for ``mirror_lag_seconds`` after its create (the platform's database mirror is
    filled asynchronously). ``ttl_seconds`` is the default ``ttlSecondsAfterFinished`` (the platform's 60).
    ``log_search`` plays an OpenSearch-backed log search (off: 500 "logging function is not enabled").
    ``cookie_only`` plays the seed-era build that reads the token only from the ``Token`` cookie.
    ``head_schema`` plays a build after 2026-01-09: create takes ``resources[]``/``images[]``/``entryPoints[]``
    (the seed-era ``resource``/``image``/``entryPoint`` are unknown to it: a body with only those is refused
    400 "the resources are empty"), and answers carry ``resources[]``, ``images[]``, ``entryPoints[]`` (base64),
    ``queuePosition`` and ``duration``.
    ``token_expire_seconds`` (None: tokens never expire, ``expire: -1``)."""

    state_dir: Path
    api_prefix: str = "/api/v1"
    user: str = "sandbox"
    password: str | None = None
    api_key: str | None = None
    token_expire_seconds: int | None = None
    pending_seconds: float = 0.5
    mirror_lag_seconds: float = 0.3
    ttl_seconds: int = 60
    stop_grace_seconds: float = 5.0
    poll_seconds: float = 0.1
    log_search: bool = False
    cookie_only: bool = False
    head_schema: bool = False
    flavors: tuple[Flavor, ...] = (CPU_FLAVOR, GPU_FLAVOR)
    workspaces: tuple[WorkspaceDef, ...] = (
        WorkspaceDef("sandbox-cpu", "cpu-32c", 4),
        WorkspaceDef("sandbox-gpu", "mi300x-8", 2, ("Train",)),
    )
    call_history: int = 1000
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir).expanduser())
        object.__setattr__(self, "api_prefix", "/" + self.api_prefix.strip("/"))
        for name in ("pending_seconds", "mirror_lag_seconds", "stop_grace_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.poll_seconds <= 0:
            raise ValueError("poll_seconds must be > 0")
