"""The create body across platform builds: the seed-era ``resource``/``image``/``entryPoint`` and, after
2026-01-09, ``resources[]``/``images[]``/``entryPoints[]`` (a seed-shaped body is refused there with 400 "the
resources are empty"). Against both sandbox modes over loopback, and with respx at the HTTP boundary with
bodies shaped as the reference documents them (docs: /work/shared/reference/workload-platform.md §3.1)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import ProviderError
from cloudjobs_mcp.server.models import JobStatus
from cloudjobs_mcp.server.providers.workload import WorkloadProvider
from tests.sandbox_fixtures import FAST_POLICY, fast_sleep
from tests.test_workload_provider import create, finished, posts, request
from tests.workload_fixtures import FAST_RECONCILE, workload_provider, workload_sandbox

pytestmark = pytest.mark.anyio
BASE = "http://workload.test"
API = f"{BASE}/api/v1"
COMMAND = 'echo "rank=$RANK of $WORLD_SIZE"'
ENTRY = base64.b64encode(COMMAND.encode()).decode()


@pytest.mark.parametrize("head", [False, True], ids=["seed-era build", "build after 2026-01-09"])
async def test_a_job_runs_on_either_build_and_is_created_once(tmp_path: Path, head: bool) -> None:
    async with workload_sandbox(tmp_path, head_schema=head) as sb, workload_provider(sb, tmp_path) as p:
        job = await create(p, request(command=COMMAND, workers=2, tags={"cloudjobs-quote": "q-schema-1"}))
        assert list(sb.sandbox.workloads) == [job.job_id]  # one workload, whatever the build
        body = sb.sandbox.workloads[job.job_id].body
        if head:
            # The seed-era body was refused (400, nothing created) and the new shape sent once.
            assert posts(sb, "CreateWorkload") == 2
            assert body["resources"] == [
                {"cpu": "2", "memory": "8Gi", "replica": 2, "sharedMemory": "4Gi", "ephemeralStorage": "50Gi"}
            ]
            assert body["entryPoints"] == [ENTRY] and len(body["images"]) == 1
            assert not {"resource", "image", "entryPoint"} & set(body)
        else:
            assert posts(sb, "CreateWorkload") == 1
            assert body["resource"]["replica"] == 2 and body["entryPoint"] == ENTRY
        done = await finished(p, job.job_id)
        assert done.status == JobStatus.SUCCEEDED and done.worker_count == 2 and done.user_command == COMMAND
        assert done.image and done.image.startswith("harbor.sandbox.internal/")
        logs = [(await p.pod_logs(job.job_id, pod.pod_id)).lines for pod in done.pods]
        assert logs == [["rank=0 of 2"], ["rank=1 of 2"]]
        # The provider remembers the build: the next create sends the right shape at once.
        before = posts(sb, "CreateWorkload")
        again = await create(p, request(command="true", tags={"cloudjobs-quote": "q-schema-2"}))
        assert posts(sb, "CreateWorkload") == before + 1 and again.job_id in sb.sandbox.workloads


async def test_the_new_build_refuses_a_seed_shaped_body_as_the_platform_does(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path, head_schema=True) as sb:
        headers = {"authorization": f"Bearer {sb.sandbox.api_key}"}
        seed = {"displayName": "old-body", "workspaceId": "sandbox-cpu", "image": "a/b:1", "entryPoint": ENTRY,
                "resource": {"cpu": "2", "memory": "4Gi", "replica": 1}}  # fmt: skip
        async with httpx.AsyncClient(trust_env=False) as http:
            r = await http.post(f"{sb.url}/api/v1/workloads", headers=headers, json=seed)
        assert r.status_code == 400
        assert r.json()["errorCode"] == "Primus.00002"
        assert "the resources are empty" in r.json()["errorMessage"]
        assert not sb.sandbox.workloads


# -- respx: the platform's answers as the reference documents them -------------------------------------------
WORKSPACES = {"totalCount": 1, "items": [{"workspaceId": "team-a", "workspaceName": "team-a", "clusterId": "c1",
              "flavorId": "cpu-32c", "targetNodeCount": 4, "currentNodeCount": 4, "phase": "Running",
              "scopes": ["Train"]}]}  # fmt: skip
FLAVORS = {"totalCount": 1, "items": [{"flavorId": "cpu-32c", "cpu": {"product": "AMD EPYC 9554", "quantity": "32"},
           "memory": "128Gi"}]}  # fmt: skip
AVAIL = {"cpu": 30, "memory": 120 * 2**30, "ephemeral-storage": 800 * 2**30}
WEBHOOK_400 = {
    "errorCode": "Primus.00002",
    "errorMessage": 'admission webhook "vworkload.kb.io" denied the request: Bad request. '
    "[the resources are empty, the images are empty]",
}


def head_item(workload_id: str) -> dict[str, Any]:
    """GET /workloads/{id} of a build after 2026-01-09 (GetWorkloadResponse: resources[], images[], entryPoints[])."""
    return {
        "workloadId": workload_id, "workspaceId": "team-a", "displayName": "wl-test", "phase": "Pending",
        "description": "Created by cloudjobs-mcp. cloudjobs-tags: cloudjobs-quote=q-respx;", "userName": "alice",
        "resources": [{"replica": 1, "cpu": "2", "memory": "8Gi", "sharedMemory": "4Gi", "ephemeralStorage": "50Gi"}],
        "images": ["registry.example.org/ai/pytorch:2.5"], "entryPoints": [ENTRY],
        "creationTime": "2026-02-01T10:00:00",
        "startTime": "", "endTime": "", "duration": "", "queuePosition": 1, "groupVersionKind": {"kind": "PyTorchJob",
        "version": "v1"}, "timeout": 300, "avgGpuUsage": -1, "pods": [], "conditions": [], "env": {},
    }  # fmt: skip


def provider(tmp_path: Path, http: httpx.AsyncClient) -> WorkloadProvider:
    settings = Settings.from_env(
        {}, providers="workload", workload_url=BASE, workload_api_key="ak-" + "x" * 43, state_dir=tmp_path
    )
    return WorkloadProvider(
        settings, client=http, policy=FAST_POLICY, sleep=fast_sleep, reconcile_delays=FAST_RECONCILE
    )


def platform(router: respx.MockRouter, create: list[httpx.Response]) -> respx.Route:
    router.get(f"{API}/workspaces").respond(json=WORKSPACES)
    router.get(f"{API}/nodeflavors").respond(json=FLAVORS)
    router.get(f"{API}/nodeflavors/cpu-32c/avail").respond(json=AVAIL)
    router.get(f"{API}/workloads").respond(json={"totalCount": 0, "items": None})  # no workload has the quote yet
    router.get(url__regex=rf"{API}/workloads/wl-test-\w+").respond(json=head_item("wl-test-b2c4d"))
    return router.post(f"{API}/workloads").mock(side_effect=create)


async def test_respx_a_new_build_gets_the_new_shape_after_its_400_and_nothing_else_is_resent(tmp_path: Path) -> None:
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        created = platform(router, [httpx.Response(400, json=WEBHOOK_400),
                                    httpx.Response(200, json={"workloadId": "wl-test-b2c4d"})])  # fmt: skip
        p = provider(tmp_path, http)
        job = await create(p, request("team-a:cpu2", image="registry.example.org/ai/pytorch:2.5", command=COMMAND,
                                      tags={"cloudjobs-quote": "q-respx"}))  # fmt: skip
        assert job.job_id == "wl-test-b2c4d" and job.worker_count == 1 and job.user_command == COMMAND
        assert job.status == JobStatus.QUEUING
        first, second = (json.loads(c.request.content) for c in created.calls)
        assert first["resource"] == {"cpu": "2", "memory": "8Gi", "replica": 1} and first["entryPoint"] == ENTRY
        assert second["resources"] == [first["resource"]]
        assert second["images"] == ["registry.example.org/ai/pytorch:2.5"] and second["entryPoints"] == [ENTRY]
        assert {k: v for k, v in second.items() if k not in ("resources", "images", "entryPoints")} == {
            k: v for k, v in first.items() if k not in ("resource", "image", "entryPoint")
        }


async def test_respx_another_400_is_reported_and_never_resent(tmp_path: Path) -> None:
    refused = {"errorCode": "Primus.00002", "errorMessage": 'admission webhook "vworkload.kb.io" denied the request: '
               "Bad request. [the displayName(x) is invalid]"}  # fmt: skip
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        created = platform(router, [httpx.Response(400, json=refused)])
        with pytest.raises(ProviderError, match=r"HTTP 400 Primus.00002 \(bad request\).*displayName"):
            await create(
                provider(tmp_path, http), request("team-a:cpu2", image="a/b:1", tags={"cloudjobs-quote": "q-bad"})
            )
        assert created.call_count == 1


async def test_respx_a_lost_answer_to_the_new_shape_is_looked_up_not_sent_again(tmp_path: Path) -> None:
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        created = platform(router, [httpx.Response(400, json=WEBHOOK_400), httpx.ReadError("reset after sending")])
        found = {"totalCount": 1, "items": [head_item("wl-test-b2c4d")]}
        lookups = router.get(f"{API}/workloads").mock(  # the same route as platform()'s: its answers now
            side_effect=[httpx.Response(200, json={"totalCount": 0, "items": None}), httpx.Response(200, json=found)]
        )
        job = await create(
            provider(tmp_path, http), request("team-a:cpu2", image="a/b:1", tags={"cloudjobs-quote": "q-respx"})
        )
        assert job.job_id == "wl-test-b2c4d"
        assert created.call_count == 2 and lookups.call_count == 2  # seed body, new body (lost), found by quote
