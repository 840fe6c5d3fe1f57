"""The local provider's labels, outputs, hyperparameters, metric definitions, spot and templates."""

from __future__ import annotations

import json
import shlex
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.models import Job, JobRequest, MetricDefinition
from cloudjobs_mcp.server.providers.base import TAG_CREATED_BY, Provider
from cloudjobs_mcp.server.providers.local import LocalProvider
from cloudjobs_mcp.server.providers.local.executor import Executor
from cloudjobs_mcp.server.providers.local.provider import hyperparameter_envs

pytestmark = pytest.mark.anyio

PY = shlex.quote(sys.executable)


def make_provider(state_dir: Path) -> LocalProvider:
    return LocalProvider(Settings.from_env({}, state_dir=state_dir, local_stop_grace_seconds=0.5))


@pytest.fixture
def provider(state_dir: Path) -> LocalProvider:
    return make_provider(state_dir)


def request(provider: LocalProvider, command: str, **kw: Any) -> JobRequest:
    spec = next(s.instance_type for s in provider.specs() if s.cpu == 1 and s.accelerator == "CPU")
    fields: dict[str, Any] = {
        "display_name": "team-job",
        "user_command": command,
        "job_type": "PyTorchJob",
        "ecs_spec": spec,
        "worker_count": 1,
        "max_runtime_minutes": 5,
    }
    fields.update(kw)
    return JobRequest(**fields)


async def wait_terminal(provider: LocalProvider, job_id: str, timeout: float = 15) -> Job:
    with anyio.fail_after(timeout):
        while True:
            job = await provider.get_job(job_id)
            if job.status.is_terminal:
                return job
            await anyio.sleep(0.05)


async def test_labels_round_trip_and_filter(provider: LocalProvider) -> None:
    assert isinstance(provider, Provider)
    job = await provider.create_job(request(provider, "true", tags={TAG_CREATED_BY: "yes"}))
    other = await provider.create_job(request(provider, "true"))
    labelled = await provider.label_job(job.job_id, {"team": "vision", "stage": "dev"})
    assert labelled.tags == {TAG_CREATED_BY: "yes", "team": "vision", "stage": "dev"}
    changed = await provider.label_job(job.job_id, {"stage": "prod"})
    assert changed.tags["stage"] == "prod"
    assert [j.job_id for j in await provider.list_jobs(tags={"stage": "prod"})] == [job.job_id]
    assert await provider.list_jobs(tags={"stage": "dev"}) == []
    assert (await provider.find_job_by_tag("team", "vision")).job_id == job.job_id  # type: ignore[union-attr]
    removed = await provider.unlabel_job(job.job_id, ["stage", "absent"])
    assert removed.tags == {TAG_CREATED_BY: "yes", "team": "vision"}
    assert await provider.list_jobs(tags={"stage": "prod"}) == []
    assert (await make_provider(provider.state_dir).get_job(job.job_id)).tags == removed.tags
    assert (await provider.get_job(other.job_id)).tags == {}
    with pytest.raises(NotFound):
        await provider.label_job("local-nope", {"a": "b"})
    with pytest.raises(NotFound):
        await provider.unlabel_job("local-nope", ["a"])
    with pytest.raises(InvalidRequest):
        await provider.label_job(job.job_id, {"": "b"})
    for j in (job, other):
        await wait_terminal(provider, j.job_id)


async def test_output_models(provider: LocalProvider) -> None:
    cmd = (
        'mkdir -p "$CLOUDJOBS_OUTPUT_DIR/ckpt" && printf 12345 > "$CLOUDJOBS_OUTPUT_DIR/ckpt/model.pt" '
        '&& sleep 0.05 && printf ab > "$CLOUDJOBS_OUTPUT_DIR/metrics.json"'
    )
    job = await provider.create_job(request(provider, cmd))
    empty = await provider.output_models(job.job_id)
    assert empty.job_id == job.job_id
    done = await wait_terminal(provider, job.job_id)
    assert done.status == "Succeeded", done.reason
    out = await provider.output_models(job.job_id)
    root = provider.output_dir(job.job_id)
    assert root == provider.state_dir.absolute() / "jobs" / job.job_id / "outputs"
    assert [m.name for m in out.models] == ["metrics.json", "ckpt/model.pt"]  # newest first
    assert [m.size_bytes for m in out.models] == [2, 5]
    assert out.models[1].uri == str(root / "ckpt" / "model.pt")
    assert all(m.created_at is not None for m in out.models)
    assert (out.total, out.truncated) == (2, False)
    assert str(root) in out.note and "CLOUDJOBS_OUTPUT_DIR" in out.note
    with pytest.raises(NotFound):
        await provider.output_models("local-nope")


async def test_output_models_bounded(provider: LocalProvider) -> None:
    cmd = 'for i in $(seq 1 105); do : > "$CLOUDJOBS_OUTPUT_DIR/f$i"; done'
    job = await provider.create_job(request(provider, cmd))
    await wait_terminal(provider, job.job_id)
    out = await provider.output_models(job.job_id)
    assert (len(out.models), out.total, out.truncated) == (100, 105, True)


