"""The audit trail: a line for every write on every transport, secrets masked, whole lines under concurrent
writers (real processes) and after a writer died mid-line; `cloudjobs-mcp audit`; the caller's own resource."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mcp import MCPError

from cloudjobs_mcp.server.audit import AUDIT_FILE, AuditLog, masked, parse_since
from cloudjobs_mcp.server.auth import TokenStore
from tests.conftest import call, call_error, connect, create_args, make_settings, qargs, smallest_cpu_spec, wait_done
from tests.team_fixtures import connect_http, team_server

pytestmark = pytest.mark.anyio
SCRIPT = Path(sys.executable).parent / "cloudjobs-mcp"


def lines(state_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (state_dir / AUDIT_FILE).read_text().splitlines()]


async def test_every_write_is_audited_once_and_reads_are_not(tmp_path, state_dir):
    settings = make_settings(tmp_path, local_price_per_hour=2.0)
    async with connect(settings) as client:
        spec = await smallest_cpu_spec(client)
        quote = await call(client, "estimate_cost", qargs(spec, max_minutes=30))
        envs = {"WANDB_API_KEY": "wandb-secret-value-123", "DATA": "/data/x"}
        args = create_args(spec, quote["quote_id"], "sleep 30 # password=hunter22", envs=envs, confirmed=True)
        job_id = (await call(client, "create_training_job", args))["job"]["job_id"]
        await call(client, "label_job", {"job_id": job_id, "labels": {"exp": "a"}})
        await call(client, "unlabel_job", {"job_id": job_id, "keys": ["exp"]})
        tpl = await call(client, "save_job_template", {"name": "t1", "from_job_id": job_id})
        await call(client, "set_default_template_version", {"template_id": tpl["template_id"], "version": 1})
        await call(client, "delete_job_template", {"template_id": tpl["template_id"]})
        await call(client, "stop_job", {"job_id": job_id})
        await wait_done(client, job_id)  # ends normally: a wait that stops nothing is not a write
        await call(client, "cleanup_jobs", {"status": "Stopped", "delete": True})  # the dry run
        await call(client, "cleanup_jobs", {"status": "Stopped", "delete": True, "dry_run": False})
        await call_error(client, "delete_job", {"job_id": "local-nope"})
        for read in ("list_jobs", "list_job_templates"):
            await call(client, read)

    got = lines(state_dir)
    assert [e["tool"] for e in got] == [
        "create_training_job", "label_job", "unlabel_job", "save_job_template", "set_default_template_version",
        "delete_job_template", "stop_job", "cleanup_jobs", "cleanup_jobs", "delete_job",
    ]  # fmt: skip
    create = got[0]
    assert create["identity"] == "local" and create["client"].startswith("mcp")
    assert create["quote_id"] == quote["quote_id"] and create["job_ids"] == [job_id]
    assert create["price_hourly"] == pytest.approx(2.0) and create["worst_case"] == pytest.approx(1.0)
    assert create["currency"] == "CNY" and create["outcome"] == "ok"
    assert create["arguments"]["envs"] == {"WANDB_API_KEY": "****", "DATA": "/data/x"}
    assert "hunter22" not in json.dumps(got) and "wandb-secret-value-123" not in json.dumps(got)
    assert got[7]["arguments"].get("dry_run") is None and got[7]["job_ids"] == []  # the dry run touched nothing
    assert got[8]["job_ids"] == [job_id] and "deleted" in got[8]["detail"]
    assert got[9]["outcome"] == "error" and got[9]["job_ids"] == ["local-nope"] and got[9]["detail"]
    assert all(e["time"].endswith("+00:00") for e in got)


async def test_http_callers_are_audited_with_identity_and_client_and_read_their_own_entries(tmp_path, state_dir):
    store = TokenStore(tmp_path / "tokens.json")
    alice, viewer = store.add("alice", ["jobs:write"]), store.add("viewer", ["jobs:read"])
    settings = make_settings(tmp_path, http_tokens_file=store.path)
    async with team_server(settings) as url:
        async with connect_http(url, alice) as client:
            spec = await smallest_cpu_spec(client)
            q = await call(client, "estimate_cost", qargs(spec))
            job = await call(client, "create_training_job", create_args(spec, q["quote_id"], "true", confirmed=True))
        async with connect_http(url, viewer) as client:
            with pytest.raises(MCPError, match="jobs:write"):  # HTTP 403 insufficient_scope, audited all the same
                await client.call_tool("stop_job", {"job_id": job["job"]["job_id"]})
            mine = await client.read_resource("cloudjobs://audit/mine")
            viewer_lines = [json.loads(x) for x in mine.contents[0].text.splitlines()]
        async with connect_http(url, alice) as client:
            alice_lines = [
                json.loads(x)
                for x in (await client.read_resource("cloudjobs://audit/mine")).contents[0].text.splitlines()
            ]
    assert [(e["identity"], e["tool"], e["outcome"]) for e in viewer_lines] == [("viewer", "stop_job", "error")]
    assert "jobs:write" in viewer_lines[0]["detail"]
    assert [(e["identity"], e["tool"]) for e in alice_lines] == [("alice", "create_training_job")]
    assert alice_lines[0]["client"].startswith("mcp ")
    assert len(lines(state_dir)) == 2


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cloudjobs_mcp.server.audit import AuditLog
    log, me = AuditLog(Path(sys.argv[1])), sys.argv[2]
    for i in range(int(sys.argv[3])):
        log.append({"writer": me, "seq": i, "pad": me * 6000})  # > PIPE_BUF: atomicity comes from the lock
    """
)


