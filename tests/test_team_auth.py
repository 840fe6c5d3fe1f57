"""The team server's authentication over real streamable HTTP on loopback: API tokens, OAuth JWTs, scopes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from mcp import MCPError

from cloudjobs_mcp.server.auth import TokenStore, token_hash
from cloudjobs_mcp.server.errors import InvalidRequest
from cloudjobs_mcp.server.rebinding import is_loopback
from tests.conftest import call, make_settings
from tests.team_fixtures import connect_http, free_port, running_issuer, team_server

pytestmark = pytest.mark.anyio
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def post(url: str, token: str | None) -> httpx.Response:
    headers = {**HEADERS, **({"authorization": f"Bearer {token}"} if token else {})}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        return await http.post(url, json=INIT, headers=headers)


def tokens(tmp_path, **named: str) -> tuple[TokenStore, dict[str, str]]:
    store = TokenStore(tmp_path / "tokens.json")
    return store, {name: store.add(name, scopes.split(",")) for name, scopes in named.items()}


async def test_no_token_gets_401_with_the_metadata_and_the_metadata_is_served(tmp_path, state_dir):
    store, _ = tokens(tmp_path, alice="jobs:read")
    settings = make_settings(tmp_path, http_tokens_file=store.path)
    async with team_server(settings) as url:
        for token in (None, "cjm_not-a-token", "a.b.c"):
            r = await post(url, token)
            assert r.status_code == 401
            challenge = r.headers["www-authenticate"]
            assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
            metadata_url = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
            assert f'resource_metadata="{metadata_url}"' in challenge
        async with httpx.AsyncClient(trust_env=False) as http:
            prm = (await http.get(metadata_url)).json()
        assert prm["resource"] == url
        assert prm["bearer_methods_supported"] == ["header"]
        assert prm["scopes_supported"] == ["jobs:read", "jobs:write", "jobs:admin"]
        assert prm["authorization_servers"]


async def test_the_tokens_file_holds_hashes_and_a_revoked_token_stops_working_without_a_restart(tmp_path, state_dir):
    store, minted = tokens(tmp_path, alice="jobs:read,jobs:write", bob="jobs:read")
    raw = store.path.read_text()
    assert minted["alice"] not in raw and token_hash(minted["alice"]) in raw
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    settings = make_settings(tmp_path, http_tokens_file=store.path)
    async with team_server(settings) as url:
        async with connect_http(url, minted["alice"]) as client:
            assert (await client.list_tools()).tools
        assert store.revoke("alice")
        assert (await post(url, minted["alice"])).status_code == 401
        assert (await post(url, minted["bob"])).status_code == 200  # the others keep working


async def test_read_only_token_sees_no_write_tool_and_cannot_create(tmp_path, state_dir):
    store, minted = tokens(tmp_path, viewer="jobs:read", writer="jobs:write")
    settings = make_settings(tmp_path, http_tokens_file=store.path)
    async with team_server(settings) as url:
        async with connect_http(url, minted["writer"]) as client:
            writer_tools = {t.name for t in (await client.list_tools()).tools}
            spec = (await call(client, "list_ecs_specs", {"accelerator_type": "CPU"}))["specs"][0]["instance_type"]
        assert {"create_training_job", "stop_job", "cleanup_jobs", "label_job", "save_job_template"} <= writer_tools
        for mode in ("auto", "legacy"):
            async with connect_http(url, minted["viewer"], mode=mode) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "list_jobs" in names and "estimate_cost" in names and "get_job_logs" in names
                hidden = writer_tools - names
                assert {"create_training_job", "stop_job", "delete_job", "cleanup_jobs", "label_job"} <= hidden
                assert all(t.annotations and t.annotations.read_only_hint is not False
                           for t in (await client.list_tools()).tools)  # fmt: skip
                quote = await call(
                    client, "estimate_cost",
                    {"ecs_spec": spec, "worker_count": 1, "estimated_minutes": 1, "max_runtime_minutes": 2},
                )  # fmt: skip
                # Refused over HTTP with 403 insufficient_scope (test_team_stepup.py); the client shows the reason.
                with pytest.raises(MCPError) as refused:
                    await client.call_tool(
                        "create_training_job",
                        {"quote_id": quote["quote_id"], "display_name": "x", "user_command": "true", "ecs_spec": spec,
                         "worker_count": 1, "confirmed": True},
                    )  # fmt: skip
                assert "jobs:write" in str(refused.value) and "viewer" in str(refused.value)
                with pytest.raises(MCPError, match="stop_job changes jobs and needs the jobs:write scope"):
                    await client.call_tool("stop_job", {"job_id": "local-anything"})
        async with connect_http(url, minted["writer"]) as client:
            assert (await call(client, "list_jobs"))["count"] == 0  # nothing was created


async def test_token_without_read_scope_gets_403_insufficient_scope(tmp_path, state_dir):
    with running_issuer() as issuer:
        issuer.add_key("k1")
        settings = make_settings(tmp_path, oauth_issuer=issuer.url)
        async with team_server(settings) as url:
            r = await post(url, issuer.token("carol", aud=url, scope="profile"))
            assert r.status_code == 403
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
            assert "resource_metadata=" in r.headers["www-authenticate"]


async def test_jwts_checked_against_the_issuer_jwks_and_key_rotation(tmp_path, state_dir):
    with running_issuer() as issuer:
        issuer.add_key("k1")
        issuer.add_key("r1", kind="rsa")
        settings = make_settings(tmp_path, oauth_issuer=issuer.url, oauth_jwks_min_refresh_seconds=1.0)
        async with team_server(settings) as url:
            good = issuer.token("alice", aud=url)
            async with connect_http(url, good) as client:
                assert (await client.list_tools()).tools
            assert (await post(url, issuer.token("alice", kid="r1", aud=url))).status_code == 200
            stranger = ec.generate_private_key(ec.SECP256R1())
            refused = {
                "expired": issuer.token("alice", aud=url, exp_in=-120),
                "not yet valid": issuer.token("alice", aud=url, nbf_in=600),
                "wrong audience": issuer.token("alice", aud="http://127.0.0.1:1/mcp"),
                "wrong issuer": issuer.token("alice", aud=url, iss="http://127.0.0.1:2"),
                "bad signature": issuer.token("alice", aud=url, key=stranger),
                "unknown key": issuer.token("alice", aud=url, kid="k-unknown", key=stranger),
                "hs256 (a shared secret)": jwt.encode(
                    {"sub": "alice", "iss": issuer.url, "aud": url, "exp": 2**31},
                    "a-shared-secret-of-at-least-32-bytes!",
                    algorithm="HS256",
                    headers={"kid": "k1"},
                ),
                "local is no identity": issuer.token("local", aud=url),
                "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
            }
            fetches = issuer.jwks_requests
            for what, token in refused.items():
                assert (await post(url, token)).status_code == 401, what
            # unknown kids within the cooldown re-fetch the key set at most once
            assert issuer.jwks_requests - fetches <= 1

            # rotation: the issuer publishes k2 and retires k1; a token signed with k2 is accepted
            await anyio.sleep(1.1)
            issuer.add_key("k2")
            del issuer.keys["k1"]
            rotated = issuer.token("alice", kid="k2", aud=url)
            assert (await post(url, rotated)).status_code == 200
            before = issuer.jwks_requests
            for _ in range(5):
                assert (await post(url, rotated)).status_code == 200
            assert issuer.jwks_requests == before  # keys are cached
            await anyio.sleep(1.1)
            assert (await post(url, good)).status_code == 401  # k1 is gone


async def test_audience_setting_and_scp_claim_as_a_list(tmp_path, state_dir):
    with running_issuer() as issuer:
        issuer.add_key("k1")
        settings = make_settings(tmp_path, oauth_issuer=issuer.url, oauth_audience="api://cloudjobs")
        async with team_server(settings) as url:
            assert (await post(url, issuer.token("dan", aud="api://cloudjobs"))).status_code == 200
            assert (await post(url, issuer.token("dan", aud=url))).status_code == 401
            scp = jwt.encode(
                {"sub": "dan", "iss": issuer.url, "aud": "api://cloudjobs", "exp": 2**31, "scp": ["jobs:read"]},
                issuer.keys["k1"], algorithm="ES256", headers={"kid": "k1"},
            )  # fmt: skip
            async with connect_http(url, scp) as client:
                names = {t.name for t in (await client.list_tools()).tools}
            assert "list_jobs" in names and "create_training_job" not in names


def test_token_store_refuses_bad_names_scopes_and_duplicates(tmp_path):
    store = TokenStore(tmp_path / "t.json")
    for name, scopes, needle in [
        ("local", ["jobs:read"], "local"),
        ("bad name", ["jobs:read"], "Invalid token name"),
        ("alice", ["jobs:everything"], "jobs:everything"),
        ("alice", [], "none given"),
    ]:
        with pytest.raises(InvalidRequest, match=needle):
            store.add(name, scopes)
    store.add("alice", ["jobs:read"])
    with pytest.raises(InvalidRequest, match="exists"):
        store.add("alice", ["jobs:read"])
    assert [e.name for e in store.load().tokens] == ["alice"]
    assert not store.revoke("nobody")
    json.loads(store.path.read_text())


async def test_broken_tokens_file_refuses_everyone_and_says_why(tmp_path, state_dir, caplog):
    path = tmp_path / "tokens.json"
    path.write_text('{"tokens": [{"name": "x"}]}')
    settings = make_settings(tmp_path, http_tokens_file=path)
    async with team_server(settings) as url:
        assert (await post(url, "cjm_whatever")).status_code == 401
    assert any("not a valid tokens file" in r.getMessage() for r in caplog.records)


SCRIPT = Path(sys.executable).parent / "cloudjobs-mcp"


def run_cli(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_non_loopback_bind_without_auth_is_refused(tmp_path):
    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2", "0.0.0.0", "::", "10.0.0.1")] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDJOBS_")}
    env["CLOUDJOBS_STATE_DIR"] = str(tmp_path)
    out = run_cli("serve", "--http", "--host", "0.0.0.0", "--port", "1", env=env)
    assert out.returncode == 2, out
    assert "refusing to serve on 0.0.0.0" in out.stderr
    assert "CLOUDJOBS_HTTP_TOKENS_FILE" in out.stderr and "CLOUDJOBS_OAUTH_ISSUER" in out.stderr
    assert "Traceback" not in out.stderr


async def test_token_commands_and_a_served_token_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDJOBS_")}
    env |= {"CLOUDJOBS_STATE_DIR": str(tmp_path / "state"), "CLOUDJOBS_HTTP_TOKENS_FILE": str(tmp_path / "t.json")}
    added = run_cli("token", "add", "alice", "--scopes", "jobs:read", env=env)
    assert added.returncode == 0 and "shown once" in added.stderr
    token = added.stdout.strip()
    assert token.startswith("cjm_") and token not in (tmp_path / "t.json").read_text()
    listed = run_cli("token", "list", env=env)
    assert listed.stdout.startswith("alice\tjobs:read\tcreated ") and token not in listed.stdout
    out = run_cli("token", "add", "bob", "--scopes", "jobs:root", env=env)
    assert out.returncode == 2 and "jobs:root" in out.stderr and "Traceback" not in out.stderr, out

    port = free_port()
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        with anyio.fail_after(30):
            while True:
                try:
                    r = await post(url, None)
                    break
                except httpx.TransportError:
                    await anyio.sleep(0.1)
        assert r.status_code == 401
        async with connect_http(url, token) as client:
            names = {t.name for t in (await client.list_tools()).tools}
        assert "list_jobs" in names and "create_training_job" not in names
        assert run_cli("token", "revoke", "alice", env=env).returncode == 0
        assert (await post(url, token)).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