async def test_hyperparameters_reach_the_program(provider: LocalProvider) -> None:
    script = (
        "import json, os; "
        'print("ENV", os.environ["HP_LEARNING_RATE"], os.environ["HP_BATCH_SIZE"]); '
        'print("FILE", open(os.environ["CLOUDJOBS_HYPERPARAMETERS_FILE"]).read().replace(chr(10), ""))'
    )
    cmd = f"{PY} -c {shlex.quote(script)}"
    hps = {"learning-rate": "0.01", "batch_size": "32"}
    metrics = [MetricDefinition(name="loss", regex=r"loss=([0-9.]+)")]
    job = await provider.create_job(
        request(
            provider, cmd, hyperparameters=hps, metric_definitions=metrics, template_id="tpl-ab", template_version=2
        )
    )
    done = await wait_terminal(provider, job.job_id)
    assert done.status == "Succeeded", done.reason
    lines = (await provider.pod_logs(job.job_id, done.pods[0].pod_id)).lines
    assert "ENV 0.01 32" in lines
    file_line = next(line for line in lines if line.startswith("FILE "))
    assert json.loads(file_line[5:]) == hps
    hp_file = provider.state_dir.absolute() / "jobs" / job.job_id / "hyperparameters.json"
    assert json.loads(hp_file.read_text()) == hps

    again = await make_provider(provider.state_dir).get_job(job.job_id)
    assert again.hyperparameters == hps
    assert again.metric_definitions == metrics
    assert (again.template_id, again.template_version, again.spot) == ("tpl-ab", 2, False)


def test_hyperparameter_envs_collisions() -> None:
    assert hyperparameter_envs({"lr": "1", "a.b-c": "2"}, {}) == {"HP_LR": "1", "HP_A_B_C": "2"}
    with pytest.raises(InvalidRequest, match="both become the environment variable HP_LR"):
        hyperparameter_envs({"lr": "1", "LR": "2"}, {})
    with pytest.raises(InvalidRequest, match="which envs sets too"):
        hyperparameter_envs({"lr": "1"}, {"HP_LR": "x"})
    with pytest.raises(InvalidRequest, match="non-empty"):
        hyperparameter_envs({"": "1"}, {})


async def test_bad_requests_refused(provider: LocalProvider) -> None:
    spec = provider._spec(request(provider, "true").ecs_spec)
    with pytest.raises(InvalidRequest, match="both become"):
        provider.validate_request(request(provider, "true", hyperparameters={"a-b": "1", "a_b": "2"}), spec)
    with pytest.raises(InvalidRequest, match="needs a group"):
        provider.validate_request(
            request(provider, "true", metric_definitions=[MetricDefinition(name="loss", regex="loss")]), spec
        )
    with pytest.raises(InvalidRequest, match="set by the local provider"):
        provider.validate_request(request(provider, "true", envs={"CLOUDJOBS_OUTPUT_DIR": "/x"}), spec)


async def test_spot_refused(provider: LocalProvider) -> None:
    req = request(provider, "true", spot=True)
    with pytest.raises(InvalidRequest, match=r"no spot capacity.*CLOUDJOBS_LOCAL_PRICE_PER_HOUR.*quote without spot"):
        provider.validate_request(req, provider._spec(req.ecs_spec))
    with pytest.raises(InvalidRequest, match="no spot capacity"):
        await provider.create_job(req)
    with pytest.raises(InvalidRequest, match="no spot capacity"):
        await provider.spot_price_history(req.ecs_spec, 24)
    assert provider.template_backend() is None
    assert await provider.list_jobs() == []


async def test_old_database_migrated(state_dir: Path) -> None:
    """A local_jobs table from before the new columns keeps working: they are added on open."""
    Executor(state_dir)  # the executor's tables
    with sqlite3.connect(state_dir / Executor.DB_NAME) as conn:
        conn.execute(
            "CREATE TABLE local_jobs (job_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE, "
            "name TEXT NOT NULL, job_type TEXT NOT NULL, ecs_spec TEXT NOT NULL, worker_count INTEGER NOT NULL, "
            "image TEXT, max_runtime_minutes REAL NOT NULL, created_at REAL NOT NULL, tags TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO runs VALUES ('old-1', 'Succeeded', 1.0, 1.0, 2.0, '/tmp', NULL, 1, NULL, NULL, NULL, NULL)"
        )
        conn.execute("INSERT INTO local_jobs VALUES ('old-1', 'old', 'PyTorchJob', 'x', 1, NULL, 5, 1.0, '{}')")
    provider = make_provider(state_dir)
    job = await provider.get_job("old-1")
    assert job.hyperparameters == {} and job.metric_definitions == [] and job.template_id is None
    out = await provider.output_models("old-1")
    assert out.models == [] and "does not exist" in out.note
    new = await provider.create_job(request(provider, "true", hyperparameters={"x": "1"}))
    assert (await wait_terminal(provider, new.job_id)).hyperparameters == {"x": "1"}
