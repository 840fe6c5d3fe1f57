"""Wire compatibility with Huawei's official ModelArts SDK (``pip install -e ".[compat]"``; skipped without it).

The official, synchronous client is pointed at the sandbox the SDK's own way — the
``HUAWEICLOUD_SDK_REGION_MODELARTS_CN_NORTH_4`` endpoint override read by ``ModelArtsRegion.value_of`` — and
drives it from a worker thread: its signatures (it signs ``content-type`` even on GETs, ``user-agent`` and
``x-project-id``) must pass the sandbox's gateway, and its response models must read what the sandbox answers.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

ma = pytest.importorskip("huaweicloudsdkmodelarts.v1")
region_mod = pytest.importorskip("huaweicloudsdkmodelarts.v1.region.modelarts_region")
credentials_mod = pytest.importorskip("huaweicloudsdkcore.auth.credentials")
exceptions = pytest.importorskip("huaweicloudsdkcore.exceptions.exceptions")
http_config = pytest.importorskip("huaweicloudsdkcore.http.http_config")

from cloudjobs_mcp.server.sandbox.modelarts.runner import serve_modelarts  # noqa: E402
from cloudjobs_mcp.server.sandbox.settings import SandboxSettings  # noqa: E402
from tests.sandbox_fixtures import FAST_SANDBOX, until  # noqa: E402

pytestmark = pytest.mark.anyio
POOL = "pool-sandbox-train-0a1b2c3d4e5f6a7b8c9d0e1f"


async def test_the_official_modelarts_client_against_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings = SandboxSettings(state_dir=tmp_path / "sandbox", region="cn-north-4", **FAST_SANDBOX)
    async with serve_modelarts(settings) as sb:
        monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_MODELARTS_CN_NORTH_4", sb.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        region = region_mod.ModelArtsRegion.value_of("cn-north-4")
        assert region.endpoints == [sb.url]  # the SDK's own override, not its table
        creds = credentials_mod.BasicCredentials(
            sb.access_key.access_key_id, sb.access_key.access_key_secret, sb.project_id
        )
        config = http_config.HttpConfig.get_default_config()
        config.timeout = (5, 30)
        client = (
            ma.ModelArtsClient.new_builder()
            .with_credentials(creds)
            .with_region(region)
            .with_http_config(config)
            .build()
        )

        async def run(call: Any) -> Any:
            return await anyio.to_thread.run_sync(call)

        flavors = await run(
            lambda: client.show_training_job_flavors(ma.ShowTrainingJobFlavorsRequest(flavor_type="GPU"))
        )
        assert flavors.total_count == 2
        assert [f.flavor_id for f in flavors.flavors] == ["modelarts.vm.gpu.t4u8", "modelarts.p3.large.public"]
        assert flavors.flavors[0].flavor_info.gpu.unit_num == 1

        engines = await run(lambda: client.show_training_job_engines(ma.ShowTrainingJobEnginesRequest()))
        assert engines.total == len(engines.items) and engines.items[0].engine_name == "PyTorch"

        command = f"{shlex.quote(sys.executable)} -c \"print('hello from the official sdk')\""
        job = ma.Job(
            kind="job",
            metadata=ma.JobMetadata(name="sdk-compat-1", workspace_id="0", description="compat"),
            algorithm=ma.JobAlgorithm(
                command=command, engine=ma.JobEngine(image_url="org/train:1.0"), environments={"A": "1 2"}
            ),
            spec=ma.Spec(
                resource=ma.SpecResource(flavor_id="modelarts.vm.cpu.8u", node_count=2),
                auto_stop=ma.AutoStop(time_unit="HOURS", duration=1),
            ),
        )
        created = await run(lambda: client.create_training_job(ma.CreateTrainingJobRequest(body=job)))
        assert created.status_code == 201
        job_id = created.metadata.id
        assert created.status.phase == "Creating" and created.spec.resource.node_count == 2

        async def phase() -> str:
            shown = await run(
                lambda: client.show_training_job_details(ma.ShowTrainingJobDetailsRequest(training_job_id=job_id))
            )
            return str(shown.status.phase)

        assert await until(phase, "Completed", limit=30)
        shown = await run(
            lambda: client.show_training_job_details(ma.ShowTrainingJobDetailsRequest(training_job_id=job_id))
        )
        assert shown.status.tasks == ["worker-0", "worker-1"] and shown.algorithm.environments == [{"A": "1 2"}]

        found = await run(
            lambda: client.list_training_jobs(
                ma.ListTrainingJobsRequest(
                    body=ma.JobSearches(
                        offset=0,
                        limit=50,
                        filters=[ma.Filter(key="name", operator="like", value=["sdk-compat"])],
                    )
                )
            )
        )
        assert found.total == 1 and found.items[0].metadata.id == job_id

        events = await run(
            lambda: client.list_training_job_events(
                ma.ListTrainingJobEventsRequest(training_job_id=job_id, offset=0, limit=100, order="asc")
            )
        )
        assert events.total >= 4 and events.events[0].source == "Job"

        preview = await run(
            lambda: client.show_training_job_logs_preview(
                ma.ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id="worker-1")
            )
        )
        assert preview.content == "hello from the official sdk\n" and preview.full_size == preview.current_size

        with pytest.raises(exceptions.ClientRequestException) as caught:
            await run(
                lambda: client.stop_training_job(
                    ma.StopTrainingJobRequest(training_job_id=job_id, body=ma.JobActionType(action_type="terminate"))
                )
            )
        assert (caught.value.status_code, caught.value.error_code) == (409, "ModelArts.2796")

        pools = await run(lambda: client.list_pools(ma.ListPoolsRequest(workspace_id="0")))
        assert [p.metadata.name for p in pools.items] == [POOL, "pool-sandbox-infer-9f8e7d6c5b4a3f2e1d0c9b8a"]
        workloads = await run(
            lambda: client.list_workloads(ma.ListWorkloadsRequest(pool_name=POOL, type="infer", limit=10))
        )
        assert [w.type for w in workloads.items] == ["infer"] and workloads.items[0].pending_position == -1

        await run(lambda: client.delete_training_job(ma.DeleteTrainingJobRequest(training_job_id=job_id)))
        with pytest.raises(exceptions.ClientRequestException) as caught:
            await run(
                lambda: client.show_training_job_details(ma.ShowTrainingJobDetailsRequest(training_job_id=job_id))
            )
        assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.2775")
        signed = [c for c in sb.sandbox.calls if c.status < 300]
        assert {c.action for c in signed} >= {"CreateTrainingJob", "ListWorkloads", "DeleteTrainingJob"}
