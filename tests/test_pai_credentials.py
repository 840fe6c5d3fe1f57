"""The Alibaba credential chain (env → OIDC/RRSA → ~/.aliyun/config.json) and that no secret leaks."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pai_fixtures import (
    DLC,
    STS,
    Sleeps,
    error_response,
    get_job_body,
    json_response,
    list_jobs_body,
    pod,
    query_of,
    settings,
    verify_signed,
)

from cloudjobs_mcp.server.errors import AuthenticationError, CloudJobsError, CredentialsNotFound
from cloudjobs_mcp.server.models import JobRequest
from cloudjobs_mcp.server.providers.pai import signing
from cloudjobs_mcp.server.providers.pai.credentials import Credentials, DefaultCredentialsChain
from cloudjobs_mcp.server.providers.pai.provider import PaiProvider

pytestmark = pytest.mark.anyio

SECRET = "PLANTED-SECRET-9f8e7d6c5b4a"
TOKEN = "PLANTED-TOKEN-1a2b3c4d5e6f"
OIDC_JWT = "PLANTED-OIDC-JWT-eyJhbGciOi"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Now:
    def __init__(self, start: datetime) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value


def chain(env: dict[str, str], home: Path, now: Now | None = None, sts: str | None = None) -> DefaultCredentialsChain:
    return DefaultCredentialsChain(
        client=httpx.AsyncClient(),
        sts_endpoint_override=sts,
        env=env,
        home=home,
        now=now or Now(datetime(2024, 1, 1, tzinfo=UTC)),
        sleep=Sleeps(),
        rand=lambda: 0.0,
    )


def write_profiles(home: Path, current: str = "default", profiles: list[dict[str, Any]] | None = None) -> Path:
    path = home / ".aliyun" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "current": current,
                "profiles": profiles
                or [
                    {
                        "name": "default",
                        "mode": "AK",
                        "access_key_id": "LTAIprofileAK",
                        "access_key_secret": "profsecret",
                        "region_id": "cn-hangzhou",
                    },
                    {
                        "name": "sts",
                        "mode": "StsToken",
                        "access_key_id": "STS.prof",
                        "access_key_secret": "stssecret",
                        "sts_token": "prof-token",
                    },
                    {
                        "name": "role",
                        "mode": "RamRoleArn",
                        "access_key_id": "a",
                        "access_key_secret": "b",
                        "ram_role_arn": "acs:ram::1:role/r",
                    },
                ],
            }
        )
    )
    return path


OIDC_ENV = {
    "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::123:role/train",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::123:oidc-provider/ack",
}


def sts_ok(expiration: str, n: int = 1) -> httpx.Response:
    return json_response(
        {
            "RequestId": "sts-req",
            "AssumedRoleUser": {"Arn": "acs:ram::123:role/train/s", "AssumedRoleId": "1:s"},
            "Credentials": {
                "AccessKeyId": f"STS.oidc{n}",
                "AccessKeySecret": f"{SECRET}-{n}",
                "SecurityToken": f"{TOKEN}-{n}",
                "Expiration": expiration,
            },
        }
    )


# ----------------------------------------------------------------------------- chain order


async def test_environment_first(tmp_path: Path) -> None:
    write_profiles(tmp_path)
    creds = await chain(
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "envsecret"}, tmp_path
    ).get()
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == ("LTAIenv", "envsecret", None)
    assert creds.source == "environment"


async def test_environment_sts_token(tmp_path: Path) -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.envid",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "envsecret",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "env-token",
    }
    creds = await chain(env, tmp_path).get()
    assert creds.security_token == "env-token"


async def test_half_set_environment_falls_through_to_profile(tmp_path: Path) -> None:
    write_profiles(tmp_path)
    creds = await chain({"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv"}, tmp_path).get()
    assert creds.access_key_id == "LTAIprofileAK" and creds.source == "cli_profile:default"


async def test_oidc_before_profile_and_request_shape(tmp_path: Path) -> None:
    write_profiles(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_JWT + "\n")
    env = {**OIDC_ENV, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file), "ALIBABA_CLOUD_ROLE_SESSION_NAME": "sess"}
    with respx.mock() as router:
        route = router.get(f"{STS}/").mock(return_value=sts_ok("2024-01-01T01:00:00Z"))
        creds = await chain(env, tmp_path).get()
    assert creds.access_key_id == "STS.oidc1" and creds.security_token == f"{TOKEN}-1" and creds.source == "oidc"
    assert creds.expiration == datetime(2024, 1, 1, 1, tzinfo=UTC)
    sent = route.calls.last.request
    assert "authorization" not in sent.headers  # AssumeRoleWithOIDC is anonymous
    assert query_of(sent) == {
        "Action": "AssumeRoleWithOIDC",
        "Format": "JSON",
        "Version": "2015-04-01",
        "DurationSeconds": "3600",
        "RoleArn": "acs:ram::123:role/train",
        "OIDCProviderArn": "acs:ram::123:oidc-provider/ack",
        "OIDCToken": OIDC_JWT,
        "RoleSessionName": "sess",
        "Timestamp": "2024-01-01T00:00:00Z",
    }


async def test_oidc_cached_then_refreshed_before_expiry(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("jwt-one")
    now = Now(datetime(2024, 1, 1, tzinfo=UTC))
    env = {**OIDC_ENV, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file)}
    c = chain(env, tmp_path, now, sts="http://sts.sandbox.test:8081")
    with respx.mock() as router:
        route = router.get("http://sts.sandbox.test:8081/").mock(
            side_effect=[sts_ok("2024-01-01T01:00:00Z", 1), sts_ok("2024-01-01T02:00:00Z", 2)]
        )
        first = await c.get()
        now.value += timedelta(minutes=44)  # 16 minutes left: still fresh
        assert await c.get() is first
        assert route.call_count == 1
        token_file.write_text("jwt-two")  # rotated by the platform; re-read on refresh
        now.value += timedelta(minutes=2)  # 14 minutes left: inside the 15-minute margin
        second = await c.get()
    assert route.call_count == 2 and second.access_key_id == "STS.oidc2"
    assert query_of(route.calls.last.request)["OIDCToken"] == "jwt-two"
    assert route.calls.last.request.headers["host"] == "sts.sandbox.test:8081"


async def test_oidc_failure_is_actionable_and_hides_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_JWT)
    env = {**OIDC_ENV, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file)}
    with respx.mock() as router:
        router.get(f"{STS}/").mock(
            return_value=error_response("AuthenticationFail.OIDCToken.Expired", f"The token {OIDC_JWT} expired", 400)
        )
        with pytest.raises(AuthenticationError) as info:
            await chain(env, tmp_path).get()
    assert "ALIBABA_CLOUD_OIDC_TOKEN_FILE" in str(info.value) and "AssumeRoleWithOIDC" in str(info.value)
    assert OIDC_JWT not in str(info.value) and OIDC_JWT not in repr(info.value)


@pytest.mark.parametrize(
    ("env", "expected_id"),
    [({}, "LTAIprofileAK"), ({"ALIBABA_CLOUD_PROFILE": "sts"}, "STS.prof")],
)
async def test_profile_modes(tmp_path: Path, env: dict[str, str], expected_id: str) -> None:
    write_profiles(tmp_path)
    creds = await chain(env, tmp_path).get()
    assert creds.access_key_id == expected_id
    if expected_id.startswith("STS."):
        assert creds.security_token == "prof-token" and creds.access_key_secret == "stssecret"


async def test_profile_current_and_oidc_mode(tmp_path: Path) -> None:
    token_file = tmp_path / "tok"
    token_file.write_text("jwt")
    write_profiles(
        tmp_path,
        current="o",
        profiles=[
            {
                "name": "o",
                "mode": "OIDC",
                "ram_role_arn": "acs:ram::1:role/x",
                "oidc_provider_arn": "acs:ram::1:oidc-provider/p",
                "oidc_token_file": str(token_file),
            }
        ],
    )
    with respx.mock() as router:
        router.get(f"{STS}/").mock(return_value=sts_ok("2024-01-01T01:00:00Z"))
        creds = await chain({}, tmp_path).get()
    assert creds.source == "cli_profile:o" and creds.access_key_id == "STS.oidc1"


async def test_missing_credentials_lists_every_source(tmp_path: Path) -> None:
    write_profiles(tmp_path, current="role")
    with pytest.raises(CredentialsNotFound) as info:
        await chain({}, tmp_path).get()
    text = str(info.value)
    assert "1) environment: ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set" in text
    assert (
        "2) OIDC/RRSA: ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE not set"
        in text
    )
    assert "3) CLI profile: profile 'role' uses mode RamRoleArn" in text

    with pytest.raises(CredentialsNotFound) as info:
        await chain({"ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}, tmp_path).get()
    assert "disabled by ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true" in str(info.value)

    with pytest.raises(CredentialsNotFound) as info:
        await chain({"ALIBABA_CLOUD_PROFILE": "nope"}, tmp_path).get()
    assert "profile 'nope' is not in" in str(info.value)

    with pytest.raises(CredentialsNotFound) as info:
        await chain({}, tmp_path / "empty-home").get()
    assert "config.json does not exist" in str(info.value)


async def test_unreadable_token_file_falls_through(tmp_path: Path) -> None:
    write_profiles(tmp_path)
    env = {**OIDC_ENV, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(tmp_path / "missing")}
    creds = await chain(env, tmp_path).get()
    assert creds.source == "cli_profile:default"


def test_credentials_repr_masks_secret_and_token() -> None:
    creds = Credentials("LTAI5tAbCdEfGh", SECRET, TOKEN, source="env")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SECRET not in text and TOKEN not in text and "LTAI5tAbCdEfGh" not in text
        assert "LTAI****" in text and "'***'" in text


# ------------------------------------------------------------------------- STS on the wire


async def test_provider_uses_chain_sts_token_on_api_calls(tmp_path: Path) -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.chainid",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
    }
    provider = PaiProvider(settings(), env=env, home=tmp_path, sleep=Sleeps())
    with respx.mock() as router:
        route = router.get(f"{DLC}/api/v1/jobs/dlc-123").mock(return_value=json_response(get_job_body()))
        await provider.get_job("dlc-123")
    sent = route.calls.last.request
    assert sent.headers["x-acs-security-token"] == TOKEN
    assert signing.parse_authorization(sent.headers["authorization"])[0] == "STS.chainid"
    assert verify_signed(sent, SECRET)
    await provider.aclose()


# ------------------------------------------------------------------------------ no leaks


async def test_no_secret_in_any_result_error_or_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Plant a recognisable secret and token, drive every kind of outcome, scan everything."""
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIplantedid",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
    }
    provider = PaiProvider(settings(pai_workspace_id="268", max_retries=1), env=env, home=tmp_path, sleep=Sleeps())
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs/dlc-ok").mock(
            return_value=json_response(get_job_body("dlc-ok", pods=[pod("dlc-ok")], tags={"k": "v"}))
        )
        router.get(f"{DLC}/api/v1/jobs").mock(return_value=json_response(list_jobs_body([])))
        router.get(f"{DLC}/api/v1/jobs/dlc-ok/pods/dlc-ok-worker-0/logs").mock(
            return_value=json_response({"JobId": "dlc-ok", "Logs": ["hello"], "RequestId": "r"})
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-ok/events").mock(
            return_value=json_response({"JobId": "dlc-ok", "Events": ["2024-01-01 00:00:01 Created"], "RequestId": "r"})
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-ok/pods/dlc-ok-worker-0/events").mock(
            return_value=json_response({"Events": ["2024-01-01 00:00:02 Pulled"], "RequestId": "r"})
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-sig").mock(
            return_value=error_response(
                "SignatureDoesNotMatch",
                f"Specified signature is not matched. server string to sign is:GET&%2F&SecurityToken%3D{TOKEN}",
                400,
            )
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-token").mock(
            return_value=error_response("InvalidSecurityToken.Malformed", f"Malformed token {TOKEN} for {SECRET}", 400)
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-ram").mock(return_value=error_response("Forbidden.RAM", "denied", 403))
        router.get(f"{DLC}/api/v1/jobs/dlc-down").mock(side_effect=httpx.ConnectError("refused"))
        router.post(f"{DLC}/api/v1/jobs").mock(side_effect=httpx.ReadTimeout("timed out"))

        results: list[Any] = [
            await provider.get_job("dlc-ok"),
            await provider.list_jobs(),
            await provider.pod_logs("dlc-ok", "dlc-ok-worker-0"),
            await provider.events("dlc-ok"),
        ]
        texts += [r.model_dump_json() if hasattr(r, "model_dump_json") else repr(r) for r in results]
        for job_id in ("dlc-sig", "dlc-token", "dlc-ram", "dlc-down"):
            with pytest.raises(CloudJobsError) as info:
                await provider.get_job(job_id)
            texts += [str(info.value), repr(info.value), str(info.value.__cause__), str(info.value.__context__)]
        request = JobRequest(
            display_name="t",
            user_command="echo",
            job_type="PyTorchJob",
            ecs_spec="ecs.c6.large",
            worker_count=1,
            max_runtime_minutes=10,
            image="img",
            tags={"cloudjobs-quote": "q1"},
        )
        with pytest.raises(CloudJobsError) as info:
            await provider.create_job(request)
        texts += [str(info.value), repr(info.value)]
    with pytest.raises(CredentialsNotFound) as missing:
        await PaiProvider(settings(), env={}, home=tmp_path, sleep=Sleeps()).get_job("x")
    texts += [str(missing.value), repr(provider._credentials), repr(await provider._credentials.get())]
    texts += [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    blob = "\n".join(texts)
    assert "string to sign" not in blob
    assert SECRET not in blob and TOKEN not in blob
    assert "Forbidden.RAM" in blob and "SignatureDoesNotMatch" in blob  # the scan saw the errors
    await provider.aclose()
