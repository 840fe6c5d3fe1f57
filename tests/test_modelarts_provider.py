"""The modelarts provider against respx, with bodies shaped as the reference documents them: what goes on the
wire (paths, queries, bodies, signed headers) and what comes back (statuses, errors, retries, idempotency)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from cloudjobs_mcp.server.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ProviderError,
)
from cloudjobs_mcp.server.models import JobRequest, JobStatus
from cloudjobs_mcp.server.providers.base import TAG_CREATED_BY, TAG_OWNER, TAG_QUOTE_ID
from cloudjobs_mcp.server.providers.modelarts import provider as ma
from tests.modelarts_fixtures import (
    BSS,
    ENGINES,
    FLAVORS,
    IAM,
    JOB_ID,
    POOL,
    V2,
    fail,
    job,
    make_provider,
    ok,
    search,
)

pytestmark = pytest.mark.anyio
QUOTE = "q-0123456789abcdef"


def request(**kw: Any) -> JobRequest:
    values: dict[str, Any] = {
        "display_name": "train",
        "user_command": "python train.py",
        "job_type": "PyTorchJob",
        "ecs_spec": "modelarts.vm.cpu.2u",
        "worker_count": 1,
        "max_runtime_minutes": 61,
        "image": "org/train:1.0",
        "tags": {TAG_CREATED_BY: "true", TAG_QUOTE_ID: QUOTE, TAG_OWNER: "alice@example.com"},
        "hyperparameters": {"lr": "0.1"},
    }
    values.update(kw)
    return JobRequest(**values)


def body_of(call: Any) -> dict[str, Any]:
    return json.loads(call.request.content)


async def test_specs_map_cpu_gpu_and_ascend_flavors() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        route = mock.get(f"{V2}/training-job-flavors").mock(return_value=ok(FLAVORS))
        specs = {s.instance_type: s for s in await provider.list_specs()}
        gpus = await provider.list_specs("GPU")
    cpu, v100, npu = (
        specs["modelarts.vm.cpu.2u"],
        specs["modelarts.p3.large.public"],
        specs["modelarts.bm.npu.arm.910b.8"],
    )
    assert (cpu.accelerator, cpu.cpu, cpu.memory_gb, cpu.gpu_count) == ("CPU", 2, 8.0, 0)
    assert (v100.accelerator, v100.gpu_count, v100.gpu_type, v100.gpu_memory_gb) == ("GPU", 1, "NVIDIA-V100", 32.0)
    assert (npu.gpu_count, npu.gpu_type, npu.cpu) == (8, "Ascend Ascend-snt9b", 192)  # npu.unit_num is a string
    assert [s.instance_type for s in gpus] == ["modelarts.p3.large.public", "modelarts.bm.npu.arm.910b.8"]
    headers = route.calls[0].request.headers
    assert headers["X-Project-Id"] == "0123456789abcdef0123456789abcdef"
    assert headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=HPUATESTAK0000000001, SignedHeaders=host;")
    await provider.aclose()


async def test_resolve_image_picks_the_newest_engine_with_an_image_for_the_chip() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        mock.get(f"{V2}/training-job-engines").mock(return_value=ok(ENGINES))
        gpu = await provider.resolve_image("PyTorchJob", "GPU")
        cpu = await provider.resolve_image("PyTorchJob", "CPU")  # pytorch 2.1 has no CPU image here
        tf = await provider.resolve_image("TFJob", "CPU")
    assert gpu.uri == "atelier/pytorch_2_1_cuda_12_1:train"
    assert cpu.uri == "aip/pytorch_1_8:train"
    assert tf.uri == "aip/tensorflow_2_1:train"
    await provider.aclose()


async def test_price_from_bss_is_cached_and_a_denied_account_falls_back_to_the_price_table(tmp_path: Path) -> None:
    provider, _ = make_provider(env={"HUAWEICLOUD_SDK_DOMAIN_ID": "dom-1"})
    rating = {
        "amount": 3.2,
        "discount_amount": 0.3,
        "official_website_amount": 3.5,
        "measure_id": 1,
        "currency": "CNY",
        "product_rating_results": [{"id": "1", "product_id": "p", "amount": 3.2, "official_website_amount": 3.5}],
    }
    with respx.mock() as mock:
        mock.get(f"{V2}/training-job-flavors").mock(return_value=ok(FLAVORS))
        bss = mock.post(f"{BSS}/v2/bills/ratings/on-demand-resources").mock(return_value=ok(rating))
        price = await provider.price("modelarts.vm.cpu.2u")
        again = await provider.price("modelarts.vm.cpu.2u")
    assert (price.per_worker_hourly, price.currency) == (3.2, "CNY") and again == price
    assert bss.call_count == 1
    sent = bss.calls[0].request
    assert sent.headers["X-Domain-Id"] == "dom-1" and "x-project-id" not in sent.headers
    info = body_of(bss.calls[0])["product_infos"][0]
    assert (info["resource_spec"], info["usage_measure_id"], info["cloud_service_type"]) == (
        "modelarts.vm.cpu.2u",
        4,
        "hws.service.type.modelarts",
    )
    await provider.aclose()

    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"modelarts": {"modelarts.p3.large.public": {"per_hour": 30.0, "currency": "CNY"}}}))
    provider, _ = make_provider(env={"HUAWEICLOUD_SDK_DOMAIN_ID": "dom-1"}, price_table=table)
    with respx.mock() as mock:
        mock.get(f"{V2}/training-job-flavors").mock(return_value=ok(FLAVORS))
        denied = mock.post(f"{BSS}/v2/bills/ratings/on-demand-resources").mock(
            return_value=fail(403, "CBC.0151", "Access denied.")
        )
        listed = await provider.price("modelarts.p3.large.public")
        unknown = await provider.price("modelarts.vm.cpu.2u")
    assert denied.call_count == 1  # a denied account is not asked again
    assert (listed.per_worker_hourly, listed.currency) == (30.0, "CNY")
    assert unknown.per_worker_hourly is None and "CLOUDJOBS_PRICE_TABLE" in unknown.source
    await provider.aclose()


async def test_domain_id_from_iam_for_bss() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        mock.get(f"{IAM}/v3/auth/domains").mock(return_value=ok({"domains": [{"id": "dom-from-iam", "name": "acct"}]}))
        assert await provider.api.domain_id() == "dom-from-iam"
    await provider.aclose()


async def test_create_sends_the_documented_body_with_auto_stop_in_whole_hours() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        mock.post(f"{V2}/training-job-searches").mock(return_value=ok(search([])))
        described = f"cloudjobs-mcp quote {QUOTE} max_hours 2 owner alice%40example.com"
        create = mock.post(f"{V2}/training-jobs").mock(
            return_value=ok(job(phase="Creating", description=described), 201)
        )
        created = await provider.create_job(request(display_name="my.run", envs={"SEED": "1"}))
    body = body_of(create.calls[0])
    assert body["kind"] == "job"
    assert body["metadata"] == {
        "name": f"my-run-{QUOTE}",
        "workspace_id": "0",
        "description": f"cloudjobs-mcp quote {QUOTE} max_hours 2 owner alice%40example.com",
    }
    assert body["spec"] == {
        "resource": {"flavor_id": "modelarts.vm.cpu.2u", "node_count": 1},
        "auto_stop": {"time_unit": "HOURS", "duration": 2},  # 61 minutes → 2 hours, never earlier
    }
    assert body["algorithm"]["command"] == "python train.py"
    assert body["algorithm"]["engine"] == {"image_url": "org/train:1.0"}
    assert body["algorithm"]["environments"]["SEED"] == "1" and body["algorithm"]["environments"]["HP_LR"] == "0.1"
    assert create.calls[0].request.headers["Content-Type"] == "application/json;charset=utf-8"
    assert (created.job_id, created.status, created.raw_status) == (JOB_ID, JobStatus.CREATING, "Creating")
    assert created.tags == {TAG_CREATED_BY: "true", TAG_QUOTE_ID: QUOTE, TAG_OWNER: "alice@example.com"}
    assert created.name == "train"
    assert created.hyperparameters == {"lr": "0.1"} and created.max_runtime_minutes == 120
    await provider.aclose()


async def test_a_lost_create_response_finds_the_job_by_name_and_never_creates_a_second() -> None:
    provider, sleeps = make_provider()
    name = f"train-{QUOTE}"
    with respx.mock() as mock:
        searches = mock.post(f"{V2}/training-job-searches").mock(
            side_effect=[ok(search([])), ok(search([])), ok(search([job(name)]))]
        )
        create = mock.post(f"{V2}/training-jobs").mock(side_effect=httpx.ReadTimeout("lost"))
        found = await provider.create_job(request())
    assert create.call_count == 1  # not resent
    assert found.job_id == JOB_ID and found.tags[TAG_QUOTE_ID] == QUOTE
    looked = [body_of(c)["filters"] for c in searches.calls]
    assert looked[0] == [{"key": "name", "operator": "like", "value": [f"-{QUOTE}"]}]
    assert looked[1] == [{"key": "name", "operator": "like", "value": [name]}]
    assert sleeps == [1.0]  # the search is eventually consistent: looked again after a pause
    await provider.aclose()


async def test_a_duplicate_name_answer_adopts_the_existing_job() -> None:
    provider, _ = make_provider()
    name = f"train-{QUOTE}"
    with respx.mock() as mock:
        mock.post(f"{V2}/training-job-searches").mock(side_effect=[ok(search([])), ok(search([job(name)]))])
        create = mock.post(f"{V2}/training-jobs").mock(
            return_value=fail(400, "ModelArts.2751", "Duplicate training job name.")
        )
        found = await provider.create_job(request())
    assert create.call_count == 1 and found.job_id == JOB_ID
    await provider.aclose()


async def test_an_existing_job_for_the_quote_is_returned_without_a_create() -> None:
    provider, _ = make_provider()
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{V2}/training-job-searches").mock(return_value=ok(search([job(f"train-{QUOTE}")])))
        create = mock.post(f"{V2}/training-jobs")
        found = await provider.create_job(request())
    assert not create.called and found.job_id == JOB_ID
    await provider.aclose()


async def test_search_reads_every_page_with_offset_as_a_page_index() -> None:
    provider, _ = make_provider()
    pages = [
        [job(f"a-{i}", "Completed", job_id=f"id-{p}-{i}", description="") for i in range(50)] for p in range(2)
    ] + [[job("last", "Completed", job_id="id-last", description="")]]
    with respx.mock() as mock:
        route = mock.post(f"{V2}/training-job-searches").mock(
            side_effect=[ok(search(items, total=101, offset=i)) for i, items in enumerate(pages)]
        )
        jobs = await provider.list_jobs(status=JobStatus.SUCCEEDED, limit=500)
    assert len(jobs) == 101
    sent = [body_of(c) for c in route.calls]
    assert [b["offset"] for b in sent] == [0, 1, 2] and {b["limit"] for b in sent} == {50}
    assert sent[0]["filters"] == [{"key": "phase", "operator": "in", "value": ["Completed"]}]
    await provider.aclose()


async def test_statuses_are_mapped_and_the_raw_one_kept() -> None:
    expected = {
        "Creating": JobStatus.CREATING,
        "Pending": JobStatus.QUEUING,
        "Running": JobStatus.RUNNING,
        "Completed": JobStatus.SUCCEEDED,
        "Failed": JobStatus.FAILED,
        "Abnormal": JobStatus.FAILED,
        "Terminating": JobStatus.STOPPING,
        "Terminated": JobStatus.STOPPED,
    }
    for raw, status in expected.items():
        mapped = ma.job_from(job(phase=raw))
        assert (mapped.status, mapped.raw_status) == (status, raw)
    failed = ma.job_from(job(phase="Failed", exit_code=1, tasks=("worker-0", "worker-1")))
    assert failed.reason == "exit with 1" and [p.exit_code for p in failed.pods] == [1, 1]
    assert failed.finished_at is not None and failed.duration_seconds == 90.0


async def test_not_found_comes_back_as_400_2775() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        mock.get(f"{V2}/training-jobs/{JOB_ID}").mock(
            return_value=fail(400, "ModelArts.2775", "Training job not found.", error_solution="Check the job id.")
        )
        with pytest.raises(NotFound, match=r"ModelArts\.2775"):
            await provider.get_job(JOB_ID)
    await provider.aclose()


async def test_stop_uses_the_terminate_action_and_2796_means_already_finished() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        action = mock.post(f"{V2}/training-jobs/{JOB_ID}/actions").mock(
            side_effect=[ok(job(phase="Terminating"), 202), fail(409, "ModelArts.2796", "Not allowed to terminate.")]
        )
        mock.get(f"{V2}/training-jobs/{JOB_ID}").mock(return_value=ok(job(phase="Terminated")))
        stopping = await provider.stop_job(JOB_ID)
        stopped = await provider.stop_job(JOB_ID)
    assert body_of(action.calls[0]) == {"action_type": "terminate"}
    assert stopping.status == JobStatus.STOPPING and stopped.status == JobStatus.STOPPED
    await provider.aclose()


async def test_delete_accepts_202_with_an_empty_body() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        route = mock.delete(f"{V2}/training-jobs/{JOB_ID}").mock(return_value=httpx.Response(202, content=b""))
        await provider.delete_job(JOB_ID)
    assert route.called
    await provider.aclose()


async def test_an_authentication_failure_is_never_retried() -> None:
    provider, sleeps = make_provider()
    with respx.mock() as mock:
        route = mock.get(f"{V2}/training-jobs/{JOB_ID}").mock(
            return_value=fail(401, "APIG.0301", "Incorrect IAM authentication information: verify aksk signature fail")
        )
        with pytest.raises(AuthenticationError) as caught:
            await provider.get_job(JOB_ID)
    assert route.call_count == 1 and sleeps == []
    assert "five failed signatures in a row lock" in str(caught.value)
    assert "TestSecretKey" not in str(caught.value)
    await provider.aclose()


async def test_throttling_and_5xx_are_retried_in_the_shared_loop() -> None:
    provider, sleeps = make_provider()
    with respx.mock() as mock:
        route = mock.get(f"{V2}/training-jobs/{JOB_ID}").mock(
            side_effect=[
                fail(429, "APIG.0308", "The throttling threshold has been reached"),
                fail(503, "ModelArts.0010", "Internal error."),
                ok(job()),
            ]
        )
        found = await provider.get_job(JOB_ID)
    assert route.call_count == 3 and found.job_id == JOB_ID
    assert sleeps[0] == 3.5  # APIG.0308: 2-5 s, jittered (rand 0.5)
    await provider.aclose()


async def test_the_one_time_authorisation_error_explains_the_step() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        mock.post(f"{V2}/training-job-searches").mock(return_value=ok(search([])))
        mock.post(f"{V2}/training-jobs").mock(
            return_value=fail(403, "ModelArts.2785", "Go to Settings to authorize ModelArts.")
        )
        with pytest.raises(PermissionDenied, match="one-time step") as caught:
            await provider.create_job(request())
    assert "Add Authorization" in str(caught.value)
    await provider.aclose()


async def test_logs_from_the_preview_and_a_204_while_none_exists() -> None:
    provider, _ = make_provider()
    url = f"{V2}/training-jobs/{JOB_ID}/tasks/worker-0/logs/preview"
    with respx.mock() as mock:
        mock.get(url).mock(
            side_effect=[
                httpx.Response(204),
                ok({"content": "a\nb\nc\n", "current_size": 6, "full_size": 6000000}),
            ]
        )
        empty = await provider.pod_logs(JOB_ID, "worker-0")
        page = await provider.pod_logs(JOB_ID, "worker-0", max_lines=2)
    assert empty.lines == []
    assert page.lines == ["b", "c"] and page.truncated
    with pytest.raises(InvalidRequest, match="no per-line times"):
        from datetime import UTC, datetime

        await provider.pod_logs(JOB_ID, "worker-0", since=datetime(2026, 1, 1, tzinfo=UTC))
    await provider.aclose()


async def test_events_read_every_page_and_name_their_task() -> None:
    provider, _ = make_provider()
    first = [
        {"time": "2026-01-02T11:00:00+08:00", "level": "Info", "message": f"event {i}", "source": "Job"}
        for i in range(100)
    ]
    second = [
        {
            "time": "2026-01-02T11:05:00+08:00",
            "level": "Error",
            "message": f"[Pod: modelarts-job-{JOB_ID}-worker-1] Failed to pull image",
            "source": "K8S",
        }
    ]
    with respx.mock() as mock:
        route = mock.get(f"{V2}/training-jobs/{JOB_ID}/events").mock(
            side_effect=[ok({"total": 101, "events": first}), ok({"total": 101, "events": second})]
        )
        events = await provider.events(JOB_ID)
    assert len(events) == 101
    assert events[-1].source == "worker-1" and events[-1].message.startswith("Error: [Pod:")
    assert [dict(c.request.url.params) for c in route.calls][1] == {"limit": "100", "offset": "100", "order": "asc"}
    await provider.aclose()


# --------------------------------------------------------------------------------------------- pools

SEED_EXAMPLE = {
    "kind": "WorkloadList",
    "apiVersion": "v1",
    "metadata": {},
    "items": [
        {
            "kind": "Workload",
            "apiVersion": "v1",
            "uid": "6715ceb5-df65-456f-b185-07e047c9745c",
            "jobUUID": "c237e9e1-50e7-4c4d-97ba-f4a5e0f62f70",
            "name": "modelarts-job-c237e9e1-50e7-4c4d-97ba-f4a5e0f62f70",
            "jobName": "autotest_b82d17",
            "type": "train",
            "namespace": "pool-train-dev-cpu-public-fab2c5cf438b4f0c851fdcdf08704898",
            "status": "Queue",
            "resourceRequirement": {"cpu": "1 Cores", "memory": "6.52 GiB"},
            "priority": "0",
            "createTime": 1727254947000,
            "pendingDuration": 1918236,
            "pendingPosition": -1,
            "gvk": "batch.volcano.sh/v1alpha1, Kind=Job",
            "isDeleted": "false",
        }
    ],
    "total": 234,
}
SDK_SHAPE = {
    "apiVersion": "v1",
    "kind": "WorkloadList",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Workload",
            "type": "train",
            "namespace": "pool-x",
            "name": f"modelarts-job-{JOB_ID}",
            "jobName": "mine",
            "uid": "u",
            "jobUUID": JOB_ID,
            "flavor": "modelarts.pool.visual.xlarge",
            "status": "Queue",
            "userName": "alice",
            "priority": "2",
            "runningDuration": 0,
            "pendingDuration": 42,
            "pendingPosition": 3,
            "createTime": 1727254947000,
            "hostIps": "192.168.0.3,192.168.0.12",
            "resourceRequirement": [{"cpu": "8 Cores"}, {"memory": "32 GiB", "nvidia.com/gpu": "1"}],
            "nodes": [{"hostIp": "192.168.0.3", "npuTopologyPlacement": "0000000000000011", "resourceRequirement": {}}],
        }
    ],
}


async def test_pool_workloads_parse_the_seed_example_and_the_sdk_shape_with_repeated_type_keys() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        route = mock.get(f"{V2}/pools/{POOL}/workloads").mock(side_effect=[ok(SEED_EXAMPLE), ok(SDK_SHAPE)])
        seed = await provider.list_pool_workloads(
            POOL, types=["train", "infer"], sort="create_time", order="desc", limit=10, offset=0
        )
        sdk = await provider.list_pool_workloads(POOL)
    assert str(route.calls[0].request.url).endswith(
        f"/pools/{POOL}/workloads?ascend=false&limit=10&offset=0&sort=create_time&type=infer&type=train"
    )
    first = seed.workloads[0]
    assert (seed.total, first.job_id, first.status, first.queue_position, first.priority) == (
        234,
        "c237e9e1-50e7-4c4d-97ba-f4a5e0f62f70",
        "Queue",
        None,  # -1: not applicable
        0,
    )
    assert first.pending_seconds == 1918236 and first.resources == {"cpu": "1 Cores", "memory": "6.52 GiB"}
    mine = sdk.workloads[0]
    assert (sdk.total, mine.queue_position, mine.user_name, mine.host_ips) == (
        None,
        3,
        "alice",
        ["192.168.0.3", "192.168.0.12"],
    )
    assert mine.resources == {"cpu": "8 Cores", "memory": "32 GiB", "nvidia.com/gpu": "1"}
    await provider.aclose()


async def test_bad_pool_names_and_unknown_pools_give_clear_errors() -> None:
    provider, _ = make_provider()
    for bad in ("", "Pool_With_Caps", "a/b", "x" * 70, "9starts-with-digit"):
        with pytest.raises(InvalidRequest, match="list_pools shows them"):
            await provider.list_pool_workloads(bad)
    with pytest.raises(InvalidRequest, match="not a workload type"):
        await provider.list_pool_workloads(POOL, types=["training"])
    with pytest.raises(InvalidRequest, match="order needs sort"):
        await provider.list_pool_workloads(POOL, order="asc")
    with respx.mock() as mock:
        mock.get(f"{V2}/pools/pool-missing-000/workloads").mock(
            return_value=fail(404, "ModelArts.50015001", "Pool pool-missing-000 not found.")
        )
        with pytest.raises(NotFound, match=r"no resource pool 'pool-missing-000'.*list_pools"):
            await provider.list_pool_workloads("pool-missing-000")
    await provider.aclose()


async def test_workload_info_of_a_job_on_a_dedicated_pool_shows_its_queue_position() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        mock.get(f"{V2}/training-jobs/{JOB_ID}").mock(return_value=ok(job(phase="Pending", pool=POOL)))
        mock.get(f"{V2}/pools/{POOL}/workloads").mock(return_value=ok(SDK_SHAPE))
        info = await provider.workload_info(JOB_ID)
    assert (info.in_quota, info.quota_id, info.queue_position, info.priority, info.pending_seconds) == (
        True,
        POOL,
        3,
        2,
        42.0,
    )
    assert info.is_scheduled is False and "position 3" in info.note
    await provider.aclose()


async def test_validation_refuses_what_modelarts_cannot_run() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        mock.get(f"{V2}/training-job-flavors").mock(return_value=ok(FLAVORS))
        specs = {s.instance_type: s for s in await provider.list_specs()}
    single = specs["modelarts.vm.cpu.2u"]
    with pytest.raises(InvalidRequest, match="at most 1 node"):
        provider.validate_request(request(worker_count=2), single)
    with pytest.raises(InvalidRequest, match="spot"):
        provider.validate_request(request(spot=True), single)
    with pytest.raises(InvalidRequest, match="dedicated pool"):
        provider.validate_request(request(priority=2), single)
    with pytest.raises(InvalidRequest, match="not a ModelArts pool id"):
        provider.validate_request(request(resource_id="Bad Pool"), single)
    provider.validate_request(request(resource_id=POOL, priority=3), single)
    await provider.aclose()


def test_job_names_carry_the_quote_within_64_characters() -> None:
    assert ma.job_name("my.run v2", QUOTE) == f"my-run-v2-{QUOTE}"
    long = ma.job_name("x" * 100, QUOTE)
    assert len(long) == 64 and long.endswith(QUOTE)
    assert ma.ModelArtsProvider.max_hours(1) == 1 and ma.ModelArtsProvider.max_hours(60) == 1
    assert ma.ModelArtsProvider.max_hours(60.5) == 2


async def test_errors_of_other_shapes_are_read_too() -> None:
    provider, _ = make_provider()
    with respx.mock() as mock:
        mock.get(f"{V2}/training-jobs/{JOB_ID}").mock(
            return_value=httpx.Response(400, json={"errorCode": "ModelArts.2787", "errorMsg": "Bad body"})
        )
        with pytest.raises(
            ProviderError, match=r"ModelArts ShowTrainingJobDetails failed \(ModelArts.2787\): Bad body"
        ):
            await provider.get_job(JOB_ID)
    await provider.aclose()
