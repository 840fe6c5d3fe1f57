"""Every way to sneak past the cost gate, tried through a real MCP client. Nothing may be created."""

from __future__ import annotations

import os

import anyio
import pytest

from tests.conftest import (
    Asker,
    call,
    call_error,
    connect,
    create_args,
    make_settings,
    qargs,
    quote,
    smallest_cpu_spec,
)

pytestmark = pytest.mark.anyio

CMD = "echo hello"


async def nothing_created(client, settings) -> None:
    jobs = await call(client, "list_jobs", {})
    assert jobs["jobs"] == []
    job_dirs = settings.state_dir / "jobs"
    assert not job_dirs.exists() or os.listdir(job_dirs) == []


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_create_without_quote_or_with_unknown_quote_is_refused(settings, mode):
    async with connect(settings, mode=mode, asker=Asker()) as client:
        spec = await smallest_cpu_spec(client)
        text = await call_error(client, "create_training_job", create_args(spec, "", CMD))
        assert "estimate_cost" in text and "No quote" in text
        text = await call_error(client, "create_training_job", create_args(spec, "q-made-up", CMD, confirmed=True))
        assert "Unknown quote 'q-made-up'" in text
        await nothing_created(client, settings)


async def test_expired_quote_is_refused(tmp_path):
    settings = make_settings(tmp_path, quote_ttl_seconds=0.3)
    async with connect(settings, asker=Asker()) as client:
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec)
        await anyio.sleep(0.4)
        text = await call_error(client, "create_training_job", create_args(spec, q["quote_id"], CMD))
        assert "expired" in text and "estimate_cost again" in text
        await nothing_created(client, settings)


async def test_mismatched_spec_count_or_type_is_refused(settings):
    async with connect(settings, asker=Asker()) as client:
        specs = await call(client, "list_ecs_specs", {"accelerator_type": "CPU", "sort_by": "CPU"})
        small = specs["specs"][0]["instance_type"]
        q = await quote(client, small, workers=1)
        if len(specs["specs"]) > 1:
            other = specs["specs"][1]["instance_type"]
            text = await call_error(client, "create_training_job", create_args(other, q["quote_id"], CMD))
            assert f"ecs_spec is {other!r} but the quote is for {small!r}" in text
        text = await call_error(client, "create_training_job", create_args(small, q["quote_id"], CMD, workers=2))
        assert "worker_count is 2 but the quote is for 1" in text
        text = await call_error(client, "create_training_job", create_args(small, q["quote_id"], CMD, job_type="TFJob"))
        assert "job_type is 'TFJob' but the quote is for 'PyTorchJob'" in text
        await nothing_created(client, settings)


async def test_budget_caps_refuse_quotes(tmp_path):
    settings = make_settings(tmp_path, local_price_per_hour=3.0, max_hourly=5.0, max_job_cost=4.0)
    async with connect(settings) as client:
        spec = await smallest_cpu_spec(client)
        text = await call_error(
            client,
            "estimate_cost",
            {"ecs_spec": spec, "worker_count": 2, "estimated_minutes": 1, "max_runtime_minutes": 5},
        )
        assert "Over budget" in text and "CLOUDJOBS_MAX_HOURLY=5" in text and "CNY 6.00/hour" in text
        text = await call_error(
            client,
            "estimate_cost",
            {"ecs_spec": spec, "worker_count": 1, "estimated_minutes": 10, "max_runtime_minutes": 120},
        )
        assert "Over budget" in text and "CLOUDJOBS_MAX_JOB_COST=4" in text
        q = await quote(client, spec, workers=1, minutes=1, max_minutes=60)  # CNY 3.00 worst case: fine
        assert q["worst_case_total"] == pytest.approx(3.0)
    # The operator lowers the cap; a quote issued under the old cap no longer passes.
    async with connect(make_settings(tmp_path, local_price_per_hour=3.0, max_job_cost=1.0), asker=Asker()) as client:
        text = await call_error(client, "create_training_job", create_args(spec, q["quote_id"], CMD))
        assert "Over budget" in text
        await nothing_created(client, settings)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize(("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_declined_elicitation_creates_nothing(settings, mode, action, confirm):
    answer = Asker(action, confirm)
    async with connect(settings, mode=mode, asker=answer) as client:
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec)
        # confirmed=true from the model does not override the human's answer.
        text = await call_error(client, "create_training_job", create_args(spec, q["quote_id"], CMD, confirmed=True))
        assert "declined" in text and "nothing was created" in text
        assert len(answer.questions) == 1
        assert q["quote_id"] in answer.questions[0] and spec in answer.questions[0]
        await nothing_created(client, settings)


async def test_without_elicitation_confirmed_true_is_required(settings):
    async with connect(settings, asker=None) as client:
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec)
        text = await call_error(client, "create_training_job", create_args(spec, q["quote_id"], CMD))
        assert "Not confirmed" in text and "confirmed=true" in text
        await nothing_created(client, settings)
        created = await call(client, "create_training_job", create_args(spec, q["quote_id"], CMD, confirmed=True))
        assert created["confirmation"] == "argument" and created["reused"] is False


