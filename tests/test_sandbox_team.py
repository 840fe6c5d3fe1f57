"""The sandbox's team APIs at the wire level (signed calls): resource tags and training job labels, DLC job
templates, spot prices and spot jobs, training job output models and hyperparameters."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from cloudjobs_mcp.server.sandbox import catalog, spot
from tests.sandbox_fixtures import running_sandbox, signed_call, status_of, until

pytestmark = pytest.mark.anyio

DLC, STUDIO = "2020-12-03", "2022-01-12"
IMAGE = "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/pytorch:2.3-cpu-py311-ubuntu22.04"
PY = shlex.quote(sys.executable)


async def api(sb: Any, action: str, method: str, path: str, *, version: str = DLC, **kw: Any) -> dict[str, Any]:
    response = await signed_call(sb, action, method, path, version=version, **kw)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def refused(sb: Any, action: str, method: str, path: str, *, version: str = DLC, **kw: Any) -> tuple[int, str]:
    response = await signed_call(sb, action, method, path, version=version, **kw)
    assert response.status_code >= 400, response.text
    return response.status_code, str(response.json()["Code"])


def job_body(workspace: str, name: str, command: str = "sleep 30", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"Type": "Worker", "Image": IMAGE, "PodCount": 1, "EcsSpec": "ecs.c6.large"}
    spec.update(extra.pop("spec", {}))
    return {
        "DisplayName": name,
        "JobType": "PyTorchJob",
        "WorkspaceId": workspace,
        "UserCommand": command,
        "JobSpecs": [spec],
        **extra,
    }


async def test_tags_round_trip_and_list_jobs_filter_and_training_job_labels(tmp_path):
    async with running_sandbox(tmp_path) as sb:
        ws = sb.sandbox.create_workspace("ws_tags")
        body = job_body(ws, "tagged", Settings={"Tags": {"team": "vision"}})
        job = (await api(sb, "CreateJob", "POST", "/api/v1/jobs", body=body))["JobId"]
        other = (await api(sb, "CreateJob", "POST", "/api/v1/jobs", body=job_body(ws, "plain")))["JobId"]

        tag = {"RegionId": "cn-hangzhou", "ResourceType": "Job", "ResourceId": [job, other],
               "Tag": [{"Key": "owner", "Value": "ana"}]}  # fmt: skip
        assert set(await api(sb, "TagResources", "POST", "/api/v1/tags", body=tag)) == {"RequestId"}
        got = await api(sb, "GetJob", "GET", f"/api/v1/jobs/{job}")
        assert got["Settings"]["Tags"] == {"team": "vision", "owner": "ana"}

        async def listed(tags: dict[str, str]) -> set[str]:
            out = await api(sb, "ListJobs", "GET", "/api/v1/jobs", query={"Tags": json.dumps(tags)})
            return {j["JobId"] for j in out["Jobs"]}

        assert await listed({"owner": "ana"}) == {job, other}
        assert await listed({"owner": "ana", "team": "vision"}) == {job}

        query = {"RegionId": "cn-hangzhou", "ResourceType": "Job", "ResourceId": json.dumps([job])}
        for version in (DLC, STUDIO):  # the same tags under both products' versions
            rows = (await api(sb, "ListTagResources", "GET", "/api/v1/tags", version=version, query=query))[
                "TagResources"
            ]
            assert rows == [
                {"ResourceId": job, "ResourceType": "Job", "TagKey": "owner", "TagValue": "ana"},
                {"ResourceId": job, "ResourceType": "Job", "TagKey": "team", "TagValue": "vision"},
            ]
        by_tag = await api(
            sb, "ListTagResources", "GET", "/api/v1/tags", version=STUDIO,
            query={"ResourceType": "Job", "Tag": json.dumps([{"Key": "team"}])},
        )  # fmt: skip
        assert {r["ResourceId"] for r in by_tag["TagResources"]} == {job} and by_tag["NextToken"] == ""

        untag = {"ResourceType": "Job", "ResourceId": json.dumps([job, other]), "TagKey": json.dumps(["owner"])}
        await api(sb, "UntagResources", "DELETE", "/api/v1/tags", query=untag)
        assert await listed({"owner": "ana"}) == set()
        assert await listed({"team": "vision"}) == {job}
        await api(sb, "UntagResources", "DELETE", "/api/v1/tags", query={"ResourceType": "Job",
                  "ResourceId": json.dumps([job]), "All": "true"})  # fmt: skip
        assert (await api(sb, "GetJob", "GET", f"/api/v1/jobs/{job}"))["Settings"]["Tags"] == {}

        assert await refused(sb, "TagResources", "POST", "/api/v1/tags", body={**tag, "ResourceId": ["dlc-nope"]}) == (
            404,
            "JobNotFound",
        )
        bad = {**tag, "Tag": [{"Key": "acs:owner", "Value": "x"}]}
        assert (await refused(sb, "TagResources", "POST", "/api/v1/tags", body=bad))[0] == 400

        # PaiStudio labels
        train = await anyio.to_thread.run_sync(
            lambda: sb.sandbox.create_training_job("labelled", "sleep 30", workspace_id=ws, labels={"a": "1"})
        )
        path = f"/api/v1/trainingjobs/{train}/labels"
        labels = {"Labels": [{"Key": "a", "Value": "2"}, {"Key": "stage", "Value": "dev"}]}
        assert set(await api(sb, "UpdateTrainingJobLabels", "POST", path, version=STUDIO, body=labels)) == {"RequestId"}
        got = await api(sb, "GetTrainingJob", "GET", f"/api/v1/trainingjobs/{train}", version=STUDIO)
        assert got["Labels"] == [{"Key": "a", "Value": "2"}, {"Key": "stage", "Value": "dev"}]
        found = await api(
            sb, "ListTrainingJobs", "GET", "/api/v1/trainingjobs", version=STUDIO,
            query={"Labels": json.dumps({"stage": "dev"})},
        )  # fmt: skip
        assert [t["TrainingJobId"] for t in found["TrainingJobs"]] == [train]
        assert found["TrainingJobs"][0]["Labels"][-1] == {"Key": "stage", "Value": "dev"}
        await api(sb, "DeleteTrainingJobLabels", "DELETE", path, version=STUDIO, query={"Keys": "stage,zzz"})
        got = await api(sb, "GetTrainingJob", "GET", f"/api/v1/trainingjobs/{train}", version=STUDIO)
        assert got["Labels"] == [{"Key": "a", "Value": "2"}]
        missing = "/api/v1/trainingjobs/trainnothere00/labels"
        assert await refused(sb, "UpdateTrainingJobLabels", "POST", missing, version=STUDIO, body=labels) == (
            404,
            "TRAINING_JOB_NOT_FOUND",
        )


async def test_job_templates_versions_default_and_create_job_from_one(tmp_path):
    async with running_sandbox(tmp_path) as sb:
        ws = sb.sandbox.create_workspace("ws_tpl")
        v1 = job_body(ws, "from-template", Envs={"A": "1", "B": "1"})
        create = {
            "TemplateName": "trainer",
            "WorkspaceId": ws,
            "Description": "the team's trainer",
            "Metadata": {"owner": "ana"},
            "Content": json.dumps(v1),
            "Constraints": {"JobSpecs[0].EcsSpec": "locked"},  # the seed writes paths without "$."
        }
        made = await api(sb, "CreateJobTemplate", "POST", "/api/v1/jobtemplates", body=create)
        tid = made["TemplateId"]
        assert (made["Version"], made["DefaultVersion"], made["TemplateName"]) == (1, 1, "trainer")
        v2 = job_body(ws, "from-template-v2", Envs={"A": "2"}, spec={"EcsSpec": "ecs.c6.xlarge"})
        update = {"Content": json.dumps(v2), "Constraints": {"$.DisplayName": "required"}}
        updated = await api(sb, "UpdateJobTemplate", "PUT", f"/api/v1/jobtemplates/{tid}", body=update)
        assert (updated["Version"], updated["DefaultVersion"], updated["VersionCreated"]) == (2, 1, True)
        renamed = await api(sb, "UpdateJobTemplate", "PUT", f"/api/v1/jobtemplates/{tid}",
                            body={"Description": "v2 is bigger"})  # fmt: skip
        assert (renamed["Version"], renamed["VersionCreated"]) == (2, False)

        default = await api(sb, "GetJobTemplate", "GET", f"/api/v1/jobtemplates/{tid}")
        assert [v["Version"] for v in default["Versions"]] == [1] and default["TotalCount"] == 1
        full = await api(sb, "GetJobTemplate", "GET", f"/api/v1/jobtemplates/{tid}", query={"Version": "all"})
        assert [v["Version"] for v in full["Versions"]] == [2, 1] and full["TotalCount"] == 2
        assert full["Versions"][1]["Content"] == v1
        assert full["Versions"][1]["Constraints"] == {"JobSpecs[0].EcsSpec": "locked"}
        assert full["Description"] == "v2 is bigger" and full["Metadata"] == {"owner": "ana"}
        assert "LastUsedTime" not in full
        one = await api(sb, "GetJobTemplate", "GET", f"/api/v1/jobtemplates/{tid}", query={"Version": "2"})
        assert [v["Version"] for v in one["Versions"]] == [2] and one["TotalCount"] == 1

        # CreateJob from the default (v1): EcsSpec is locked, Envs merge key by key.
        job = (
            await api(sb, "CreateJob", "POST", "/api/v1/jobs",
                      body={"TemplateId": tid, "WorkspaceId": ws, "Envs": {"B": "mine"}})
        )["JobId"]  # fmt: skip
        got = await api(sb, "GetJob", "GET", f"/api/v1/jobs/{job}")
        assert got["Envs"] == {"A": "1", "B": "mine"} and got["DisplayName"] == "from-template"
        assert "TemplateId" not in got  # GetJob's model has no template fields; ListJobs' JobItem has
        listed = await api(sb, "ListJobs", "GET", "/api/v1/jobs", query={"TemplateId": tid})
        assert (listed["Jobs"][0]["TemplateId"], listed["Jobs"][0]["TemplateName"]) == (tid, "trainer")
        record = await anyio.to_thread.run_sync(sb.sandbox.store.job, job)
        assert record is not None and record.body["TemplateVersion"] == 1
        locked = {"TemplateId": tid, "JobSpecs": [{**v1["JobSpecs"][0], "EcsSpec": "ecs.c6.2xlarge"}]}
        assert await refused(sb, "CreateJob", "POST", "/api/v1/jobs", body=locked) == (400, "InvalidParameter")

        set_default = {"Version": 2}
        assert (
            await api(sb, "SetJobTemplateDefaultVersion", "PUT", f"/api/v1/jobtemplates/{tid}/defaultversion",
                      body=set_default)
        )["DefaultVersion"] == 2  # fmt: skip
        assert await refused(sb, "CreateJob", "POST", "/api/v1/jobs", body={"TemplateId": tid}) == (
            400,
            "InvalidParameter",
        )  # v2 requires DisplayName
        job2 = (await api(sb, "CreateJob", "POST", "/api/v1/jobs", body={"TemplateId": tid, "DisplayName": "x2"}))[
            "JobId"
        ]
        got2 = await api(sb, "GetJob", "GET", f"/api/v1/jobs/{job2}")
        assert got2["JobSpecs"][0]["EcsSpec"] == "ecs.c6.xlarge" and got2["Envs"] == {"A": "2"}
        pinned = {"TemplateId": tid, "TemplateVersion": 1}
        job3 = (await api(sb, "CreateJob", "POST", "/api/v1/jobs", body=pinned))["JobId"]
        assert (await api(sb, "GetJob", "GET", f"/api/v1/jobs/{job3}"))["JobSpecs"][0]["EcsSpec"] == "ecs.c6.large"
        assert await refused(sb, "CreateJob", "POST", "/api/v1/jobs", body={**pinned, "TemplateVersion": 9}) == (
            404,
            "JobTemplateVersionNotFound",
        )

        await api(sb, "CreateJobTemplate", "POST", "/api/v1/jobtemplates",
                  body={**create, "TemplateName": "other", "Content": json.dumps(v2)})  # fmt: skip
        templates = await api(sb, "ListJobTemplates", "GET", "/api/v1/jobtemplates", query={"WorkspaceId": ws})
        assert [t["TemplateName"] for t in templates["JobTemplates"]] == ["other", "trainer"]
        assert templates["TotalCount"] == 2 and templates["PageNumber"] == 1
        by_name = await api(sb, "ListJobTemplates", "GET", "/api/v1/jobtemplates", query={"TemplateName": "TRAIN"})
        assert [t["TemplateId"] for t in by_name["JobTemplates"]] == [tid]
        assert by_name["JobTemplates"][0]["DefaultVersion"] == 2 and by_name["JobTemplates"][0]["LastUsedTime"]

        assert (await api(sb, "DeleteJobTemplate", "DELETE", f"/api/v1/jobtemplates/{tid}"))["TemplateId"] == tid
        assert await refused(sb, "GetJobTemplate", "GET", f"/api/v1/jobtemplates/{tid}") == (404, "JobTemplateNotFound")
        await sb.sandbox.stop_all()


async def test_spot_prices_history_and_a_spot_job_reclaimed(tmp_path):
    async with running_sandbox(tmp_path) as sb:
        ws = sb.sandbox.create_workspace("ws_spot")
        gpu = "ecs.gn6i-c4g1.xlarge"
        specs = await api(sb, "ListEcsSpecs", "GET", "/api/v1/ecsspecs", query={"PageSize": "100"})
        item = next(s for s in specs["EcsSpecs"] if s["InstanceType"] == gpu)
        now = time.time()
        assert item["NonProtectSpotDiscount"] == spot.discount_at(gpu, now)
        assert 0.2 <= item["NonProtectSpotDiscount"] <= 0.4 and item["SpotStockStatus"] in ("WithStock", "LowStock")
        sold_out = next(s for s in specs["EcsSpecs"] if not s["IsAvailable"])
        assert sold_out["SpotStockStatus"] == "NoStock"

        path = f"/api/v1/spots/{gpu}/pricehistory"
        history = await api(sb, "GetSpotPriceHistory", "GET", path, version=STUDIO)
        points = history["SpotPriceHistory"]
        assert history["TotalCount"] == len(points) in (72, 73)
        assert all(p["InstanceType"] == gpu and p["ZoneId"] == "cn-hangzhou-k" for p in points)
        assert all(0.2 <= p["SpotDiscount"] <= 0.4 for p in points)
        assert len({p["SpotDiscount"] for p in points}) > 10  # it varies by the hour
        assert points[-1]["SpotDiscount"] == item["NonProtectSpotDiscount"]
        window = {"StartTime": "2026-01-01T00:00:00Z", "EndTime": "2026-01-01T05:00:00Z"}
        day = await api(sb, "GetSpotPriceHistory", "GET", path, version=STUDIO, query=window)
        again = await api(sb, "GetSpotPriceHistory", "GET", path, version=STUDIO, query=window)
        assert day["SpotPriceHistory"] == again["SpotPriceHistory"] and day["TotalCount"] == 6  # deterministic
        assert day["SpotPriceHistory"][0]["Timestamp"] == "2026-01-01T00:00:00Z"
        protected = await api(sb, "GetSpotPriceHistory", "GET", path, version=STUDIO,
                              query={**window, "SpotDuration": "1"})  # fmt: skip
        assert all(
            round(b["SpotDiscount"] - a["SpotDiscount"], 4) == spot.PROTECTED_PREMIUM
            for a, b in zip(day["SpotPriceHistory"], protected["SpotPriceHistory"], strict=True)
        )
        assert (await refused(sb, "GetSpotPriceHistory", "GET", "/api/v1/spots/ecs.nope/pricehistory",
                              version=STUDIO))[0] == 400  # fmt: skip
        price = await api(
            sb, "DescribePrice", "POST", "/", version="2014-05-26",
            query={"RegionId": "cn-hangzhou", "InstanceType": gpu, "SpotStrategy": "SpotAsPriceGo"},
        )  # fmt: skip
        listed = catalog.spec_by_type(gpu)
        assert listed is not None
        expected = round(listed.price_per_hour * spot.discount_at(gpu, time.time()), 4)
        assert price["PriceInfo"]["Price"]["TradePrice"] == pytest.approx(expected, abs=0.01)

        sb.faults.spot_reclaim(0.3, spot_only=True)
        sleeper = f"{PY} -c 'import time; time.sleep(20)'"
        spot_spec = {
            "UseSpotInstance": True,
            "SpotSpec": {"SpotStrategy": "SpotWithPriceLimit", "SpotDiscountLimit": 0.5},
        }
        reclaimed = (
            await api(sb, "CreateJob", "POST", "/api/v1/jobs", body=job_body(ws, "spot", sleeper, spec=spot_spec))
        )["JobId"]
        steady = (await api(sb, "CreateJob", "POST", "/api/v1/jobs", body=job_body(ws, "on-demand", sleeper)))["JobId"]
        await until(lambda: status_of(sb, reclaimed), "Failed")
        got = await api(sb, "GetJob", "GET", f"/api/v1/jobs/{reclaimed}")
        assert got["ReasonCode"] == "SpotInstanceReclaimed" and "spot instance" in got["ReasonMessage"]
        assert got["JobSpecs"][0]["UseSpotInstance"] is True and got["JobSpecs"][0]["SpotSpec"] == spot_spec["SpotSpec"]
        listed_jobs = await api(sb, "ListJobs", "GET", "/api/v1/jobs", query={"JobId": reclaimed})
        assert listed_jobs["Jobs"][0]["JobSpecs"][0]["UseSpotInstance"] is True
        events = (await api(sb, "GetJobEvents", "GET", f"/api/v1/jobs/{reclaimed}/events"))["Events"]
        assert any("spot (preemptible) instances" in e and "SpotWithPriceLimit" in e for e in events)
        assert any("interruption notice" in e for e in events) and any("reclaimed" in e for e in events)
        assert await status_of(sb, steady) == "Running"  # spot_only: the on-demand job keeps running
        bad = job_body(ws, "bad-spot", spec={"UseSpotInstance": True, "SpotSpec": {"SpotStrategy": "Cheap"}})
        assert (await refused(sb, "CreateJob", "POST", "/api/v1/jobs", body=bad))[0] == 400
        await sb.sandbox.stop_all()


PROGRAM = """
import json, os, pathlib
print("hp", os.environ["HP_LEARNING_RATE"], os.environ["HP_EPOCHS"], flush=True)
hps = json.loads(pathlib.Path(os.environ["CLOUDJOBS_HYPERPARAMETERS_FILE"]).read_text())
print("file", hps["learning-rate"], hps["epochs"], "env", json.loads(os.environ["PAI_HPS"])["epochs"], flush=True)
out = pathlib.Path(os.environ["CLOUDJOBS_OUTPUT_DIR"])
(out / "model.bin").write_bytes(b"w" * 10)
ckpt = pathlib.Path(os.environ["PAI_OUTPUT_CHECKPOINTS"])
(ckpt / "step-1.pt").write_text("ckpt")
print("loss 0.5", flush=True)
"""


async def test_hyperparameters_reach_a_training_program_and_its_output_models(tmp_path):
    async with running_sandbox(tmp_path) as sb:
        ws = sb.sandbox.create_workspace("ws_out")
        script = tmp_path / "train.py"
        script.write_text(PROGRAM)
        body = {
            "TrainingJobName": "writes-outputs",
            "WorkspaceId": ws,
            "AlgorithmSpec": {
                "Image": IMAGE,
                "Command": [sys.executable, str(script)],
                "JobType": "PyTorchJob",
                "MetricDefinitions": [{"Name": "loss", "Regex": r"loss ([0-9.]+)"}],
            },
            "ComputeResource": {"EcsSpec": "ecs.c6.large", "EcsCount": 1},
            "HyperParameters": [{"Name": "learning-rate", "Value": "0.01"}, {"Name": "epochs", "Value": "3"}],
            "OutputChannels": [{"Name": "checkpoints", "OutputUri": "oss://bucket/ckpt/"}],
        }
        train = (await api(sb, "CreateTrainingJob", "POST", "/api/v1/trainingjobs", version=STUDIO, body=body))[
            "TrainingJobId"
        ]
        await until(lambda: status_of(sb, train), "Succeeded")
        got = await api(sb, "GetTrainingJob", "GET", f"/api/v1/trainingjobs/{train}", version=STUDIO)
        assert got["HyperParameters"] == body["HyperParameters"]
        logs = await api(sb, "ListTrainingJobLogs", "GET", f"/api/v1/trainingjobs/{train}/logs", version=STUDIO)
        assert logs["Logs"] == ["hp 0.01 3", "file 0.01 3 env 3", "loss 0.5"]

        outputs = await api(
            sb, "ListTrainingJobOutputModels", "GET", f"/api/v1/trainingjobs/{train}/outputmodels", version=STUDIO
        )
        models = outputs["OutputModels"]
        assert [(m["OutputChannelName"], m["Labels"][0]["Value"]) for m in models] == [
            ("checkpoints", "checkpoints/step-1.pt"),
            ("model", "model.bin"),
        ]
        first = Path(urlsplit(models[1]["Uri"]).path)
        assert (
            await anyio.to_thread.run_sync(first.read_bytes) == b"w" * 10
            and {"Key": "SizeBytes", "Value": "10"} in models[1]["Labels"]
        )
        assert models[1]["SourceType"] == "TrainingService" and f"id={train}" in models[1]["SourceId"]
        assert models[1]["Metrics"] == {"loss": 0.5}

        clash = {**body, "TrainingJobName": "clash", "Environments": {"HP_EPOCHS": "9"}}
        assert (await refused(sb, "CreateTrainingJob", "POST", "/api/v1/trainingjobs", version=STUDIO, body=clash))[
            0
        ] == 400

        # DLC jobs: the provider's HP_* / CLOUDJOBS_HYPERPARAMETERS Envs reach the pods and come back in GetJob.
        envs = {"HP_LR": "0.1", "CLOUDJOBS_HYPERPARAMETERS": json.dumps({"lr": "0.1"})}
        command = f'{PY} -c \'import os; print(os.environ["HP_LR"], os.environ["CLOUDJOBS_HYPERPARAMETERS"])\''
        job = (await api(sb, "CreateJob", "POST", "/api/v1/jobs", body=job_body(ws, "dlc-hp", command, Envs=envs)))[
            "JobId"
        ]
        await until(lambda: status_of(sb, job), "Succeeded")
        got_job = await api(sb, "GetJob", "GET", f"/api/v1/jobs/{job}")
        assert got_job["Envs"] == envs
        pod = got_job["Pods"][0]["PodId"]
        pod_logs = await api(sb, "GetPodLogs", "GET", f"/api/v1/jobs/{job}/pods/{pod}/logs")
        assert pod_logs["Logs"] == ['0.1 {"lr": "0.1"}']

        dlc_job = (await anyio.to_thread.run_sync(sb.sandbox.store.training_job, train)).dlc_job_id  # type: ignore[union-attr]
        view = await sb.sandbox.job_view(dlc_job)
        assert view is not None
        await anyio.to_thread.run_sync(sb.sandbox.delete_dlc_job, view)
        assert not sb.sandbox.outputs_dir(dlc_job).exists()
