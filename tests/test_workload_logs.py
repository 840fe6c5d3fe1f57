"""Logs on the workload platform: every pod, a cursor built by de-duplicating overlapping reads, and the
end of the logs ``ttlSecondsAfterFinished`` after a workload ends (inside and past it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from cloudjobs_mcp.server.errors import NotFound
from cloudjobs_mcp.server.providers.workload.logbook import LogBook, overlap, split_lines
from tests.test_workload_provider import create, finished, request
from tests.workload_fixtures import workload_provider, workload_sandbox

pytestmark = pytest.mark.anyio

PRINT = "for i in $(seq 1 {n}); do echo line-$i; done"


def test_overlap_and_split() -> None:
    assert split_lines(["a", "b", ""]) == (["a", "b"], None)
    assert split_lines(["a", "b"]) == (["a"], "b")  # no newline yet: b may still grow
    assert overlap(["a", "b", "c"], ["b", "c", "d"]) == 2
    assert overlap(["a", "b"], ["x"]) == 0
    assert overlap(["a", "a"], ["a", "a", "a"]) == 2


def test_the_book_keeps_line_numbers_while_the_platform_window_slides() -> None:
    t = [100.0]
    book = LogBook(clock=lambda: t[0])
    full = [f"line-{i}" for i in range(1, 11)]
    assert book.merge("w", "p", [*full[:4], ""], whole=True).lines == full[:4]
    t[0] = 200.0
    # Only the last 3 lines come back (tailLines=3): the overlap line-4 is recognised, 5 and 6 are new.
    page = book.merge("w", "p", [*full[3:6], ""], whole=False)
    assert page.lines == full[:6] and page.seen == [100.0] * 4 + [200.0] * 2
    # A window with no overlap at all (more than tailLines written since): appended as it is.
    assert book.merge("w", "p", [*full[7:10], ""], whole=False).lines == full[:6] + full[7:10]
    # A whole read that disagrees with what was known (a restarted pod) starts over.
    assert book.merge("w", "p", ["other", ""], whole=True).lines == ["other"]
    book.forget("w")
    assert book.get("w", "p") is None


async def test_logs_of_every_pod_and_until_by_first_seen_time(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        job = await finished(p, (await create(p, request(command=PRINT.format(n=5), workers=2))).job_id)
        pages = {pod.pod_id: await p.pod_logs(job.job_id, pod.pod_id) for pod in job.pods}
        assert [page.lines for page in pages.values()] == [[f"line-{i}" for i in range(1, 6)]] * 2
        tail = await p.pod_logs(job.job_id, job.pods[0].pod_id, max_lines=2)
        assert (tail.lines, tail.truncated) == (["line-4", "line-5"], True)
        before = await p.pod_logs(job.job_id, job.pods[0].pod_id, until=datetime.now(UTC) - timedelta(hours=1))
        assert before.lines == []  # nothing had been seen an hour ago
        recent = await p.pod_logs(job.job_id, job.pods[0].pod_id, since=datetime.now(UTC) - timedelta(minutes=5))
        assert recent.lines == [f"line-{i}" for i in range(1, 6)]  # sinceSeconds on the platform
        asked = [c for c in sb.sandbox.calls if c.action == "GetPodLogs"]
        assert asked and all(c.status == 200 for c in asked)


async def test_logs_after_the_end_inside_and_past_the_ttl(tmp_path: Path) -> None:
    async with (
        workload_sandbox(tmp_path, ttl_seconds=60) as sb,
        workload_provider(sb, tmp_path, workload_ttl_seconds=1) as p,
    ):
        job = await finished(p, (await create(p, request(command=PRINT.format(n=3)))).job_id)
        assert sb.sandbox.workloads[job.job_id].ttl == 1  # the provider's TTL, not the platform's 60 s
        pod = job.pods[0].pod_id
        assert (await p.pod_logs(job.job_id, pod)).lines == ["line-1", "line-2", "line-3"]  # inside the TTL
        await anyio.sleep(1.3)
        # Past it the pods are gone (404 NotFound); no log search here: the lines read before are shown.
        kept = await p.pod_logs(job.job_id, pod)
        assert kept.lines[1:] == ["line-1", "line-2", "line-3"] and "deleted this pod's log" in kept.lines[0]
        assert kept.truncated
        # A provider that never read them (e.g. after a restart) says clearly that they expired.
        async with workload_provider(sb, tmp_path, workload_ttl_seconds=1) as fresh:
            with pytest.raises(NotFound, match=r"logs of workload .* are gone.*ttlSecondsAfterFinished.*log search"):
                await fresh.pod_logs(job.job_id, pod)
            with pytest.raises(NotFound, match="has no pod 'nope'"):
                await fresh.pod_logs(job.job_id, "nope")
        assert (await p.get_job(job.job_id)).status.value == "Succeeded"  # the database still knows it


async def test_past_the_ttl_log_search_serves_the_lines_when_enabled(tmp_path: Path) -> None:
    async with (
        workload_sandbox(tmp_path, log_search=True) as sb,
        workload_provider(sb, tmp_path, workload_ttl_seconds=1) as p,
    ):
        job = await finished(p, (await create(p, request(command=PRINT.format(n=4), workers=2))).job_id)
        await anyio.sleep(1.3)
        for pod in job.pods:
            page = await p.pod_logs(job.job_id, pod.pod_id)
            assert page.lines == ["line-1", "line-2", "line-3", "line-4"]
        assert [c.status for c in sb.sandbox.calls if c.action == "GetPodLogs"] == [404, 404]
        assert [c.status for c in sb.sandbox.calls if c.action == "SearchWorkloadLogs"] == [200, 200]