def test_concurrent_writer_processes_never_tear_or_lose_a_line(tmp_path):
    writers, each = 4, 60
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{n}", str(each)]) for n in range(writers)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    raw = (tmp_path / AUDIT_FILE).read_text().splitlines()
    assert len(raw) == writers * each
    entries = [json.loads(x) for x in raw]  # every line whole
    for n in range(writers):
        assert [e["seq"] for e in entries if e["writer"] == f"w{n}"] == list(range(each))


def test_a_line_torn_by_a_crash_stays_apart_from_the_next(tmp_path):
    log = AuditLog(tmp_path)
    log.append({"tool": "stop_job", "seq": 1})
    with (tmp_path / AUDIT_FILE).open("ab") as f:
        f.write(b'{"tool": "create_training_job", "ide')  # a writer killed halfway through its line
    log.append({"tool": "delete_job", "seq": 2})
    assert [e["seq"] for e in log.entries()] == [1, 2]
    assert len((tmp_path / AUDIT_FILE).read_text().splitlines()) == 3


def test_secrets_are_masked_in_arguments():
    args = {
        "envs": {"HF_TOKEN": "hf_abcdefgh", "AWS_SECRET_ACCESS_KEY": "x" * 30, "LR": "0.1"},
        "user_command": "curl -u bob:pa55word@host https://u:pw@example.com",
        "labels": {"k": "v" * 2000},
    }
    out = masked(args, known=("pa55word",))
    assert out["envs"] == {"HF_TOKEN": "****", "AWS_SECRET_ACCESS_KEY": "****", "LR": "0.1"}
    assert "pa55word" not in out["user_command"] and "u:pw@" not in out["user_command"]
    assert len(out["labels"]["k"]) <= 1001


def test_audit_command_filters_and_refuses_a_bad_since(tmp_path):
    log = AuditLog(tmp_path)
    log.append({"time": "2020-01-01T00:00:00+00:00", "identity": "alice", "tool": "stop_job"})
    log.append({"time": "2999-01-01T00:00:00+00:00", "identity": "bob", "tool": "create_training_job"})
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDJOBS_")},
        "CLOUDJOBS_STATE_DIR": str(tmp_path),
    }

    def audit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRIPT), "audit", *args], capture_output=True, text=True, env=env, timeout=60)

    out = audit("--since", "2h", "--tool", "create_training_job")
    assert [json.loads(x)["identity"] for x in out.stdout.splitlines()] == ["bob"]
    bad = audit("--since", "yesterday-ish")
    assert bad.returncode == 2 and "30m, 2h, 7d" in bad.stderr and "Traceback" not in bad.stderr
    assert [e["identity"] for e in AuditLog(tmp_path).entries(identity="alice")] == ["alice"]
    assert parse_since("2020-01-01T02:00+02:00").isoformat() == "2020-01-01T00:00:00+00:00"
