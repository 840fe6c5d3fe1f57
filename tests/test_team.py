"""Labels, templates, output models, hyperparameters and comparisons on real local jobs, through MCP."""

from __future__ import annotations

import shlex
import sys

import pytest

from tests.conftest import Asker, call, call_error, connect, create_args, qargs, quote, smallest_cpu_spec, wait_done

pytestmark = pytest.mark.anyio
PY = shlex.quote(sys.executable)
TRAIN = (
    PY
    + " -c "
    + shlex.quote(
        "import json, os\n"
        "lr = float(os.environ['HP_LR'])\n"
        "hp = json.load(open(os.environ['CLOUDJOBS_HYPERPARAMETERS_FILE']))\n"
        "for step in range(1, 6): print(f'step {step} loss {1 / (step * lr * 10):.4f}')\n"
        "open(os.path.join(os.environ['CLOUDJOBS_OUTPUT_DIR'], 'model.bin'), 'wb').write(b'w' * 2048)\n"
        "print('hp', hp)\n"
    )
)


async def run(client, spec: str, lr: str, name: str = "sweep") -> str:
    q = await quote(client, spec)
    args = create_args(spec, q["quote_id"], TRAIN, display_name=name, hyperparameters={"lr": lr})
    job_id = (await call(client, "create_training_job", args))["job"]["job_id"]
    await wait_done(client, job_id)
    return job_id


async def test_labels_round_trip_and_the_servers_labels_are_protected(settings):
    async with connect(settings, asker=Asker()) as client:
        spec = await smallest_cpu_spec(client)
        job_id = await run(client, spec, "0.1")
        other = await run(client, spec, "0.2")
        labeled = await call(client, "label_job", {"job_id": job_id, "labels": {"experiment": "lr-sweep"}})
        assert labeled["tags"]["experiment"] == "lr-sweep" and labeled["tags"]["cloudjobs-mcp"] == "true"
        found = await call(client, "list_jobs", {"labels": {"experiment": "lr-sweep"}})
        assert [j["job_id"] for j in found["jobs"]] == [job_id] and other != job_id
        for tool, args in (
            ("label_job", {"job_id": job_id, "labels": {"cloudjobs-quote": "q-forged"}}),
            ("unlabel_job", {"job_id": job_id, "keys": ["cloudjobs-mcp"]}),
        ):
            assert "belong to the server" in await call_error(client, tool, args)
        removed = await call(client, "unlabel_job", {"job_id": job_id, "keys": ["experiment"]})
        assert "experiment" not in removed["tags"] and removed["tags"]["cloudjobs-mcp"] == "true"
        assert "not_found" not in removed and "note" not in removed  # nothing missing: nothing said
        # a key the job does not carry is named (kubectl: label "x" not found), never silently ignored
        again = await call(client, "unlabel_job", {"job_id": job_id, "keys": ["experiment", "nope"]})
        assert again["not_found"] == ["experiment", "nope"]
        assert again["note"] == 'label "experiment" not found; label "nope" not found.'
        assert again["tags"] == removed["tags"]


async def test_templates_with_locked_and_required_fields_never_skip_the_quote(settings):
    asker = Asker()
    async with connect(settings, asker=asker) as client:
        specs = (await call(client, "list_ecs_specs", {"accelerator_type": "CPU", "sort_by": "CPU"}))["specs"]
        spec = specs[0]["instance_type"]
        saved = await call(
            client,
            "save_job_template",
            {
                "name": "nightly",
                "config": {"user_command": TRAIN, "job_type": "PyTorchJob", "ecs_spec": spec, "worker_count": 1,
                           "max_runtime_minutes": 5},
                "constraints": {"$.ecs_spec": "locked", "$.hyperparameters.lr": "required"},
            },
        )  # fmt: skip
        tid = saved["template_id"]
        assert saved["version"] == 1 and saved["default_version"] == 1
        if len(specs) > 1:
            text = await call_error(
                client,
                "estimate_cost",
                {"template_id": tid, "ecs_spec": specs[1]["instance_type"], "estimated_minutes": 1},
            )
            assert "locked by the template" in text and "$.ecs_spec" in text
        q = await call(client, "estimate_cost", {"template_id": tid, "estimated_minutes": 1})
        assert q["template_id"] == tid and q["template_version"] == 1 and q["ecs_spec"] == spec
        assert "Template: " in q["display_text"]
        missing = await call_error(client, "create_training_job", {"template_id": tid, "quote_id": q["quote_id"]})
        assert "required by the template" in missing and "$.hyperparameters.lr" in missing
        no_quote = await call_error(
            client, "create_training_job", {"template_id": tid, "quote_id": "", "hyperparameters": {"lr": "0.1"}}
        )
        assert "No quote" in no_quote
        assert asker.questions == []  # refused before anyone was asked
        created = await call(
            client,
            "create_training_job",
            {"template_id": tid, "quote_id": q["quote_id"], "hyperparameters": {"lr": "0.1"}},
        )
        job = await call(client, "get_job", {"job_id": created["job"]["job_id"]})  # create answers a summary
        assert job["template_id"] == tid and job["template_version"] == 1 and job["hyperparameters"] == {"lr": "0.1"}
        assert (await wait_done(client, job["job_id"]))["outcome"] == "succeeded"
        # A new version; the default stays until it is set.
        v2 = await call(client, "save_job_template", {"name": "nightly", "config": {"worker_count": 1, "priority": 3}})
        assert v2["template_id"] == tid and v2["version"] == 2 and v2["default_version"] == 1
        default = await call(client, "set_default_template_version", {"template_id": tid, "version": 2})
        assert default["default_version"] == 2
        assert (await call(client, "get_job_template", {"template_id": tid, "version": 1}))["version"] == 1
        listed = await call(client, "list_job_templates", {})
        assert [t["template_id"] for t in listed["templates"]] == [tid]
        await call(client, "delete_job_template", {"template_id": tid})
        assert (await call(client, "list_job_templates", {}))["templates"] == []


