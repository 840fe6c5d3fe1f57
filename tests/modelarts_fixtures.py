"""Shared helpers for the modelarts tests: a provider with injected time and response bodies shaped exactly as
the reference (huawei-modelarts-wire.md) documents them — epoch-millisecond times, ``total_count`` for flavors
and ``total`` for engines, environments as a list of one-key maps in job responses, ``error_code``/``error_msg``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.http import RetryPolicy
from cloudjobs_mcp.server.providers.modelarts.credentials import Credentials
from cloudjobs_mcp.server.providers.modelarts.provider import ModelArtsProvider

PID = "0123456789abcdef0123456789abcdef"
DOMAIN = "fedcba9876543210fedcba9876543210"
BASE = "https://modelarts.cn-north-4.myhuaweicloud.com"
V2 = f"{BASE}/v2/{PID}"
IAM = "https://iam.cn-north-4.myhuaweicloud.com"
BSS = "https://bss.myhuaweicloud.com"
AK, SK = "HPUATESTAK0000000001", "TestSecretKey0000000000000000000000000001"
CREDS = Credentials(AK, SK, project_id=PID)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
JOB_ID = "3faf5c03-aaa1-4cbe-879d-24b05d997347"
POOL = "pool-sandbox-train-0a1b2c3d4e5f6a7b8c9d0e1f"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total=30.0, max_retry_after=10.0)


class Sleeps(list[float]):
    async def __call__(self, delay: float) -> None:
        self.append(delay)


def settings(**overrides: Any) -> Settings:
    return Settings(**{"provider": "modelarts", "modelarts_region": "cn-north-4", **overrides})


def make_provider(*, credentials: Any = CREDS, env: dict[str, str] | None = None, **overrides: Any):
    sleeps = Sleeps()
    provider = ModelArtsProvider(
        settings(**overrides),
        credentials,
        env=env or {},
        policy=FAST,
        sleep=sleeps,
        rand=lambda: 0.5,
        now=lambda: NOW,
    )
    return provider, sleeps


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def fail(status: int, code: str, message: str, **extra: Any) -> httpx.Response:
    body = {"error_code": code, "error_msg": message, **extra}
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json", "X-Request-Id": "rid-1"}
    )


FLAVORS = {
    "total_count": 3,
    "flavors": [
        {
            "flavor_id": "modelarts.vm.cpu.2u",
            "flavor_name": "Computing CPU(2U) instance",
            "flavor_type": "CPU",
            "billing": {"code": "modelarts.vm.cpu.2u", "unit_num": 1},
            "flavor_info": {
                "max_num": 1,
                "cpu": {"arch": "x86", "core_num": 2},
                "memory": {"size": 8, "unit": "GB"},
                "disk": {"size": 50, "unit": "GB"},
            },
        },
        {
            "flavor_id": "modelarts.p3.large.public",
            "flavor_name": "GPU: 1*NVIDIA-V100(32GB) | CPU: 8 vCPUs 64GB",
            "flavor_type": "GPU",
            "billing": {"code": "modelarts.p3.large.public", "unit_num": 1},
            "flavor_info": {
                "max_num": 16,
                "cpu": {"arch": "x86", "core_num": 8},
                "gpu": {"unit_num": 1, "product_name": "NVIDIA-V100", "memory": "32GB"},
                "memory": {"size": 64, "unit": "GB"},
                "disk": {"size": 500, "unit": "GB"},
            },
        },
        {
            "flavor_id": "modelarts.bm.npu.arm.910b.8",
            "flavor_name": "Ascend: 8*ascend-snt9b(64GB) | ARM: 192 vCPUs 1536GB",
            "flavor_type": "Ascend",
            "billing": {"code": "modelarts.bm.npu.arm.910b.8", "unit_num": 1},
            "flavor_info": {
                "max_num": 8,
                "cpu": {"arch": "aarch64", "core_num": 192},
                "npu": {"unit_num": "8", "product_name": "Ascend-snt9b", "memory": "64GB"},
                "memory": {"size": 1536, "unit": "GB"},
            },
        },
    ],
}

ENGINES = {
    "total": 3,
    "items": [
        {
            "engine_id": "tensorflow_2.1.0-cuda_10.1-py_3.7-ubuntu_18.04-x86_64",
            "engine_name": "TensorFlow",
            "engine_version": "tensorflow_2.1.0-cuda_10.1-py_3.7-ubuntu_18.04-x86_64",
            "v1_compatible": False,
            "run_user": "1102",
            "image_info": {"cpu_image_url": "aip/tensorflow_2_1:train", "gpu_image_url": "aip/tensorflow_2_1:train"},
        },
        {
            "engine_id": "pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64",
            "engine_name": "PyTorch",
            "engine_version": "pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64",
            "v1_compatible": False,
            "image_info": {"cpu_image_url": "aip/pytorch_1_8:train", "gpu_image_url": "aip/pytorch_1_8:train"},
        },
        {
            "engine_id": "pytorch_2.1.0-cuda_12.1-py_3.10-ubuntu_22.04-x86_64",
            "engine_name": "PyTorch",
            "engine_version": "pytorch_2.1.0-cuda_12.1-py_3.10-ubuntu_22.04-x86_64",
            "v1_compatible": False,
            "image_info": {"cpu_image_url": "", "gpu_image_url": "atelier/pytorch_2_1_cuda_12_1:train"},
        },
    ],
}


def job(
    name: str = "train-q-0123456789abcdef",
    phase: str = "Running",
    *,
    job_id: str = JOB_ID,
    description: str = "cloudjobs-mcp quote q-0123456789abcdef max_hours 2",
    tasks: tuple[str, ...] = ("worker-0",),
    pool: str | None = None,
    exit_code: int | None = None,
) -> dict[str, Any]:
    """A job object as ShowTrainingJobDetails / CreateTrainingJob / search ``items[]`` answer it."""
    resource: dict[str, Any] = {"policy": "regular", "flavor_id": "modelarts.vm.cpu.2u", "node_count": len(tasks)}
    if pool:
        resource["pool_id"] = pool
    status: dict[str, Any] = {
        "phase": phase,
        "secondary_phase": phase,
        "duration": 90_000 if phase in ("Completed", "Failed", "Terminated") else 0,
        "start_time": NOW_MS - 100_000 if phase not in ("Creating", "Pending") else 0,
        "tasks": list(tasks),
    }
    if exit_code is not None:
        status["task_statuses"] = [{"task": t, "exit_code": exit_code, "message": "exit with 1"} for t in tasks]
    return {
        "kind": "job",
        "metadata": {
            "id": job_id,
            "name": name,
            "workspace_id": "0",
            "description": description,
            "create_time": NOW_MS - 200_000,
            "user_name": "someone",
        },
        "status": status,
        "algorithm": {
            "command": "python train.py",
            "engine": {"image_url": "aip/pytorch_1_8:train"},
            "environments": [{"HP_LR": "0.1"}, {"CLOUDJOBS_HYPERPARAMETERS": '{"lr":"0.1"}'}],
        },
        "spec": {"resource": resource},
    }


def search(items: list[dict[str, Any]], total: int | None = None, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    return {
        "total": len(items) if total is None else total,
        "count": len(items),
        "limit": limit,
        "offset": offset,
        "sort_by": "create_time",
        "order": "desc",
        "group_by": "",
        "workspace_id": "0",
        "ai_project": "",
        "train_type": "job",
        "items": items,
    }
