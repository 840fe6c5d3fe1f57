"""tools/list as a client sees it: schemas, annotations, descriptions; read-only mode; prompts."""

from __future__ import annotations

import pytest

from tests.conftest import connect, make_settings

pytestmark = pytest.mark.anyio

CORE = {
    "list_ecs_specs",
    "resolve_image",
    "estimate_cost",
    "create_training_job",
    "wait_job_complete",
    "get_job_logs",
    "cleanup_jobs",
    "get_job",
    "list_jobs",
    "stop_job",
    "delete_job",
    "get_job_events",
    "get_job_metrics",
    "diagnose_job",
    "get_workload_info",
    "get_sanity_check_results",
    "label_job",
    "unlabel_job",
    "save_job_template",
    "list_job_templates",
    "get_job_template",
    "delete_job_template",
    "set_default_template_version",
    "get_spot_price_history",
    "list_output_models",
    "compare_jobs",
}
MUTATING = {
    "create_training_job",
    "stop_job",
    "delete_job",
    "cleanup_jobs",
    "label_job",
    "unlabel_job",
    "save_job_template",
    "delete_job_template",
    "set_default_template_version",
}


async def test_every_tool_has_schemas_annotations_and_a_description(settings):
    async with connect(settings) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert CORE <= set(tools)
    for name, tool in tools.items():
        assert tool.input_schema["type"] == "object", name
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object", name
        assert tool.title, name
        assert tool.description and len(tool.description) > 80, name
        ann = tool.annotations
        assert ann is not None and ann.read_only_hint is not None, name
    read_only = ("list_ecs_specs", "resolve_image", "get_job", "list_jobs", "get_job_logs", "get_job_events")
    for name in (*read_only, "get_job_metrics", "diagnose_job", "get_workload_info", "get_sanity_check_results"):
        assert tools[name].annotations.read_only_hint is True
    for name in ("stop_job", "delete_job", "cleanup_jobs", "delete_job_template"):
        assert tools[name].annotations.destructive_hint is True
    reads = ("list_job_templates", "get_job_template", "get_spot_price_history", "list_output_models", "compare_jobs")
    for name in reads:
        assert tools[name].annotations.read_only_hint is True
    create = tools["create_training_job"]
    assert create.annotations.read_only_hint is False and create.annotations.idempotent_hint is True
    # The confirmation is resolved by the server, never an argument the model could fill in.
    assert "confirmation" not in create.input_schema["properties"]
    assert {"quote_id", "confirmed", "ecs_spec", "worker_count"} <= set(create.input_schema["properties"])


async def test_read_only_mode_hides_every_mutating_tool(tmp_path):
    async with connect(make_settings(tmp_path, read_only=True)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert not names & MUTATING
        assert {"list_ecs_specs", "estimate_cost", "get_job", "list_jobs", "get_job_logs"} <= names
        result = await client.call_tool("create_training_job", {})
        assert result.is_error


async def test_prompts_are_registered_with_arguments(settings):
    async with connect(settings) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert {"train_model", "debug_failed_job"} <= set(prompts)
        assert [(a.name, a.required) for a in prompts["debug_failed_job"].arguments] == [
            ("job_id", True),
            ("focus", False),
        ]
        text = (await client.get_prompt("train_model", {"task": "count words in a.txt"})).messages[0].content.text
        assert "count words in a.txt" in text
        assert "Do not default to GPU" in text and "ASK ME" in text
        debug = (await client.get_prompt("debug_failed_job", {"job_id": "local-1"})).messages[0].content.text
        assert "local-1" in debug and "diagnose_job" in debug
