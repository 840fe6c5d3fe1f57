"""PaiProvider observability (metrics, sanity checks, workload info, error info) and ``train…`` jobs
against respx-mocked PAI-DLC / PaiStudio, bodies shaped as the official SDK models define them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from pai_fixtures import (
    DLC,
    GPU_IMAGE,
    NOW,
    QUOTA_ID,
    QUOTE_TAGS,
    STUDIO,
    TRAIN_ID,
    body_of,
    error_info_body,
    error_response,
    get_job_body,
    instance_metrics_body,
    job_metrics_body,
    json_response,
    make_provider,
    pod,
    query_of,
    queue_info,
    quota_workloads_body,
    sanity_item,
    sanity_results_body,
    studio_page,
    training_instance,
    training_job_body,
    verify_signed,
)

from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.models import JobRequest, JobStatus, MetricPoint, QueueMeta, SanityCheckResult, Spec
from cloudjobs_mcp.server.providers.base import TAG_CREATED_BY
from cloudjobs_mcp.server.providers.pai import endpoints, studio
from cloudjobs_mcp.server.providers.pai import provider as pai_provider
from cloudjobs_mcp.server.providers.pai.provider import parse_event

pytestmark = pytest.mark.anyio

T0 = datetime(2023, 12, 31, 23, 0, tzinfo=UTC)  # an hour before NOW
GPU_SPEC = Spec(instance_type="ecs.gn6i-c4g1.xlarge", accelerator="GPU", cpu=4, memory_gb=15, gpu_count=1)


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
        "max_runtime_minutes": 30,
        "image": "img:1",
    }
    values.update(overrides)
    return JobRequest(**values)


def studio_signed(req: httpx.Request, action: str) -> bool:
    return (
        req.headers["host"] == "pai.cn-hangzhou.data.aliyun.com"
        and req.headers["x-acs-action"] == action
        and req.headers["x-acs-version"] == "2022-01-12"
        and verify_signed(req)
    )


# ------------------------------------------------------------------------------- metrics


async def test_dlc_metrics_per_pod_epoch_ms_and_query() -> None:
    provider, _ = make_provider()
    series = {
        "dlc-1-worker-0": [(T0 + timedelta(minutes=5 * i), 40.0 + i) for i in range(3)],
        "dlc-1-worker-1": [(T0, 0.5)],
    }
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs/dlc-1/metrics").mock(
            return_value=json_response(job_metrics_body("dlc-1", series))
        )
        result = await provider.metrics("dlc-1", "gpu_core", since=T0)
    sent = route.calls.last.request
    assert query_of(sent) == {
        "MetricType": "GpuCoreUsage",
        "StartTime": "2023-12-31T23:00:00Z",
        "EndTime": "2024-01-01T00:00:00Z",
        "TimeStep": "5m",  # GetJobMetrics' default, sent explicitly
    }
    assert sent.headers["x-acs-action"] == "GetJobMetrics" and verify_signed(sent)
    assert [(s.pod_id, s.metric, s.unit) for s in result] == [
        ("dlc-1-worker-0", "gpu_core", "%"),
        ("dlc-1-worker-1", "gpu_core", "%"),
    ]
    assert result[0].points[0] == MetricPoint(time=T0, value=40.0)
    assert [p.value for p in result[0].points] == [40.0, 41.0, 42.0]
    await provider.aclose()


@pytest.mark.parametrize(
    ("metric", "metric_type"),
    [
        ("cpu", "CpuCoreUsage"),
        ("memory", "MemoryUsage"),
        ("gpu_core", "GpuCoreUsage"),
        ("gpu_memory", "GpuMemoryUsage"),
    ],
)
async def test_metric_kinds_map_to_metric_types(metric: str, metric_type: str) -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs/dlc-1/metrics").mock(
            return_value=json_response(job_metrics_body("dlc-1", {}))
        )
        assert await provider.metrics("dlc-1", metric, since=T0) == []  # type: ignore[arg-type]
    assert query_of(route.calls.last.request)["MetricType"] == metric_type
    await provider.aclose()


async def test_metrics_step_raised_for_long_windows_and_series_downsampled() -> None:
    provider, _ = make_provider()
    week = NOW - timedelta(days=7)
    points = [(week + timedelta(seconds=300 * i), float(i % 10)) for i in range(2016)] + [(NOW, 99.0)]
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs/dlc-1/metrics").mock(
            return_value=json_response(job_metrics_body("dlc-1", {"dlc-1-worker-0": points}))
        )
        (series,) = await provider.metrics("dlc-1", "cpu", since=week, step_seconds=10)
    # 7 days in at most 500 points: 10 s is raised to ceil(604800 / 500) = 1210 s → whole minutes.
    assert query_of(route.calls.last.request)["TimeStep"] == "21m"
    assert len(series.points) == studio.MAX_SERIES_POINTS
    assert series.points[-1] == MetricPoint(time=NOW, value=99.0)  # the latest is kept as it is
    assert [p.time for p in series.points] == sorted(p.time for p in series.points)
    mean_all = sum(v for _, v in points[:-1]) / len(points[:-1])
    mean_down = sum(p.value for p in series.points[:-1]) / len(series.points[:-1])
    assert abs(mean_all - mean_down) < 0.1
    await provider.aclose()


def test_time_steps_and_downsample_bounds() -> None:
    hour = (T0, NOW)
    assert studio.dlc_time_step(None, *hour) == "5m"
    assert studio.dlc_time_step(60, *hour) == "1m"
    assert studio.dlc_time_step(30, *hour) == "30s"
    assert studio.dlc_time_step(7200, *hour) == "2h"
    assert studio.studio_time_step(None, *hour) == "5m"
    assert studio.studio_time_step(10, *hour) == "10s"
    assert studio.studio_time_step(60, *hour) == "5m"  # 10s, 5m, 30m, 1h only
    assert studio.studio_time_step(10, NOW - timedelta(days=30), NOW) == "1h"
    few = [MetricPoint(time=T0 + timedelta(seconds=i), value=i) for i in range(3)]
    assert studio.downsample(list(reversed(few))) == few


async def test_metrics_window_is_the_jobs_run_when_no_since() -> None:
    provider, _ = make_provider()
    finished = get_job_body(
        "dlc-1", "Succeeded", GmtRunningTime="2023-12-30T10:00:00Z", GmtFinishTime="2023-12-30T12:00:00Z"
    )
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(return_value=json_response(finished))
        route = router.get(f"{DLC}/api/v1/jobs/dlc-1/metrics").mock(
            return_value=json_response(job_metrics_body("dlc-1", {}))
        )
        await provider.metrics("dlc-1", "memory")
        router.get(f"{DLC}/api/v1/jobs/dlc-2").mock(
            return_value=json_response(get_job_body("dlc-2", "Queuing", GmtRunningTime="", pods=[]))
        )
        assert await provider.metrics("dlc-2", "memory") == []  # never ran: no GetJobMetrics call
    q = query_of(route.calls.last.request)
    assert (q["StartTime"], q["EndTime"]) == ("2023-12-30T10:00:00Z", "2023-12-30T12:01:00Z")
    assert route.call_count == 1
    await provider.aclose()


async def test_metrics_rejects_unknown_metric_bad_step_and_bad_id() -> None:
    provider, _ = make_provider()
    with pytest.raises(InvalidRequest, match=r"Unknown metric 'disk'.*cpu, memory, gpu_core, gpu_memory"):
        await provider.metrics("dlc-1", "disk", since=T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="step"):
        await provider.metrics("dlc-1", "cpu", since=T0, step_seconds=0)
    for bad in ("", "  ", "dlc-1/../x"):
        with pytest.raises(InvalidRequest, match="not a PAI job id"):
            await provider.metrics(bad, "cpu", since=T0)
    await provider.aclose()


async def test_training_job_metrics_on_paistudio() -> None:
    provider, _ = make_provider()
    body = instance_metrics_body(
        {
            f"{TRAIN_ID}-worker-0": [("2023-12-31T23:05:00Z", 12.5), ("2023-12-31T23:10:00Z", 80.0)],
            f"{TRAIN_ID}-worker-1": [("2023-12-31T23:05:00.000Z", 0.0)],
        }
    )
    since = T0 + timedelta(seconds=42)
    with respx.mock() as router:
        route = router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/instancemetrics").mock(
            return_value=json_response(body)
        )
        result = await provider.metrics(TRAIN_ID, "gpu_memory", since=since, step_seconds=60)
    sent = route.calls.last.request
    assert studio_signed(sent, "ListTrainingJobInstanceMetrics")
    assert query_of(sent) == {
        "MetricType": "GpuMemoryUsage",
        "StartTime": "2023-12-31T23:00Z",  # yyyy-MM-ddTHH:mmZ, rounded down
        "EndTime": "2024-01-01T00:00Z",
        "TimeStep": "5m",
    }
    assert [s.pod_id for s in result] == [f"{TRAIN_ID}-worker-0", f"{TRAIN_ID}-worker-1"]
    assert result[0].points[-1] == MetricPoint(time=datetime(2023, 12, 31, 23, 10, tzinfo=UTC), value=80.0)
    assert result[1].points[0].time == datetime(2023, 12, 31, 23, 5, tzinfo=UTC)
    await provider.aclose()


# ------------------------------------------------------------------------- sanity checks


async def test_sanity_checks_flatten_the_list_of_lists() -> None:
    provider, _ = make_provider()
    runs = [
        [sanity_item(2, "CheckInit", minute=10), sanity_item(2, "DeviceCheck", "Failed", "GPU 0: ECC error", 11)],
        [sanity_item(1, "CheckInit", minute=0), sanity_item(1, "DeviceCheck", minute=1)],
    ]
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs/dlc-1/sanitycheckresults").mock(
            return_value=json_response(sanity_results_body(runs))
        )
        results = await provider.sanity_checks("dlc-1")
        route.mock(return_value=json_response({"RequestID": "r", "TotalCount": 0, "SanityCheckResults": []}))
        assert await provider.sanity_checks("dlc-1") == []
    assert query_of(route.calls[0].request) == {"Order": "asc"}
    assert route.calls[0].request.headers["x-acs-action"] == "ListJobSanityCheckResults"
    assert [(r.check_number, r.phase, r.status) for r in results] == [
        (1, "CheckInit", "Succeeded"),
        (1, "DeviceCheck", "Succeeded"),
        (2, "CheckInit", "Succeeded"),
        (2, "DeviceCheck", "Failed"),
    ]
    assert results[-1] == SanityCheckResult(
        check_number=2,
        phase="DeviceCheck",
        status="Failed",
        message="GPU 0: ECC error",
        started_at=datetime(2024, 1, 1, 0, 11, tzinfo=UTC),
        finished_at=datetime(2024, 1, 1, 0, 11, 30, tzinfo=UTC),
    )
    await provider.aclose()


async def test_sanity_check_one_run_and_error_request_id() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs/dlc-1/sanitycheckresult").mock(
            side_effect=[
                json_response(
                    {"JobId": "dlc-1", "RequestID": "r", "SanityCheckResult": [sanity_item(1, "SingleNodeCommCheck")]}
                ),
                httpx.Response(404, json={"RequestID": "REQ-CAPITAL", "Code": "JobNotFound", "Message": "no job"}),
            ]
        )
        (one,) = await provider.sanity_check("dlc-1", 1, "SingleNodeCommCheck")
        with pytest.raises(NotFound, match="REQ-CAPITAL"):  # RequestID (capital ID) in error bodies too
            await provider.sanity_check("dlc-1", 1)
    assert query_of(route.calls[0].request) == {"SanityCheckNumber": "1", "SanityCheckPhase": "SingleNodeCommCheck"}
    assert (one.check_number, one.phase) == (1, "SingleNodeCommCheck")
    await provider.aclose()


async def test_training_job_sanity_checks_go_through_its_dlc_job() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        listing = router.get(f"{STUDIO}/api/v1/trainingjobs").mock(
            return_value=json_response(
                {
                    "RequestId": "r",
                    "TotalCount": 1,
                    "TrainingJobs": [{**training_job_body(), "DlcJobId": "dlc-under", "Scheduler": {}}],
                }
            )
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-under/sanitycheckresults").mock(
            return_value=json_response(sanity_results_body([[sanity_item(1, "AllNodeCommCheck")]]))
        )
        (result,) = await provider.sanity_checks(TRAIN_ID)
    q = query_of(listing.calls.last.request)
    assert q["TrainingJobId"] == TRAIN_ID and q["StartTime"] == "2023-01-01T00:00Z"  # not the 7-day default
    assert studio_signed(listing.calls.last.request, "ListTrainingJobs")
    assert result.phase == "AllNodeCommCheck"
    await provider.aclose()


# ------------------------------------------------------------------------- workload info


async def test_workload_info_of_a_queued_quota_job() -> None:
    provider, _ = make_provider()
    job = get_job_body("dlc-q", "Queuing", ResourceId=QUOTA_ID, Priority=5, TenantId="t-1", UserId="u-1", pods=[])
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-q").mock(return_value=json_response(job))
        route = router.get(f"{STUDIO}/api/v1/quotas/{QUOTA_ID}/workloads").mock(
            return_value=json_response(
                quota_workloads_body([queue_info("dlc-other", position=1), queue_info("dlc-q", position=3)])
            )
        )
        info = await provider.workload_info("dlc-q")
    sent = route.calls.last.request
    assert studio_signed(sent, "ListQuotaWorkloads")
    assert query_of(sent) == {"WorkloadIds": "dlc-q", "WithHistoricalData": "true", "PageNumber": "1", "PageSize": "10"}
    assert info.in_quota and info.quota_id == QUOTA_ID
    assert (info.queue_position, info.priority, info.is_scheduled) == (3, 5, False)
    assert info.enqueued_at == datetime(2024, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert info.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert info.queue_metas == [QueueMeta(queue="test-label-79f5498dd-9qrzs", position=3, quota_id=QUOTA_ID)]
    assert (info.status, info.workload_type, info.user_name, info.tenant_id) == ("Pending", "dlc", "alice", "t-1")
    assert (info.workspace_id, info.workspace_name) == ("268", "pai_dlc")
    assert "roleMaximumResource" in info.note and "Current GPU Limit is 5" in info.note
    assert info.source == "PaiStudio ListQuotaWorkloads + PAI-DLC GetJob"
    assert info.unavailable == []
    await provider.aclose()


async def test_workload_info_of_a_scheduled_quota_job_and_one_without_entry() -> None:
    provider, _ = make_provider()
    job = get_job_body("dlc-r", "Running", ResourceId=QUOTA_ID, pods=[pod("dlc-r")])
    dequeued = queue_info("dlc-r", status="Dequeued", position=0, GmtDequeuedTime="2024-01-01T00:01:00Z")
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-r").mock(return_value=json_response(job))
        route = router.get(f"{STUDIO}/api/v1/quotas/{QUOTA_ID}/workloads").mock(
            side_effect=[json_response(quota_workloads_body([dequeued])), json_response(quota_workloads_body([]))]
        )
        scheduled = await provider.workload_info("dlc-r")
        missing = await provider.workload_info("dlc-r")
    assert route.call_count == 2
    assert (scheduled.is_scheduled, scheduled.queue_position, scheduled.status) == (True, None, "Running")
    assert "waiting because" not in scheduled.note
    assert missing.in_quota and missing.queue_metas == [] and missing.is_scheduled is True
    assert "lists no queue entry" in missing.note
    assert {"UserName", "QueueMetas", "TenantId"} <= set(missing.unavailable)
    await provider.aclose()


async def test_workload_info_of_a_public_job_says_it_is_not_queued() -> None:
    provider, _ = make_provider()
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-p").mock(
            return_value=json_response(get_job_body("dlc-p", "Running", UserId="u-1", ResourceId=""))
        )
        quota = router.get(url__regex=rf"{STUDIO}/api/v1/quotas/.*")
        info = await provider.workload_info("dlc-p")
    assert quota.call_count == 0
    assert info.in_quota is False and info.quota_id is None and info.queue_metas == []
    assert info.note == "dlc-p runs on public pay-as-you-go resources; it is not queued in a resource quota"
    assert (info.status, info.priority, info.is_scheduled, info.user_id) == ("Running", 1, True, "u-1")
    assert info.source == "PAI-DLC GetJob"
    assert info.unavailable == ["TenantId", "UserName"]  # not QueueMetas: there is no queue to report
    await provider.aclose()


async def test_workload_info_of_a_training_job_on_a_quota() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}").mock(
            return_value=json_response(training_job_body(status="Submitted", resource_id=QUOTA_ID, Instances=[]))
        )
        router.get(f"{STUDIO}/api/v1/quotas/{QUOTA_ID}/workloads").mock(
            return_value=json_response(quota_workloads_body([queue_info(TRAIN_ID, position=1, priority=3)]))
        )
        info = await provider.workload_info(TRAIN_ID)
    assert (info.quota_id, info.quota_name, info.queue_position, info.status) == (QUOTA_ID, "team-quota", 1, "Pending")
    assert info.source == "PaiStudio ListQuotaWorkloads + PaiStudio GetTrainingJob"
    assert info.unavailable == ["TenantId"]  # GetTrainingJob has no tenant, QueueInfo neither
    await provider.aclose()


# ---------------------------------------------------------------------------- error info


async def test_error_info_of_a_training_job_is_one_line() -> None:
    provider, _ = make_provider()
    bodies = [
        error_info_body("TRAINING_JOB_FAILED", "Worker exited with\ncode 1", "see worker-0 log\n  OOMKilled"),
        error_info_body("", "", ""),
        error_info_body("200", "success", "additional info"),  # the shape seed 001 shows: no error
    ]
    with respx.mock() as router:
        route = router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/errorinfo").mock(
            side_effect=[json_response(b) for b in bodies]
        )
        first = await provider.error_info(TRAIN_ID)
        assert await provider.error_info(TRAIN_ID) is None
        assert await provider.error_info(TRAIN_ID) is None
    assert first == "TRAINING_JOB_FAILED: Worker exited with code 1 (see worker-0 log OOMKilled)"
    assert studio_signed(route.calls[0].request, "GetTrainingJobErrorInfo")
    await provider.aclose()


async def test_error_info_of_a_dlc_job_is_its_reason() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(
            side_effect=[
                json_response(get_job_body("dlc-1", "Failed", ReasonCode="JobFailed", ReasonMessage="Exit code 1")),
                json_response(get_job_body("dlc-1", "Running")),
            ]
        )
        assert await provider.error_info("dlc-1") == "JobFailed: Exit code 1"
        assert await provider.error_info("dlc-1") is None
    await provider.aclose()


# ------------------------------------------------------------------- train… jobs as jobs


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Creating", JobStatus.CREATING),
        ("Created", JobStatus.CREATING),
        ("Submitted", JobStatus.QUEUING),
        ("Initializing", JobStatus.CREATING),
        ("Running", JobStatus.RUNNING),
        ("Succeed", JobStatus.SUCCEEDED),
        ("Failed", JobStatus.FAILED),
        ("CreateFailed", JobStatus.FAILED),
        ("InitializeFailed", JobStatus.FAILED),
        ("Terminated", JobStatus.STOPPED),
        ("Stopping", JobStatus.STOPPING),
        ("SomethingNew", JobStatus.RUNNING),
    ],
)
def test_training_job_status_mapping(raw: str, status: JobStatus) -> None:
    job = studio.training_job_from(training_job_body(status=raw))
    assert job.status is status and job.raw_status == raw


async def test_get_job_for_a_training_job() -> None:
    provider, _ = make_provider()
    body = training_job_body(
        status="Succeed",
        instances=[training_instance(role="master", status="Succeeded"), training_instance(status="Succeeded")],
        transitions=[
            ("Creating", "2024-01-01T00:00:00Z"),
            ("Running", "2024-01-01T00:02:00Z"),
            ("Succeed", "2024-01-01T00:09:30Z"),
        ],
        Settings={"Tags": {"team": "nlp"}},
    )
    with respx.mock() as router:
        route = router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}").mock(return_value=json_response(body))
        job = await provider.get_job(TRAIN_ID)
    assert studio_signed(route.calls.last.request, "GetTrainingJob") and route.calls.last.request.url.query == b""
    assert (job.job_id, job.name, job.status, job.raw_status) == (
        TRAIN_ID,
        "bert-finetune",
        JobStatus.SUCCEEDED,
        "Succeed",
    )
    assert [(p.pod_id, p.role, p.status) for p in job.pods] == [
        (f"{TRAIN_ID}-master-0", "Master", "Succeeded"),
        (f"{TRAIN_ID}-worker-0", "Worker", "Succeeded"),
    ]
    assert (job.ecs_spec, job.worker_count, job.image, job.job_type) == (
        "ecs.gn6i-c4g1.xlarge",
        1,
        GPU_IMAGE,
        "PyTorchJob",
    )
    assert job.started_at == datetime(2024, 1, 1, 0, 2, tzinfo=UTC)
    assert job.finished_at == datetime(2024, 1, 1, 0, 9, 30, tzinfo=UTC)
    assert (job.max_runtime_minutes, job.duration_seconds, job.priority, job.resource_id) == (60, 600, 3, None)
    assert job.tags == {"team": "nlp", TAG_CREATED_BY: "1"}
    await provider.aclose()


async def test_stop_and_delete_a_training_job() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        stop = router.put(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/stop").mock(
            return_value=json_response({"RequestId": "r"})
        )
        router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}").mock(
            return_value=json_response(training_job_body(status="Terminated"))
        )
        delete = router.delete(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}").mock(
            return_value=json_response({"RequestId": "r"})
        )
        job = await provider.stop_job(TRAIN_ID)
        await provider.delete_job(TRAIN_ID)
    assert job.status is JobStatus.STOPPED
    assert stop.calls.last.request.content == b"" and studio_signed(stop.calls.last.request, "StopTrainingJob")
    assert studio_signed(delete.calls.last.request, "DeleteTrainingJob")
    await provider.aclose()


async def test_training_job_events_merge_job_and_instance_events() -> None:
    provider, _ = make_provider()
    instances = [training_instance(index=0), training_instance(index=1)]
    job_lines = [f"{datetime(2024, 1, 1) + timedelta(seconds=i):%Y-%m-%d %H:%M:%S} job event {i}" for i in range(150)]

    def job_events(req: httpx.Request) -> httpx.Response:
        q = query_of(req)
        start = (int(q["PageNumber"]) - 1) * int(q["PageSize"])
        return json_response(studio_page("Events", job_lines[start : start + int(q["PageSize"])], len(job_lines)))

    with respx.mock() as router:
        router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}").mock(
            return_value=json_response(training_job_body(instances=instances))
        )
        job_route = router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/events").mock(side_effect=job_events)
        inst0 = router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/instances/{TRAIN_ID}-worker-0/events").mock(
            return_value=json_response(
                studio_page("Events", ["2024-01-01T00:00:30.5Z Pulling image", "no time here"], 2)
            )
        )
        router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/instances/{TRAIN_ID}-worker-1/events").mock(
            return_value=error_response("TRAINING_JOB_INSTANCE_NOT_FOUND", "instance not found", 400)
        )
        events = await provider.events(TRAIN_ID)
        one = await provider.events(TRAIN_ID, f"{TRAIN_ID}-worker-0")
    assert sorted(int(query_of(c.request)["PageNumber"]) for c in job_route.calls) == [1, 2]
    assert all(query_of(c.request)["PageSize"] == "100" for c in job_route.calls)
    assert studio_signed(inst0.calls.last.request, "ListTrainingJobInstanceEvents")
    assert len(events) == 152 and events[-1].message == "no time here" and events[-1].time is None
    pulled = next(e for e in events if e.message == "Pulling image")
    assert pulled.source == f"{TRAIN_ID}-worker-0" and pulled.time == datetime(2024, 1, 1, 0, 0, 30, 500000, UTC)
    assert events.index(pulled) == 31  # between job events 30 and 31
    assert [e.message for e in one] == ["Pulling image", "no time here"]
    await provider.aclose()


def _log_server(lines: list[str], cap: int | None = None) -> Any:
    def answer(req: httpx.Request) -> httpx.Response:
        q = query_of(req)
        size = min(int(q["PageSize"]), cap or 10**9)
        start = (int(q["PageNumber"]) - 1) * size
        return json_response(studio_page("Logs", lines[start : start + size], len(lines)))

    return answer


async def test_training_pod_logs_read_only_the_tail_pages() -> None:
    provider, _ = make_provider()
    lines = [f"line {i}" for i in range(1200)]
    iid = f"{TRAIN_ID}-worker-0"
    with respx.mock() as router:
        route = router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/logs").mock(side_effect=_log_server(lines))
        page = await provider.pod_logs(TRAIN_ID, iid, max_lines=100, since=T0 + timedelta(seconds=59))
    assert page.lines == lines[-100:] and page.truncated and page.pod_id == iid
    first = query_of(route.calls[0].request)
    assert first == {"InstanceId": iid, "StartTime": "2023-12-31T23:00Z", "PageNumber": "1", "PageSize": "500"}
    assert sorted(query_of(c.request)["PageNumber"] for c in route.calls) == ["1", "2", "3"]
    assert studio_signed(route.calls[0].request, "ListTrainingJobLogs")
    await provider.aclose()


async def test_training_pod_logs_follow_a_server_page_cap_and_missing_instances() -> None:
    provider, _ = make_provider()
    lines = [f"line {i}" for i in range(1234)]
    with respx.mock() as router:
        route = router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/logs").mock(
            side_effect=_log_server(lines, cap=100)
        )
        page = await provider.pod_logs(TRAIN_ID, f"{TRAIN_ID}-worker-0", max_lines=150)
        short = await provider.pod_logs(TRAIN_ID, f"{TRAIN_ID}-worker-0")
        route.mock(return_value=error_response("TRAINING_JOB_INSTANCE_NOT_FOUND", "not found", 400))
        empty = await provider.pod_logs(TRAIN_ID, f"{TRAIN_ID}-worker-9")
    assert page.lines == lines[-150:] and page.truncated
    assert short.lines == lines[-2000:] and not short.truncated  # the whole log is within the default cap
    assert empty.lines == [] and not empty.truncated
    await provider.aclose()


async def test_job_logs_of_a_training_job_cover_every_instance() -> None:
    provider, _ = make_provider()
    instances = [training_instance(role="master"), training_instance()]
    with respx.mock() as router:
        router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}").mock(
            return_value=json_response(training_job_body(instances=instances))
        )
        router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/logs").mock(
            side_effect=lambda req: json_response(studio_page("Logs", [f"{query_of(req)['InstanceId']} ok"], 1))
        )
        logs = await provider.job_logs(TRAIN_ID)
    assert {k: v.lines for k, v in logs.items()} == {
        f"{TRAIN_ID}-master-0": [f"{TRAIN_ID}-master-0 ok"],
        f"{TRAIN_ID}-worker-0": [f"{TRAIN_ID}-worker-0 ok"],
    }
    await provider.aclose()


async def test_dlc_events_keep_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pai_provider, "MAX_EVENTS", 3)
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(return_value=json_response(get_job_body("dlc-1", pods=[])))
        router.get(f"{DLC}/api/v1/jobs/dlc-1/events").mock(
            return_value=json_response({"JobId": "dlc-1", "RequestId": "r", "Events": [
                f"2024-01-01 00:00:0{i} e{i}" for i in (5, 1, 4, 2, 3)
            ]})
        )  # fmt: skip
        events = await provider.events("dlc-1")
    assert [e.message for e in events] == ["e3", "e4", "e5"]
    await provider.aclose()


def test_event_time_formats() -> None:
    assert parse_event("2021-01-28 14:07:24 Created pod", "j").time == datetime(2021, 1, 28, 14, 7, 24, tzinfo=UTC)
    assert parse_event("2021-01-28T14:07:24Z x", "j").message == "x"
    shifted = parse_event("2021-01-28T22:07:24+08:00 x", "j")
    assert shifted.time == datetime(2021, 1, 28, 14, 7, 24, tzinfo=UTC) and shifted.message == "x"
    assert parse_event("2021-01-28 14:07:24 -1 retries", "j").message == "-1 retries"


# -------------------------------------------------------------------------- create/get DLC


async def test_create_job_body_with_sanity_check_and_priority() -> None:
    provider, _ = make_provider(pai_workspace_id="268")
    wanted = request(priority=7, sanity_check=True, sanity_check_args="--phases DeviceCheck", tags=QUOTE_TAGS)
    provider.validate_request(wanted, GPU_SPEC)
    with respx.mock() as router:
        body = await provider.create_job_body(wanted)
        router.get(f"{DLC}/api/v1/jobs").mock(return_value=json_response({"RequestId": "r", "TotalCount": 0}))
        create = router.post(f"{DLC}/api/v1/jobs").mock(
            return_value=json_response({"JobId": "dlc-9", "RequestId": "r"})
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-9").mock(
            return_value=json_response(get_job_body("dlc-9", "Creating", Priority=7, ResourceId="", tags=QUOTE_TAGS))
        )
        job = await provider.create_job(wanted)
    assert body["Priority"] == 7
    assert body["Settings"] == {
        "Tags": QUOTE_TAGS,
        "EnableSanityCheck": True,
        "SanityCheckArgs": "--phases DeviceCheck",
    }
    assert body_of(create.calls.last.request) == body
    assert (job.priority, job.resource_id) == (7, None)
    plain = await provider.create_job_body(request(sanity_check=True))
    assert plain["Settings"] == {"EnableSanityCheck": True} and "Priority" not in plain
    assert "Settings" not in await provider.create_job_body(request())
    await provider.aclose()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"priority": 0}, "priority must be an integer from 1"),
        ({"priority": 10}, "priority must be an integer from 1"),
        ({"sanity_check_args": "--x"}, "sanity_check_args needs sanity_check=true"),
        ({"sanity_check": True, "sanity_check_args": " "}, "sanity_check_args is empty"),
    ],
)
def test_validate_priority_and_sanity_args(overrides: dict[str, Any], message: str) -> None:
    provider, _ = make_provider()
    with pytest.raises(InvalidRequest, match=message):
        provider.validate_request(request(**overrides), GPU_SPEC)


async def test_get_job_fills_priority_and_quota() -> None:
    provider, _ = make_provider()
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-1").mock(
            return_value=json_response(get_job_body("dlc-1", Priority=9, ResourceId=QUOTA_ID))
        )
        job = await provider.get_job("dlc-1")
    assert (job.priority, job.resource_id) == (9, QUOTA_ID)
    await provider.aclose()


# ------------------------------------------------------------------- hosts and signatures


def test_paistudio_hosts_per_region() -> None:
    resolve = endpoints.resolve
    assert resolve(endpoints.PAISTUDIO, "cn-hangzhou").host == "pai.cn-hangzhou.data.aliyun.com"
    assert resolve(endpoints.PAISTUDIO, "cn-shanghai").host == "pai.cn-shanghai.aliyuncs.com"
    assert resolve(endpoints.PAISTUDIO, "eu-west-1").host == "paistudio.eu-west-1.aliyuncs.com"
    assert resolve(endpoints.PAISTUDIO, "eu-west-1", "vpc").host == "paistudio-vpc.eu-west-1.aliyuncs.com"
    provider, _ = make_provider(region="cn-shanghai")
    assert provider.api.endpoints["paistudio"].base_url == "https://pai.cn-shanghai.aliyuncs.com"


async def test_paistudio_requests_verify_with_the_hangzhou_quirk_host() -> None:
    provider, _ = make_provider()
    seen: list[httpx.Request] = []

    def answer(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return json_response(studio_page("Logs", ["a b"], 1))

    with respx.mock() as router:
        router.get(url__regex=rf"{STUDIO}/api/v1/trainingjobs/.*").mock(side_effect=answer)
        await provider.pod_logs("train+1", "inst/0", until=NOW + timedelta(seconds=1))
    (req,) = seen
    assert req.url.raw_path.startswith(b"/api/v1/trainingjobs/train%2B1/logs?")
    assert query_of(req)["InstanceId"] == "inst/0" and query_of(req)["EndTime"] == "2024-01-01T00:01Z"
    assert req.headers["host"] == "pai.cn-hangzhou.data.aliyun.com" and verify_signed(req)
    assert not verify_signed(req, "wrongsecret")
    await provider.aclose()


# ---------------------------------------------------------------- seeds vs the real API


async def test_seed_000_and_001_versus_the_real_api() -> None:
    """Where the seeds and the real API differ, the real API (official SDKs) wins:

    * seed 000 calls ``pai-workload 2024-01-01 GetWorkloadInfo`` on ``https://pai-workload.<region>.aliyuncs.com
      /workloads/{id}`` signed ``acs <AK>:<HMAC-SHA1>``: no such product/API exists publicly. Its fields
      live in PaiStudio 2022-01-12 ListQuotaWorkloads (``GET /api/v1/quotas/{QuotaId}/workloads``,
      ACS3-HMAC-SHA256), whose items are QueueInfo — and only for jobs on a resource quota.
    * seed 000's ``IsScheduled`` is the string ``"true"``/``"false"`` (as in the SDK's unused WorkloadInfo
      model); QueueInfo has no such field: it is read from the queue ``Status``/``GmtDequeuedTime``.
    * seed 000's ``QueueMetas`` are ``{QueueId, QueueName}``; the SDK's QueueMeta has ``Name``,
      ``QuotaId``, ``Position`` (a string), ``QueueStrategy``, times — no QueueId.
    * seed 001 authenticates with ``Authorization: Bearer $DASHSCOPE_API_KEY`` against
      ``api.aliyun.com/api/PaiStudio/2022-01-12/<Action>``; the real API is ACS3-signed on
      ``pai.<region>.aliyuncs.com`` (``pai.cn-hangzhou.data.aliyun.com`` for cn-hangzhou) with REST paths.
    * seed 001 lists ``MetricType``/``TimeStep`` under "Get Training Job Metrics"; they belong to
      ListTrainingJobInstanceMetrics (``/instancemetrics``); ListTrainingJobMetrics takes Name/Order/pages.
    * seed 001 passes GetJobSanityCheckResult's ``JobId`` in the query; it is a path segment.
    * seed 001's ListTrainingJobs ``Status`` is an integer 0-4; the real one is a string (``Running``...).
    * seed 001's ErrorInfo example is ``{"Code": "200", "Message": "success"}``: that means "no error".
    """
    assert not any("workload" in key for key in endpoints.PRODUCTS)
    assert not hasattr(provider_api_type(), "get_workload_info")
    provider, _ = make_provider()
    calls: list[httpx.Request] = []

    def record(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        path = req.url.path
        if path.endswith("/workloads"):
            return json_response(quota_workloads_body([queue_info("dlc-q", IsScheduled="false")]))
        if path.endswith("/sanitycheckresult"):
            return json_response({"JobId": "dlc-q", "RequestID": "r", "SanityCheckResult": []})
        if path.endswith("/errorinfo"):
            return json_response(error_info_body("200", "success", "additional info"))
        if path.endswith("/instancemetrics"):
            return json_response(instance_metrics_body({}))
        return json_response(get_job_body("dlc-q", "Queuing", ResourceId=QUOTA_ID, pods=[]))

    with respx.mock() as router:
        router.route(host__regex=r".*").mock(side_effect=record)
        info = await provider.workload_info("dlc-q")
        await provider.sanity_check("dlc-q", 1)
        assert await provider.error_info(TRAIN_ID) is None
        await provider.metrics(TRAIN_ID, "gpu_core", since=T0)
    assert info.is_scheduled is False and isinstance(info.is_scheduled, bool)
    assert info.queue_metas[0].model_dump() == {
        "queue": "test-label-79f5498dd-9qrzs",
        "position": 3,
        "quota_id": QUOTA_ID,
    }
    hosts = {c.url.host for c in calls}
    assert hosts == {"pai-dlc.cn-hangzhou.aliyuncs.com", "pai.cn-hangzhou.data.aliyun.com"}
    assert not any("pai-workload" in h or h == "api.aliyun.com" for h in hosts)
    assert all(c.headers["authorization"].startswith("ACS3-HMAC-SHA256 ") and verify_signed(c) for c in calls)
    assert all("bearer" not in c.headers["authorization"].lower() for c in calls)
    by_action = {c.headers["x-acs-action"]: c for c in calls}
    assert by_action["ListQuotaWorkloads"].url.path == f"/api/v1/quotas/{QUOTA_ID}/workloads"
    assert by_action["GetJobSanityCheckResult"].url.path == "/api/v1/jobs/dlc-q/sanitycheckresult"
    assert "JobId" not in query_of(by_action["GetJobSanityCheckResult"])
    assert by_action["ListTrainingJobInstanceMetrics"].url.path.endswith("/instancemetrics")
    assert "ListTrainingJobMetrics" not in by_action
    await provider.aclose()


def provider_api_type() -> type:
    from cloudjobs_mcp.server.providers.pai.api import PaiApi

    return PaiApi
