"""Authentication on the workload platform: API key or user login, one re-login on 401, never a loop,
never the ``userId`` header, never a secret in an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import AuthenticationError, ConfigurationError
from cloudjobs_mcp.server.providers.workload import WorkloadProvider
from tests.workload_fixtures import workload_provider, workload_sandbox

pytestmark = pytest.mark.anyio


def logins(sb) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for c in sb.sandbox.calls if c.action == "Login")


async def test_api_key_is_sent_as_bearer_and_nothing_else(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        await p.list_specs()
        calls = list(sb.sandbox.calls)
        assert calls and all(c.auth == "api-key" and c.status == 200 for c in calls)
        assert logins(sb) == 0 and not any(c.user_id_header for c in calls)
        assert p.known_secrets() == (sb.sandbox.api_key,)


@pytest.mark.parametrize("cookie_only", [False, True], ids=["current-build", "seed-era-build-reads-only-the-cookie"])
async def test_user_login_once_token_as_bearer_and_cookie(tmp_path: Path, cookie_only: bool) -> None:
    async with (
        workload_sandbox(tmp_path, cookie_only=cookie_only) as sb,
        workload_provider(sb, tmp_path, api_key=False) as p,
    ):
        await p.list_specs()
        await p.list_jobs()
        assert logins(sb) == 1
        assert all(c.auth == "token" for c in sb.sandbox.calls if c.action != "Login")
        assert not any(c.user_id_header for c in sb.sandbox.calls)


async def test_an_expired_session_logs_in_again_once(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path, api_key=False) as p:
        await p.list_jobs()
        sb.sandbox.revoke_tokens()  # e.g. the platform restarted with a new key
        assert await p.list_jobs() == []
        assert logins(sb) == 2
        assert [c.status for c in sb.sandbox.calls if c.action == "ListWorkloads"] == [200, 401, 200]


async def test_a_token_the_platform_keeps_refusing_fails_clearly_without_a_loop(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path, api_key=False) as p:
        sb.sandbox.reject_tokens = True
        with pytest.raises(AuthenticationError) as caught:
            await p.list_jobs()
        text = str(caught.value)
        assert "HTTP 401 Primus.00009 (not authenticated)" in text and "please login first" in text
        assert "CLOUDJOBS_WORKLOAD_USER" in text
        assert logins(sb) == 2  # the first login and exactly one re-login
        assert sum(1 for c in sb.sandbox.calls if c.action == "ListWorkloads") == 2
        assert all(secret not in text + repr(caught.value) for secret in p.known_secrets())


async def test_a_wrong_password_or_user_or_key_is_a_clear_error(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb:
        async with workload_provider(sb, tmp_path, api_key=False, workload_password="wrong-password-123") as p:
            with pytest.raises(AuthenticationError, match=r"login as sandbox failed.*the password is incorrect") as c:
                await p.list_specs()
            assert "wrong-password-123" not in str(c.value) + repr(c.value)
            assert logins(sb) == 1  # a login is never retried by re-logging in
        async with workload_provider(sb, tmp_path, api_key=False, workload_user="nobody") as p:
            with pytest.raises(AuthenticationError, match=r"Primus.00011 \(user not registered\)"):
                await p.list_specs()
        async with workload_provider(sb, tmp_path, workload_api_key="ak-" + "x" * 43) as p:
            with pytest.raises(AuthenticationError, match="invalid API key") as c:
                await p.list_specs()
            assert "x" * 43 not in str(c.value)


def test_settings_need_a_url_and_credentials_and_never_show_the_secrets(tmp_path: Path) -> None:
    base = {"state_dir": tmp_path, "workload_url": "http://127.0.0.1:9"}
    with pytest.raises(ConfigurationError, match=r"CLOUDJOBS_WORKLOAD_API_KEY.*CLOUDJOBS_WORKLOAD_PASSWORD"):
        WorkloadProvider(Settings.from_env({}, **base))
    with pytest.raises(ConfigurationError, match="CLOUDJOBS_WORKLOAD_URL"):
        WorkloadProvider(Settings.from_env({}, state_dir=tmp_path, workload_api_key="ak-1"))
    settings = Settings.from_env(
        {"CLOUDJOBS_WORKLOAD_PASSWORD": "hunter2-secret", "CLOUDJOBS_WORKLOAD_API_KEY": "ak-secret-key"}, **base
    )
    assert isinstance(settings.workload_password, SecretStr)
    assert "hunter2-secret" not in repr(settings) + str(settings.model_dump())
    assert "ak-secret-key" not in repr(settings)
    seed_prefix = Settings.from_env({"CLOUDJOBS_WORKLOAD_API_PREFIX": "api/custom/"}, **base)
    assert seed_prefix.workload_api_prefix == "/api/custom"
    with pytest.raises(ConfigurationError, match="WORKLOAD_API_PREFIX"):
        Settings.from_env({"CLOUDJOBS_WORKLOAD_API_PREFIX": "/api v1"}, **base)
