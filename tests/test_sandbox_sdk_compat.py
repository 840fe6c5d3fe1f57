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