async def test_output_models_hyperparameters_and_comparison_of_three_runs(settings):
    async with connect(settings, asker=Asker()) as client:
        spec = await smallest_cpu_spec(client)
        jobs = [await run(client, spec, lr) for lr in ("0.1", "0.2", "0.5")]
        outputs = await call(client, "list_output_models", {"job_id": jobs[0]})
        assert [(m["name"], m["size_bytes"]) for m in outputs["models"]] == [("model.bin", 2048)]
        table = await call(client, "compare_jobs", {"job_ids": jobs})
        assert [r["hyperparameters"]["lr"] for r in table["rows"]] == ["0.1", "0.2", "0.5"]
        losses = [r["final_metrics"]["loss"] for r in table["rows"]]
        assert losses == sorted(losses, reverse=True) and losses[0] == pytest.approx(0.2)
        assert all(r["duration_seconds"] is not None for r in table["rows"])
        assert "hp.lr" in table["columns"] and "metric.loss" in table["columns"]
        assert "Give 1 to 10" in await call_error(client, "compare_jobs", {"job_ids": []})


async def test_spot_on_the_local_provider_is_refused_plainly(settings):
    async with connect(settings) as client:
        spec = await smallest_cpu_spec(client)
        text = await call_error(client, "estimate_cost", qargs(spec, spot=True))
        assert "no spot" in text.lower()
        history = await call_error(client, "get_spot_price_history", {"instance_type": spec})
        assert "no spot" in history.lower()


async def test_a_template_from_a_finished_job_makes_the_same_run(settings):
    async with connect(settings, asker=Asker()) as client:
        spec = await smallest_cpu_spec(client)
        first = await run(client, spec, "0.25", name="baseline")
        saved = await call(client, "save_job_template", {"name": "from-baseline", "from_job_id": first})
        config = saved["config"]
        assert config["user_command"] == TRAIN and config["ecs_spec"] == spec and config["worker_count"] == 1
        assert config["hyperparameters"] == {"lr": "0.25"} and config["max_runtime_minutes"] == 5
        q = await call(client, "estimate_cost", {"template_id": saved["template_id"], "estimated_minutes": 1})
        again = await call(
            client, "create_training_job", {"template_id": saved["template_id"], "quote_id": q["quote_id"]}
        )
        result = await wait_done(client, again["job"]["job_id"])
        assert result["outcome"] == "succeeded" and again["job"]["name"] == "from-baseline"


async def test_the_quote_binds_the_template_version(settings):
    async with connect(settings, asker=Asker()) as client:
        spec = await smallest_cpu_spec(client)
        config = {"user_command": "echo v", "job_type": "PyTorchJob", "ecs_spec": spec, "worker_count": 1,
                  "max_runtime_minutes": 5}  # fmt: skip
        tid = (await call(client, "save_job_template", {"name": "pinned", "config": config}))["template_id"]
        q1 = await call(client, "estimate_cost", {"template_id": tid, "estimated_minutes": 1})
        await call(client, "save_job_template", {"name": "pinned", "config": {**config, "user_command": "echo v2"}})
        await call(client, "set_default_template_version", {"template_id": tid, "version": 2})
        text = await call_error(
            client, "create_training_job", {"template_id": tid, "template_version": 2, "quote_id": q1["quote_id"]}
        )
        assert "but the quote is for" in text and f"{tid} v1" in text
        # Without a version the run uses the quoted one (v1), not the new default.
        created = await call(client, "create_training_job", {"template_id": tid, "quote_id": q1["quote_id"]})
        job = await call(client, "get_job", {"job_id": created["job"]["job_id"]})
        assert job["template_version"] == 1 and job["user_command"] == "echo v"
