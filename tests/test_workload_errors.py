"""Primus-SaFE error answers → typed errors with clear messages; what the shared retry loop retries."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cloudjobs_mcp.server.errors import (
    AuthenticationError,
    CapacityUnavailable,
    PermissionDenied,
    ProviderError,
)
from cloudjobs_mcp.server.http import OutcomeUnknown, RemoteNotFound
from cloudjobs_mcp.server.providers.workload.errormap import parse_error
from tests.test_workload_provider import request
from tests.workload_fixtures import workload_provider, workload_sandbox

pytestmark = pytest.mark.anyio


def answer(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"errorCode": code, "errorMessage": message})


@pytest.mark.parametrize(
    ("status", "code", "message", "kind", "retryable", "says"),
    [
        (503, "Primus.00008", "Insufficient resource: cpu 64 > 30", CapacityUnavailable, False, "not an outage"),
        (500, "Primus.00001", "Internal error. database busy", ProviderError, True, "(internal error)"),
        (500, "Primus.00001", "Internal error. The workload can only be edited when it is running.", ProviderError,
         False, "can only be edited"),
        (409, "Primus.00010", "the resource is being processed", ProviderError, True, "being processed"),
        (403, "Primus.00003", "The user is not allowed to create workload", PermissionDenied, False, "Ask a workspace"),
        (404, "Primus.02001", "Workspace ws-x not found.", RemoteNotFound, False, "CLOUDJOBS_WORKLOAD_WORKSPACE"),
        (404, "NotFound", 'workloads.amd.com "w-1" not found', RemoteNotFound, False, "gone from the cluster"),
        (401, "Primus.00009", "The user's token has expired, please login again", AuthenticationError, False,
         "not authenticated"),
        (413, "Primus.00006", "the request body is too large", ProviderError, False, "over 2 MiB"),
    ],
)  # fmt: skip
def test_codes_become_typed_errors_with_what_to_do(
    status: int, code: str, message: str, kind: type, retryable: bool, says: str
) -> None:
    err = parse_error(answer(status, code, message), what="create workload")
    assert type(err) is kind and err.retryable is retryable and err.code == code and err.status == status
    assert str(err).startswith(f"Workload platform: create workload failed with HTTP {status} {code}")
    assert says in str(err) and message.rstrip(".") in str(err)


def test_a_body_that_is_not_the_platforms_and_secrets_in_messages() -> None:
    err = parse_error(httpx.Response(502, text="<html>Bad Gateway</html>"), what="list workloads")
    assert err.retryable and err.code == "HTTP502" and "Bad Gateway" in str(err)
    leaked = parse_error(
        answer(400, "Primus.00002", "bad token ak-secret-value-123"), what="x", redact=["ak-secret-value-123"]
    )
    assert "ak-secret-value-123" not in str(leaked) and "***" in str(leaked)


async def test_outages_are_retried_and_a_lost_create_without_a_quote_says_to_check(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        sb.sandbox.faults.fail_503(2, actions={"ListWorkspaces"})  # a gateway 503, not Primus.00008
        assert await p.list_specs()
        assert [c.status for c in sb.sandbox.calls if c.action == "ListWorkspaces"] == [503, 503, 200]
        sb.sandbox.faults.fail_503(1, after=True, actions={"CreateWorkload"})
        with pytest.raises(OutcomeUnknown, match="may have been created: check list_jobs"):
            await p.create_job(request())  # no quote tag to look for: never sent twice blindly
        assert sum(1 for c in sb.sandbox.calls if c.action == "CreateWorkload") == 1
