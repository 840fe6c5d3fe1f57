"""Shared helpers for the pai tests: settings, a provider with injected time, and response bodies
shaped exactly as the reference (alibaba-pai-wire.md) documents them — PascalCase keys, GetJob
numbers, ListJobs ``RequestGPU``/``RequestMemory``/``NodeCount`` strings, ``GmtSuccessedTime``."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.providers.base import TAG_CREATED_BY, TAG_QUOTE_ID
from cloudjobs_mcp.server.providers.pai import signing
from cloudjobs_mcp.server.providers.pai.credentials import Credentials
from cloudjobs_mcp.server.providers.pai.provider import PaiProvider

DLC = "https://pai-dlc.cn-hangzhou.aliyuncs.com"
AIWS = "https://aiworkspace.cn-hangzhou.aliyuncs.com"
ECS = "https://ecs-cn-hangzhou.aliyuncs.com"
STS = "https://sts.aliyuncs.com"

AK_ID = "testid"
AK_SECRET = "testsecret"
CREDS = Credentials(AK_ID, AK_SECRET)
NOW = datetime(2024, 1, 1, tzinfo=UTC)

GPU_IMAGE = "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/pytorch:2.1-gpu-py310-cu121-ubuntu22.04"
CPU_IMAGE = "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/pytorch:2.1-cpu-py310-ubuntu22.04"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"provider": "pai", "region": "cn-hangzhou", "max_retries": 3, "toolsets": "all"}
    values.update(overrides)
    return Settings(**values)


class Sleeps(list[float]):
    """An injected ``sleep`` that records delays instead of waiting."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


def make_provider(
    *,
    credentials: Any = CREDS,
    now: Callable[[], datetime] = lambda: NOW,
    nonce: Callable[[], str] | None = None,
    sleeps: Sleeps | None = None,
    **settings_overrides: Any,
) -> tuple[PaiProvider, Sleeps]:
    sleeps = sleeps if sleeps is not None else Sleeps()
    counter = itertools.count(1)
    provider = PaiProvider(
        settings(**settings_overrides),
        credentials,
        sleep=sleeps,
        rand=lambda: 1.0,
        now=now,
        nonce=nonce or (lambda: f"nonce-{next(counter)}"),
        env={},
    )
    return provider, sleeps


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json;charset=utf-8", **(headers or {})},
    )


def error_response(
    code: str, message: str, status: int, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {
        "RequestId": f"req-{code}",
        "HostId": "pai-dlc.cn-hangzhou.aliyuncs.com",
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=pai-dlc",
        **extra,
    }
    return json_response(body, status, headers)


def query_of(request: httpx.Request) -> dict[str, str]:
    return signing.parse_query(request.url.query.decode())


def verify_signed(request: httpx.Request, secret: str = AK_SECRET) -> bool:
    """What a verifying server does with the request it received."""
    return signing.verify(
        secret,
        request.method,
        request.url.raw_path.decode().split("?", 1)[0],
        request.url.query.decode(),
        dict(request.headers),
        request.content,
    )


def body_of(request: httpx.Request) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request.content)
    return data


# --------------------------------------------------------------------------------- bodies


def pod(job_id: str, index: int = 0, role: str = "Worker", status: str = "Running") -> dict[str, Any]:
    return {
        "PodId": f"{job_id}-{role.lower()}-{index}",
        "PodUid": f"uid-{index}",
        "Type": role,
        "Status": status,
        "SubStatus": "Normal",
        "Ip": f"10.0.0.{index + 1}",
        "PodIps": [{"InterfaceName": "eth0", "Ip": f"10.0.0.{index + 1}"}],
        "NodeName": f"node-{index}",
        "GmtCreateTime": "2024-01-01T00:00:05Z",
        "GmtStartTime": "2024-01-01T00:01:00Z",
        "GmtFinishTime": "",
        "HistoryPods": [],
        "supportedProfilingTypes": "",
    }


