"""What this machine really has (CPUs, memory, GPUs) and the specs the local provider offers on it.

CPU specs form a ladder ``local.cpu-{c}c{m}g`` with c = 1, 2, 4, ... and the whole machine, memory
proportional to the CPUs (GiB, rounded down). With NVIDIA GPUs (``nvidia-smi`` on PATH), each GPU model
gets ``local.gpu-{k}x{model-slug}`` specs with k = 1, 2, 4, ... and all of that model's GPUs, CPUs and
memory proportional to the GPUs' share of the machine.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from cloudjobs_mcp.server.models import Spec
from cloudjobs_mcp.server.providers.local.metrics import meminfo_total_gb

CPU_PREFIX = "local.cpu-"
GPU_PREFIX = "local.gpu-"
NVIDIA_SMI_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_gb: float | None


@dataclass(frozen=True)
class Machine:
    cpus: int
    memory_gb: float
    gpus: tuple[Gpu, ...] = ()
    gpu_note: str | None = None  # why no GPU was found, when nvidia-smi exists but failed

    def describe(self) -> str:
        """'2 CPUs, 23 GiB memory and no GPU' / '... and 8 GPUs (8x NVIDIA H200)'."""
        cpus = f"{self.cpus} CPU{'s' if self.cpus != 1 else ''}"
        mem = f"{_fmt_gib(self.memory_gb)} GiB memory"
        if not self.gpus:
            return f"{cpus}, {mem} and no GPU"
        models: dict[str, int] = {}
        for g in self.gpus:
            models[g.name] = models.get(g.name, 0) + 1
        kinds = ", ".join(f"{n}x {name}" for name, n in models.items())
        return f"{cpus}, {mem} and {len(self.gpus)} GPU{'s' if len(self.gpus) != 1 else ''} ({kinds})"

    def gpus_of(self, model: str) -> list[Gpu]:
        return sorted((g for g in self.gpus if g.name == model), key=lambda g: g.index)


def _fmt_gib(value: float) -> str:
    return f"{math.floor(value)}" if value >= 1 else f"{value:.1f}"


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def memory_gb() -> float:
    """MemTotal from /proc/meminfo in GiB (falls back to sysconf)."""
    total = meminfo_total_gb()
    if total is not None:
        return total
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        return 0.0


def detect_gpus(timeout: float = NVIDIA_SMI_TIMEOUT_SECONDS) -> tuple[tuple[Gpu, ...], str | None]:
    """GPUs reported by nvidia-smi, and a note when it is on PATH but could not report them."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return (), None
    try:
        proc = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return (), f"nvidia-smi could not run: {exc}"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return (), f"nvidia-smi failed (exit code {proc.returncode}){': ' + detail[0] if detail else ''}"
    gpus = []
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit() or not parts[1]:
            continue
        try:
            mem: float | None = round(float(parts[2]) / 1024, 1)
        except ValueError:
            mem = None  # e.g. "[N/A]"
        gpus.append(Gpu(int(parts[0]), parts[1], mem))
    return tuple(gpus), None


def detect_machine() -> Machine:
    gpus, note = detect_gpus()
    return Machine(cpus=cpu_count(), memory_gb=memory_gb(), gpus=gpus, gpu_note=note)


def gpu_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100-80gb-hbm3'."""
    slug = re.sub(r"^nvidia[\s_-]+", "", name.strip().lower())
    slug = re.sub(r"[^a-z0-9]+", "-", slug).strip("-")
    return slug or "gpu"


def _ladder(n: int) -> list[int]:
    out = []
    k = 1
    while k < n:
        out.append(k)
        k *= 2
    out.append(n)
    return out


def build_specs(machine: Machine, price_per_hour: float, currency: str) -> list[Spec]:
    specs: list[Spec] = []
    for c in _ladder(machine.cpus):
        mem = math.floor(machine.memory_gb * c / machine.cpus)
        specs.append(
            Spec(
                instance_type=f"{CPU_PREFIX}{c}c{mem}g",
                accelerator="CPU",
                cpu=c,
                memory_gb=float(mem),
                price_per_hour=price_per_hour,
                currency=currency,
            )
        )
    total = len(machine.gpus)
    models = list(dict.fromkeys(g.name for g in machine.gpus))
    for model in models:
        gpus = machine.gpus_of(model)
        for k in _ladder(len(gpus)):
            specs.append(
                Spec(
                    instance_type=f"{GPU_PREFIX}{k}x{gpu_slug(model)}",
                    accelerator="GPU",
                    cpu=max(1, machine.cpus * k // total),
                    memory_gb=float(math.floor(machine.memory_gb * k / total)),
                    gpu_count=k,
                    gpu_type=model,
                    gpu_memory_gb=gpus[0].memory_gb,
                    price_per_hour=price_per_hour,
                    currency=currency,
                )
            )
    return specs
