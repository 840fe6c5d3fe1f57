"""What the sandbox's region offers: ECS specs (ListEcsSpecs), their prices (DescribePrice) and the
official PAI images (ListImages), in the real APIs' shapes.

Specs. The seed's six instance types plus a few neighbours. Figures are Alibaba's public
instance-family tables (reference §2.7), which win over the seed's spec guide where they differ:
``ecs.gn7i-c32g1.8xlarge`` has **1** × A10 (24 GB), not 4 × A10; ``ecs.ebmgn7i.32xlarge`` has
**4** × A10 (24 GB), not 8 × A100 80 GB as the seed (and the issue text) say — the A100 families are
``gn7e`` / ``ebmgn7e`` (``ecs.gn7e-c16g1.4xlarge`` is listed here, sold out). ``Memory`` is GiB and
``GpuMemory`` GB, integers, as ListEcsSpecs returns them.

Prices (CNY per hour, pay-as-you-go, Linux, cn-hangzhou). ``ecs.c6.large`` is the seed's figure
(CNY 0.17/hour in its cost display template); the c6 sizes scale it linearly, as ECS prices within a
family do, and ``ecs.g6.xlarge`` is c6.xlarge × 4/3 (the g6 : c6 ratio of the list prices). The GPU
specs carry approximate pay-as-you-go list prices from Alibaba Cloud's public ECS price page
(https://www.aliyun.com/price/product#/ecs/detail, 按量付费, 华东1 杭州), rounded, as recalled when this
table was written: the sandbox is offline and they were not re-checked, so treat them as rehearsal
figures, not quotes. The sandbox prices the instance only: its DescribePrice lists the system disk at
0 (PAI-DLC bills public resources by spec), so the seed's query (``ecs.c6.large`` with a 120 GiB
``cloud_essd`` system disk) answers exactly CNY 0.17.

Images. PyTorch, TensorFlow, XGBoost and Ray, CPU and GPU, standard and ``accl`` / ``ngc`` /
``deepEp`` variants, with the labels the real catalog carries, arranged so that each rule of the
seed's selection strategy decides something: the newest PyTorch GPU image is an ``accl`` variant
(rule 3 drops it), a newer standard one lacks ``gpu`` in its tag (rule 4 ranks it below
``pytorch:2.3-gpu-…``), and the very newest is not supported by DLC (the Labels filter drops it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EcsSpec:
    instance_type: str
    cpu: int
    memory_gib: int
    price_per_hour: float
    gpu: int = 0
    gpu_type: str = ""
    gpu_memory_gb: int = 0
    available: bool = True
    spot_stock: str = "WithStock"
    spot_discount: float = 0.1
    payment_types: tuple[str, ...] = ("PostPaid", "Spot")
    created: str = "2023-01-01T00:00:00Z"  # for SortBy=GmtCreateTime

    @property
    def accelerator(self) -> str:
        return "GPU" if self.gpu else "CPU"

    def item(self) -> dict[str, Any]:
        """The ListEcsSpecs ``EcsSpecs[]`` element."""
        return {
            "InstanceType": self.instance_type,
            "AcceleratorType": self.accelerator,
            "Cpu": self.cpu,
            "Memory": self.memory_gib,
            "Gpu": self.gpu,
            "GpuType": self.gpu_type,
            "GpuMemory": self.gpu_memory_gb,
            "IsAvailable": self.available,
            "PaymentTypes": list(self.payment_types),
            "ResourceType": "ECS",
            "SpotStockStatus": self.spot_stock,
            "NonProtectSpotDiscount": self.spot_discount,
            "DefaultGPUDriver": "535.161.08" if self.gpu else "",
            "SupportedGPUDrivers": ["470.199.02", "535.161.08", "550.127.08"] if self.gpu else [],
        }


SPECS: tuple[EcsSpec, ...] = (
    # CPU. c6: compute optimised, 1 vCPU : 2 GiB; g6: general purpose, 1 : 4.
    EcsSpec("ecs.c6.large", 2, 4, 0.17, created="2020-03-01T00:00:00Z"),  # the seed's price
    EcsSpec("ecs.c6.xlarge", 4, 8, 0.34, created="2020-03-01T00:00:01Z"),
    EcsSpec("ecs.c6.2xlarge", 8, 16, 0.68, created="2020-03-01T00:00:02Z"),
    EcsSpec("ecs.c6.4xlarge", 16, 32, 1.36, created="2020-03-01T00:00:03Z"),
    EcsSpec("ecs.g6.xlarge", 4, 16, 0.45, created="2020-03-02T00:00:00Z"),
    # GPU.
    EcsSpec("ecs.gn6i-c4g1.xlarge", 4, 15, 8.97, 1, "T4", 16, created="2020-05-01T00:00:00Z"),
    EcsSpec("ecs.gn6i-c8g1.2xlarge", 8, 31, 11.43, 1, "T4", 16, created="2020-05-01T00:00:01Z"),
    EcsSpec("ecs.gn6v-c8g1.2xlarge", 8, 32, 26.46, 1, "V100", 16, created="2019-06-01T00:00:00Z"),
    EcsSpec("ecs.gn7i-c8g1.2xlarge", 8, 30, 13.59, 1, "A10", 24, created="2021-09-01T00:00:00Z"),
    EcsSpec("ecs.gn7i-c32g1.8xlarge", 32, 188, 22.10, 1, "A10", 24, created="2021-09-01T00:00:01Z"),
    EcsSpec("ecs.ebmgn7i.32xlarge", 128, 768, 88.40, 4, "A10", 24, created="2021-09-01T00:00:02Z"),
    EcsSpec(
        "ecs.gn7e-c16g1.4xlarge",
        16,
        125,
        34.74,
        1,
        "A100",
        80,
        available=False,
        spot_stock="NoStock",
        created="2022-03-01T00:00:00Z",
    ),
)

SPEC_SORT_KEYS = {
    "CPU": lambda s: s.cpu,
    "GPU": lambda s: s.gpu,
    "Memory": lambda s: s.memory_gib,
    "GmtCreateTime": lambda s: s.created,
}

# System disk categories DescribePrice accepts (priced at 0 here, see the module docstring).
DISK_CATEGORIES = (
    "cloud",
    "cloud_efficiency",
    "cloud_ssd",
    "ephemeral_ssd",
    "cloud_essd",
    "cloud_auto",
    "cloud_essd_entry",
)


@dataclass(frozen=True)
class PaiImage:
    name: str  # e.g. pytorch:2.3-gpu-py311-cu121-ubuntu22.04
    chip: str  # CPU | GPU
    created: str
    framework: str  # label system.framework, e.g. "PyTorch 2.3"
    python: str = "3.11"
    dlc: bool = True
    size: int = 8_000_000_000
    description: str = ""
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    def uri(self, region: str) -> str:
        return f"dsw-registry.{region}.cr.aliyuncs.com/pai/{self.name}"

    def image_id(self) -> str:
        return "image-" + hashlib.sha1(self.name.encode()).hexdigest()[:18]

    def labels(self) -> list[dict[str, str]]:
        labels = {
            "system.official": "true",
            "system.origin": "PAI",
            "system.supported.dlc": "true" if self.dlc else "false",
            "system.supported.dsw": "true",
            "system.chipType": self.chip,
            "system.framework": self.framework,
            "system.pythonVersion": self.python,
            **self.extra_labels,
        }
        return [{"Key": k, "Value": v} for k, v in labels.items()]

    def item(self, region: str, verbose: bool) -> dict[str, Any]:
        """The ListImages ``Images[]`` element (``Labels`` only with ``Verbose=true``, as the API does)."""
        item: dict[str, Any] = {
            "ImageId": self.image_id(),
            "Name": self.name,
            "ImageUri": self.uri(region),
            "Description": self.description or f"Official PAI image: {self.framework}, {self.chip}",
            "Accessibility": "PUBLIC",
            "WorkspaceId": "0",
            "GmtCreateTime": self.created,
            "GmtModifiedTime": self.created,
            "Size": self.size,
            "SourceType": "",
            "SourceId": "",
        }
        if verbose:
            item["Labels"] = self.labels()
        return item


def _cuda(version: str) -> dict[str, str]:
    return {"system.dsw.cudaVersion": version}


IMAGES: tuple[PaiImage, ...] = (
    # PyTorch, GPU: 2.3-gpu is the one the strategy must pick.
    PaiImage(
        "pytorch:2.1-gpu-py310-cu121-ubuntu22.04",
        "GPU",
        "2024-01-15T08:00:00Z",
        "PyTorch 2.1",
        "3.10",
        extra_labels=_cuda("12.1"),
    ),
    PaiImage(
        "pytorch:2.3-gpu-py311-cu121-ubuntu22.04",
        "GPU",
        "2024-06-12T08:00:00Z",
        "PyTorch 2.3",
        extra_labels=_cuda("12.1"),
    ),
    PaiImage(
        "pytorch:2.4-py311-cu124-ubuntu22.04", "GPU", "2024-08-20T08:00:00Z", "PyTorch 2.4", extra_labels=_cuda("12.4")
    ),  # standard, newer, but no "gpu" in the tag
    PaiImage(
        "pytorch:2.4-accl-gpu-py311-cu124-ubuntu22.04",
        "GPU",
        "2024-09-10T08:00:00Z",
        "PyTorch 2.4",
        extra_labels=_cuda("12.4"),
    ),
    PaiImage(
        "pytorch-training:ngc-24.05-py3",
        "GPU",
        "2024-10-08T08:00:00Z",
        "PyTorch 2.4",
        "3.10",
        extra_labels=_cuda("12.4"),
    ),
    PaiImage(
        "pytorch:2.5-deepEp-gpu-py311-cu124-ubuntu22.04",
        "GPU",
        "2024-12-01T08:00:00Z",
        "PyTorch 2.5",
        extra_labels=_cuda("12.4"),
    ),
    PaiImage(
        "pytorch:2.6-gpu-py311-cu124-ubuntu22.04-dsw",
        "GPU",
        "2025-02-01T08:00:00Z",
        "PyTorch 2.6",
        dlc=False,
        extra_labels=_cuda("12.4"),
    ),  # DSW only
    # PyTorch, CPU: 2.3-cpu wins over the newer 2.4 whose tag does not name the chip.
    PaiImage(
        "pytorch:2.1-cpu-py310-ubuntu22.04", "CPU", "2024-01-15T08:00:00Z", "PyTorch 2.1", "3.10", size=3_000_000_000
    ),
    PaiImage("pytorch:2.3-cpu-py311-ubuntu22.04", "CPU", "2024-06-12T08:00:00Z", "PyTorch 2.3", size=3_000_000_000),
    PaiImage("pytorch:2.4-py311-ubuntu22.04", "CPU", "2024-08-20T08:00:00Z", "PyTorch 2.4", size=3_000_000_000),
    # TensorFlow.
    PaiImage(
        "tensorflow:2.14-gpu-py310-cu118-ubuntu22.04",
        "GPU",
        "2024-02-01T08:00:00Z",
        "Tensorflow 2.14",
        "3.10",
        extra_labels=_cuda("11.8"),
    ),
    PaiImage(
        "tensorflow-training:ngc-23.03-tf2-py3",
        "GPU",
        "2024-03-01T08:00:00Z",
        "Tensorflow 2.11",
        "3.8",
        extra_labels=_cuda("12.1"),
    ),
    PaiImage(
        "tensorflow:2.14-cpu-py310-ubuntu22.04",
        "CPU",
        "2024-02-01T08:00:00Z",
        "Tensorflow 2.14",
        "3.10",
        size=2_500_000_000,
    ),
    # XGBoost.
    PaiImage(
        "xgboost:1.7.6-gpu-py310-cu118-ubuntu22.04",
        "GPU",
        "2023-11-01T08:00:00Z",
        "XGBoost 1.7.6",
        "3.10",
        extra_labels=_cuda("11.8"),
    ),
    PaiImage(
        "xgboost:1.7.6-cpu-py310-ubuntu22.04",
        "CPU",
        "2023-11-01T08:00:00Z",
        "XGBoost 1.7.6",
        "3.10",
        size=1_500_000_000,
    ),
    # Ray.
    PaiImage(
        "ray:2.9.3-gpu-py310-cu118-ubuntu22.04",
        "GPU",
        "2024-04-01T08:00:00Z",
        "Ray 2.9.3",
        "3.10",
        extra_labels=_cuda("11.8"),
    ),
    PaiImage("ray:2.9.3-cpu-py310-ubuntu22.04", "CPU", "2024-04-01T08:00:00Z", "Ray 2.9.3", "3.10", size=2_000_000_000),
    PaiImage(
        "ray:2.9.3-accl-gpu-py310-cu118-ubuntu22.04",
        "GPU",
        "2024-05-01T08:00:00Z",
        "Ray 2.9.3",
        "3.10",
        extra_labels=_cuda("11.8"),
    ),
)


def spec_by_type(instance_type: str) -> EcsSpec | None:
    return next((s for s in SPECS if s.instance_type == instance_type), None)