def get_job_body(
    job_id: str = "dlc-123",
    status: str = "Running",
    *,
    name: str = "train",
    tags: dict[str, str] | None = None,
    pods: list[dict[str, Any]] | None = None,
    spec: str = "ecs.gn6i-c4g1.xlarge",
    workers: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """GetJob response: Duration/RequestCPU int, RequestGPU/RequestMemory numbers."""
    body: dict[str, Any] = {
        "RequestId": "473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E",
        "JobId": job_id,
        "DisplayName": name,
        "JobType": "PyTorchJob",
        "WorkspaceId": "268",
        "WorkspaceName": "ws",
        "ResourceType": "ECS",
        "ResourceLevel": "L0",
        "Status": status,
        "SubStatus": "",
        "ReasonCode": "",
        "ReasonMessage": "",
        "Duration": 60,
        "GmtCreateTime": "2024-01-01T00:00:00Z",
        "GmtSubmittedTime": "2024-01-01T00:00:01Z",
        "GmtRunningTime": "2024-01-01T00:01:00Z",
        "GmtFinishTime": "",
        "Priority": 1,
        "RestartTimes": "0/10",
        "RequestCPU": 4,
        "RequestGPU": 1.0,
        "RequestMemory": 15.0,
        "UserCommand": "python train.py",
        "Envs": {},
        "ThirdpartyLibs": [],
        "Settings": {"Tags": tags or {}},
        "JobSpecs": [{"Type": "Worker", "Image": GPU_IMAGE, "PodCount": workers, "EcsSpec": spec}],
        "Pods": pods if pods is not None else [pod(job_id)],
        "StatusHistory": [],
        "supportedProfilingTypes": "",
    }
    body.update(extra)
    return body


def job_item(
    job_id: str,
    status: str = "Running",
    *,
    created: str = "2024-01-01T00:00:00Z",
    tags: dict[str, str] | None = None,
    with_settings: bool = True,
) -> dict[str, Any]:
    """ListJobs item: RequestGPU/RequestMemory/NodeCount strings."""
    item: dict[str, Any] = {
        "JobId": job_id,
        "DisplayName": f"name-{job_id}",
        "JobType": "PyTorchJob",
        "Status": status,
        "SubStatus": "",
        "WorkspaceId": "268",
        "GmtCreateTime": created,
        "GmtModifiedTime": created,
        "Duration": 10,
        "NodeCount": "1",
        "RequestCPU": 2,
        "RequestGPU": "0",
        "RequestMemory": "4",
        "ResourceType": "ECS",
        "IsDeleted": False,
        "JobMaxRunningTimeMinutes": 60,
        "JobSpecs": [{"Type": "Worker", "Image": CPU_IMAGE, "PodCount": 1, "EcsSpec": "ecs.c6.large"}],
        "Pods": [],
    }
    if with_settings:
        item["Settings"] = {"Tags": tags or {}}
    return item


def list_jobs_body(items: list[dict[str, Any]], total: int | str | None = None) -> dict[str, Any]:
    return {"RequestId": "req-list", "TotalCount": len(items) if total is None else total, "Jobs": items}


def ecs_spec(instance_type: str, accelerator: str = "CPU", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "InstanceType": instance_type,
        "AcceleratorType": accelerator,
        "Cpu": 2,
        "Memory": 4,
        "Gpu": 0,
        "GpuType": "",
        "GpuMemory": 0,
        "IsAvailable": True,
        "PaymentTypes": ["PostPaid"],
        "ResourceType": "ECS",
        "SpotStockStatus": "WithStock",
        "NonProtectSpotDiscount": 0.1,
        "DefaultGPUDriver": "",
        "SupportedGPUDrivers": [],
    }
    spec.update(extra)
    return spec


T4 = {"Cpu": 4, "Memory": 15, "Gpu": 1, "GpuType": "T4", "GpuMemory": 16}


def image(name: str, uri: str, created: str, chip: str = "GPU") -> dict[str, Any]:
    return {
        "ImageId": f"image-{name}",
        "Name": name,
        "ImageUri": uri,
        "Description": "",
        "Accessibility": "PUBLIC",
        "WorkspaceId": "0",
        "GmtCreateTime": created,
        "GmtModifiedTime": created,
        "Size": 1024,
        "SourceType": "",
        "Labels": [
            {"Key": "system.official", "Value": "true"},
            {"Key": "system.supported.dlc", "Value": "true"},
            {"Key": "system.chipType", "Value": chip},
        ],
    }


def workspace(workspace_id: str, name: str = "ws", status: str = "ENABLED") -> dict[str, Any]:
    return {
        "WorkspaceId": workspace_id,
        "WorkspaceName": name,
        "DisplayName": name,
        "Description": "",
        "Status": status,
        "EnvTypes": ["prod"],
        "Creator": "1",
        "AdminNames": [],
        "IsDefault": False,
        "GmtCreateTime": "2023-01-01T00:00:00.000Z",
        "GmtModifiedTime": "2023-01-01T00:00Z",
        "ExtraInfos": {"TenantId": "1"},
        "resourceGroupId": "rg-1",
    }


def price_body(trade: float, currency: str = "CNY") -> dict[str, Any]:
    return {
        "RequestId": "req-price",
        "PriceInfo": {
            "Price": {
                "Currency": currency,
                "OriginalPrice": trade * 1.25,
                "DiscountPrice": trade * 0.25,
                "TradePrice": trade,
                "ReservedInstanceHourPrice": 0.0,
                "DetailInfos": {
                    "DetailInfo": [
                        {"Resource": "instanceType", "OriginalPrice": trade, "DiscountPrice": 0.0, "TradePrice": trade}
                    ]
                },
            },
            "Rules": {"Rule": [{"RuleId": 1, "Description": "rule"}]},
        },
    }


QUOTE_TAGS = {TAG_CREATED_BY: "1", TAG_QUOTE_ID: "q-abc"}


# ------------------------------------------------ observability and PaiStudio (shapes: the SDK models)

# PaiStudio's cn-hangzhou host is not pai.cn-hangzhou.aliyuncs.com (endpoints.py, SDK 2.6.2's map).
STUDIO = "https://pai.cn-hangzhou.data.aliyun.com"
TRAIN_ID = "train129f212o89d"
QUOTA_ID = "quota1y9qarq1234"


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def job_metrics_body(job_id: str, series: dict[str, list[tuple[datetime, float]]]) -> dict[str, Any]:
    """DLC GetJobMetrics: ``PodMetrics[].Metrics[]`` with ``Time`` in epoch milliseconds (int)."""
    return {
        "JobId": job_id,
        "RequestId": "req-metrics",
        "PodMetrics": [
            {"PodId": pod_id, "Metrics": [{"Time": epoch_ms(t), "Value": v} for t, v in points]}
            for pod_id, points in series.items()
        ],
    }


def instance_metrics_body(series: dict[str, list[tuple[str, float]]]) -> dict[str, Any]:
    """PaiStudio ListTrainingJobInstanceMetrics: ``Time`` is an ISO-8601 string here."""
    return {
        "RequestId": "req-instancemetrics",
        "InstanceMetrics": [
            {"InstanceId": iid, "NodeName": f"node-{n}", "Metrics": [{"Time": t, "Value": v} for t, v in points]}
            for n, (iid, points) in enumerate(series.items())
        ],
    }


def sanity_item(
    number: int, phase: str, status: str = "Succeeded", message: str = "", minute: int = 0
) -> dict[str, Any]:
    return {
        "CheckNumber": number,
        "Phase": phase,
        "Status": status,
        "Message": message,
        "StartedAt": f"2024-01-01T00:{minute:02d}:00Z",
        "FinishedAt": f"2024-01-01T00:{minute:02d}:30Z",
    }


def sanity_results_body(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """ListJobSanityCheckResults: ``RequestID`` (capital ID) and a list of lists."""
    return {"RequestID": "req-sanity", "TotalCount": len(runs), "SanityCheckResults": runs}


def training_instance(
    job_id: str = TRAIN_ID, role: str = "worker", index: int = 0, status: str = "Running"
) -> dict[str, Any]:
    return {"Name": f"{job_id}-{role}-{index}", "Role": role.capitalize(), "Status": status}


def training_job_body(
    job_id: str = TRAIN_ID,
    status: str = "Running",
    *,
    instances: list[dict[str, Any]] | None = None,
    resource_id: str | None = None,
    transitions: list[tuple[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """PaiStudio GetTrainingJob: ``Scheduler.MaxRunningTimeInSeconds`` a string, instances by Name."""
    compute: dict[str, Any] = {"EcsSpec": "ecs.gn6i-c4g1.xlarge", "EcsCount": 1, "UseSpotInstance": False}
    if resource_id:
        compute = {
            "ResourceId": resource_id,
            "ResourceName": "team-quota",
            "InstanceCount": 2,
            "InstanceSpec": {"CPU": "8", "GPU": "1", "GPUType": "A10", "Memory": "30", "SharedMemory": "16"},
        }
    steps = transitions or [("Creating", "2024-01-01T00:00:00Z"), ("Running", "2024-01-01T00:02:00Z")]
    body: dict[str, Any] = {
        "RequestId": "req-trainingjob",
        "TrainingJobId": job_id,
        "TrainingJobName": "bert-finetune",
        "TrainingJobDescription": "",
        "TrainingJobUrl": f"https://pai.console.aliyun.com/#/training/jobs/{job_id}",
        "WorkspaceId": "268",
        "UserId": "1612285282502324",
        "Status": status,
        "ReasonCode": "",
        "ReasonMessage": "",
        "Priority": 3,
        "Duration": 600,
        "GmtCreateTime": "2024-01-01T00:00:00Z",
        "GmtModifiedTime": "2024-01-01T00:10:00Z",
        "IsTempAlgo": True,
        "AlgorithmSpec": {"Image": GPU_IMAGE, "JobType": "PyTorchJob", "Command": ["python", "train.py"]},
        "ComputeResource": compute,
        "Instances": instances if instances is not None else [training_instance(job_id)],
        "Labels": [{"Key": TAG_CREATED_BY, "Value": "1"}],
        "Scheduler": {"MaxRunningTimeInSeconds": "3600"},
        "StatusTransitions": [
            {"Status": s, "StartTime": t, "EndTime": "", "ReasonCode": "", "ReasonMessage": ""} for s, t in steps
        ],
        "LatestMetrics": [],
        "HyperParameters": [],
        "InputChannels": [],
        "OutputChannels": [],
        "Environments": {},
        "PythonRequirements": [],
    }
    body.update(extra)
    return body


def studio_page(key: str, items: list[str], total: int) -> dict[str, Any]:
    """ListTrainingJobLogs / ListTrainingJobEvents / ...InstanceEvents: ``TotalCount`` is a STRING."""
    return {"RequestId": "req-page", "TotalCount": str(total), key: items}


def queue_info(
    job_id: str,
    quota_id: str = QUOTA_ID,
    *,
    status: str = "Enqueued",
    position: int = 3,
    priority: int = 5,
    **extra: Any,
) -> dict[str, Any]:
    """One ``Workloads[]`` item of PaiStudio ListQuotaWorkloads (QueueInfo)."""
    item: dict[str, Any] = {
        "WorkloadId": job_id,
        "WorkloadName": "train-1",
        "WorkloadType": "dlc",
        "WorkloadStatus": "PreAllocation",
        "Status": status,
        "Position": position,
        "Priority": priority,
        "QuotaId": quota_id,
        "Name": "test-label-79f5498dd-9qrzs",
        "QueueStrategy": "PaiStrategyIntelligent",
        "GmtCreatedTime": "2024-01-01T00:00:00Z",
        "GmtEnqueuedTime": "2024-01-01T00:00:10Z",
        "GmtPositionModifiedTime": "2024-01-01T00:05:00Z",
        "UserId": "1612285282502324",
        "UserName": "alice",
        "WorkspaceId": "268",
        "WorkspaceName": "pai_dlc",
        "Code": "roleMaximumResource",
        "CodeType": "ConfigRule",
        "Reason": "Current GPU Limit is 5, limited by Role PAI.AlgoDeveloper",
        "Resource": {"CPU": "8", "GPU": "1", "GPUType": "A10", "Memory": "30Gi", "GPUMemory": ""},
        "UseOversoldResource": False,
    }
    item.update(extra)
    return item


def quota_workloads_body(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"RequestId": "req-workloads", "TotalCount": len(items), "Workloads": items}


def error_info_body(code: str = "", message: str = "", additional: str = "") -> dict[str, Any]:
    return {"RequestId": "req-errorinfo", "ErrorInfo": {"Code": code, "Message": message, "AdditionalInfo": additional}}


# ------------------------------------- labels, templates, spot, output models (shapes: the SDK models)

TEMPLATE_ID = "tplwk80096dw1234"


def template_version(version: int, content: dict[str, Any] | str, constraints: dict[str, str]) -> dict[str, Any]:
    """GetJobTemplateResponseBodyVersions: ``Content`` the JSON string given to Create/UpdateJobTemplate."""
    return {
        "Version": version,
        "Content": content if isinstance(content, str) else json.dumps(content),
        "Constraints": constraints,
        "CreatedBy": "1612285282502324",
        "GmtCreateTime": f"2024-01-0{version}T00:00Z",
    }


def job_template_body(
    versions: list[dict[str, Any]],
    *,
    template_id: str = TEMPLATE_ID,
    name: str = "bert-base",
    default_version: int = 1,
    description: str = "",
) -> dict[str, Any]:
    """GetJobTemplate (``Version=all``): every version, ``TotalCount`` their number."""
    return {
        "RequestId": "req-gettemplate",
        "TemplateId": template_id,
        "TemplateName": name,
        "Description": description,
        "DefaultVersion": default_version,
        "TotalCount": len(versions),
        "Metadata": {},
        "WorkspaceId": "268",
        "UserId": "1612285282502324",
        "TenantId": "1612285282502324",
        "ModifiedBy": "1612285282502324",
        "GmtCreateTime": "2024-01-01T00:00Z",
        "GmtModifyTime": "2024-01-02T00:00Z",
        "Versions": versions,
    }


def template_item(template_id: str = TEMPLATE_ID, name: str = "bert-base", default_version: int = 1) -> dict[str, Any]:
    """ListJobTemplatesResponseBodyJobTemplates: no Content, no versions."""
    return {
        "TemplateId": template_id,
        "TemplateName": name,
        "Description": "",
        "DefaultVersion": default_version,
        "Metadata": {},
        "WorkspaceId": "268",
        "UserId": "1612285282502324",
        "TenantId": "1612285282502324",
        "ModifiedBy": "1612285282502324",
        "GmtCreateTime": "2024-01-01T00:00Z",
        "GmtModifyTime": "2024-01-01T00:00Z",
    }


def list_job_templates_body(items: list[dict[str, Any]], page: int = 1, size: int = 50) -> dict[str, Any]:
    return {
        "RequestId": "req-listtemplates",
        "TotalCount": len(items),
        "PageNumber": page,
        "PageSize": size,
        "JobTemplates": items,
    }


def spot_price_history_body(points: list[tuple[str, float, str]], instance_type: str) -> dict[str, Any]:
    """GetSpotPriceHistory: ``SpotDiscount`` (a fraction of the on-demand price), not a price."""
    return {
        "RequestId": "req-spot",
        "TotalCount": len(points),
        "SpotPriceHistory": [
            {"InstanceType": instance_type, "ZoneId": zone, "SpotDiscount": discount, "Timestamp": ts}
            for ts, discount, zone in points
        ],
    }


def output_models_body(models: list[tuple[str, str]]) -> dict[str, Any]:
    """ListTrainingJobOutputModels: ``OutputChannelName`` and ``Uri`` per model."""
    return {
        "RequestId": "req-outputmodels",
        "OutputModels": [
            {
                "OutputChannelName": name,
                "Uri": uri,
                "SourceType": "TrainingService",
                "SourceId": f"region=cn-hangzhou,workspaceId=268,kind=TrainingJob,id={TRAIN_ID}",
                "Labels": [],
                "Metrics": {},
                "TrainingSpec": {},
                "InferenceSpec": {},
                "EvaluationSpec": {},
                "CompressionSpec": {},
            }
            for name, uri in models
        ],
    }
