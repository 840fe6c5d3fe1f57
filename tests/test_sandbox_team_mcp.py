"""Labels, templates, spot and training-job outputs through the MCP client on the pai provider, against a
real sandbox on loopback."""

from __future__ import annotations

import shlex
import sys

import anyio
import pytest

from tests.conftest import Asker, call, call_error, create_args, quote
from tests.sandbox_fixtures import pai_client, running_sandbox

pytestmark = pytest.mark.anyio
SPEC = "ecs.c6.large"
PY = shlex.quote(sys.executable)


async def wait(client, job_id: str) -> dict:
    while True:
        result = await call(client, "wait_job_complete", {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 20})
        if result["done"]:
            return result


async def test_labels_on_dlc_jobs_and_the_protected_ones(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        q = await quote(client, SPEC)
        job_id = (await call(client, "create_training_job", create_args(SPEC, q["quote_id"], "echo hi")))["job"][
            "job_id"
        ]
        labeled = await call(client, "label_job", {"job_id": job_id, "labels": {"team": "vision"}})
        assert labeled["tags"]["team"] == "vision" and labeled["tags"]["cloudjobs-quote"] == q["quote_id"]
        found = await call(client, "list_jobs", {"labels": {"team": "vision"}})
        assert [j["job_id"] for j in found["jobs"]] == [job_id]
        text = await call_error(client, "unlabel_job", {"job_id": job_id, "keys": ["cloudjobs-quote"]})
        assert "belong to the server" in text
        left = await call(client, "unlabel_job", {"job_id": job_id, "keys": ["team", "owner"]})
        assert "team" not in left["tags"] and left["tags"]["cloudjobs-mcp"] == "true"
        assert left["not_found"] == ["owner"] and left["note"] == 'label "owner" not found.'
        untags = sum(c.action == "UntagResources" for c in sb.sandbox.calls)
        nothing = await call(client, "unlabel_job", {"job_id": job_id, "keys": ["owner"]})
        assert nothing["not_found"] == ["owner"] and nothing["tags"] == left["tags"]
        assert sum(c.action == "UntagResources" for c in sb.sandbox.calls) == untags  # nothing to send


async def test_a_dlc_job_template_with_constraints(tmp_path):
    program = "import os; print('lr', os.environ['HP_LR'])"
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path, asker=Asker()) as client:
        saved = await call(
            client,
            "save_job_template",
            {
                "name": "dlc-nightly",
                "config": {"user_command": f"{PY} -c {shlex.quote(program)}", "job_type": "PyTorchJob",
                           "ecs_spec": SPEC, "worker_count": 1, "max_runtime_minutes": 30},
                "constraints": {"$.ecs_spec": "locked", "$.hyperparameters.lr": "required"},
            },
        )  # fmt: skip
        assert saved["source"] == "PAI-DLC job templates" and saved["version"] == 1
        tid = saved["template_id"]
        locked = await call_error(
            client, "estimate_cost", {"template_id": tid, "ecs_spec": "ecs.c6.xlarge", "estimated_minutes": 1}
        )
        assert "locked by the template" in locked
        q = await call(client, "estimate_cost", {"template_id": tid, "estimated_minutes": 1})
        assert q["ecs_spec"] == SPEC and q["per_worker_hourly"] == pytest.approx(0.17)
        missing = await call_error(client, "create_training_job", {"template_id": tid, "quote_id": q["quote_id"]})
        assert "$.hyperparameters.lr" in missing.lower()
        args = {"template_id": tid, "quote_id": q["quote_id"], "hyperparameters": {"lr": "0.01"}}
        created = (await call(client, "create_training_job", args))["job"]
        job = await call(client, "get_job", {"job_id": created["job_id"]})
        assert job["hyperparameters"] == {"lr": "0.01"}
        assert (await wait(client, job["job_id"]))["outcome"] == "succeeded"
        logs = await call(client, "get_job_logs", {"job_id": job["job_id"]})
        assert "lr 0.01" in logs["pods"][0]["lines"]
        v2 = await call(client, "save_job_template", {"name": "dlc-nightly", "config": {"worker_count": 1}})
        assert v2["template_id"] == tid and v2["version"] == 2


async def test_a_spot_quote_and_a_reclaimed_spot_job(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        history = await call(client, "get_spot_price_history", {"instance_type": SPEC, "hours": 24})
        assert history["samples"] > 0 and 0 < history["latest"] < 0.17
        specs = await call(client, "list_ecs_specs", {"accelerator_type": "CPU"})
        assert next(s for s in specs["specs"] if s["instance_type"] == SPEC)["spot_stock"]
        q = await call(
            client,
            "estimate_cost",
            {"ecs_spec": SPEC, "worker_count": 1, "estimated_minutes": 60, "max_runtime_minutes": 120, "spot": True},
        )
        assert q["spot"] is True and q["per_worker_hourly"] == pytest.approx(history["latest"], rel=0.05)
        assert q["worst_case_total"] == pytest.approx(0.17 * 2)  # no limit: the worst case is on-demand
        assert "can be reclaimed" in q["display_text"]
        mismatch = await call_error(client, "create_training_job", create_args(SPEC, q["quote_id"], "sleep 30"))
        assert "spot" in mismatch  # the quote was for spot; a plain create does not match it
        sb.faults.spot_reclaim(after_seconds=0.5, spot_only=True)
        args = create_args(SPEC, q["quote_id"], "sleep 30", spot=True)
        job = (await call(client, "create_training_job", args))["job"]
        assert job["spot"] is True
        result = await wait(client, job["job_id"])
        assert result["outcome"] == "failed" and result["failure"]["verdict"] == "spot_reclaim"
        diagnosis = await call(client, "diagnose_job", {"job_id": job["job_id"]})
        assert diagnosis["verdict"] == "spot_reclaim" and "spot" in diagnosis["next_step"]


async def test_training_job_outputs_through_the_read_tools(tmp_path):
    program = "import os\nopen(os.path.join(os.environ['CLOUDJOBS_OUTPUT_DIR'], 'model.pt'), 'w').write('x' * 100)"
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        train_id = await anyio.to_thread.run_sync(
            lambda: sb.sandbox.create_training_job("train-outputs", f"{PY} -c {shlex.quote(program)}")
        )
        assert train_id.startswith("train")
        assert (await wait(client, train_id))["outcome"] == "succeeded"
        outputs = await call(client, "list_output_models", {"job_id": train_id})
        assert any(m["uri"].endswith("model.pt") for m in outputs["models"])
        for tool in ("get_job", "get_job_events", "get_job_logs", "get_job_metrics", "diagnose_job"):
            await call(client, tool, {"job_id": train_id})
        listed = await call(client, "list_jobs", {"include_training_jobs": True})
        assert train_id in [j["job_id"] for j in listed["jobs"]]
        assert train_id not in [j["job_id"] for j in (await call(client, "list_jobs", {}))["jobs"]]
        labeled = await call(client, "label_job", {"job_id": train_id, "labels": {"stage": "eval"}})
        assert labeled["tags"]["stage"] == "eval"
        assert "stage" not in (await call(client, "unlabel_job", {"job_id": train_id, "keys": ["stage"]})).get(
            "tags", {}
        )
        q = await quote(client, SPEC)
        dlc_job = (await call(client, "create_training_job", create_args(SPEC, q["quote_id"], "echo x")))["job"]
        dlc = await call(client, "list_output_models", {"job_id": dlc_job["job_id"]})
        assert dlc["models"] == [] and "mounted" in dlc["note"]
