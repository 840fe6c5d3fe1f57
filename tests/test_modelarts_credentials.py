"""Huawei credentials in the SDK's order (environment → profile file → ECS metadata agency), the project id
from IAM, and the endpoints' quirks. The metadata service is only ever asked at its documented link-local
address, and only through respx here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx

from cloudjobs_mcp.server.errors import ConfigurationError, CredentialsNotFound
from cloudjobs_mcp.server.providers.modelarts import endpoints
from cloudjobs_mcp.server.providers.modelarts.credentials import METADATA_URL, Credentials, DefaultChain
from tests.modelarts_fixtures import AK, IAM, NOW, PID, SK, make_provider, ok

pytestmark = pytest.mark.anyio
TOKEN_URL = f"{METADATA_URL}/meta-data/latest/api/token"
KEY_URL = f"{METADATA_URL}/openstack/latest/securitykey"


def profile(home: Path, text: str) -> None:
    (home / ".huaweicloud").mkdir(parents=True, exist_ok=True)
    (home / ".huaweicloud" / "credentials").write_text(text)


def metadata_credential(expires: datetime) -> dict[str, object]:
    return {
        "credential": {
            "access": "TEMPAKFROMMETADATA01",
            "secret": "tempsecretfrommetadata",
            "securitytoken": "tok-from-metadata",
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    }


async def test_environment_wins_over_profile_and_metadata_is_never_asked(tmp_path: Path) -> None:
    profile(tmp_path, "[basic]\nak = PROFILEAK\nsk = profilesecret\n")
    env = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "HUAWEICLOUD_SDK_PROJECT_ID": PID}
    with respx.mock(assert_all_called=False) as mock:
        meta = mock.route(host="169.254.169.254")
        async with httpx.AsyncClient() as client:
            creds = await DefaultChain(client=client, env=env, home=tmp_path).get()
    assert (creds.access_key, creds.project_id, creds.source) == (AK, PID, "environment")
    assert not meta.called


async def test_profile_basic_then_basiccredentials_section(tmp_path: Path) -> None:
    profile(
        tmp_path,
        "[basiccredentials]\nak = SECONDAK\nsk = second\n\n[basic]\nak = FIRSTAK\nsk = first\nproject_id = p1\n",
    )
    async with httpx.AsyncClient() as client:
        creds = await DefaultChain(client=client, env={}, home=tmp_path).get()
    assert (creds.access_key, creds.project_id, creds.source) == ("FIRSTAK", "p1", "profile:basic")
    profile(tmp_path, "[basiccredentials]\nak = SECONDAK\nsk = second\nsecurity_token = t\n")
    async with httpx.AsyncClient() as client:
        creds = await DefaultChain(client=client, env={}, home=tmp_path).get()
    assert (creds.access_key, creds.security_token, creds.source) == ("SECONDAK", "t", "profile:basiccredentials")


async def test_profile_path_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.ini"
    path.write_text("[basic]\nak = FILEAK\nsk = filesecret\n")
    async with httpx.AsyncClient() as client:
        creds = await DefaultChain(
            client=client, env={"HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(path)}, home=tmp_path
        ).get()
    assert creds.access_key == "FILEAK"


async def test_metadata_agency_with_session_token_and_refresh_under_40_minutes(tmp_path: Path) -> None:
    clock = [NOW]
    with respx.mock(assert_all_called=True) as mock:
        token = mock.put(TOKEN_URL).mock(return_value=httpx.Response(200, text="session-token"))
        key = mock.get(KEY_URL).mock(
            side_effect=[
                ok(metadata_credential(NOW + timedelta(hours=1))),
                ok(metadata_credential(NOW + timedelta(hours=2))),
            ]
        )
        async with httpx.AsyncClient() as client:
            chain = DefaultChain(client=client, env={}, home=tmp_path, now=lambda: clock[0])
            creds = await chain.get()
            assert (creds.access_key, creds.security_token, creds.source) == (
                "TEMPAKFROMMETADATA01",
                "tok-from-metadata",
                "ecs-metadata",
            )
            assert token.calls[0].request.headers["X-Metadata-Token-Ttl-Seconds"] == "21600"
            assert key.calls[0].request.headers["X-Metadata-Token"] == "session-token"
            await chain.get()  # an hour left: cached
            assert key.call_count == 1
            clock[0] = NOW + timedelta(minutes=25)  # 35 minutes left: fetched again
            await chain.get()
            assert key.call_count == 2
    assert "tempsecretfrommetadata" not in repr(creds) and "tok-from-metadata" not in str(creds)


async def test_metadata_imdsv1_and_a_401_that_refreshes_the_token_once(tmp_path: Path) -> None:
    with respx.mock() as mock:
        mock.put(TOKEN_URL).mock(side_effect=[httpx.Response(404), httpx.Response(200, text="fresh")])
        key = mock.get(KEY_URL).mock(
            side_effect=[httpx.Response(401, text="token expired"), ok(metadata_credential(NOW + timedelta(hours=6)))]
        )
        async with httpx.AsyncClient() as client:
            creds = await DefaultChain(client=client, env={}, home=tmp_path, now=lambda: NOW).get()
    assert creds.access_key == "TEMPAKFROMMETADATA01"
    assert "X-Metadata-Token" not in key.calls[0].request.headers  # IMDSv1: no token at first
    assert key.calls[1].request.headers["X-Metadata-Token"] == "fresh"


async def test_nothing_found_lists_every_source_and_why(tmp_path: Path) -> None:
    with respx.mock() as mock:
        mock.put(TOKEN_URL).mock(side_effect=httpx.ConnectError("no route"))
        async with httpx.AsyncClient() as client:
            with pytest.raises(CredentialsNotFound) as caught:
                await DefaultChain(client=client, env={"HUAWEICLOUD_SDK_AK": "ONLYAK"}, home=tmp_path).get()
    text = str(caught.value)
    assert "1) environment: HUAWEICLOUD_SDK_SK is empty" in text
    assert "2) profile file:" in text and "does not exist" in text
    assert "3) ECS metadata agency: no ECS metadata service at http://169.254.169.254" in text


async def test_metadata_without_an_agency_says_so(tmp_path: Path) -> None:
    with respx.mock() as mock:
        mock.put(TOKEN_URL).mock(return_value=httpx.Response(200, text="t"))
        mock.get(KEY_URL).mock(return_value=httpx.Response(401, text="Please configure Cloud Service Agency first"))
        async with httpx.AsyncClient() as client:
            with pytest.raises(CredentialsNotFound, match="this ECS has no agency"):
                await DefaultChain(client=client, env={}, home=tmp_path).get()


async def test_project_id_is_looked_up_from_iam_by_region_once() -> None:
    provider, _ = make_provider(credentials=Credentials(AK, SK))
    with respx.mock() as mock:
        projects = mock.get(f"{IAM}/v3/projects", params={"name": "cn-north-4"}).mock(
            return_value=ok({"projects": [{"id": PID, "name": "cn-north-4", "domain_id": "d", "enabled": True}]})
        )
        assert await provider.api.project_id() == PID
        assert await provider.api.project_id() == PID
    request = projects.calls[0].request
    assert projects.call_count == 1
    assert str(request.url) == f"{IAM}/v3/projects?name=cn-north-4"
    assert "x-project-id" not in request.headers and "content-type" not in request.headers
    assert "SignedHeaders=host;x-sdk-date," in request.headers["Authorization"]
    await provider.aclose()


async def test_no_or_several_iam_projects_ask_for_an_explicit_id() -> None:
    for found, words in (([], "lists no project"), ([{"id": "a"}, {"id": "b"}], "2 projects")):
        provider, _ = make_provider(credentials=Credentials(AK, SK))
        with respx.mock() as mock:
            mock.get(f"{IAM}/v3/projects").mock(return_value=ok({"projects": found}))
            with pytest.raises(ConfigurationError, match=words) as caught:
                await provider.api.project_id()
        assert "HUAWEICLOUD_SDK_PROJECT_ID" in str(caught.value)
        await provider.aclose()


def test_endpoints_per_region_with_the_dot_cn_quirk_and_sdk_overrides() -> None:
    assert endpoints.modelarts("cn-north-4", {}).base_url == "https://modelarts.cn-north-4.myhuaweicloud.com"
    assert endpoints.modelarts("ap-southeast-1", {}).base_url == "https://modelarts.ap-southeast-1.myhuaweicloud.cn"
    assert endpoints.modelarts("ap-southeast-3", {}).base_url == "https://modelarts.ap-southeast-3.myhuaweicloud.com"
    override = {"HUAWEICLOUD_SDK_REGION_MODELARTS_CN_NORTH_4": "http://127.0.0.1:9999,https://backup.example"}
    assert endpoints.modelarts("cn-north-4", override).base_url == "http://127.0.0.1:9999"
    with pytest.raises(ConfigurationError, match="HUAWEICLOUD_SDK_REGION_MODELARTS_EU_DE"):
        endpoints.modelarts("eu-de", {})
    assert endpoints.modelarts("eu-de", {"HUAWEICLOUD_SDK_REGION_MODELARTS_EU_DE": "modelarts.eu-de.example"}).host == (
        "modelarts.eu-de.example"
    )
    assert endpoints.iam("cn-north-4", {}).base_url == "https://iam.cn-north-4.myhuaweicloud.com"
    assert endpoints.iam("cn-southwest-3", {}).base_url == "https://iam.myhuaweicloud.com"
    assert endpoints.iam("cn-north-4", {"HUAWEICLOUD_SDK_IAM_ENDPOINT": "http://127.0.0.1:1"}).host == "127.0.0.1:1"
    assert endpoints.iam("cn-north-4", {}, "https://iam.profile.example").host == "iam.profile.example"
    assert endpoints.bss("cn-north-4").base_url == "https://bss.myhuaweicloud.com"
    assert endpoints.bss("ap-southeast-1").base_url == "https://bss-intl.myhuaweicloud.com"


def test_credentials_never_show_their_secrets() -> None:
    creds = Credentials(AK, SK, "token-value", expires_at=datetime(2026, 1, 1, tzinfo=UTC))
    for text in (repr(creds), str(creds)):
        assert SK not in text and "token-value" not in text and AK not in text
