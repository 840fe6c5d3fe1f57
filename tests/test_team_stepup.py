"""A write tool called over HTTP without jobs:write: HTTP 403 with an RFC 6750 insufficient_scope challenge
(MCP authorization 2026-07-28, step-up), before the tool runs, on both protocol eras; audited."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mcp import MCPError

from cloudjobs_mcp.server.audit import AUDIT_FILE
from cloudjobs_mcp.server.auth import TokenStore
from tests.conftest import call, create_args, make_settings, qargs, smallest_cpu_spec
from tests.team_fixtures import connect_http, running_issuer, team_server

pytestmark = pytest.mark.anyio
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def modern(name: str, arguments: dict[str, Any], token: str) -> tuple[dict[str, Any], dict[str, str]]:
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw-client", "version": "9"}}  # fmt: skip
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments,
            "_meta": meta}}  # fmt: skip
    headers = {**ACCEPT, "authorization": f"Bearer {token}", "mcp-protocol-version": MODERN,
               "mcp-method": "tools/call", "mcp-name": name}  # fmt: skip
    return body, headers


async def legacy_session(http: httpx.AsyncClient, url: str, token: str) -> dict[str, str]:
    """A 2025-11-25 session (initialize + initialized): the headers of its later requests."""
    headers = {**ACCEPT, "authorization": f"Bearer {token}"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": LEGACY,
            "capabilities": {}, "clientInfo": {"name": "raw-legacy", "version": "1"}}}  # fmt: skip
    r = await http.post(url, json=init, headers=headers)
    assert r.status_code == 200
    headers |= {"mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": LEGACY}
    note = await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    assert note.status_code == 202
    return headers


def assert_challenge(r: httpx.Response, url: str, tool: str) -> None:
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge and 'scope="jobs:write"' in challenge
    metadata = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert f'resource_metadata="{metadata}"' in challenge
    assert f'error_description="{tool} changes jobs and needs the jobs:write scope"' in challenge
    error = r.json()["error"]
    assert f"{tool} changes jobs and needs the jobs:write scope" in error["message"]
    assert "cloudjobs-mcp token add NAME --scopes jobs:write" in error["message"]


async def test_a_read_only_token_gets_403_insufficient_scope_and_the_job_is_untouched(tmp_path, state_dir):
    store = TokenStore(tmp_path / "tokens.json")
    writer, viewer = store.add("writer", ["jobs:write"]), store.add("viewer", ["jobs:read"])
    settings = make_settings(tmp_path, http_tokens_file=store.path, toolsets="core,observe")  # label_job: off
    async with team_server(settings) as url:
        async with connect_http(url, writer) as client:
            spec = await smallest_cpu_spec(client)
            quote = await call(client, "estimate_cost", qargs(spec))
            job = await call(
                client, "create_training_job", create_args(spec, quote["quote_id"], "sleep 60", confirmed=True)
            )
            job_id = job["job"]["job_id"]
        async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
            body, headers = modern("stop_job", {"job_id": job_id}, viewer)
            r = await http.post(url, json=body, headers=headers)
            assert_challenge(r, url, "stop_job")
            assert r.json()["id"] == 7
            # A write tool of a toolset that is not enabled needs the scope all the same.
            body, headers = modern("label_job", {"job_id": job_id, "labels": {"a": "b"}}, viewer)
            assert_challenge(await http.post(url, json=body, headers=headers), url, "label_job")
            # Reading is allowed: the same token, the same endpoint.
            body, headers = modern("get_job", {"job_id": job_id}, viewer)
            read = await http.post(url, json=body, headers=headers)
            assert read.status_code == 200 and read.json()["result"]["structuredContent"]["status"] == "Running"
            # The 2025 era (a session, no Mcp-Name header): the body decides, a batch too.
            session = await legacy_session(http, url, viewer)
            stop = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "stop_job", "arguments": {"job_id": job_id}}}  # fmt: skip
            r = await http.post(url, json=stop, headers=session)
            assert_challenge(r, url, "stop_job")
            assert r.json()["id"] == 3
            listing = {"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {}}
            assert_challenge(await http.post(url, json=[listing, stop], headers=session), url, "stop_job")
            odd = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": ["stop_job"]}}
            assert (await http.post(url, json=odd, headers=session)).status_code < 500  # the SDK's error, no crash
            # The session survives a refusal.
            listed = await http.post(url, json=listing, headers=session)
            assert listed.status_code == 200 and "list_jobs" in listed.text and "stop_job" not in listed.text
        async with connect_http(url, writer) as client:
            assert (await call(client, "get_job", {"job_id": job_id}))["status"] == "Running"  # never stopped
            assert (await call(client, "stop_job", {"job_id": job_id}))["status"] in (
                "Stopping",
                "Stopped",
            )  # a writer may
    entries = [json.loads(x) for x in (settings.state_dir / AUDIT_FILE).read_text().splitlines()]
    refusals = [(e["identity"], e["tool"], e["outcome"], e["client"]) for e in entries if e["identity"] == "viewer"]
    assert refusals == [
        ("viewer", "stop_job", "error", "raw-client 9"),
        ("viewer", "label_job", "error", "raw-client 9"),
        ("viewer", "stop_job", "error", ""),  # a 2025-era request names no client; its session did, once
        ("viewer", "stop_job", "error", ""),
    ]
    assert all("jobs:write" in e["detail"] for e in entries if e["identity"] == "viewer")


async def test_an_oauth_token_without_the_write_scope_is_challenged_and_one_with_it_is_not(tmp_path, state_dir):
    with running_issuer() as issuer:
        issuer.add_key("k1")
        settings = make_settings(tmp_path, oauth_issuer=issuer.url)
        async with team_server(settings) as url:
            read_only = issuer.token("erin", aud=url, scope="jobs:read")
            async with connect_http(url, read_only) as client:
                spec = await smallest_cpu_spec(client)
                quote = await call(client, "estimate_cost", qargs(spec))
                args = create_args(spec, quote["quote_id"], "true", confirmed=True)
                with pytest.raises(MCPError, match="an OAuth access token issued with the jobs:write scope"):
                    await client.call_tool("create_training_job", args)
                assert (await call(client, "list_jobs"))["count"] == 0  # nothing was created, nothing billed
            async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
                body, headers = modern("create_training_job", args, read_only)
                assert_challenge(await http.post(url, json=body, headers=headers), url, "create_training_job")
            # Stepped up: the same quote (its owner is erin) now creates the job.
            async with connect_http(url, issuer.token("erin", aud=url, scope="jobs:read jobs:write")) as client:
                created = await call(client, "create_training_job", args)
                assert created["job"]["job_id"]