async def test_strict_mode_refuses_clients_without_elicitation(tmp_path):
    settings = make_settings(tmp_path, strict_confirm=True)
    async with connect(settings, asker=None) as client:
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec)
        text = await call_error(client, "create_training_job", create_args(spec, q["quote_id"], CMD, confirmed=True))
        assert "CLOUDJOBS_STRICT_CONFIRM" in text
        await nothing_created(client, settings)
    async with connect(settings, asker=Asker()) as client:  # with elicitation, strict mode creates after asking
        created = await call(client, "create_training_job", create_args(spec, q["quote_id"], CMD))
        assert created["confirmation"] == "elicited"


async def test_the_model_cannot_inject_the_confirmation_argument(settings):
    async with connect(settings, asker=Asker("decline")) as client:
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec)
        args = create_args(spec, q["quote_id"], CMD, confirmed=True)
        args["confirmation"] = {"action": "accept", "data": {"confirm": True}}
        result = await client.call_tool("create_training_job", args)
        assert result.is_error
        await nothing_created(client, settings)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_reused_quote_returns_the_same_job(settings, mode):
    asker = Asker()
    async with connect(settings, mode=mode, asker=asker) as client:
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec)
        first = await call(client, "create_training_job", create_args(spec, q["quote_id"], CMD))
        second = await call(client, "create_training_job", create_args(spec, q["quote_id"], "echo other"))
        assert second["job"]["job_id"] == first["job"]["job_id"]
        assert second["reused"] is True and "no new job was made" in second["next_step"]
        assert len(asker.questions) == 1  # the retry needed no second approval
        jobs = await call(client, "list_jobs", {})
        assert [j["job_id"] for j in jobs["jobs"]] == [first["job"]["job_id"]]


async def test_concurrent_creates_with_one_quote_make_one_job(settings):
    async with connect(settings, asker=Asker()) as client:
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec)
        results: list = []

        async def create() -> None:
            results.append(await client.call_tool("create_training_job", create_args(spec, q["quote_id"], CMD)))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(create)
        jobs = await call(client, "list_jobs", {})
        assert len(jobs["jobs"]) == 1
        ok = [r.structured_content["job"]["job_id"] for r in results if not r.is_error]
        assert ok and set(ok) == {jobs["jobs"][0]["job_id"]}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"ecs_spec": "ecs.nope"}, "Unknown spec 'ecs.nope'"),
        ({"worker_count": 0}, "worker_count must be at least 1"),
        ({"worker_count": 999}, "this machine has"),
        ({"estimated_minutes": -1}, "estimated_minutes"),
        ({"max_runtime_minutes": -5}, "max_runtime_minutes"),
        ({"job_type": "SparkJob"}, "job_type"),
        ({"estimated_minutes": 30, "max_runtime_minutes": 10}, "must be at least estimated_minutes"),
    ],
)
async def test_bad_quote_inputs_give_clear_errors(settings, args, expected):
    async with connect(settings) as client:
        spec = await smallest_cpu_spec(client)
        text = await call_error(client, "estimate_cost", {**qargs(spec), **args})
        assert expected in text
        assert "Traceback" not in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"user_command": "   "}, "user_command is empty"),
        ({"display_name": "bad name!"}, "display_name"),
        ({"job_type": "SparkJob"}, "job_type"),
        ({"envs": {"1BAD": "x"}}, "Invalid environment variable names"),
        ({"thirdparty_libs": ["surely-not-installed-pkg-xyz"]}, "surely-not-installed-pkg-xyz"),
    ],
)
async def test_bad_create_inputs_give_clear_errors_and_create_nothing(settings, args, expected):
    asker = Asker()
    async with connect(settings, asker=asker) as client:
        spec = await smallest_cpu_spec(client)
        q = await quote(client, spec)
        text = await call_error(client, "create_training_job", {**create_args(spec, q["quote_id"], CMD), **args})
        assert expected in text
        assert asker.questions == []  # refused before anybody was asked
        await nothing_created(client, settings)
