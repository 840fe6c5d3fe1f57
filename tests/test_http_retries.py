"""server.http: the one retry loop (backoff, retry-after, budgets) and PAI's error mapping."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
import respx
from pai_fixtures import DLC, Sleeps, error_response, get_job_body, json_response, make_provider

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import (
    AuthenticationError,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    TransportError,
)
from cloudjobs_mcp.server.http import OutcomeUnknown, RemoteNotFound, RetryPolicy, Sender, create_client, send
from cloudjobs_mcp.server.providers.pai import endpoints, errormap

pytestmark = pytest.mark.anyio

URL = "https://api.example.test/thing"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def parse(response: httpx.Response) -> ProviderError:
    return errormap.parse_error(response, product=endpoints.DLC, action="GetJob")


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def sleeper(clock: Clock | None = None) -> Sleeps:
    class Advancing(Sleeps):
        async def __call__(self, delay: float) -> None:
            self.append(delay)
            if clock is not None:
                clock.t += delay

    return Advancing()


async def _send(
    client: httpx.AsyncClient,
    sleeps: Sleeps,
    *,
    policy: RetryPolicy | None = None,
    idempotent: bool = True,
    clock: Callable[[], float] | None = None,
    method: str = "GET",
) -> httpx.Response:
    return await send(
        client,
        lambda: client.build_request(method, URL),
        parse_error=parse,
        policy=policy or RetryPolicy(max_attempts=4),
        idempotent=idempotent,
        sleep=sleeps,
        rand=lambda: 1.0,
        clock=clock or Clock(),
    )


async def test_throttling_honours_x_acs_retry_after_in_ms() -> None:
    sleeps = sleeper()
    async with httpx.AsyncClient() as client:
        with respx.mock() as router:
            route = router.get(URL).mock(
                side_effect=[
                    error_response(
                        "Throttling.User",
                        "Request was denied due to user flow control.",
                        400,
                        {"x-acs-retry-after": "1500"},
                    ),
                    json_response({"ok": True}),
                ]
            )
            response = await _send(client, sleeps)
    assert response.json() == {"ok": True}
    assert route.call_count == 2
    assert sleeps == [1.5]


async def test_503_retried_with_exponential_full_jitter_backoff() -> None:
    sleeps = sleeper()
    async with httpx.AsyncClient() as client:
        with respx.mock() as router:
            route = router.get(URL).mock(
                side_effect=[
                    error_response("ServiceUnavailable", "The request has failed due to a temporary failure.", 503),
                    error_response("InternalError", "internal", 500),
                    error_response("ServiceUnavailable", "again", 503),
                    json_response({"ok": True}),
                ]
            )
            await _send(client, sleeps, policy=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=1.5))
    assert route.call_count == 4
    assert sleeps == [0.5, 1.0, 1.5]  # rand()=1.0 → the cap of each full-jitter window; capped by max_delay


def test_backoff_is_full_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    assert policy.backoff(3, lambda: 0.0) == 0.0
    assert policy.backoff(3, lambda: 0.5) == 4.0
    assert policy.backoff(10, lambda: 1.0) == 8.0
    assert policy.delay(0, 90.0) == policy.max_retry_after


async def test_timeout_retried_then_transport_error_after_budget() -> None:
    sleeps = sleeper()
    async with httpx.AsyncClient() as client:
        with respx.mock() as router:
            route = router.get(URL).mock(side_effect=[httpx.ReadTimeout("timed out"), json_response({"ok": 1})])
            await _send(client, sleeps)
            assert route.call_count == 2

            route.side_effect = httpx.ConnectError("connection reset by peer")
            route.reset()
            with pytest.raises(TransportError) as info:
                await _send(client, sleeps, policy=RetryPolicy(max_attempts=3))
    assert route.call_count == 3
    assert info.value.retryable and "gave up after 3 attempts" in str(info.value)
    assert "api.example.test/thing" in str(info.value) and "ConnectError" in str(info.value)


async def test_remote_protocol_error_reset_is_retried() -> None:
    sleeps = sleeper()
    async with httpx.AsyncClient() as client:
        with respx.mock() as router:
            route = router.get(URL).mock(
                side_effect=[httpx.RemoteProtocolError("Server disconnected"), json_response({"ok": 1})]
            )
            await _send(client, sleeps)
    assert route.call_count == 2


async def test_total_time_is_bounded() -> None:
    clock = Clock()
    sleeps = sleeper(clock)
    async with httpx.AsyncClient() as client:
        with respx.mock() as router:
            route = router.get(URL).mock(
                return_value=error_response("Throttling", "slow down", 429, {"x-acs-retry-after": "4000"})
            )
            with pytest.raises(Throttled) as info:
                await _send(client, sleeps, policy=RetryPolicy(max_attempts=10, max_total=10.0), clock=clock)
    assert route.call_count == 3  # 0s, 4s, 8s; a third wait would pass 10s
    assert sleeps == [4.0, 4.0]
    assert info.value.code == "Throttling" and info.value.retry_after == 4.0


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "InvalidParameter", ProviderError),
        (400, "SignatureDoesNotMatch", AuthenticationError),
        (403, "Forbidden.RAM", PermissionDenied),
        (404, "JobNotFound", RemoteNotFound),
    ],
)
async def test_client_errors_are_not_retried(status: int, code: str, error: type[ProviderError]) -> None:
    sleeps = sleeper()
    async with httpx.AsyncClient() as client:
        with respx.mock() as router:
            route = router.get(URL).mock(return_value=error_response(code, "no", status))
            with pytest.raises(error) as info:
                await _send(client, sleeps)
    assert type(info.value) is error
    assert route.call_count == 1 and sleeps == []
    assert not info.value.retryable
    assert info.value.code == code and info.value.request_id == f"req-{code}" and info.value.status == status


async def test_non_idempotent_request_is_not_resent_after_it_may_have_arrived() -> None:
    sleeps = sleeper()
    async with httpx.AsyncClient() as client:
        with respx.mock() as router:
            route = router.post(URL).mock(side_effect=httpx.ReadTimeout("timed out"))
            with pytest.raises(OutcomeUnknown):
                await _send(client, sleeps, idempotent=False, method="POST")
            assert route.call_count == 1

            route.side_effect = [error_response("InternalError", "boom", 500)]
            route.reset()
            with pytest.raises(OutcomeUnknown) as info:
                await _send(client, sleeps, idempotent=False, method="POST")
            assert route.call_count == 1 and info.value.code == "InternalError"

            # never reached the server, or throttled: safe to send again
            route.side_effect = [
                httpx.ConnectError("refused"),
                error_response("Throttling.Api", "slow", 400, {"x-acs-retry-after": "10"}),
                json_response({"JobId": "dlc-1"}),
            ]
            route.reset()
            response = await _send(client, sleeps, idempotent=False, method="POST")
    assert response.json() == {"JobId": "dlc-1"} and route.call_count == 3


async def test_retries_are_resigned_with_fresh_date_and_nonce(caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter(range(100))
    from datetime import UTC, datetime, timedelta

    provider, sleeps = make_provider(now=lambda: datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=next(ticks)))
    with respx.mock() as router, caplog.at_level(logging.WARNING, logger="cloudjobs.http"):
        route = router.get(f"{DLC}/api/v1/jobs/dlc-123").mock(
            side_effect=[
                error_response("Throttling.User", "slow", 400, {"x-acs-retry-after": "200"}),
                error_response("ServiceUnavailable", "later", 503),
                json_response(get_job_body()),
            ]
        )
        await provider.get_job("dlc-123")
    requests = [c.request for c in route.calls]
    assert len({r.headers["x-acs-signature-nonce"] for r in requests}) == 3
    assert len({r.headers["x-acs-date"] for r in requests}) == 3
    assert len({r.headers["authorization"] for r in requests}) == 3
    assert sleeps[0] == 0.2
    assert any("retry 1/3" in r.getMessage() for r in caplog.records)
    assert all("?" not in r.getMessage() for r in caplog.records)  # no query strings in logs
    await provider.aclose()


def test_create_client_pool_and_timeouts() -> None:
    client = create_client(Settings(http_timeout_seconds=12.5))
    assert client.timeout.read == 12.5 and client.timeout.connect == 10.0
    assert client.headers["user-agent"].startswith("cloudjobs-mcp/")
    assert not client.follow_redirects
    assert RetryPolicy.from_settings(Settings(max_retries=2)).max_attempts == 3


# --------------------------------------------------------------------------- error mapping


def _err(
    response: httpx.Response, action: str = "CreateJob", product: endpoints.Product = endpoints.DLC
) -> ProviderError:
    return errormap.parse_error(response, product=product, action=action, redact=["planted-secret"])


def test_signature_mismatch_drops_string_to_sign() -> None:
    err = _err(
        error_response(
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation. server string to sign is:ACS3-HMAC-SHA256\n"
            "0123456789abcdef0123456789abcdef",
            400,
        )
    )
    assert isinstance(err, AuthenticationError)
    text = str(err)
    assert "string to sign" not in text and "0123456789abcdef" not in text
    assert "SignatureDoesNotMatch" in text and "RequestId req-SignatureDoesNotMatch" in text
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in text


def test_auth_hints() -> None:
    skew = _err(error_response("InvalidTimeStamp.Expired", "Specified time stamp or date header is expired.", 400))
    assert isinstance(skew, AuthenticationError) and "clock" in str(skew)
    token = _err(error_response("InvalidSecurityToken.Expired", "token planted-secret expired", 400))
    assert isinstance(token, AuthenticationError) and "ALIBABA_CLOUD_SECURITY_TOKEN" in str(token)
    assert "planted-secret" not in str(token)
    inactive = _err(error_response("InvalidAccessKeyId.Inactive", "inactive", 403))
    assert isinstance(inactive, AuthenticationError)
    missing = _err(error_response("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404))
    assert isinstance(missing, AuthenticationError) and not isinstance(missing, NotFound)


def test_permission_error_names_the_ram_action() -> None:
    err = _err(error_response("Forbidden.RAM", "User not authorized to operate on the specified resource.", 403))
    assert isinstance(err, PermissionDenied)
    assert "grant the RAM action paidlc:CreateJob" in str(err) and "Forbidden.RAM" in str(err)
    detailed = _err(
        error_response("NoPermission", "denied", 403, AccessDeniedDetail={"AuthAction": "ecs:DescribePrice"}),
        action="DescribePrice",
        product=endpoints.ECS,
    )
    assert "ecs:DescribePrice" in str(detailed) and detailed.message.startswith("ECS DescribePrice failed")


def test_not_found_and_api_mismatch() -> None:
    missing = _err(error_response("JobNotFound", "job dlc-missing not found", 404), action="GetJob")
    assert isinstance(missing, NotFound) and isinstance(missing, ProviderError)
    assert "JobNotFound" in str(missing) and "dlc-missing" in str(missing)
    mismatch = _err(error_response("InvalidAction.NotFound", "Specified api is not found", 404))
    assert not isinstance(mismatch, NotFound) and "cloudjobs-mcp bug" in str(mismatch)


def test_odd_bodies() -> None:
    xml = httpx.Response(
        503,
        content=b"<Error><RequestId>R1</RequestId><Code>ServiceUnavailable</Code><Message>busy</Message></Error>",
        headers={"content-type": "text/xml;charset=utf-8"},
    )
    err = _err(xml)
    assert err.retryable and err.code == "ServiceUnavailable" and err.request_id == "R1"
    html = _err(httpx.Response(502, content=b"<html><body><h1>502 Bad Gateway</h1></body></html>"))
    assert html.retryable and "502 Bad Gateway" in str(html) and "<" not in str(html)
    lower = _err(json_response({"requestId": "r2", "code": "Throttling", "message": "slow"}, 429))
    assert isinstance(lower, Throttled) and lower.request_id == "r2"


async def test_a_sender_retries_with_its_own_policy_jitter_and_sleep_and_can_log_in_again() -> None:
    sleeps, logins = sleeper(), []

    async def login() -> None:
        logins.append(1)

    async with httpx.AsyncClient() as client:
        sender = Sender(client, RetryPolicy(max_attempts=2, base_delay=0.5), sleep=sleeps, rand=lambda: 0.5)
        with respx.mock() as router:
            router.get(URL).mock(
                side_effect=[
                    error_response("ServiceUnavailable", "busy", 503),
                    error_response("InvalidAccessKeyId.NotFound", "who?", 401),
                    json_response({"ok": True}),
                ]
            )
            response = await sender(lambda: client.build_request("GET", URL), parse_error=parse, reauthenticate=login)
            assert response.json() == {"ok": True}
            router.get(URL).mock(side_effect=[error_response("ServiceUnavailable", "busy", 503)] * 2)
            with pytest.raises(ProviderError, match="gave up after 2 attempts"):
                await sender(lambda: client.build_request("GET", URL), parse_error=parse)
            router.post(URL).mock(side_effect=[error_response("ServiceUnavailable", "busy", 503)])
            with pytest.raises(OutcomeUnknown):  # a create is not resent blindly
                await sender(lambda: client.build_request("POST", URL), parse_error=parse, idempotent=False)
    assert sleeps == [0.25, 0.25] and logins == [1]  # rand()=0.5 → half of base_delay, twice
