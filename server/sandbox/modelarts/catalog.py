"""What the ModelArts face offers: training flavors, engines, dedicated pools and their prices.

Shapes are the reference's (§6, §8): ``flavor_info`` with ``cpu``/``memory``/``disk`` and a ``gpu`` block
(``unit_num`` an int) or an ``npu`` block (``unit_num`` a **string**), ``billing.code``; engines with
``image_info`` (host-less SWR paths; ``gpu_image_url`` serves GPU and Ascend). The CPU flavor names and the
TensorFlow engine are the documented examples; the GPU/Ascend flavor names, the other engines and every
price are the sandbox's own (plausible, not the price list: check the ModelArts price calculator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Flavor:
    flavor_id: str
    name: str
    kind: str  # CPU | GPU | Ascend
    cpu: int
    memory_gb: int
    max_num: int
    price_cny: float
    accelerators: int = 0
    product: str = ""
    accelerator_memory: str = ""

    def item(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "max_num": self.max_num,
            "cpu": {"arch": "aarch64" if self.kind == "Ascend" else "x86", "core_num": self.cpu},
            "memory": {"size": self.memory_gb, "unit": "GB"},
            "disk": {"size": 50 if self.kind == "CPU" else 500, "unit": "GB"},
        }
        if self.kind == "GPU":
            info["gpu"] = {
                "unit_num": self.accelerators,
                "product_name": self.product,
                "memory": self.accelerator_memory,
            }
        elif self.kind == "Ascend":
            info["npu"] = {
                "unit_num": str(self.accelerators),
                "product_name": self.product,
                "memory": self.accelerator_memory,
            }
        return {
            "flavor_id": self.flavor_id,
            "flavor_name": self.name,
            "flavor_type": self.kind,
            "billing": {"code": self.flavor_id, "unit_num": 1},
            "flavor_info": info,
            "max_num": self.max_num,
            "support_groups": "",
        }

    @property
    def memory_gib(self) -> float:
        return float(self.memory_gb)


FLAVORS: tuple[Flavor, ...] = (
    Flavor("modelarts.vm.cpu.2u", "Computing CPU(2U) instance", "CPU", 2, 8, 1, 0.56),
    Flavor("modelarts.vm.cpu.8u", "Computing CPU(8U) instance", "CPU", 8, 32, 16, 2.24),
    Flavor(
        "modelarts.vm.gpu.t4u8",
        "GPU: 1*NVIDIA-T4(16GB) | CPU: 8 vCPUs 32GB",
        "GPU",
        8,
        32,
        16,
        7.5,
        1,
        "NVIDIA-T4",
        "16GB",
    ),
    Flavor(
        "modelarts.p3.large.public",
        "GPU: 1*NVIDIA-V100(32GB) | CPU: 8 vCPUs 64GB",
        "GPU",
        8,
        64,
        16,
        28.0,
        1,
        "NVIDIA-V100",
        "32GB",
    ),
    Flavor(
        "modelarts.bm.npu.arm.910b.1",
        "Ascend: 1*ascend-snt9b(64GB) | ARM: 24 vCPUs 192GB",
        "Ascend",
        24,
        192,
        8,
        32.0,
        1,
        "Ascend-snt9b",
        "64GB",
    ),
)
BY_ID = {f.flavor_id: f for f in FLAVORS}

ENGINES: tuple[dict[str, Any], ...] = (
    {
        "engine_id": "pytorch_2.1.0-cuda_12.1-py_3.10-ubuntu_22.04-x86_64",
        "engine_name": "PyTorch",
        "engine_version": "pytorch_2.1.0-cuda_12.1-py_3.10-ubuntu_22.04-x86_64",
        "v1_compatible": False,
        "run_user": "1000",
        "image_info": {
            "cpu_image_url": "atelier/pytorch_2_1_cpu:train",
            "gpu_image_url": "atelier/pytorch_2_1_cuda_12_1:train",
            "image_version": "pytorch_2.1.0-cuda_12.1-py_3.10-ubuntu_22.04-x86_64-20240301",
        },
    },
    {
        "engine_id": "pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64",
        "engine_name": "PyTorch",
        "engine_version": "pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64",
        "v1_compatible": False,
        "run_user": "1102",
        "image_info": {
            "cpu_image_url": "aip/pytorch_1_8:train",
            "gpu_image_url": "aip/pytorch_1_8:train",
            "image_version": "pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64-20220926",
        },
    },
    {
        "engine_id": "tensorflow_2.1.0-cuda_10.1-py_3.7-ubuntu_18.04-x86_64",
        "engine_name": "TensorFlow",
        "engine_version": "tensorflow_2.1.0-cuda_10.1-py_3.7-ubuntu_18.04-x86_64",
        "v1_compatible": False,
        "run_user": "1102",
        "image_info": {
            "cpu_image_url": "aip/tensorflow_2_1:train",
            "gpu_image_url": "aip/tensorflow_2_1:train",
            "image_version": "tensorflow_2.1.0-cuda_10.1-py_3.7-ubuntu_18.04-x86_64-20210912152543-1e0838d",
        },
    },
    {
        "engine_id": "mindspore_2.2.0-cann_7.0.1-py_3.9-euler_2.10.7-aarch64",
        "engine_name": "MindSpore",
        "engine_version": "mindspore_2.2.0-cann_7.0.1-py_3.9-euler_2.10.7-aarch64",
        "v1_compatible": False,
        "run_user": "1000",
        "image_info": {"cpu_image_url": "", "gpu_image_url": "atelier/mindspore_2_2_ascend:train", "image_version": ""},
    },
    {
        "engine_id": "Caffe-1.0.0-python2.7",
        "engine_name": "Caffe",
        "engine_version": "Caffe-1.0.0-python2.7",
        "v1_compatible": True,
        "run_user": "",
        "image_info": {"cpu_image_url": "", "gpu_image_url": "", "image_version": ""},
    },
)


@dataclass(frozen=True)
class PoolDef:
    name: str  # metadata.name, the pool id
    display_name: str
    scopes: tuple[str, ...]
    flavor: str
    nodes: int

    def item(self, created: str) -> dict[str, Any]:
        return {
            "apiVersion": "v2",
            "kind": "Pool",
            "metadata": {
                "name": self.name,
                "creationTimestamp": created,
                "labels": {
                    "os.modelarts/name": self.display_name,
                    "os.modelarts/workspace.id": "0",
                    "os.modelarts.pool/biz": "private",
                },
                "annotations": {
                    "os.modelarts/description": "cloudjobs-mcp sandbox pool",
                    "os.modelarts/billing.mode": "0",
                },
            },
            "spec": {
                "type": "Dedicate",
                "scope": list(self.scopes),
                "resources": [{"flavor": self.flavor, "count": self.nodes, "maxCount": self.nodes, "azs": []}],
            },
            "status": {
                "phase": "Running",
                "message": "",
                "resources": {"available": [{"flavor": self.flavor, "count": self.nodes, "azs": []}]},
                "scope": [{"scopeType": s, "state": "Enabled"} for s in self.scopes],
            },
        }


POOLS: tuple[PoolDef, ...] = (
    PoolDef("pool-sandbox-train-0a1b2c3d4e5f6a7b8c9d0e1f", "sandbox-train", ("Train",), "modelarts.vm.cpu.8u", 2),
    PoolDef("pool-sandbox-infer-9f8e7d6c5b4a3f2e1d0c9b8a", "sandbox-infer", ("Infer",), "modelarts.vm.cpu.8u", 1),
)
POOLS_BY_NAME = {p.name: p for p in POOLS}
