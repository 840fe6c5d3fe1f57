"""A Ray cluster's nodes → the worker shapes (specs) a job can ask for, and how many of each fit.

A Ray worker is a slice of a node, not a whole machine, so the specs are slices of the nodes there are:
for every live node, ``ray-<c>cpu`` for c = 1, 2, 4, ... up to its CPUs; on a node with GPUs
``ray-<c>cpu-<k>gpu[-<type>]`` (k = 1, 2, 4, ... up to its GPUs, with its CPUs shared in proportion; the
type from Ray's ``accelerator_type:<type>`` resource); and for every custom resource a node offers (e.g.
``--resources '{"accel_h100": 8}'``) ``ray-<c>cpu-<k>x<name>``. Each spec is the Ray resource bundle one
worker reserves; memory is reported (the node's memory per CPU), not reserved.

``capacity`` is how many such workers the live nodes could ever hold (placement is per node: a bundle
never spans nodes), ``free`` how many fit in what is unused right now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudjobs_mcp.server.providers.ray.api import camel

GIB = 1024**3
_STANDARD = frozenset({"CPU", "GPU", "memory", "object_store_memory"})
TYPE_PREFIX = "accelerator_type:"
TYPE_SHARE = 0.001  # how Ray asks for an accelerator type: a sliver of the node's accelerator_type resource


@dataclass
class Shape:
    """One spec as the provider keeps it: its Ray bundle and what the cluster holds of it."""

    name: str
    bundle: dict[str, float]
    accelerator: str  # "CPU" | "GPU"
    cpu: int
    memory_gb: float
    gpu_count: int = 0
    gpu_type: str | None = None
    capacity: int = 0
    free: int = 0
    nodes: list[str] = field(default_factory=list)


def _sizes(n: int) -> list[int]:
    out, k = set(), 1
    while k <= n:
        out.add(k)
        k *= 2
    if n >= 1:
        out.add(n)
    return sorted(out)


def _fits(bundle: dict[str, float], resources: dict[str, float]) -> int:
    counts = [int(resources.get(k, 0.0) / v + 1e-9) for k, v in bundle.items() if v > 0]
    return min(counts) if counts else 0


def node_shapes(node: dict[str, Any]) -> list[Shape]:
    """The specs one node can host (each at least once)."""
    total: dict[str, float] = {k: float(v) for k, v in (node.get("resources_total") or {}).items()}
    cpu = int(total.get("CPU", 0.0))
    mem_gb = total.get("memory", 0.0) / GIB
    per_cpu = mem_gb / cpu if cpu else mem_gb
    shapes = [Shape(f"ray-{c}cpu", {"CPU": float(c)}, "CPU", c, round(per_cpu * c, 1)) for c in _sizes(cpu)]
    types = [k[len(TYPE_PREFIX) :] for k in total if k.startswith(TYPE_PREFIX)]
    gpus = int(total.get("GPU", 0.0))
    accelerators: list[tuple[str, int, str | None]] = []
    if gpus:
        accelerators.append(("GPU", gpus, types[0] if len(types) == 1 else None))
    for key, value in total.items():
        if key not in _STANDARD and not key.startswith(("node:", TYPE_PREFIX)) and int(value) >= 1:
            accelerators.append((key, int(value), None))
    for resource, units, gtype in accelerators:
        for k in _sizes(units):
            c = max(1, cpu * k // units) if cpu else 0
            bundle = {"CPU": float(c)} if c else {}
            if resource == "GPU":
                bundle["GPU"] = float(k)
                name = f"ray-{c}cpu-{k}gpu" + (f"-{gtype}" if gtype else "")
                if gtype:
                    bundle[TYPE_PREFIX + gtype] = TYPE_SHARE
                label = gtype or "GPU"
            else:
                bundle[resource] = float(k)
                name = f"ray-{c}cpu-{k}x{resource}"
                label = resource
            shapes.append(Shape(name, bundle, "GPU", c, round(per_cpu * c, 1), k, label))
    return shapes


def cluster_shapes(nodes: list[dict[str, Any]], usage: dict[str, dict[str, list[float]]]) -> list[Shape]:
    """Every spec of the live nodes, with ``capacity`` (ever) and ``free`` (now) summed over nodes."""
    alive = [n for n in nodes if n.get("state") == "ALIVE"]
    by_name: dict[str, Shape] = {}
    for node in alive:
        for shape in node_shapes(node):
            by_name.setdefault(shape.name, shape)
    for shape in by_name.values():
        shape.memory_gb = min(
            (s.memory_gb for n in alive for s in node_shapes(n) if s.name == shape.name), default=shape.memory_gb
        )
        for node in alive:
            total = {k: float(v) for k, v in (node.get("resources_total") or {}).items()}
            fits = _fits(shape.bundle, total)
            if not fits:
                continue
            shape.capacity += fits
            shape.nodes.append(str(node.get("node_ip") or node.get("node_id")))
            used = usage.get(str(node.get("node_id")), {})
            available = {k: v - float((used.get(camel(k)) or [0.0])[0]) for k, v in total.items()}
            shape.free += _fits(shape.bundle, available) if used else fits
    return sorted(by_name.values(), key=lambda s: (s.accelerator != "CPU", s.gpu_type or "", s.gpu_count, s.cpu))
