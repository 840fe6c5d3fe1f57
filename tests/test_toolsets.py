"""What an assistant reads: toolsets (CLOUDJOBS_TOOLSETS, enable_toolset and its list_changed), the byte
budgets of tools/list, and compact, schema-valid results for every tool, through the MCP client."""

from __future__ import annotations

import json
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client
from mcp.shared.subscriptions import ToolsListChanged
from mcp.types import ListToolsResult, ToolListChangedNotification

from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.toolsets import TOOLSETS
from tests.conftest import Asker, call, call_error, connect, make_settings

pytestmark = pytest.mark.anyio

SETS = {
    "core": {
        "list_ecs_specs", "resolve_image", "estimate_cost", "create_training_job", "wait_job_complete",
        "get_job_logs", "cleanup_jobs", "get_job", "list_jobs", "stop_job", "delete_job",
    },
    "observe": {"get_job_events", "get_job_metrics", "diagnose_job", "get_workload_info", "get_sanity_check_results"},
    "providers": {"list_providers", "compare_offers"},
    "pools": {"list_pools", "list_pool_workloads"},
    "team": {"label_job", "unlabel_job", "compare_jobs", "list_output_models", "get_spot_price_history"},
    "templates": {
        "save_job_template", "list_job_templates", "get_job_template", "delete_job_template",
        "set_default_template_version",
    },
}  # fmt: skip
ALWAYS = {"enable_toolset"}
# What the model reads, measured as the bench measures it (the client's parsed result, compact JSON).
NAMES_DESCRIPTIONS_INPUTS_MAX = 24_000
TOOLS_LIST_MAX = 40_000
RESULT_MAX = 8_192


async def names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


def settings_for(tmp_path, toolsets: str | None):
    return make_settings(tmp_path, **({"toolsets": toolsets} if toolsets else {"toolsets": "core,observe"}))


async def test_the_default_toolsets_are_core_and_observe(tmp_path):
    from cloudjobs_mcp.server.config import Settings

    assert Settings.from_env({}).toolsets == ("core", "observe")
    async with connect(settings_for(tmp_path, None)) as client:
        assert await names(client) == SETS["core"] | SETS["observe"] | ALWAYS


@pytest.mark.parametrize("toolset", [*TOOLSETS, "all"])
async def test_each_toolset_alone_and_all(tmp_path, toolset):
    assert set(TOOLSETS) == set(SETS)
    async with connect(settings_for(tmp_path, toolset)) as client:
        expected = set().union(*SETS.values()) if toolset == "all" else SETS[toolset]
        assert await names(client) == expected | ALWAYS


def test_an_unknown_toolset_is_a_clear_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError) as err:
        make_settings(tmp_path, toolsets="core,billing")
    assert "CLOUDJOBS_TOOLSETS" in str(err.value) and "'billing'" in str(err.value)
    assert "core, observe, providers, pools, team, templates, all" in str(err.value)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_enabling_a_toolset_at_run_time_sends_list_changed(tmp_path, mode):
    seen: list[Any] = []

    async def on_message(message: Any) -> None:
        if isinstance(getattr(message, "root", message), ToolListChangedNotification):
            seen.append(message)

    server = build_server(settings_for(tmp_path, "core"))
    async with Client(server, mode=mode, message_handler=on_message, cache=None) as client:  # type: ignore[arg-type]
        assert client.server_capabilities.tools and client.server_capabilities.tools.list_changed
        assert "label_job" not in await names(client)
        refused = await call_error(client, "label_job", {"job_id": "local-x", "labels": {"a": "b"}})
        assert "'team' toolset" in refused and "enable_toolset(toolset='team')" in refused

        listing = await call(client, "enable_toolset")  # no argument: only lists
        shown = {t["name"]: t for t in listing["toolsets"]}
        assert shown["core"]["enabled"] is True and shown["team"]["enabled"] is False
        assert set(shown["team"]["tools"]) == SETS["team"] and "added" not in listing

        if mode == "auto":  # 2026-07-28: the notification comes on a subscriptions/listen stream
            async with client.listen(tools_list_changed=True) as sub:
                enabled = await call(client, "enable_toolset", {"toolset": "team"})
                with anyio.fail_after(5):
                    event = await sub.__anext__()
                assert isinstance(event, ToolsListChanged)
        else:
            enabled = await call(client, "enable_toolset", {"toolset": "team"})
            with anyio.fail_after(5):
                while not seen:
                    await anyio.sleep(0.01)
        assert set(enabled["added"]) == SETS["team"]
        assert await names(client) == SETS["core"] | SETS["team"] | ALWAYS
        after = await call_error(client, "label_job", {"job_id": "local-missing", "labels": {"a": "b"}})
        assert "toolset" not in after and "local-missing" in after  # now it runs (and finds no such job)
        again = await call(client, "enable_toolset", {"toolset": "team"})
        assert "added" not in again and "already enabled" in again["note"]
        bad = await call_error(client, "enable_toolset", {"toolset": "billing"})
        assert "'billing'" in bad and "templates" in bad


async def test_a_toolset_enabled_at_run_time_lists_the_same_tools_as_one_enabled_at_start(tmp_path):
    # Tools of disabled toolsets are only registered when enabled (a start builds no schema it does not show).
    async with connect(settings_for(tmp_path / "a", "core,team")) as client:
        at_start = {t.name: t for t in (await client.list_tools()).tools}
    async with connect(settings_for(tmp_path / "b", "core")) as client:
        await call(client, "enable_toolset", {"toolset": "team"})
        later = {t.name: t for t in (await client.list_tools()).tools}
    assert set(later) == set(at_start) == SETS["core"] | SETS["team"] | ALWAYS
    for name in SETS["team"]:
        assert later[name].model_dump() == at_start[name].model_dump(), name


