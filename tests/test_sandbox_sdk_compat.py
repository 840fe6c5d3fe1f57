"""Wire compatibility with Alibaba's official PAI-DLC SDK (``pip install -e ".[compat]"``; skipped without it).

The official, synchronous (requests-based) client drives the in-process sandbox from a worker thread:
its ACS3 signatures (it signs accept, user-agent, x-acs-credentials-provider too and sends ``+`` for
spaces) must be accepted, and its response models must keep every field the sandbox sent — for each
call the JSON the sandbox answered is compared, key by key, with ``response.body.to_map()``.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import anyio
import anyio.to_thread
import pytest

dlc_client = pytest.importorskip("alibabacloud_pai_dlc20201203.client")
dlc = pytest.importorskip("alibabacloud_pai_dlc20201203.models")
open_api = pytest.importorskip("alibabacloud_tea_openapi.utils_models")
sdk_errors = pytest.importorskip("alibabacloud_tea_openapi.exceptions")

from tests.sandbox_fixtures import running_sandbox  # noqa: E402

pytestmark = pytest.mark.anyio

IMAGE = "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/pytorch:2.3-cpu-py311-ubuntu22.04"


def assert_kept(sent: Any, parsed: Any, where: str) -> None:
    """Every key and value the sandbox sent survives the SDK model (extra keys in ``parsed`` are fine:
    ``to_map`` always writes empty lists for list fields)."""
    if isinstance(sent, dict):
        assert isinstance(parsed, dict), f"{where}: {parsed!r}"
        for key, value in sent.items():
            assert key in parsed, f"{where}.{key} was dropped by the SDK model"
            assert_kept(value, parsed[key], f"{where}.{key}")
    elif isinstance(sent, list):
        assert isinstance(parsed, list) and len(parsed) == len(sent), f"{where}: {parsed!r}"
        for i, (a, b) in enumerate(zip(sent, parsed, strict=True)):
            assert_kept(a, b, f"{where}[{i}]")
    else:
        assert sent == parsed and type(sent) is type(parsed), f"{where}: sent {sent!r}, SDK has {parsed!r}"


async def test_the_official_dlc_client_against_the_sandbox(tmp_path):
    async with running_sandbox(tmp_path, workspaces=("ws_compat",)) as sb:
        workspace = sb.sandbox.create_workspace("ws_compat")
        client = dlc_client.Client(
            open_api.Config(
                access_key_id=sb.access_key.access_key_id,
                access_key_secret=sb.access_key.access_key_secret,
                region_id="cn-hangzhou",
                endpoint=sb.endpoint,
                protocol="http",
                no_proxy="127.0.0.1,localhost",
            )
        )
        checked: list[str] = []

        async def sdk(action: str, fn: Any, *args: Any) -> Any:
            response = await anyio.to_thread.run_sync(fn, *args)
            answered = sb.sandbox.calls[-1]
            assert (answered.action, answered.status) == (action, 200), answered
            assert_kept(answered.body, response.body.to_map(), action)
            checked.append(action)
            return response.body

        specs = await sdk(
            "ListEcsSpecs", client.list_ecs_specs, dlc.ListEcsSpecsRequest(accelerator_type="GPU", page_size=100)
        )
        assert specs.total_count == len(specs.ecs_specs) and specs.ecs_specs[0].gpu >= 1

        def create(name: str, command: str, workers: int = 1) -> Any:
            request = dlc.CreateJobRequest(
                display_name=name,
                job_type="PyTorchJob",
                user_command=command,
                workspace_id=workspace,
                job_max_running_time_minutes=10,
                envs={"GREETING": "hello sdk"},
                thirdparty_libs=["numpy"],
                settings=dlc.JobSettings(tags={"suite": "compat", "name": name}),
                job_specs=[dlc.JobSpec(type="Worker", image=IMAGE, pod_count=workers, ecs_spec="ecs.c6.large")],
            )
            return client.create_job(request)

        command = shlex.quote(sys.executable) + ' -c \'import os; print(os.environ["GREETING"], os.environ["RANK"])\''
        created = await sdk("CreateJob", create, "sdk-done", command, 2)
        job_id = created.job_id
        assert job_id.startswith("dlc-")

        detail = dlc.GetJobRequest(need_detail=True)  # the SDK sends NeedDetail=True (capital T)
        queued = await sdk("GetJob", client.get_job, job_id, detail)
        assert queued.status in ("Creating", "Queuing", "EnvPreparing", "Running", "Succeeded")
        with anyio.fail_after(20):
            while (job := await sdk("GetJob", client.get_job, job_id, detail)).status != "Succeeded":
                await anyio.sleep(0.1)
        assert job.gmt_successed_time and job.settings.tags == {"suite": "compat", "name": "sdk-done"}
        assert [p.pod_id for p in job.pods] == [f"{job_id}-master-0", f"{job_id}-worker-0"]
        assert [h.status for h in job.status_history][-1] == "Succeeded"

        logs = await sdk(
            "GetPodLogs", client.get_pod_logs, job_id, f"{job_id}-worker-0", dlc.GetPodLogsRequest(max_lines=100)
        )
        assert logs.logs == ["hello sdk 1"] and logs.container_info.main_container == "pytorch"
        await sdk("GetJobEvents", client.get_job_events, job_id, dlc.GetJobEventsRequest())
        await sdk("GetPodEvents", client.get_pod_events, job_id, f"{job_id}-master-0", dlc.GetPodEventsRequest())

        sleeper = (await sdk("CreateJob", create, "sdk-sleeper", "sleep 30")).job_id
        listed = await sdk(
            "ListJobs",
            client.list_jobs,
            dlc.ListJobsRequest(tags={"name": "sdk-sleeper"}, show_own=True, page_size=50, display_name="sdk sleeper"),
        )
        assert listed.total_count == 0  # DisplayName "sdk sleeper" (sent as sdk+sleeper) matches nothing
        listed = await sdk(
            "ListJobs", client.list_jobs, dlc.ListJobsRequest(tags={"name": "sdk-sleeper"}, page_size=50)
        )
        assert [j.job_id for j in listed.jobs] == [sleeper] and listed.jobs[0].node_count == "1"
        everything = await sdk("ListJobs", client.list_jobs, dlc.ListJobsRequest(workspace_id=workspace))
        assert {j.job_id for j in everything.jobs} == {job_id, sleeper}

        stopped = await sdk("StopJob", client.stop_job, sleeper)
        assert stopped.job_id == sleeper
        with anyio.fail_after(20):
            while (await sdk("GetJob", client.get_job, sleeper, detail)).status != "Stopped":
                await anyio.sleep(0.1)
        await sdk("DeleteJob", client.delete_job, job_id)

        # Errors surface through the SDK's own exceptions with the sandbox's Code and RequestId.
        with pytest.raises(sdk_errors.ClientException) as missing:
            await anyio.to_thread.run_sync(client.get_job, "dlc-missing", detail)
        assert missing.value.code == "JobNotFound" and missing.value.status_code == 404
        assert missing.value.request_id == sb.sandbox.calls[-1].body["RequestId"]
        sb.faults.throttle(1, retry_after_ms=1500)
        with pytest.raises(sdk_errors.ThrottlingException) as throttled:
            await anyio.to_thread.run_sync(client.list_ecs_specs, dlc.ListEcsSpecsRequest())
        assert throttled.value.code == "Throttling.User" and throttled.value.retry_after == 1500

        assert {"CreateJob", "GetJob", "ListJobs", "StopJob", "GetPodLogs", "ListEcsSpecs"} <= set(checked)
        assert not any(c.code in ("SignatureDoesNotMatch", "IncompleteSignature") for c in sb.sandbox.calls)


# ------------------------------------------------------------------- observability (DLC, PaiStudio)

GPU_SPEC = "ecs.gn6i-c4g1.xlarge"
QUOTA = "quota-sandbox-1"
SLEEPY = shlex.quote(sys.executable) + " -c 'import time; print(\"loss 0.25\", flush=True); time.sleep(1.5)'"


def sdk_config(sb: Any) -> Any:
    return open_api.Config(
        access_key_id=sb.access_key.access_key_id,
        access_key_secret=sb.access_key.access_key_secret,
        region_id="cn-hangzhou",
        endpoint=sb.endpoint,
        protocol="http",
        no_proxy="127.0.0.1,localhost",
    )


class Checker:
    """Calls the official client from a worker thread and checks every field the sandbox sent survives."""

    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self.checked: list[str] = []

    async def __call__(self, action: str, fn: Any, *args: Any) -> Any:
        response = await anyio.to_thread.run_sync(fn, *args)
        answered = self.sb.sandbox.calls[-1]
        assert (answered.action, answered.status) == (action, 200), answered
        assert_kept(answered.body, response.body.to_map(), action)
        self.checked.append(action)
        return response.body


async def wait_for(sb: Any, job_id: str, statuses: tuple[str, ...], limit: float = 20) -> None:
    with anyio.fail_after(limit):
        while (view := await sb.sandbox.job_view(job_id)) is None or view.status not in statuses:
            await anyio.sleep(0.05)


async def test_the_official_dlc_client_parses_metrics_and_sanity_checks(tmp_path):
    async with running_sandbox(tmp_path, workspaces=("ws_obs",), metrics_seconds=0.2) as sb:
        workspace = sb.sandbox.create_workspace("ws_obs")
        client = dlc_client.Client(sdk_config(sb))
        sdk = Checker(sb)
        sb.faults.idle_gpus("idle")
        sb.faults.sanity_check_failure("AllNodeCommCheck", "broken", check_seconds=0.3)

        def create(name: str, command: str) -> Any:
            request = dlc.CreateJobRequest(
                display_name=name,
                job_type="PyTorchJob",
                user_command=command,
                workspace_id=workspace,
                priority=6,
                settings=dlc.JobSettings(enable_sanity_check=True, sanity_check_args="level=full"),
                job_specs=[dlc.JobSpec(type="Worker", image=IMAGE, pod_count=2, ecs_spec=GPU_SPEC)],
            )
            return client.create_job(request)

        checked = (await sdk("CreateJob", create, "gpu-idle", SLEEPY)).job_id
        broken = (await sdk("CreateJob", create, "broken", "echo never")).job_id
        await wait_for(sb, checked, ("Succeeded",))
        await wait_for(sb, broken, ("Failed",))

        for metric in ("CpuCoreUsage", "MemoryUsage", "GpuCoreUsage", "GpuMemoryUsage"):
            body = await sdk(
                "GetJobMetrics",
                client.get_job_metrics,
                checked,
                dlc.GetJobMetricsRequest(metric_type=metric, time_step="1s"),
            )
            assert [p.pod_id for p in body.pod_metrics] == [f"{checked}-master-0", f"{checked}-worker-0"]
            points = body.pod_metrics[0].metrics
            assert points and all(isinstance(m.time, int) and isinstance(m.value, float) for m in points), metric
            if metric == "GpuCoreUsage":
                assert all(m.value <= 3.0 for m in points)  # idle_gpus

        listed = await sdk(
            "ListJobSanityCheckResults",
            client.list_job_sanity_check_results,
            checked,
            dlc.ListJobSanityCheckResultsRequest(order="asc"),
        )
        assert listed.request_id and listed.total_count == 1
        (run,) = listed.sanity_check_results
        assert [i.phase for i in run] == [
            "CheckInit", "DeviceCheck", "SingleNodeCommCheck", "TwoNodeCommCheck", "AllNodeCommCheck"
        ]  # fmt: skip
        assert {i.status for i in run} == {"Succeeded"} and run[0].check_number == 1
        one = await sdk(
            "GetJobSanityCheckResult",
            client.get_job_sanity_check_result,
            broken,
            dlc.GetJobSanityCheckResultRequest(sanity_check_number=1),
        )
        assert one.request_id and one.job_id == broken
        assert [(i.phase, i.status) for i in one.sanity_check_result][-1] == ("AllNodeCommCheck", "Failed")
        assert "NCCL" in one.sanity_check_result[-1].message
        only = await sdk(
            "GetJobSanityCheckResult",
            client.get_job_sanity_check_result,
            broken,
            dlc.GetJobSanityCheckResultRequest(sanity_check_number=1, sanity_check_phase="DeviceCheck"),
        )
        assert [i.phase for i in only.sanity_check_result] == ["DeviceCheck"]
        failed = await sdk("GetJob", client.get_job, broken, dlc.GetJobRequest(need_detail=True))
        assert (failed.status, failed.reason_code, failed.priority) == ("Failed", "SanityCheckFailed", 6)
        assert failed.settings.sanity_check_args == "level=full"
        assert {"GetJobMetrics", "ListJobSanityCheckResults", "GetJobSanityCheckResult"} <= set(sdk.checked)


async def test_the_official_paistudio_client_against_the_sandbox(tmp_path):
    studio_client = pytest.importorskip("alibabacloud_paistudio20220112.client")
    studio = pytest.importorskip("alibabacloud_paistudio20220112.models")
    async with running_sandbox(tmp_path, workspaces=("ws_studio",), metrics_seconds=0.2) as sb:
        workspace = sb.sandbox.create_workspace("ws_studio")
        client = studio_client.Client(sdk_config(sb))
        sdk = Checker(sb)
        held = sb.faults.quota_queue(2, "waiting")

        def create(name: str, command: list[str], compute: Any, **kw: Any) -> Any:
            return client.create_training_job(
                studio.CreateTrainingJobRequest(
                    training_job_name=name,
                    training_job_description="sdk compat",
                    workspace_id=workspace,
                    algorithm_spec=studio.AlgorithmSpec(
                        image=IMAGE,
                        command=command,
                        job_type="PyTorchJob",
                        metric_definitions=[studio.MetricDefinition(name="loss", regex=r"loss ([0-9.]+)")],
                    ),
                    compute_resource=compute,
                    environments={"STAGE": "compat"},
                    labels=[studio.CreateTrainingJobRequestLabels(key="suite", value="compat")],
                    hyper_parameters=[studio.CreateTrainingJobRequestHyperParameters(name="lr", value="0.1")],
                    input_channels=[
                        studio.CreateTrainingJobRequestInputChannels(name="train", input_uri="oss://b/d/", options="{}")
                    ],
                    output_channels=[
                        studio.CreateTrainingJobRequestOutputChannels(name="model", output_uri="oss://b/m/")
                    ],
                    scheduler=studio.CreateTrainingJobRequestScheduler(max_running_time_in_seconds=600),
                    settings=studio.JobSettings(enable_sanity_check=True),
                    priority=3,
                    **kw,
                )
            )

        public = studio.CreateTrainingJobRequestComputeResource(ecs_spec=GPU_SPEC, ecs_count=2, use_spot_instance=True)
        command = ["/bin/sh", "-c", SLEEPY + "; exit 3"]
        job_id = (await sdk("CreateTrainingJob", create, "sdk-train", command, public)).training_job_id
        assert job_id.startswith("train")
        quota = studio.CreateTrainingJobRequestComputeResource(
            resource_id=QUOTA,
            instance_count=1,
            instance_spec=studio.CreateTrainingJobRequestComputeResourceInstanceSpec(cpu="4", memory="16Gi"),
        )
        waiting = (await sdk("CreateTrainingJob", create, "waiting", ["sleep", "30"], quota)).training_job_id
        await wait_for(
            sb, (await anyio.to_thread.run_sync(sb.sandbox.store.training_job, job_id)).dlc_job_id, ("Failed",)
        )

        job = await sdk("GetTrainingJob", client.get_training_job, job_id)
        assert (job.status, job.reason_code, job.priority) == ("Failed", "PodFailed", 3)
        assert [i.name for i in job.instances] == [f"{job_id}-master-0", f"{job_id}-worker-0"]
        assert job.compute_resource.ecs_count == 2 and job.scheduler.max_running_time_in_seconds == "600"
        assert [t.status for t in job.status_transitions][-2:] == ["Running", "Failed"]
        assert job.latest_metrics[0].name == "loss" and job.latest_metrics[0].value == 0.25
        queued = await sdk("GetTrainingJob", client.get_training_job, waiting)
        assert queued.status == "Submitted" and queued.compute_resource.instance_spec.cpu == "4"
        listed = await sdk(
            "ListTrainingJobs", client.list_training_jobs, studio.ListTrainingJobsRequest(page_size=10, order="desc")
        )
        assert listed.total_count == 2 and listed.training_jobs[1].dlc_job_id.startswith("dlc-")
        assert listed.training_jobs[0].scheduler.max_running_time_in_seconds == 600
        events = await sdk(
            "ListTrainingJobEvents",
            client.list_training_job_events,
            job_id,
            studio.ListTrainingJobEventsRequest(page_size=100),
        )
        assert isinstance(events.total_count, str) and any(job_id in e for e in events.events)
        await sdk(
            "ListTrainingJobInstanceEvents",
            client.list_training_job_instance_events,
            job_id,
            f"{job_id}-worker-0",
            studio.ListTrainingJobInstanceEventsRequest(),
        )
        logs = await sdk(
            "ListTrainingJobLogs",
            client.list_training_job_logs,
            job_id,
            studio.ListTrainingJobLogsRequest(instance_id=f"{job_id}-master-0", page_number=1, page_size=50),
        )
        assert logs.logs == ["loss 0.25"] and logs.total_count == "1"
        metrics = await sdk(
            "ListTrainingJobInstanceMetrics",
            client.list_training_job_instance_metrics,
            job_id,
            studio.ListTrainingJobInstanceMetricsRequest(metric_type="GpuCoreUsage", time_step="10s"),
        )
        assert metrics.instance_metrics[0].metrics and isinstance(metrics.instance_metrics[0].metrics[0].time, str)
        info = await sdk("GetTrainingJobErrorInfo", client.get_training_job_error_info, job_id)
        assert info.error_info.code == "PodFailed" and "loss 0.25" in info.error_info.additional_info
        latest = await sdk(
            "GetTrainingJobLatestMetrics",
            client.get_training_job_latest_metrics,
            job_id,
            studio.GetTrainingJobLatestMetricsRequest(names="loss"),
        )
        assert latest.metrics[0].value == 0.25

        workloads = await sdk(
            "ListQuotaWorkloads",
            client.list_quota_workloads,
            QUOTA,
            studio.ListQuotaWorkloadsRequest(workload_ids=waiting, with_historical_data=True),
        )
        (entry,) = workloads.workloads
        assert (entry.workload_id, entry.status, entry.position, entry.priority) == (waiting, "Enqueued", 2, 3)
        assert entry.quota_id == QUOTA and entry.resource.cpu == "4" and entry.reason
        sb.faults.discard(held)

        await sdk("StopTrainingJob", client.stop_training_job, waiting)
        stopped = await sdk("GetTrainingJob", client.get_training_job, waiting)
        assert stopped.status in ("Submitted", "Running", "Terminated")
        await sdk("DeleteTrainingJob", client.delete_training_job, job_id)
        with pytest.raises(sdk_errors.ClientException) as missing:
            await anyio.to_thread.run_sync(client.get_training_job, job_id)
        assert missing.value.code == "TRAINING_JOB_NOT_FOUND" and missing.value.status_code == 404
        assert not any(c.code in ("SignatureDoesNotMatch", "IncompleteSignature") for c in sb.sandbox.calls)


# ------------------------------------------- tags, labels, templates, spot, output models (team APIs)

OUTPUT_PROGRAM = (
    shlex.quote(sys.executable)
    + ' -c \'import os, pathlib; print(os.environ["HP_LR"]); '
    + 'pathlib.Path(os.environ["CLOUDJOBS_OUTPUT_DIR"], "model.bin").write_text("w")\''
)


class TeamChecker(Checker):
    """ListTrainingJobOutputModels' SDK model has no RequestId field: the sandbox still answers one (every
    Alibaba Cloud API does), so it is the one key the model may drop there."""

    NO_REQUEST_ID = ("ListTrainingJobOutputModels",)

    async def __call__(self, action: str, fn: Any, *args: Any) -> Any:
        response = await anyio.to_thread.run_sync(fn, *args)
        answered = self.sb.sandbox.calls[-1]
        assert (answered.action, answered.status) == (action, 200), answered
        sent = dict(answered.body)
        if action in self.NO_REQUEST_ID:
            assert sent.pop("RequestId")
        assert_kept(sent, response.body.to_map(), action)
        self.checked.append(action)
        return response.body


async def test_the_official_clients_parse_the_team_apis(tmp_path):
    studio_client = pytest.importorskip("alibabacloud_paistudio20220112.client")
    studio = pytest.importorskip("alibabacloud_paistudio20220112.models")
    import json

    async with running_sandbox(tmp_path, workspaces=("ws_team",)) as sb:
        workspace = sb.sandbox.create_workspace("ws_team")
        client = dlc_client.Client(sdk_config(sb))
        paistudio = studio_client.Client(sdk_config(sb))
        sdk = TeamChecker(sb)
        sb.faults.spot_reclaim(0.2, spot_only=True)

        content = {
            "DisplayName": "templated",
            "JobType": "PyTorchJob",
            "WorkspaceId": workspace,
            "UserCommand": "sleep 30",
            "Envs": {"A": "1"},
            "JobSpecs": [{"Type": "Worker", "Image": IMAGE, "PodCount": 1, "EcsSpec": "ecs.c6.large"}],
        }
        made = await sdk(
            "CreateJobTemplate",
            client.create_job_template,
            dlc.CreateJobTemplateRequest(
                template_name="team",
                workspace_id=workspace,
                content=json.dumps(content),
                constraints={"$.JobSpecs[0].EcsSpec": "locked"},
                description="compat",
                metadata={"k": "v"},
            ),
        )
        tid = made.template_id
        assert made.version == 1 and made.default_version == 1
        bigger = {**content, "Envs": {"A": "2"}}
        updated = await sdk(
            "UpdateJobTemplate",
            client.update_job_template,
            tid,
            dlc.UpdateJobTemplateRequest(content=json.dumps(bigger), set_as_default=False),
        )
        assert updated.version == 2 and updated.version_created is True and updated.default_version == 1
        await sdk(
            "SetJobTemplateDefaultVersion",
            client.set_job_template_default_version,
            tid,
            dlc.SetJobTemplateDefaultVersionRequest(version=2),
        )
        got = await sdk("GetJobTemplate", client.get_job_template, tid, dlc.GetJobTemplateRequest(version="all"))
        assert got.default_version == 2 and [v.version for v in got.versions] == [2, 1]
        assert got.versions[1].content == content and got.total_count == 2
        one = await sdk("GetJobTemplate", client.get_job_template, tid, dlc.GetJobTemplateRequest(version="1"))
        assert [v.version for v in one.versions] == [1]
        templates = await sdk(
            "ListJobTemplates", client.list_job_templates, dlc.ListJobTemplatesRequest(workspace_id=workspace)
        )
        assert [t.template_id for t in templates.job_templates] == [tid] and templates.total_count == 1

        spot_spec = dlc.SpotSpec(spot_strategy="SpotWithPriceLimit", spot_discount_limit=0.5)
        created = await sdk(
            "CreateJob",
            client.create_job,
            dlc.CreateJobRequest(
                template_id=tid,
                template_version=1,
                display_name="spot-from-template",
                job_specs=[
                    dlc.JobSpec(
                        type="Worker",
                        image=IMAGE,
                        pod_count=1,
                        ecs_spec="ecs.c6.large",
                        use_spot_instance=True,
                        spot_spec=spot_spec,
                    )
                ],
            ),
        )
        job_id = created.job_id
        tag = dlc.TagResourcesRequestTag(key="owner", value="ana")
        await sdk(
            "TagResources",
            client.tag_resources,
            dlc.TagResourcesRequest(region_id="cn-hangzhou", resource_id=[job_id], resource_type="Job", tag=[tag]),
        )
        listed = await sdk("ListJobs", client.list_jobs, dlc.ListJobsRequest(tags={"owner": "ana"}))
        (item,) = listed.jobs
        assert (item.job_id, item.template_id, item.template_name) == (job_id, tid, "team")
        assert item.job_specs[0].use_spot_instance is True and item.job_specs[0].spot_spec.spot_discount_limit == 0.5
        await wait_for(sb, job_id, ("Failed",))
        job = await sdk("GetJob", client.get_job, job_id, dlc.GetJobRequest(need_detail=True))
        assert job.reason_code == "SpotInstanceReclaimed" and job.settings.tags == {"owner": "ana"}
        assert job.envs == {"A": "1"}
        tags = await sdk(
            "ListTagResources",
            paistudio.list_tag_resources,
            studio.ListTagResourcesRequest(region_id="cn-hangzhou", resource_id=[job_id], resource_type="Job"),
        )
        assert [(t.resource_id, t.tag_key, t.tag_value) for t in tags.tag_resources] == [(job_id, "owner", "ana")]
        await sdk(
            "UntagResources",
            client.untag_resources,
            dlc.UntagResourcesRequest(resource_id=[job_id], resource_type="Job", tag_key=["owner"]),
        )
        assert (await sb.sandbox.job_view(job_id)).record.tags == {}  # type: ignore[union-attr]
        await sdk("DeleteJobTemplate", client.delete_job_template, tid, dlc.DeleteJobTemplateRequest())

        specs = await sdk("ListEcsSpecs", client.list_ecs_specs, dlc.ListEcsSpecsRequest(instance_types="ecs.c6.large"))
        discount = specs.ecs_specs[0].non_protect_spot_discount
        history = await sdk(
            "GetSpotPriceHistory",
            paistudio.get_spot_price_history,
            "ecs.c6.large",
            studio.GetSpotPriceHistoryRequest(spot_duration=0),
        )
        assert history.spot_price_history[-1].spot_discount == discount and history.total_count >= 72

        train = (
            await sdk(
                "CreateTrainingJob",
                paistudio.create_training_job,
                studio.CreateTrainingJobRequest(
                    training_job_name="outputs",
                    workspace_id=workspace,
                    algorithm_spec=studio.AlgorithmSpec(
                        image=IMAGE, command=["/bin/sh", "-c", OUTPUT_PROGRAM], job_type="PyTorchJob"
                    ),
                    compute_resource=studio.CreateTrainingJobRequestComputeResource(ecs_spec="ecs.c6.large"),
                    hyper_parameters=[studio.CreateTrainingJobRequestHyperParameters(name="lr", value="0.1")],
                    labels=[studio.CreateTrainingJobRequestLabels(key="suite", value="compat")],
                ),
            )
        ).training_job_id
        await sdk(
            "UpdateTrainingJobLabels",
            paistudio.update_training_job_labels,
            train,
            studio.UpdateTrainingJobLabelsRequest(
                labels=[studio.UpdateTrainingJobLabelsRequestLabels(key="stage", value="dev")]
            ),
        )
        await sdk(
            "DeleteTrainingJobLabels",
            paistudio.delete_training_job_labels,
            train,
            studio.DeleteTrainingJobLabelsRequest(keys="suite"),
        )
        dlc_job = (await anyio.to_thread.run_sync(sb.sandbox.store.training_job, train)).dlc_job_id  # type: ignore[union-attr]
        await wait_for(sb, dlc_job, ("Succeeded",))
        training = await sdk("GetTrainingJob", paistudio.get_training_job, train)
        assert [(x.key, x.value) for x in training.labels] == [("stage", "dev")]
        assert [(h.name, h.value) for h in training.hyper_parameters] == [("lr", "0.1")]
        outputs = await sdk("ListTrainingJobOutputModels", paistudio.list_training_job_output_models, train)
        (model,) = outputs.output_models
        assert model.output_channel_name == "model" and model.uri.endswith("/outputs/model.bin")
        assert model.labels[0].key == "Name" and model.labels[0].value == "model.bin"
        expected = {
            "CreateJobTemplate", "UpdateJobTemplate", "SetJobTemplateDefaultVersion", "GetJobTemplate",
            "ListJobTemplates", "DeleteJobTemplate", "TagResources", "UntagResources", "ListTagResources",
            "GetSpotPriceHistory", "UpdateTrainingJobLabels", "DeleteTrainingJobLabels",
            "ListTrainingJobOutputModels",
        }  # fmt: skip
        assert expected <= set(sdk.checked)
        assert not any(c.code in ("SignatureDoesNotMatch", "IncompleteSignature") for c in sb.sandbox.calls)
