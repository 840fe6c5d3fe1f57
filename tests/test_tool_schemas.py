"""The committed tool schemas (server/tool_schemas.json): a start lists tools from them instead of building
every tool's argument model and schemas, so they must be exactly what that build gives; a stale entry is
never served."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from pydantic import Field

from cloudjobs_mcp.server import toolserver
from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.toolserver import fingerprint
from scripts import tool_schemas
from tests.conftest import call_error, make_settings

pytestmark = pytest.mark.anyio


def test_the_committed_schemas_are_what_a_fresh_build_gives():
    # When this fails: run `python scripts/tool_schemas.py` and commit server/tool_schemas.json.
    assert tool_schemas.differences() == []


async def listing(server: Any) -> list[dict[str, Any]]:
    async with Client(server) as client:
        return [t.model_dump(mode="json", by_alias=True) for t in (await client.list_tools()).tools]


@pytest.mark.parametrize(
    "overrides",
    [{"toolsets": "all"}, {"toolsets": "core,observe"}, {"toolsets": "all", "read_only": True}],
    ids=["all", "default", "read-only"],
)
async def test_tools_list_from_the_snapshot_is_tools_list_from_the_sdk(tmp_path, monkeypatch, overrides):
    from_snapshot = build_server(make_settings(tmp_path / "a", **overrides))
    served = await listing(from_snapshot)
    assert from_snapshot._tool_manager.list_tools() == []  # nothing was built to answer tools/list
    monkeypatch.setattr(toolserver, "_snapshot", {})
    built = await listing(build_server(make_settings(tmp_path / "b", **overrides)))
    assert served == built
    # One provider: its `provider` argument is left out of the schemas either way.
    assert all("provider" not in t["inputSchema"].get("properties", {}) for t in served)


async def test_a_stale_entry_is_never_served_and_a_current_one_is(tmp_path, monkeypatch):
    real = dict(toolserver.snapshot())
    doctored = {**real["get_job"], "input_schema": {"type": "object", "properties": {"doctored": {}}}}

    async def get_job_schema(entry: dict[str, Any]) -> dict[str, Any]:
        monkeypatch.setattr(toolserver, "_snapshot", {**real, "get_job": entry})
        tools = await listing(build_server(make_settings(tmp_path / str(len(entry["fingerprint"])))))
        return next(t for t in tools if t["name"] == "get_job")["inputSchema"]

    # The fingerprint matches: the snapshot is what is served (this is what makes a start cheap)...
    assert "doctored" in (await get_job_schema(doctored))["properties"]
    # ...and a tool whose parameters changed since (another fingerprint) is built and listed as it is now.
    stale = await get_job_schema({**doctored, "fingerprint": "0" * 15})
    assert "doctored" not in stale["properties"] and "job_id" in stale["properties"]


def test_the_fingerprint_changes_with_a_parameter_its_type_default_or_description():
    async def a(job_id: str, limit: int = 20) -> None: ...
    async def renamed(job: str, limit: int = 20) -> None: ...
    async def retyped(job_id: str, limit: float = 20) -> None: ...
    async def redefaulted(job_id: str, limit: int = 10) -> None: ...
    async def added(job_id: str, limit: int = 20, since: str | None = None) -> None: ...
    async def described(job_id: str, limit: int = Field(20, description="how many")) -> None: ...
    async def redescribed(job_id: str, limit: int = Field(20, description="how many at most")) -> None: ...
    async def same(job_id: str, limit: int = 20) -> None:
        """Another body and docstring: the description is read live, not from the snapshot."""

    prints = [fingerprint(f) for f in (a, renamed, retyped, redefaulted, added, described, redescribed)]
    assert len(set(prints)) == len(prints)
    assert fingerprint(same) == fingerprint(a)


async def test_without_the_snapshot_file_a_start_builds_every_tool_and_works(tmp_path, monkeypatch):
    monkeypatch.setattr(toolserver, "SNAPSHOT", tmp_path / "missing.json")
    monkeypatch.setattr(toolserver, "_snapshot", None)
    server = build_server(make_settings(tmp_path))
    tools = await listing(server)
    assert len(tools) == len(server._tool_manager.list_tools()) > 20


async def test_a_tool_listed_from_the_snapshot_still_checks_its_arguments(tmp_path):
    server = build_server(make_settings(tmp_path))
    async with Client(server) as client:
        await client.list_tools()
        message = await call_error(client, "get_job_logs", {"job_id": "x", "tail_lines": "many"})
    assert "tail_lines" in message and "integer" in message
    assert [t.name for t in server._tool_manager.list_tools()] == ["get_job_logs"]


def test_the_sdk_reads_a_tools_input_schema_before_its_first_call(tmp_path):
    # Over streamable HTTP the SDK checks Mcp-Param headers against the input schema before the call runs.
    server = build_server(make_settings(tmp_path))
    schema = server._tool_input_schema("get_job")
    assert schema is not None and "job_id" in schema["properties"]
    assert server._tool_input_schema("no_such_tool") is None
