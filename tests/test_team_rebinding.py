"""DNS-rebinding protection of the HTTP transport, against the real app under uvicorn on loopback: a foreign
Host or Origin is refused before anything runs; the hosts the server is reached at work."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from cloudjobs_mcp.server.audit import AUDIT_FILE
from cloudjobs_mcp.server.auth import TokenStore
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.rebinding import allowed_requests
from tests.conftest import make_settings
from tests.team_fixtures import connect_http, team_server

pytestmark = pytest.mark.anyio
MODERN = "2026-07-28"


def tools_call(name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A 2026-07-28 (stateless) tools/call: the body and the headers it needs."""
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments,
            "_meta": meta}}  # fmt: skip
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": name,
    }
    return body, headers


async def post(url: str, *, token: str | None = None, **headers: str) -> httpx.Response:
    body, base = tools_call("stop_job", {"job_id": "local-nope"})
    auth = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
        return await http.post(url, json=body, headers={**base, **auth, **headers})


def audited(settings: Settings) -> list[dict[str, Any]]:
    path = settings.state_dir / AUDIT_FILE
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


async def test_loopback_refuses_a_rebound_host_and_a_foreign_origin_before_any_tool_runs(tmp_path, state_dir):
    settings = make_settings(tmp_path)
    async with team_server(settings) as url:
        port = url.split(":")[2].split("/")[0]
        rebound = await post(url, host=f"attacker.example:{port}")
        assert rebound.status_code == 421
        assert "does not answer to Host 'attacker.example:" in rebound.text
        assert "CLOUDJOBS_HTTP_ALLOWED_HOSTS" in rebound.text
        foreign = await post(url, origin="http://attacker.example")
        assert foreign.status_code == 403
        assert "web origin 'http://attacker.example' are refused" in foreign.text
        assert "CLOUDJOBS_HTTP_ALLOWED_ORIGINS" in foreign.text
        assert audited(settings) == []  # stop_job is audited on every call it reaches: it reached none
        for good in ({}, {"origin": f"http://127.0.0.1:{port}"}, {"host": f"localhost:{port}"}):
            answered = await post(url, **good)
            assert answered.status_code == 200, good
            assert "no local job 'local-nope'" in answered.json()["result"]["content"][0]["text"]
        assert [e["tool"] for e in audited(settings)] == ["stop_job"] * 3
        async with connect_http(url, None) as client:  # an ordinary client, as before
            assert (await client.list_tools()).tools


async def test_a_team_server_answers_its_own_hosts_only_even_without_a_token(tmp_path, state_dir):
    store = TokenStore(tmp_path / "tokens.json")
    alice = store.add("alice", ["jobs:write"])
    settings = make_settings(
        tmp_path,
        http_tokens_file=store.path,
        http_public_url="https://cloudjobs.example.com/mcp",
        http_allowed_hosts="cloudjobs.internal:*",
        http_allowed_origins="https://console.example.com",
    )
    async with team_server(settings, bound_as="0.0.0.0") as url:  # the lists of 0.0.0.0; it listens on loopback
        port = url.split(":")[2].split("/")[0]
        for host in ("cloudjobs.example.com", "cloudjobs.example.com:443", f"127.0.0.1:{port}",
                     f"{socket.gethostname().lower()}:{port}", "cloudjobs.internal:9443"):  # fmt: skip
            answered = await post(url, token=alice, host=host)
            assert answered.status_code == 200, host
            assert "no local job" in answered.json()["result"]["content"][0]["text"]
        for origin in ("https://cloudjobs.example.com", "https://console.example.com"):
            assert (await post(url, token=alice, origin=origin)).status_code == 200, origin
        # A rebound name is refused before the token is even looked at: no 401 that invites a login.
        for token in (None, alice):
            assert (await post(url, token=token, host="cloudjobs.example.com.attacker.example")).status_code == 421
            assert (await post(url, token=token, host=f"cloudjobs.example.com:{port}")).status_code == 421
            assert (await post(url, token=token, origin="https://attacker.example")).status_code == 403
            assert (await post(url, token=token, origin="http://cloudjobs.example.com")).status_code == 403
        assert (await post(url, host="cloudjobs.example.com")).status_code == 401  # the right host: auth as before
        metadata = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
        async with httpx.AsyncClient(trust_env=False) as http:
            assert (await http.get(metadata, headers={"host": "attacker.example"})).status_code == 421
            assert (await http.get(metadata, headers={"host": "cloudjobs.example.com"})).status_code == 200
    assert [e["identity"] for e in audited(settings)] == ["alice"] * 7


async def test_a_server_bound_to_one_address_answers_that_address_and_not_loopback_names(tmp_path, state_dir):
    store = TokenStore(tmp_path / "tokens.json")
    alice = store.add("alice", ["jobs:write"])
    settings = make_settings(tmp_path, http_tokens_file=store.path)
    async with team_server(settings, bound_as="10.20.30.40") as url:
        port = url.split(":")[2].split("/")[0]
        where = f"10.20.30.40:{port}"
        assert (await post(url, token=alice, host=where)).status_code == 200
        assert (await post(url, token=alice, host=where, origin=f"http://{where}")).status_code == 200
        assert (await post(url, token=alice, host=where, origin=f"http://127.0.0.1:{port}")).status_code == 403
        assert (await post(url, token=alice)).status_code == 421  # 127.0.0.1 is not where this one listens
        assert (await post(url, token=alice, host=f"10.20.30.40:{int(port) + 1}")).status_code == 421


def test_the_allowed_lists(tmp_path):
    loopback = allowed_requests(make_settings(tmp_path), host="127.0.0.1", port=8765)
    assert loopback.enable_dns_rebinding_protection
    assert {"127.0.0.1:*", "localhost:*", "[::1]:*"} <= set(loopback.allowed_hosts)  # the SDK's own loopback set
    v6 = allowed_requests(
        make_settings(tmp_path, http_public_url="http://[fd00::5]:8080/mcp"), host="fd00::5", port=8080
    )
    assert v6.allowed_hosts == ["[fd00::5]:8080"] and v6.allowed_origins == ["http://[fd00::5]:8080"]
    public = allowed_requests(make_settings(tmp_path, http_public_url="https://CJ.Example.com/mcp"), host="::1", port=1)
    assert {"cj.example.com", "cj.example.com:443"} <= set(public.allowed_hosts)
    assert "https://cj.example.com" in public.allowed_origins


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("CLOUDJOBS_HTTP_ALLOWED_HOSTS", "https://cloudjobs.example.com", "is not a Host value"),
        ("CLOUDJOBS_HTTP_ALLOWED_HOSTS", "a.example, b c", "is not a Host value"),
        ("CLOUDJOBS_HTTP_ALLOWED_ORIGINS", "console.example.com", "is not a web origin"),
        ("CLOUDJOBS_HTTP_ALLOWED_ORIGINS", "https://console.example.com/app", "is not a web origin"),
    ],
)
def test_bad_allowed_hosts_or_origins_stop_the_start_with_the_reason(name, value, said):
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env({name: value})
    assert name in str(err.value) and said in str(err.value)


def test_allowed_hosts_and_origins_are_comma_lists():
    s = Settings.from_env(
        {
            "CLOUDJOBS_HTTP_ALLOWED_HOSTS": " A.example , b.example:*,",
            "CLOUDJOBS_HTTP_ALLOWED_ORIGINS": "https://C.example/",
        }
    )
    assert s.http_allowed_hosts == ("a.example", "b.example:*")
    assert s.http_allowed_origins == ("https://c.example",)
