"""The pieces the cloud providers share (server/providers/common.py): what each guarantees on its own."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import httpx
import pytest

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.models import Job, JobRequest, JobStatus, MetricDefinition
from cloudjobs_mcp.server.providers.base import TAG_QUOTE_ID
from cloudjobs_mcp.server.providers.common import (
    METRIC_DEFINITIONS_ENV,
    PooledClient,
    check_job_shape,
    check_max_lines,
    error_text,
    failure_summary,
    first_error,
    gather,
    job_for_quote,
    look_again,
    metric_definitions_from,
    retry_after_seconds,
)

pytestmark = pytest.mark.anyio


BASE = JobRequest(
    display_name="t", user_command="t", job_type="PyTorchJob", ecs_spec="s", worker_count=1, max_runtime_minutes=9
)


def _request(**fields: object) -> JobRequest:
    return JobRequest.model_validate({**BASE.model_dump(), **fields})


def _job(status: JobStatus, reason: str | None = None, reason_code: str | None = None) -> Job:
    return Job(
        job_id="j1", name="train", provider="x", status=status, raw_status="", reason=reason, reason_code=reason_code
    )


async def test_gather_raises_the_first_failure_itself_and_cancels_the_others() -> None:
    finished: list[str] = []

    async def fails() -> None:
        raise NotFound("job j1 is gone")

    async def slow() -> None:
        await anyio.sleep(5)
        finished.append("slow")

    with anyio.fail_after(2), pytest.raises(NotFound, match="job j1 is gone"):
        await gather([slow, fails])
    assert finished == []  # cancelled, not awaited to the end


async def test_first_error_unwraps_nested_task_groups() -> None:
    async def inner() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_raise_invalid)

    with pytest.raises(InvalidRequest, match="bad"):
        async with first_error(), anyio.create_task_group() as tg:
            tg.start_soon(inner)


async def _raise_invalid() -> None:
    raise InvalidRequest("bad")


async def test_gather_of_nothing_and_of_successes_returns() -> None:
    done: list[int] = []

    async def one() -> None:
        done.append(1)

    await gather([])
    await gather([one, one])
    assert done == [1, 1]


async def test_job_for_quote_finds_the_job_the_quote_already_paid_for(caplog: pytest.LogCaptureFixture) -> None:
    asked: list[tuple[str, str]] = []
    existing = _job(JobStatus.RUNNING)

    async def find(key: str, value: str) -> Job | None:
        asked.append((key, value))
        return existing if value == "q-1" else None

    log = logging.getLogger("cloudjobs.test")
    with caplog.at_level(logging.INFO, logger="cloudjobs.test"):
        assert await job_for_quote(_request(tags={TAG_QUOTE_ID: "q-1"}), find, log, what="workload") is existing
    assert "workload j1 already exists for quote q-1; not creating another" in caplog.text
    assert await job_for_quote(_request(tags={TAG_QUOTE_ID: "q-2"}), find, log) is None
    assert asked == [(TAG_QUOTE_ID, "q-1"), (TAG_QUOTE_ID, "q-2")]
    assert await job_for_quote(_request(), find, log) is None  # no quote tag: nothing to look up
    assert len(asked) == 2


def test_check_job_shape_names_what_is_allowed() -> None:
    check_job_shape(_request())
    with pytest.raises(InvalidRequest, match=r"job_type 'SparkJob' is not supported; allowed: .*PyTorchJob"):
        check_job_shape(_request(job_type="SparkJob"))
    with pytest.raises(InvalidRequest, match="worker_count must be at least 1, got 0"):
        check_job_shape(_request(worker_count=0))


def test_check_max_lines_takes_none_or_at_least_one() -> None:
    check_max_lines(None)
    check_max_lines(1)
    with pytest.raises(InvalidRequest, match="max_lines must be at least 1, got 0"):
        check_max_lines(0)


def test_metric_definitions_are_read_back_and_anything_unreadable_reads_as_none() -> None:
    raw = '[{"name": "loss", "regex": "loss=(\\\\S+)"}, {"name": "", "regex": "x"}, "junk", {"name": "acc"}]'
    loss = MetricDefinition(name="loss", regex=r"loss=(\S+)")
    assert metric_definitions_from({METRIC_DEFINITIONS_ENV: raw}) == [loss]
    for bad in ("", "   ", "not json", '{"name": "loss"}', None, 42):
        assert metric_definitions_from({METRIC_DEFINITIONS_ENV: bad}) == []
    assert metric_definitions_from({}) == []


def test_failure_summary_only_for_a_failed_job_with_a_reason() -> None:
    assert failure_summary(_job(JobStatus.FAILED, "exit code 1", "ExitCode")) == "ExitCode: exit code 1"
    assert failure_summary(_job(JobStatus.FAILED, "exit code 1")) == "exit code 1"
    assert failure_summary(_job(JobStatus.FAILED)) is None
    assert failure_summary(_job(JobStatus.SUCCEEDED, "done", "Ok")) is None


class _Provider(PooledClient):
    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.client = self._open_client(settings, client)


async def test_pooled_client_closes_only_the_client_it_made(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    async with _Provider(settings) as own:
        assert not own.client.is_closed
    assert own.client.is_closed

    async with httpx.AsyncClient() as shared:
        async with _Provider(settings, shared) as borrowing:
            assert borrowing.client is shared
        assert not shared.is_closed  # the caller's pool stays open for its other users


async def test_look_again_waits_between_looks_and_stops_at_the_first_find() -> None:
    slept: list[float] = []
    answers = iter([None, None, "job-1", "job-2"])

    async def sleep(delay: float) -> None:
        slept.append(delay)

    async def find() -> str | None:
        return next(answers)

    assert await look_again(find, (0.0, 1.0, 2.0, 4.0), sleep) == "job-1"
    assert slept == [1.0, 2.0]  # the first look is at once; none after the find

    async def never() -> str | None:
        return None

    slept.clear()
    assert await look_again(never, (0.0, 1.0), sleep) is None
    assert slept == [1.0]


def test_error_text_hides_known_secrets_and_bounds_the_message() -> None:
    text = error_text("signature of AKSECRET1 mismatched for key ab", ["AKSECRET1", "ab", ""])
    assert text == "signature of *** mismatched for key ab"  # 2-character values are not secrets worth hiding
    long = error_text("x" * 500, [])
    assert len(long) == 400 and long.endswith("…")
    assert error_text("x" * 400, []) == "x" * 400


def test_retry_after_seconds_reads_only_a_positive_number() -> None:
    def answer(**headers: str) -> httpx.Response:
        return httpx.Response(429, headers=headers)

    assert retry_after_seconds(answer(**{"retry-after": "2.5"})) == 2.5
    for raw in ("0", "-1", "soon", ""):
        assert retry_after_seconds(answer(**{"retry-after": raw})) is None
    assert retry_after_seconds(answer()) is None