def wire_size(listing: ListToolsResult) -> int:
    return len(listing.model_dump_json(by_alias=True, exclude_none=True))


async def test_tools_list_fits_its_byte_budgets(tmp_path):
    async with connect(settings_for(tmp_path, None)) as client:
        listing = await client.list_tools()
    reads = sum(
        len(json.dumps({"name": t.name, "description": t.description, "inputSchema": t.input_schema}))
        for t in listing.tools
    )
    assert reads <= NAMES_DESCRIPTIONS_INPUTS_MAX, reads
    assert wire_size(listing) <= TOOLS_LIST_MAX, wire_size(listing)
    for tool in listing.tools:  # pydantic's titles and indentation are gone; the words stay
        text = json.dumps(tool.model_dump(by_alias=True, exclude_none=True))
        assert '"title": "' not in text.replace(f'"title": "{tool.title}"', ""), tool.name
        assert "\n" not in (tool.description or ""), tool.name
        assert tool.description and len(tool.description) > 80, tool.name


def nulls(value: Any, path: str = "$") -> list[str]:
    """Where ``value`` holds a null: a compact result leaves null fields out."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in ([f"{path}.{k}"] if v is None else nulls(v, f"{path}.{k}"))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return []


async def test_every_tool_answers_compact_json_valid_against_its_output_schema(tmp_path):
    """On the pai provider against the sandbox, every tool once: the text block is the structured content
    as compact JSON, without nulls, valid against the listed output schema, at most 8 KB; list_jobs with its
    default limit over more jobs than it shows included."""
    from tests.sandbox_fixtures import create_job as launch
    from tests.sandbox_fixtures import pai_client, running_sandbox, until

    spec = "ecs.c6.large"

    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path, asker=Asker()) as client:
        schemas = {t.name: t.output_schema for t in (await client.list_tools()).tools}
        seen: dict[str, int] = {}

        async def check(tool: str, args: dict[str, Any]) -> dict[str, Any]:
            result = await client.call_tool(tool, args)
            assert not result.is_error, f"{tool}: {result.content}"
            data = result.structured_content
            assert data is not None and schemas[tool] is not None, tool
            text = result.content[0].text  # type: ignore[union-attr]
            compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
            assert len(result.content) == 1 and (text == compact or data == {"result": text}), tool  # or a sentence
            assert not nulls(data), (tool, nulls(data))
            jsonschema.validate(data, schemas[tool])
            seen[tool] = len(text.encode())
            assert seen[tool] <= RESULT_MAX, (tool, seen[tool])
            return data

        async def status(job: str) -> str:
            return str((await call(client, "get_job", {"job_id": job}))["status"])

        async with anyio.create_task_group() as tg:  # more jobs than list_jobs shows by default
            for i in range(21):
                tg.start_soon(launch, client, f"echo job {i}; exit {i % 3}")
        job = await launch(client, "echo working; sleep 30", display_name="the-sleeper")
        job_id = job["job_id"]
        listing = await check("list_jobs", {})
        assert listing["count"] == 20 and listing["truncated"] is True
        await check("list_ecs_specs", {})
        await check("resolve_image", {"job_type": "PyTorchJob"})
        quote = await check(
            "estimate_cost", {"ecs_spec": spec, "worker_count": 1, "estimated_minutes": 1, "max_runtime_minutes": 5}
        )
        await check("create_training_job", {
            "quote_id": quote["quote_id"], "display_name": "compact", "user_command": "echo hi",
            "job_type": "PyTorchJob", "ecs_spec": spec, "worker_count": 1,
        })  # fmt: skip
        await check("get_job", {"job_id": job_id})
        await check("wait_job_complete", {"job_id": job_id, "interval": 0.05, "max_wait_seconds": 0.2})
        await check("get_job_logs", {"job_id": job_id})
        await check("get_job_events", {"job_id": job_id})
        await check("get_job_metrics", {"job_id": job_id})
        await check("diagnose_job", {"job_id": job_id})
        await check("get_workload_info", {"job_id": job_id})
        await check("get_sanity_check_results", {"job_id": job_id})
        await check("label_job", {"job_id": job_id, "labels": {"team": "vision"}})
        await check("unlabel_job", {"job_id": job_id, "keys": ["team", "absent"]})
        await check("list_output_models", {"job_id": job_id})
        await check("compare_jobs", {"job_ids": [job_id, listing["jobs"][0]["job_id"]]})
        await check("get_spot_price_history", {"instance_type": spec})
        await check("stop_job", {"job_id": job_id})
        await until(lambda: status(job_id), "Stopped", limit=60)
        await check("delete_job", {"job_id": job_id})
        config = {"user_command": "echo t", "ecs_spec": spec}
        saved = await check("save_job_template", {"name": "compact", "config": config})
        await check("list_job_templates", {})
        await check("get_job_template", {"template_id": saved["template_id"]})
        await check("set_default_template_version", {"template_id": saved["template_id"], "version": 1})
        await check("delete_job_template", {"template_id": saved["template_id"]})
        await check("cleanup_jobs", {"status": "Succeeded"})
        await check("list_providers", {})
        await check("compare_offers", {"estimated_minutes": 10})
        await check("enable_toolset", {})
        for tool, args in (("list_pools", {}), ("list_pool_workloads", {"pool_name": "pool-a"})):
            refused = await call_error(client, tool, args)  # dedicated pools are ModelArts': a clear refusal
            assert "pool" in refused.lower() and "Traceback" not in refused, refused
            seen[tool] = 0
        print("result bytes:", json.dumps(seen))  # shown with -s
        missing = set(schemas) - set(seen)
        assert not missing, f"add a call of {sorted(missing)} to this test"
