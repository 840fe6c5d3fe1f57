"""Identities on a team server: quotes and jobs belong to whoever asked, budgets per identity; stdio is ``local``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloudjobs_mcp.server.auth import TokenStore
from cloudjobs_mcp.server.budgets import Budgets
from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.providers.base import TAG_OWNER
from tests.conftest import call, call_error, connect, create_args, make_settings, qargs, smallest_cpu_spec
from tests.team_fixtures import connect_http, team_server

pytestmark = pytest.mark.anyio


def team(tmp_path, **named: str) -> tuple[TokenStore, dict[str, str]]:
    store = TokenStore(tmp_path / "tokens.json")
    return store, {name: store.add(name, scopes.split(",")) for name, scopes in named.items()}


async def test_quotes_and_jobs_belong_to_their_identity(tmp_path, state_dir):
    store, t = team(tmp_path, alice="jobs:write", bob="jobs:write", ops="jobs:admin")
    settings = make_settings(tmp_path, http_tokens_file=store.path)
    async with team_server(settings) as url:
        async with connect_http(url, t["alice"]) as alice, connect_http(url, t["bob"]) as bob:
            spec = await smallest_cpu_spec(alice)
            quote = await call(alice, "estimate_cost", qargs(spec, max_minutes=2))
            assert quote["identity"] == "alice"
            args = create_args(spec, quote["quote_id"], "sleep 30", confirmed=True)

            stolen = await call_error(bob, "create_training_job", args)
            assert "issued to 'alice'" in stolen and "not to 'bob'" in stolen
            job = (await call(alice, "create_training_job", args))["job"]
            assert job["tags"][TAG_OWNER] == "alice"
            assert "issued to 'alice'" in await call_error(bob, "create_training_job", args)  # not even a replay

            assert [j["job_id"] for j in (await call(alice, "list_jobs", {"only_mine": True}))["jobs"]] == [
                job["job_id"]
            ]
            assert (await call(bob, "list_jobs", {"only_mine": True}))["jobs"] == []
            assert (await call(bob, "list_jobs"))["count"] == 1  # everyone can see the team's jobs

            for tool, extra in (("stop_job", {}), ("delete_job", {}), ("label_job", {"labels": {"x": "y"}})):
                refused = await call_error(bob, tool, {"job_id": job["job_id"], **extra})
                assert "created by 'alice'" in refused and "'bob' may not" in refused, tool
            wait = await call(bob, "wait_job_complete", {"job_id": job["job_id"], "timeout": 0.1, "interval": 0.1})
            assert wait["outcome"] == "timed_out" and "NOT stopped" in wait["message"]  # no stop by the back door

            sweep = {"status": "Running", "dry_run": False}
            assert (await call(bob, "cleanup_jobs", sweep))["matched"] == 0  # bob's own jobs only
            assert "jobs:admin" in await call_error(bob, "cleanup_jobs", {**sweep, "only_mine": False})
            assert (await call(alice, "get_job", {"job_id": job["job_id"]}))["status"] in ("Running", "Queuing")

        async with connect_http(url, t["ops"]) as ops:
            swept = await call(ops, "cleanup_jobs", {"status": "Running", "dry_run": False, "only_mine": False})
            assert [a["job_id"] for a in swept["actions"]] == [job["job_id"]]
            assert swept["actions"][0]["action"] == "stopped"


async def test_cleanup_by_default_touches_only_the_callers_jobs(tmp_path, state_dir):
    store, t = team(tmp_path, alice="jobs:write", bob="jobs:write")
    settings = make_settings(tmp_path, http_tokens_file=store.path)
    async with team_server(settings) as url:
        made: dict[str, str] = {}
        for who in ("alice", "bob"):
            async with connect_http(url, t[who]) as client:
                spec = await smallest_cpu_spec(client)
                quote = await call(client, "estimate_cost", qargs(spec))
                args = create_args(spec, quote["quote_id"], "exit 3", display_name=f"{who}-job", confirmed=True)
                made[who] = (await call(client, "create_training_job", args))["job"]["job_id"]
                await call(client, "wait_job_complete", {"job_id": made[who], "interval": 0.1})
        async with connect_http(url, t["bob"]) as bob:
            done = await call(bob, "cleanup_jobs", {"status": "Failed", "delete": True, "dry_run": False})
            assert [(a["job_id"], a["action"]) for a in done["actions"]] == [(made["bob"], "deleted")]
            assert (await call(bob, "get_job", {"job_id": made["alice"]}))["status"] == "Failed"  # untouched


async def test_budgets_per_identity_say_which_limit_and_what_is_left(tmp_path, state_dir):
    store, t = team(tmp_path, alice="jobs:write", bob="jobs:write")
    budgets = tmp_path / "budgets.json"
    budgets.write_text(json.dumps({"alice": {"max_hourly": 1.5, "max_daily": 1.0}, "*": {"max_job_cost": 0.2}}))
    settings = make_settings(tmp_path, http_tokens_file=store.path, budgets_file=budgets, local_price_per_hour=1.0)
    async with team_server(settings) as url:
        async with connect_http(url, t["alice"]) as alice:
            spec = await smallest_cpu_spec(alice)
            hourly = await call_error(alice, "estimate_cost", qargs(spec, workers=2, max_minutes=10))
            assert "max_hourly" in hourly and "'alice'" in hourly and "2.00/hour" in hourly
            first = await call(alice, "estimate_cost", qargs(spec, minutes=1, max_minutes=30))  # worst case 0.50
            second = await call(alice, "estimate_cost", qargs(spec, minutes=1, max_minutes=36))  # worst case 0.60
            job = await call(alice, "create_training_job", create_args(spec, first["quote_id"], "true", confirmed=True))
            await call(alice, "wait_job_complete", {"job_id": job["job"]["job_id"], "interval": 0.1})
            refused = await call_error(
                alice, "create_training_job", create_args(spec, second["quote_id"], "true", confirmed=True)
            )
            assert "max_daily" not in refused  # the message says it in words
            assert "a day" in refused and "0.50 is committed today" in refused and "0.50 is left" in refused
            assert "0.60" in refused
            again = await call_error(alice, "estimate_cost", qargs(spec, minutes=1, max_minutes=36))
            assert "0.50 is left" in again
        async with connect_http(url, t["bob"]) as bob:
            over = await call_error(bob, "estimate_cost", qargs(spec, minutes=1, max_minutes=30))
            assert "max_job_cost" in over and "'*' entry" in over and "'bob'" in over
            assert (await call(bob, "estimate_cost", qargs(spec, minutes=1, max_minutes=10)))["identity"] == "bob"
    async with connect(settings) as local:  # stdio and in-memory callers are `local`: not bound by '*'
        assert (await call(local, "estimate_cost", qargs(spec, workers=2, max_minutes=30)))["identity"] == "local"


def test_bad_budgets_files_are_refused_with_the_reason(tmp_path):
    path = tmp_path / "b.json"
    for body, needle in [
        ("[1]", "JSON object"),
        ("{", "not readable JSON"),
        ('{"alice": {"max_hourly": -1}}', "alice.max_hourly"),
        ('{"alice": {"max_hours": 1}}', "allowed: max_hourly"),
        ('{"bad name": {}}', "not an identity"),
    ]:
        path.write_text(body)
        with pytest.raises(ConfigurationError, match=needle):
            Budgets.load(path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        Budgets.load(tmp_path / "missing.json")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDJOBS_")},
        "CLOUDJOBS_STATE_DIR": str(tmp_path),
    }
    env["CLOUDJOBS_BUDGETS_FILE"] = str(path)
    script = Path(sys.executable).parent / "cloudjobs-mcp"
    out = subprocess.run([str(script), "serve"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "CLOUDJOBS_BUDGETS_FILE" in out.stderr and "Traceback" not in out.stderr


async def test_stdio_callers_are_local_and_keep_todays_behaviour(tmp_path, state_dir):
    settings = make_settings(tmp_path)
    async with connect(settings) as client:
        spec = await smallest_cpu_spec(client)
        quote = await call(client, "estimate_cost", qargs(spec))
        assert quote["identity"] == "local"
        job = await call(client, "create_training_job", create_args(spec, quote["quote_id"], "true", confirmed=True))
        assert job["job"]["tags"][TAG_OWNER] == "local"
        mine = await call(client, "list_jobs", {"only_mine": True})
        assert [j["job_id"] for j in mine["jobs"]] == [job["job"]["job_id"]]
        names = {t.name for t in (await client.list_tools()).tools}
        assert "create_training_job" in names and "cleanup_jobs" in names
