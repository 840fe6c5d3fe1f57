"""PaiProvider against respx-mocked PAI-DLC / AIWorkspace / ECS, bodies shaped as the reference says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from pai_fixtures import (
    AIWS,
    CPU_IMAGE,
    DLC,
    ECS,
    GPU_IMAGE,
    NOW,
    QUOTE_TAGS,
    T4,
    body_of,
    ecs_spec,
    error_response,
    get_job_body,
    image,
    job_item,
    json_response,
    list_jobs_body,
    make_provider,
    pod,
    price_body,
    query_of,
    verify_signed,
    workspace,
)

from cloudjobs_mcp.server.errors import InvalidRequest, NotFound, PermissionDenied
from cloudjobs_mcp.server.http import OutcomeUnknown
from cloudjobs_mcp.server.models import JobRequest, JobStatus, Spec
from cloudjobs_mcp.server.providers.base import TAG_CREATED_BY, TAG_QUOTE_ID, Provider
from cloudjobs_mcp.server.providers.pai import PaiProvider, images
from cloudjobs_mcp.server.providers.pai.provider import DEFAULT_WORKSPACE_DISPLAY_NAME, DEFAULT_WORKSPACE_NAME, job_from

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def request(**overrides: Any) -> JobRequest:
    values: dict[str, Any] = {
        "display_name": "train-1",
        "user_command": "python train.py",
        "job_type": "PyTorchJob",
        "ecs_spec": "ecs.gn6i-c4g1.xlarge",
        "worker_count": 1,
        "max_runtime_minutes": 90,
    }
    values.update(overrides)
    return JobRequest(**values)


def images_body(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"RequestId": "r", "TotalCount": len(items), "Images": items}


GPU_IMAGES = [
    image("pytorch:2.3-gpu-py310-cu121-ubuntu22.04-accl", "reg/pytorch:accl", "2024-06-01T00:00:00Z"),
    image("pytorch-ngc:24.01-gpu", "reg/pytorch:ngc", "2024-05-01T00:00:00Z"),
    image("pytorch:2.1-gpu-py310-cu121-ubuntu22.04", GPU_IMAGE, "2024-02-01T00:00:00Z"),
    image("pytorch:2.0-gpu-py39-cu117-ubuntu20.04", "reg/pytorch:2.0-gpu", "2023-06-01T00:00:00Z"),
    image("pytorch:2.2-py310-ubuntu22.04", "reg/pytorch:2.2-notag", "2024-04-01T00:00:00Z"),
    image("pytorch:2.2-deepEp-gpu", "reg/pytorch:deepep", "2024-07-01T00:00:00Z"),
    image("tensorflow:2.14-gpu", "reg/tf", "2024-08-01T00:00:00Z"),
    image("pytorch-develop:2.4-gpu", "reg/develop", "2024-08-01T00:00:00Z"),
]


def test_provider_satisfies_protocol() -> None:
    provider, _ = make_provider()
    assert isinstance(provider, Provider)
    assert (provider.name, provider.region, provider.currency) == ("pai", "cn-hangzhou", "CNY")


# --------------------------------------------------------------------------------- specs


async def test_list_specs_paginates_to_the_last_page() -> None:
    provider, _ = make_provider()
    page1 = [ecs_spec(f"ecs.gn6i-c{i}g1.xlarge", "GPU", **T4) for i in range(100)]
    page2 = [
        ecs_spec(
            "ecs.gn7i-c32g1.8xlarge",
            "GPU",
            Cpu=32,
            Memory=188,
            Gpu=1,
            GpuType="A10",
            GpuMemory=24,
            IsAvailable=False,
            SpotStockStatus="NoStock",
            NonProtectSpotDiscount=0.35,
        )
    ]
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/ecsspecs").mock(
            side_effect=[
                json_response({"RequestId": "r1", "TotalCount": "101", "EcsSpecs": page1}),
                json_response({"RequestId": "r2", "TotalCount": "101", "EcsSpecs": page2}),
            ]
        )
        specs = await provider.list_specs("GPU", sort_by="GPU", order="asc")
    assert len(specs) == 101 and route.call_count == 2
    queries = [query_of(c.request) for c in route.calls]
    assert [q["PageNumber"] for q in queries] == ["1", "2"]
    assert all(q["AcceleratorType"] == "GPU" and q["PageSize"] == "100" and q["SortBy"] == "GPU" for q in queries)
    last = specs[-1]
    assert last == Spec(
        instance_type="ecs.gn7i-c32g1.8xlarge",
        accelerator="GPU",
        cpu=32,
        memory_gb=188,
        gpu_count=1,
        gpu_type="A10",
        gpu_memory_gb=24,
        available=False,
        spot_stock="NoStock",
        spot_discount=0.35,
        payment_types=["PostPaid"],
    )
    await provider.aclose()


async def test_list_specs_with_price_where_known_and_all_accelerators() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.post(f"{ECS}/").mock(return_value=json_response(price_body(0.17)))
        spec_route = router.get(f"{DLC}/api/v1/ecsspecs").mock(
            return_value=json_response(
                {
                    "RequestId": "r",
                    "TotalCount": 2,
                    "EcsSpecs": [ecs_spec("ecs.c6.large"), ecs_spec("ecs.gn6i-c4g1.xlarge", "GPU", **T4)],
                }
            )
        )
        await provider.price("ecs.c6.large")
        specs = await provider.list_specs()
    assert "AcceleratorType" not in query_of(spec_route.calls.last.request)
    by_type = {s.instance_type: s for s in specs}
    assert by_type["ecs.c6.large"].price_per_hour == 0.17 and by_type["ecs.c6.large"].currency == "CNY"
    assert by_type["ecs.gn6i-c4g1.xlarge"].price_per_hour is None
    assert by_type["ecs.gn6i-c4g1.xlarge"].memory_gb == 15 and by_type["ecs.gn6i-c4g1.xlarge"].gpu_type == "T4"
    with pytest.raises(InvalidRequest):
        await provider.list_specs(sort_by="Cpu")  # the seed's default; the API wants CPU
    await provider.aclose()


async def test_price_is_describe_price_and_sets_currency() -> None:
    provider, _ = make_provider(region="ap-southeast-1")
    with respx.mock() as router:
        route = router.post("https://ecs.ap-southeast-1.aliyuncs.com/").mock(
            return_value=json_response(price_body(1.234, "USD"))
        )
        price = await provider.price("ecs.gn6i-c4g1.xlarge")
    sent = route.calls.last.request
    assert query_of(sent) == {
        "RegionId": "ap-southeast-1",
        "InstanceType": "ecs.gn6i-c4g1.xlarge",
        "PriceUnit": "Hour",
        "SystemDisk.Category": "cloud_essd",
        "SystemDisk.Size": "120",
    }
    assert sent.content == b"" and sent.headers["x-acs-action"] == "DescribePrice"
    assert sent.headers["x-acs-version"] == "2014-05-26" and verify_signed(sent)
    assert (price.per_worker_hourly, price.currency, provider.currency) == (1.234, "USD", "USD")
    assert "DescribePrice" in price.source
    await provider.aclose()


# -------------------------------------------------------------------------------- images


async def test_resolve_image_prefers_standard_chip_tagged_newest_and_caches() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        route = router.get(f"{AIWS}/api/v1/images").mock(return_value=json_response(images_body(GPU_IMAGES)))
        chosen = await provider.resolve_image("PyTorchJob", "GPU")
        again = await provider.resolve_image("PyTorchJob", "GPU")
    assert chosen.uri == GPU_IMAGE and chosen.name.startswith("pytorch:2.1-gpu") and chosen.chip_type == "GPU"
    assert again is chosen and route.call_count == 1
    q = query_of(route.calls.last.request)
    assert q["Labels"] == "system.supported.dlc=true,system.chipType=GPU"
    assert q["Verbose"] == "true" and q["Name"] == "pytorch"
    await provider.aclose()


def test_image_ranking_order() -> None:
    ranked = [i["ImageUri"] for i in images.rank(GPU_IMAGES, "MPIJob", "GPU")]
    assert ranked == [
        GPU_IMAGE,
        "reg/pytorch:2.0-gpu",
        "reg/pytorch:2.2-notag",
        "reg/pytorch:deepep",
        "reg/pytorch:accl",
    ]
    cpu = [
        image("xgboost:1.7-py310", "reg/x-notag", "2024-05-01T00:00:00Z", "CPU"),
        image("xgboost-training:1.6-cpu-py38", "reg/x-cpu", "2023-01-01T00:00:00Z", "CPU"),
        image("xgboost:1.8-gpu", "reg/x-gpu", "2024-09-01T00:00:00Z", "GPU"),
    ]
    assert [i["ImageUri"] for i in images.rank(cpu, "XGBoostJob", "CPU")] == ["reg/x-cpu", "reg/x-notag"]
    assert images.chip_type_for_spec("ecs.gn6i-c4g1.xlarge") == "GPU"
    assert images.chip_type_for_spec("ecs.ebmgn7i.32xlarge") == "GPU"
    assert images.chip_type_for_spec("ecs.c6.large") == "CPU"
    assert images.chip_type_for_spec("ecs.g7.xlarge") == "CPU"


async def test_resolve_image_none_found() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{AIWS}/api/v1/images").mock(return_value=json_response(images_body([])))
        with pytest.raises(NotFound, match="pass image=<uri>"):
            await provider.resolve_image("RayJob", "CPU")
    await provider.aclose()


# ----------------------------------------------------------------------------- workspace


async def test_workspace_auto_created_once_and_used() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        listing = router.get(f"{AIWS}/api/v1/workspaces").mock(
            return_value=json_response({"RequestId": "r", "TotalCount": 0, "Workspaces": []})
        )
        created = router.post(f"{AIWS}/api/v1/workspaces").mock(
            return_value=json_response({"RequestId": "r", "WorkspaceId": "4242"})
        )
        create = router.post(f"{DLC}/api/v1/jobs").mock(
            return_value=json_response({"JobId": "dlc-1", "RequestId": "r"})
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(return_value=json_response(get_job_body("dlc-1")))
        await provider.create_job(request(image="img:1"))
        await provider.create_job(request(image="img:1"))
    assert created.call_count == 1 and listing.call_count == 1
    body = body_of(created.calls.last.request)
    assert body == {
        "WorkspaceName": DEFAULT_WORKSPACE_NAME,
        "DisplayName": DEFAULT_WORKSPACE_DISPLAY_NAME,
        "Description": body["Description"],
        "EnvTypes": ["prod"],
    }
    assert 3 <= len(body["WorkspaceName"]) <= 23 and len(body["Description"]) <= 80  # AIWorkspace's limits
    assert all(body_of(c.request)["WorkspaceId"] == "4242" for c in create.calls)
    await provider.aclose()


async def test_workspace_first_enabled_existing_or_configured() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{AIWS}/api/v1/workspaces").mock(
            return_value=json_response(
                {"RequestId": "r", "TotalCount": 2, "Workspaces": [workspace("1", status="FROZEN"), workspace("2")]}
            )
        )
        assert await provider.workspace_id() == "2"
    configured, _ = make_provider(pai_workspace_id="777")
    with respx.mock(assert_all_called=False) as router:
        route = router.get(f"{AIWS}/api/v1/workspaces")
        assert await configured.workspace_id() == "777" and route.call_count == 0
    await provider.aclose()
    await configured.aclose()


# -------------------------------------------------------------------------------- create


async def test_create_job_body_from_request_and_inferred_gpu_image() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    with respx.mock() as router:
        router.get(f"{AIWS}/api/v1/images").mock(return_value=json_response(images_body(GPU_IMAGES)))
        router.get(f"{DLC}/api/v1/jobs").mock(return_value=json_response(list_jobs_body([])))
        create = router.post(f"{DLC}/api/v1/jobs").mock(
            return_value=json_response({"JobId": "dlc-7", "RequestId": "r"})
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-7").mock(
            return_value=json_response(get_job_body("dlc-7", "Creating", workers=2, tags=QUOTE_TAGS))
        )
        job = await provider.create_job(
            request(worker_count=2, envs={"A": "1"}, thirdparty_libs=["numpy"], tags=QUOTE_TAGS)
        )
    assert body_of(create.calls.last.request) == {
        "DisplayName": "train-1",
        "JobType": "PyTorchJob",
        "JobSpecs": [{"Type": "Worker", "Image": GPU_IMAGE, "PodCount": 2, "EcsSpec": "ecs.gn6i-c4g1.xlarge"}],
        "UserCommand": "python train.py",
        "WorkspaceId": "268",
        "JobMaxRunningTimeMinutes": 90,
        "Envs": {"A": "1"},
        "ThirdpartyLibs": ["numpy"],
        "Settings": {"Tags": QUOTE_TAGS},
    }
    assert job.job_id == "dlc-7" and job.status is JobStatus.CREATING and job.tags == QUOTE_TAGS
    await provider.aclose()


@pytest.mark.parametrize(
    ("job_type", "count", "roles"),
    [
        ("PyTorchJob", 3, [("Worker", 3)]),
        ("TFJob", 1, [("Worker", 1)]),
        ("MPIJob", 2, [("Worker", 2)]),
        ("XGBoostJob", 3, [("Master", 1), ("Worker", 2)]),
        ("XGBoostJob", 1, [("Master", 1)]),
        ("RayJob", 4, [("Head", 1), ("Worker", 3)]),
    ],
)
def test_job_specs_roles(job_type: str, count: int, roles: list[tuple[str, int]]) -> None:
    specs = PaiProvider.job_specs(job_type, count, "img", {"EcsSpec": "ecs.c6.large"})
    assert [(s["Type"], s["PodCount"]) for s in specs] == roles
    assert sum(s["PodCount"] for s in specs) == count
    assert all(s["Image"] == "img" and s["EcsSpec"] == "ecs.c6.large" for s in specs)


async def test_resource_quota_uses_resource_config_strings() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/ecsspecs").mock(
            return_value=json_response(
                {"RequestId": "r", "TotalCount": 1, "EcsSpecs": [ecs_spec("ecs.gn6i-c4g1.xlarge", "GPU", **T4)]}
            )
        )
        body = await provider.create_job_body(request(resource_id="quota123", image="img"))
    assert body["ResourceId"] == "quota123"
    assert body["JobSpecs"][0]["ResourceConfig"] == {"CPU": "4", "Memory": "15Gi", "GPU": "1", "GPUType": "T4"}
    assert "EcsSpec" not in body["JobSpecs"][0]
    await provider.aclose()


async def test_cpu_spec_gets_cpu_image() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    cpu_images = [image("pytorch:2.1-cpu-py310-ubuntu22.04", CPU_IMAGE, "2024-02-01T00:00:00Z", "CPU")]
    with respx.mock() as router:
        route = router.get(f"{AIWS}/api/v1/images").mock(return_value=json_response(images_body(cpu_images)))
        body = await provider.create_job_body(request(ecs_spec="ecs.c6.large"))
    assert "system.chipType=CPU" in query_of(route.calls.last.request)["Labels"]
    assert body["JobSpecs"][0]["Image"] == CPU_IMAGE
    await provider.aclose()


async def test_retried_create_finds_the_existing_job() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    with respx.mock(assert_all_called=False) as router:
        listing = router.get(f"{DLC}/api/v1/jobs").mock(
            return_value=json_response(list_jobs_body([job_item("dlc-old", tags=QUOTE_TAGS)]))
        )
        create = router.post(f"{DLC}/api/v1/jobs")
        router.get(f"{DLC}/api/v1/jobs/dlc-old").mock(
            return_value=json_response(get_job_body("dlc-old", tags=QUOTE_TAGS))
        )
        job = await provider.create_job(request(image="img", tags=QUOTE_TAGS))
    assert job.job_id == "dlc-old" and create.call_count == 0
    q = query_of(listing.calls.last.request)
    assert q["Tags"] == '{"cloudjobs-quote":"q-abc"}' and q["WorkspaceId"] == "268"
    assert q["StartTime"] == "2023-01-01T00:00:00Z"  # a year back, not the API's 7-day default
    await provider.aclose()


async def test_create_timeout_that_landed_is_not_sent_twice() -> None:
    """CreateJob reaches PAI but the answer times out: the job is found by its quote tag."""
    provider, sleeps = make_provider(pai_workspace_id="268")
    landed: list[str] = []

    def create_side_effect(req: httpx.Request) -> httpx.Response:
        landed.append(body_of(req)["DisplayName"])
        raise httpx.ReadTimeout("timed out", request=req)

    listings = [
        json_response(list_jobs_body([])),  # before creating: no job with this quote
        json_response(list_jobs_body([])),  # right after the timeout: not indexed yet
        json_response(list_jobs_body([job_item("dlc-new", status="Creating", tags=QUOTE_TAGS)])),
    ]
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs").mock(side_effect=listings)
        create = router.post(f"{DLC}/api/v1/jobs").mock(side_effect=create_side_effect)
        router.get(f"{DLC}/api/v1/jobs/dlc-new").mock(
            return_value=json_response(get_job_body("dlc-new", "Creating", tags=QUOTE_TAGS))
        )
        job = await provider.create_job(request(image="img", tags=QUOTE_TAGS))
    assert job.job_id == "dlc-new"
    assert create.call_count == 1 and landed == ["train-1"]
    assert sleeps == [1.0]  # one wait between the two lookups
    await provider.aclose()


async def test_create_timeout_that_never_landed_is_sent_again_once() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    jobs: list[dict[str, Any]] = []
    attempts: list[int] = []

    def create_side_effect(req: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:  # the first attempt dies before reaching PAI's backend
            raise httpx.ReadTimeout("timed out", request=req)
        jobs.append(job_item("dlc-2", tags=QUOTE_TAGS))
        return json_response({"JobId": "dlc-2", "RequestId": "r"})

    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs").mock(side_effect=lambda req: json_response(list_jobs_body(list(jobs))))
        create = router.post(f"{DLC}/api/v1/jobs").mock(side_effect=create_side_effect)
        router.get(f"{DLC}/api/v1/jobs/dlc-2").mock(return_value=json_response(get_job_body("dlc-2", tags=QUOTE_TAGS)))
        job = await provider.create_job(request(image="img", tags=QUOTE_TAGS))
    assert job.job_id == "dlc-2" and create.call_count == 2 and len(jobs) == 1
    await provider.aclose()


async def test_create_timeout_without_quote_tag_is_reported_not_resent() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    with respx.mock() as router:
        create = router.post(f"{DLC}/api/v1/jobs").mock(side_effect=httpx.ReadTimeout("timed out"))
        with pytest.raises(OutcomeUnknown, match="check list_jobs"):
            await provider.create_job(request(image="img"))
    assert create.call_count == 1
    await provider.aclose()


async def test_create_permission_error_names_action() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    with respx.mock() as router:
        router.post(f"{DLC}/api/v1/jobs").mock(
            return_value=error_response(
                "Forbidden.RAM", "User not authorized to operate on the specified resource.", 403
            )
        )
        with pytest.raises(PermissionDenied, match="paidlc:CreateJob"):
            await provider.create_job(request(image="img"))
    await provider.aclose()


# ----------------------------------------------------------------------------- get/list


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Creating", JobStatus.CREATING),
        ("Queuing", JobStatus.QUEUING),
        ("Bidding", JobStatus.QUEUING),
        ("EnvPreparing", JobStatus.CREATING),
        ("SanityChecking", JobStatus.RUNNING),
        ("Running", JobStatus.RUNNING),
        ("Restarting", JobStatus.RUNNING),
        ("Stopping", JobStatus.STOPPING),
        ("SucceededReserving", JobStatus.SUCCEEDED),
        ("FailedReserving", JobStatus.FAILED),
        ("Succeeded", JobStatus.SUCCEEDED),
        ("Failed", JobStatus.FAILED),
        ("Stopped", JobStatus.STOPPED),
        ("SomethingNew", JobStatus.RUNNING),
    ],
)
def test_status_normalization(raw: str, status: JobStatus) -> None:
    job = job_from(get_job_body(status=raw))
    assert job.status is status and job.raw_status == raw
    assert job.status.is_terminal == (
        raw in ("Succeeded", "Failed", "Stopped", "SucceededReserving", "FailedReserving")
    )


async def test_get_job_maps_pods_times_reason_and_tags() -> None:
    provider, _ = make_provider()
    body = get_job_body(
        "dlc-20210126170216-mtl37ge7gkvdz",
        "Stopped",
        name="tf-mnist-test",
        tags={TAG_CREATED_BY: "1"},
        pods=[pod("dlc-x", 0, "Master", "Succeeded"), pod("dlc-x", 0, "Worker", "Failed")],
        workers=2,
        SubStatus="Restarting",
        ReasonCode="JobStoppedByUser",
        ReasonMessage="Job is stopped by user.",
        Duration=3602,
        GmtCreateTime="2021-01-12T14:35:01Z",
        GmtRunningTime="2021-01-12T14:36:21Z",
        GmtFinishTime="",
        GmtStoppedTime="2021-01-12T15:36:08Z",
    )
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs/dlc-20210126170216-mtl37ge7gkvdz").mock(return_value=json_response(body))
        job = await provider.get_job("dlc-20210126170216-mtl37ge7gkvdz")
    assert query_of(route.calls.last.request) == {"NeedDetail": "true"}
    assert (job.status, job.raw_status, job.sub_status) == (JobStatus.STOPPED, "Stopped", "Restarting")
    assert (job.reason, job.reason_code) == ("Job is stopped by user.", "JobStoppedByUser")
    assert job.created_at == datetime(2021, 1, 12, 14, 35, 1, tzinfo=UTC)
    assert job.started_at == datetime(2021, 1, 12, 14, 36, 21, tzinfo=UTC)
    assert job.finished_at == datetime(2021, 1, 12, 15, 36, 8, tzinfo=UTC)
    assert job.duration_seconds == 3602 and job.worker_count == 2 and job.ecs_spec == "ecs.gn6i-c4g1.xlarge"
    assert [(p.pod_id, p.role, p.status) for p in job.pods] == [
        ("dlc-x-master-0", "Master", "Succeeded"),
        ("dlc-x-worker-0", "Worker", "Failed"),
    ]
    assert job.pods[0].ip == "10.0.0.1" and job.pods[0].started_at == datetime(2024, 1, 1, 0, 1, tzinfo=UTC)
    assert job.tags == {TAG_CREATED_BY: "1"} and job.image == GPU_IMAGE
    await provider.aclose()


async def test_get_job_not_found() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-missing").mock(
            return_value=error_response("JobNotFound", "job dlc-missing not found", 404)
        )
        with pytest.raises(NotFound, match="dlc-missing"):
            await provider.get_job("dlc-missing")
    await provider.aclose()


async def test_list_jobs_pages_start_time_and_order() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    page1 = [job_item(f"dlc-{i:03d}", created=f"2023-12-{1 + i % 28:02d}T00:00:00Z") for i in range(50)]
    page2 = [job_item("dlc-old", created="2023-03-01T00:00:00Z")]
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs").mock(
            side_effect=[json_response(list_jobs_body(page1, 51)), json_response(list_jobs_body(page2, 51))]
        )
        jobs = await provider.list_jobs(limit=200)
    assert len(jobs) == 51 and route.call_count == 2
    assert jobs[-1].job_id == "dlc-old"  # older than 7 days, still found
    assert [j.created_at for j in jobs] == sorted((j.created_at for j in jobs), reverse=True)
    q = query_of(route.calls[0].request)
    assert q["StartTime"] == (NOW - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (q["SortBy"], q["Order"], q["PageSize"], q["WorkspaceId"]) == ("GmtCreateTime", "desc", "50", "268")
    assert jobs[0].worker_count == 1 and jobs[0].max_runtime_minutes == 60
    await provider.aclose()


async def test_list_jobs_status_queries_each_raw_status() -> None:
    provider, _ = make_provider(pai_workspace_id="268")

    def answer(req: httpx.Request) -> httpx.Response:
        raw = query_of(req)["Status"]
        return json_response(list_jobs_body([job_item(f"dlc-{raw}", raw)]))

    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs").mock(side_effect=answer)
        jobs = await provider.list_jobs(status=JobStatus.FAILED)
    assert sorted(query_of(c.request)["Status"] for c in route.calls) == ["Failed", "FailedReserving"]
    assert {j.job_id for j in jobs} == {"dlc-Failed", "dlc-FailedReserving"}
    assert all(j.status is JobStatus.FAILED for j in jobs)
    await provider.aclose()


async def test_list_jobs_tags_are_verified_not_trusted() -> None:
    """Cleanup relies on this: a server that ignores the Tags filter must not leak foreign jobs."""
    provider, _ = make_provider(pai_workspace_id="268")
    mine = {TAG_CREATED_BY: "1"}
    items = [
        job_item("dlc-mine", tags=mine),
        job_item("dlc-foreign", tags={"owner": "someone"}),
        job_item("dlc-unknown", with_settings=False),
        job_item("dlc-mine-too", with_settings=False),
    ]
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs").mock(return_value=json_response(list_jobs_body(items)))
        router.get(f"{DLC}/api/v1/jobs/dlc-unknown").mock(return_value=json_response(get_job_body("dlc-unknown")))
        router.get(f"{DLC}/api/v1/jobs/dlc-mine-too").mock(
            return_value=json_response(get_job_body("dlc-mine-too", tags=mine))
        )
        jobs = await provider.list_jobs(tags=mine)
    assert sorted(j.job_id for j in jobs) == ["dlc-mine", "dlc-mine-too"]
    assert all(j.tags == mine for j in jobs)
    await provider.aclose()


async def test_find_job_by_tag_none() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs").mock(return_value=json_response(list_jobs_body([])))
        assert await provider.find_job_by_tag(TAG_QUOTE_ID, "nope") is None
    await provider.aclose()


async def test_stop_and_delete() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        stop = router.post(f"{DLC}/api/v1/jobs/dlc-1/stop").mock(return_value=json_response({"JobId": "dlc-1"}))
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(return_value=json_response(get_job_body("dlc-1", "Stopping")))
        delete = router.delete(f"{DLC}/api/v1/jobs/dlc-1").mock(
            return_value=json_response({"JobId": "dlc-1", "RequestId": "r"})
        )
        job = await provider.stop_job("dlc-1")
        await provider.delete_job("dlc-1")
    assert job.status is JobStatus.STOPPING
    assert stop.calls.last.request.headers["x-acs-action"] == "StopJob"
    assert delete.calls.last.request.method == "DELETE" and verify_signed(delete.calls.last.request)
    await provider.aclose()


# ------------------------------------------------------------------------- logs and events


async def test_pod_logs_and_job_logs_for_every_pod() -> None:
    provider, _ = make_provider()
    pods = [pod("dlc-1", 0, "Master"), pod("dlc-1", 0, "Worker"), pod("dlc-1", 1, "Worker")]
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(return_value=json_response(get_job_body("dlc-1", pods=pods)))
        route = router.get(url__regex=rf"{DLC}/api/v1/jobs/dlc-1/pods/[^/]+/logs").mock(
            side_effect=lambda req: json_response(
                {"JobId": "dlc-1", "PodId": req.url.path.split("/")[-2], "Logs": ["l1", "l2"], "RequestId": "r"}
            )
        )
        logs = await provider.job_logs("dlc-1", max_lines=2)
        page = await provider.pod_logs("dlc-1", "dlc-1-worker-0", max_lines=5, since=datetime(2023, 12, 1, tzinfo=UTC))
    assert list(logs) == ["dlc-1-master-0", "dlc-1-worker-0", "dlc-1-worker-1"]
    assert all(p.lines == ["l1", "l2"] and p.truncated for p in logs.values())
    assert page.lines == ["l1", "l2"] and not page.truncated
    q = query_of(route.calls.last.request)
    assert q == {"MaxLines": "5", "StartTime": "2023-12-01T00:00:00Z", "DownloadToFile": "false"}
    await provider.aclose()


async def test_events_merge_job_and_pod_events_by_time() -> None:
    provider, _ = make_provider()
    pods = [pod("dlc-1", 0), pod("dlc-1", 1)]
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(return_value=json_response(get_job_body("dlc-1", pods=pods)))
        router.get(f"{DLC}/api/v1/jobs/dlc-1/events").mock(
            return_value=json_response(
                {
                    "JobId": "dlc-1",
                    "RequestId": "r",
                    "Events": ["2021-01-28 14:07:24 Created pod: dlc-1-worker-0", "2021-01-28 14:10:00 Job succeeded"],
                }
            )
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-1/pods/dlc-1-worker-0/events").mock(
            return_value=json_response(
                {"Events": ["2021-01-28 14:08:00 Pulling image", "no time here"], "RequestId": "r"}
            )
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-1/pods/dlc-1-worker-1/events").mock(
            return_value=error_response("PodNotFound", "pod gone", 404)
        )
        events = await provider.events("dlc-1")
        one_pod = await provider.events("dlc-1", "dlc-1-worker-0")
    assert [(e.source, e.message) for e in events] == [
        ("dlc-1", "Created pod: dlc-1-worker-0"),
        ("dlc-1-worker-0", "Pulling image"),
        ("dlc-1", "Job succeeded"),
        ("dlc-1-worker-0", "no time here"),
    ]
    assert events[0].time == datetime(2021, 1, 28, 14, 7, 24, tzinfo=UTC) and events[-1].time is None
    assert [e.message for e in one_pod] == ["Pulling image", "no time here"]
    await provider.aclose()


async def test_events_error_is_raised_plainly_not_as_group() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(return_value=json_response(get_job_body("dlc-1")))
        router.get(f"{DLC}/api/v1/jobs/dlc-1/events").mock(return_value=error_response("Forbidden.RAM", "no", 403))
        router.get(url__regex=rf"{DLC}/api/v1/jobs/dlc-1/pods/.*/events").mock(
            return_value=json_response({"Events": [], "RequestId": "r"})
        )
        with pytest.raises(PermissionDenied, match="paidlc:GetJobEvents"):
            await provider.events("dlc-1")
    await provider.aclose()


# ------------------------------------------------------------------------------- validate


CPU_SPEC = Spec(instance_type="ecs.c6.large", accelerator="CPU", cpu=2, memory_gb=4)


@pytest.mark.parametrize(
    ("overrides", "spec", "message"),
    [
        ({"job_type": "OneFlowJob"}, CPU_SPEC, "job_type"),
        ({"worker_count": 0}, CPU_SPEC, "worker_count"),
        ({"user_command": "   "}, CPU_SPEC, "user_command"),
        ({"display_name": "has spaces"}, CPU_SPEC, "display_name"),
        ({"max_runtime_minutes": 0}, CPU_SPEC, "max_runtime_minutes"),
        ({"ecs_spec": "ecs.g7.large"}, CPU_SPEC, "does not match"),
        ({}, CPU_SPEC.model_copy(update={"available": False}), "not available"),
        ({"image": "bad image"}, CPU_SPEC, "image"),
    ],
)
def test_validate_request_errors(overrides: dict[str, Any], spec: Spec, message: str) -> None:
    provider, _ = make_provider()
    with pytest.raises(InvalidRequest, match=message):
        provider.validate_request(request(**{"ecs_spec": "ecs.c6.large", **overrides}), spec)


def test_validate_request_accepts_a_good_request() -> None:
    provider, _ = make_provider()
    provider.validate_request(request(ecs_spec="ecs.c6.large", job_type="RayJob", worker_count=2), CPU_SPEC)


async def test_validate_rejects_spec_not_in_list_ecs_specs() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/ecsspecs").mock(
            return_value=json_response({"RequestId": "r", "TotalCount": 1, "EcsSpecs": [ecs_spec("ecs.c6.xlarge")]})
        )
        await provider.list_specs()
    with pytest.raises(InvalidRequest, match="not offered by PAI-DLC"):
        provider.validate_request(request(ecs_spec="ecs.c6.large"), CPU_SPEC)
    await provider.aclose()


async def test_aclose_closes_only_an_owned_client() -> None:
    provider, _ = make_provider()
    await provider.aclose()
    assert provider._client.is_closed
    shared = httpx.AsyncClient()
    borrowed = PaiProvider(provider.settings, client=shared, env={})
    await borrowed.aclose()
    assert not shared.is_closed
    await shared.aclose()


async def test_create_provider_from_env_settings_uses_endpoint_overrides() -> None:
    from cloudjobs_mcp.server.config import Settings
    from cloudjobs_mcp.server.providers import create_provider

    env = {
        "CLOUDJOBS_PROVIDER": "pai",
        "CLOUDJOBS_REGION": "cn-shanghai",
        "CLOUDJOBS_PAI_NETWORK": "vpc",
        "CLOUDJOBS_PAI_ENDPOINT_DLC": "http://127.0.0.1:9000",
    }
    provider = create_provider("pai", Settings.from_env(env))
    assert isinstance(provider, PaiProvider)
    async with provider:
        assert provider.api.endpoints["dlc"].base_url == "http://127.0.0.1:9000"
        assert provider.api.endpoints["aiworkspace"].host == "aiworkspace-vpc.cn-shanghai.aliyuncs.com"
        assert provider.api.endpoints["ecs"].host == "ecs-vpc.cn-shanghai.aliyuncs.com"
    assert provider._client.is_closed
