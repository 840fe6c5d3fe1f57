"""The whole workflow through the MCP client on the pai provider, with PAI mocked at the HTTP boundary.

respx plays a small stateful PAI-DLC: bodies are shaped as alibaba-pai-wire.md documents them, and every
request it receives must carry a valid ACS3 signature.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

import httpx
import pytest
import respx

from cloudjobs_mcp.server.providers.pai.credentials import Credentials
from cloudjobs_mcp.server.providers.pai.provider import PaiProvider
from tests import pai_fixtures as fx
from tests.conftest import Asker, call, call_error, connect, create_args, make_settings, quote, wait_done

pytestmark = pytest.mark.anyio

SECRET = "Sup3rSecretAccessKeyValue0000000"
TOKEN = "CAIS-sts-token-that-must-never-show"


class FakeDlc:
    """Just enough PAI-DLC state for one workflow: jobs progress Queuing → Running → final status."""

    def __init__(self, final: str = "Succeeded") -> None:
        self.final = final
        self.jobs: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.creates = 0
        self.ids = itertools.count(1)
        self.unsigned: list[str] = []

    def check(self, request: httpx.Request) -> None:
        if not fx.verify_signed(request, SECRET):
            self.unsigned.append(f"{request.method} {request.url.path}")
        assert request.headers["x-acs-security-token"] == TOKEN

    def route(self, request: httpx.Request) -> httpx.Response:
        self.check(request)
        action = request.headers["x-acs-action"]
        q = fx.query_of(request)
        if action == "ListEcsSpecs":
            return fx.json_response(
                {"RequestId": "r", "TotalCount": 2, "EcsSpecs": [fx.ecs_spec("ecs.c6.large"), fx.ecs_spec(
                    "ecs.gn6i-c4g1.xlarge", "GPU", **fx.T4)]}
            )  # fmt: skip
        if action == "ListImages":
            accl = fx.CPU_IMAGE.replace("pytorch:", "pytorch:accl-")
            images = [
                fx.image(accl.rsplit("/", 1)[1], accl, "2024-06-01T00:00:00Z", "CPU"),
                fx.image(fx.CPU_IMAGE.rsplit("/", 1)[1], fx.CPU_IMAGE, "2024-05-01T00:00:00Z", "CPU"),
            ]
            return fx.json_response({"RequestId": "r", "TotalCount": 2, "Images": images})
        if action == "ListWorkspaces":
            return fx.json_response({"RequestId": "r", "TotalCount": 1, "Workspaces": [fx.workspace("268")]})
        if action == "DescribePrice":
            return fx.json_response(fx.price_body(0.17))
        if action == "CreateJob":
            self.creates += 1
            body = fx.body_of(request)
            job_id = f"dlc-2024{next(self.ids):010d}"
            self.jobs[job_id] = body
            return fx.json_response({"JobId": job_id, "RequestId": "r-create"})
        if action == "ListJobs":
            tags = json.loads(q.get("Tags", "{}"))
            items = [
                fx.job_item(jid, self.status(jid, poll=False), tags=b["Settings"]["Tags"])
                for jid, b in self.jobs.items()
                if all(b["Settings"]["Tags"].get(k) == v for k, v in tags.items())
            ]
            return fx.json_response(fx.list_jobs_body(items))
        job_id = request.url.path.split("/")[4]
        if job_id not in self.jobs:
            return fx.error_response("JobNotFound", f"job {job_id} not found", 404)
        body = self.jobs[job_id]
        if action == "GetJob":
            status = self.status(job_id)
            pods = [fx.pod(job_id, i) for i in range(body["JobSpecs"][0]["PodCount"])]
            return fx.json_response(
                fx.get_job_body(
                    job_id, status, name=body["DisplayName"], tags=body["Settings"]["Tags"], pods=pods,
                    spec=body["JobSpecs"][0]["EcsSpec"], workers=body["JobSpecs"][0]["PodCount"],
                    JobMaxRunningTimeMinutes=body["JobMaxRunningTimeMinutes"],
                    ReasonMessage="Traceback: ZeroDivisionError" if status == "Failed" else "",
                )
            )  # fmt: skip
        if action == "GetPodLogs":
            pod_id = request.url.path.split("/")[6]
            lines = [f"{pod_id} step {i} loss {1 / (i + 1):.3f}" for i in range(5)]
            lines.append(f"debug: the job printed the caller's secret {SECRET} and token {TOKEN}")
            if self.final == "Failed":
                lines += ["Traceback (most recent call last):", "ZeroDivisionError: division by zero"]
            return fx.json_response({"JobId": job_id, "PodId": pod_id, "Logs": lines, "RequestId": "r"})
        if action == "GetPodEvents":
            pod_id = request.url.path.split("/")[6]
            events = [f"2024-01-01 00:00:0{i} {text}" for i, text in enumerate(["Scheduled", "Started container"])]
            return fx.json_response({"JobId": job_id, "PodId": pod_id, "Events": events, "RequestId": "r"})
        if action == "GetJobEvents":
            events = [f"2024-01-01 00:00:00 Created pod: {job_id}-worker-0"]
            return fx.json_response({"JobId": job_id, "Events": events, "RequestId": "r"})
        if action == "ListJobSanityCheckResults":
            return fx.json_response({"RequestID": "r", "TotalCount": 0, "SanityCheckResults": []})
        if action == "GetJobMetrics":
            return fx.json_response({"JobId": job_id, "PodMetrics": [], "RequestId": "r"})
        if action == "StopJob":
            self.final = "Stopped"
            return fx.json_response({"JobId": job_id, "RequestId": "r"})
        if action == "DeleteJob":
            del self.jobs[job_id]
            return fx.json_response({"JobId": job_id, "RequestId": "r"})
        raise AssertionError(f"unexpected action {action}")

    def status(self, job_id: str, poll: bool = True) -> str:
        n = self.polls.get(job_id, 0)
        if poll:
            self.polls[job_id] = n + 1
        return ["Queuing", "Running", "Running"][n] if n < 3 else self.final


def pai_server(tmp_path, dlc: FakeDlc, **overrides: Any):
    settings = make_settings(tmp_path, provider="pai", region="cn-hangzhou", **overrides)
    provider = PaiProvider(settings, Credentials("STS.testid", SECRET, security_token=TOKEN), env={})
    return settings, provider


@pytest.fixture
def fake():
    dlc = FakeDlc()
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host__regex=r".*\.aliyuncs\.com").mock(side_effect=dlc.route)
        yield dlc


async def test_full_workflow_on_pai(tmp_path, fake, caplog):
    caplog.set_level(logging.DEBUG)
    settings, provider = pai_server(tmp_path, fake)
    asker = Asker()
    seen: list[str] = []
    async with connect(settings, asker=asker, provider=provider) as client:
        specs = await call(client, "list_ecs_specs", {"accelerator_type": "CPU"})
        assert [s["instance_type"] for s in specs["specs"]] == ["ecs.c6.large"]
        image = await call(client, "resolve_image", {"job_type": "PyTorchJob", "chip_type": "CPU"})
        assert image["uri"] == fx.CPU_IMAGE  # the standard image wins over the newer accl one
        q = await quote(client, "ecs.c6.large", workers=2, minutes=30, max_minutes=90)
        assert q["currency"] == "CNY" and q["per_worker_hourly"] == pytest.approx(0.17)
        assert q["total_hourly"] == pytest.approx(0.34) and q["worst_case_total"] == pytest.approx(0.51)
        assert "PAI-DLC cost estimate:" in q["display_text"] and "CNY 0.17/hour" in q["display_text"]
        created = await call(
            client, "create_training_job", create_args("ecs.c6.large", q["quote_id"], "python train.py", 2)
        )
        assert "CNY 0.34/hour" in asker.questions[0] and "at most CNY 0.51" in asker.questions[0]
        job_id = created["job"]["job_id"]
        sent = fake.jobs[job_id]
        assert sent["JobMaxRunningTimeMinutes"] == 90 and sent["WorkspaceId"] == "268"
        assert sent["JobSpecs"][0]["Image"] == fx.CPU_IMAGE and sent["JobSpecs"][0]["PodCount"] == 2
        assert sent["Settings"]["Tags"]["cloudjobs-quote"] == q["quote_id"]
        again = await call(
            client, "create_training_job", create_args("ecs.c6.large", q["quote_id"], "python train.py", 2)
        )
        assert again["reused"] is True and again["job"]["job_id"] == job_id and fake.creates == 1
        done = await wait_done(client, job_id)
        assert done["outcome"] == "succeeded"
        logs = await call(client, "get_job_logs", {"job_id": job_id})
        assert {p["pod_id"] for p in logs["pods"]} == {f"{job_id}-worker-0", f"{job_id}-worker-1"}
        assert "the caller's secret **** and token ****" in logs["pods"][0]["lines"][-1]
        cleanup = await call(client, "cleanup_jobs", {"status": "Succeeded", "delete": True, "dry_run": False})
        assert [a["action"] for a in cleanup["actions"]] == ["deleted"] and fake.jobs == {}
        seen.extend(json.dumps(x) for x in (specs, image, q, created, again, done, logs, cleanup))
        seen.append(await call_error(client, "get_job", {"job_id": "dlc-missing"}))
    assert fake.unsigned == []
    for text in [*seen, caplog.text]:
        assert SECRET not in text and TOKEN not in text


async def test_failed_job_on_pai_reports_reason_and_log_tail(tmp_path, fake):
    fake.final = "Failed"
    settings, provider = pai_server(tmp_path, fake)
    async with connect(settings, asker=Asker(), provider=provider) as client:
        q = await quote(client, "ecs.c6.large")
        created = await call(client, "create_training_job", create_args("ecs.c6.large", q["quote_id"], "python t.py"))
        done = await wait_done(client, created["job"]["job_id"])
        assert done["outcome"] == "failed" and "ZeroDivisionError" in done["reason"]
        assert done["failure"]["log_tail"][-1] == "ZeroDivisionError: division by zero"
        assert done["failure"]["error_block"][-1] == "ZeroDivisionError: division by zero"
        assert done["failure"]["verdict"] == "user_code"
        assert any("Started container" in e for e in done["failure"]["events"])


async def test_ram_permission_error_names_the_action(tmp_path):
    settings, provider = pai_server(tmp_path, FakeDlc())
    with respx.mock() as mock:
        mock.route(host__regex=r".*\.aliyuncs\.com").mock(
            return_value=fx.error_response(
                "Forbidden.RAM", "User not authorized to operate on the specified resource.", 403
            )
        )
        async with connect(settings, provider=provider) as client:
            text = await call_error(client, "list_ecs_specs", {})
    assert "ListEcsSpecs" in text and "RAM" in text and "req-Forbidden.RAM" in text
    assert SECRET not in text
