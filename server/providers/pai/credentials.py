"""Alibaba Cloud credentials: the official credential chain, in its order, never printed.

Chain (``alibabacloud-credentials`` 1.0.12 ``DefaultCredentialsProvider``, first source wins and is
then reused):

1. **Environment**: ``ALIBABA_CLOUD_ACCESS_KEY_ID`` + ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (both
   non-empty), optional ``ALIBABA_CLOUD_SECURITY_TOKEN`` (STS).
2. **OIDC / RRSA**: ``ALIBABA_CLOUD_ROLE_ARN`` + ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN`` +
   ``ALIBABA_CLOUD_OIDC_TOKEN_FILE`` (optional ``ALIBABA_CLOUD_ROLE_SESSION_NAME``,
   ``ALIBABA_CLOUD_STS_REGION``, ``ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED``) → unsigned STS
   ``AssumeRoleWithOIDC``; cached, refreshed 15 minutes before ``Expiration``, token file re-read on
   every refresh. ``CLOUDJOBS_PAI_ENDPOINT_STS`` overrides the STS host (tests, sandbox).
3. **CLI profile** ``~/.aliyun/config.json`` (skipped with ``ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true``):
   the profile named by ``ALIBABA_CLOUD_PROFILE``, else the file's ``current``; modes ``AK``,
   ``StsToken`` and ``OIDC``.

The INI file, ECS instance-role (metadata service) and credentials-URI sources of the official chain
are not implemented. When nothing is found, :class:`~server.errors.CredentialsNotFound` lists every
source tried and why it gave nothing. :class:`Credentials` masks the secret and token in ``repr``/
``str``; no log line or error message here contains them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx

from cloudjobs_mcp.server.errors import AuthenticationError, ProviderError
from cloudjobs_mcp.server.http import RetryPolicy, send
from cloudjobs_mcp.server.providers.credchain import (
    CredentialChain,
    RefreshingSource,
    Source,
    Unavailable,
    as_source,
)
from cloudjobs_mcp.server.providers.pai import endpoints, errormap, signing

logger = logging.getLogger("cloudjobs.pai.credentials")

REFRESH_MARGIN = timedelta(minutes=15)
OIDC_DURATION_SECONDS = 3600
STS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

ENV_AK_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_AK_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
ENV_ROLE_ARN = "ALIBABA_CLOUD_ROLE_ARN"
ENV_OIDC_PROVIDER_ARN = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
ENV_OIDC_TOKEN_FILE = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
ENV_SESSION_NAME = "ALIBABA_CLOUD_ROLE_SESSION_NAME"
ENV_STS_REGION = "ALIBABA_CLOUD_STS_REGION"
ENV_VPC = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"
ENV_PROFILE = "ALIBABA_CLOUD_PROFILE"
ENV_PROFILE_DISABLED = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"


def _mask_id(access_key_id: str) -> str:
    if access_key_id.startswith("STS."):
        return "STS.****"
    return f"{access_key_id[:4]}****" if len(access_key_id) > 8 else "****"


@dataclass(frozen=True, repr=False)
class Credentials:
    """One set of credentials. ``repr``/``str`` never show the secret or the token."""

    access_key_id: str
    access_key_secret: str = field(compare=True)
    security_token: str | None = None
    expiration: datetime | None = None
    source: str = "static"

    def __repr__(self) -> str:
        token = ", security_token='***'" if self.security_token else ""
        expires = f", expiration={self.expiration.isoformat()}" if self.expiration else ""
        return (
            f"Credentials(access_key_id={_mask_id(self.access_key_id)!r}, access_key_secret='***'"
            f"{token}{expires}, source={self.source!r})"
        )

    __str__ = __repr__

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in output (used to redact error messages)."""
        return tuple(v for v in (self.access_key_secret, self.security_token) if v)


CredentialsProvider = Source[Credentials]  # anything with ``async get() -> Credentials``


class EnvironmentCredentialsProvider:
    name = "environment"

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    async def get(self) -> Credentials:
        ak_id = self._env.get(ENV_AK_ID, "").strip()
        secret = self._env.get(ENV_AK_SECRET, "").strip()
        if not ak_id and not secret:
            raise Unavailable(f"{ENV_AK_ID} and {ENV_AK_SECRET} are not set")
        if not ak_id:
            raise Unavailable(f"{ENV_AK_SECRET} is set but {ENV_AK_ID} is empty")
        if not secret:
            raise Unavailable(f"{ENV_AK_ID} is set but {ENV_AK_SECRET} is empty")
        token = self._env.get(ENV_TOKEN, "").strip() or None
        return Credentials(ak_id, secret, token, source="environment")


def _parse_expiration(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ProviderError(f"STS returned an unreadable Expiration {raw!r}", code="InvalidResponse") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class OIDCRoleArnCredentialsProvider(RefreshingSource[Credentials]):
    """STS ``AssumeRoleWithOIDC`` with the token file's contents; cached until 15 min before expiry."""

    name = "oidc"

    def __init__(
        self,
        *,
        role_arn: str,
        oidc_provider_arn: str,
        token_file: str,
        client: httpx.AsyncClient,
        sts: endpoints.Endpoint,
        session_name: str | None = None,
        policy: RetryPolicy | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
        source: str = "oidc",
    ) -> None:
        super().__init__()
        self.role_arn = role_arn
        self.oidc_provider_arn = oidc_provider_arn
        self.token_file = token_file
        self._client = client
        self._sts = sts
        self._session_name = session_name or f"cloudjobs-mcp-{int(time.time())}"
        self._policy = policy or RetryPolicy(max_attempts=3, max_total=30.0)
        self._now = now
        self._sleep = sleep
        self._rand = rand
        self.source = source

    def _fresh(self, cached: Credentials) -> bool:
        return cached.expiration is not None and self._now() < cached.expiration - REFRESH_MARGIN

    def _read_token(self) -> str:
        try:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise Unavailable(
                f"{ENV_OIDC_TOKEN_FILE} {self.token_file} cannot be read ({exc.strerror or type(exc).__name__})"
            ) from None
        if not token:
            raise Unavailable(f"{ENV_OIDC_TOKEN_FILE} {self.token_file} is empty")
        return token

    async def _fetch(self) -> Credentials:
        """STS AssumeRoleWithOIDC with the token file read afresh."""
        token = self._read_token()
        query = {
            "Action": "AssumeRoleWithOIDC",
            "Format": "JSON",
            "Version": endpoints.STS.version,
            "DurationSeconds": str(OIDC_DURATION_SECONDS),
            "RoleArn": self.role_arn,
            "OIDCProviderArn": self.oidc_provider_arn,
            "OIDCToken": token,
            "RoleSessionName": self._session_name,
            "Timestamp": signing.utc_timestamp(self._now()),
        }
        url = signing.build_url(self._sts.scheme, self._sts.host, "/", query)

        def build() -> httpx.Request:
            return self._client.build_request(
                "GET", url, headers={"host": self._sts.host, "accept": "application/json"}, timeout=STS_TIMEOUT
            )

        def parse(response: httpx.Response) -> ProviderError:
            return errormap.parse_error(response, product=endpoints.STS, action="AssumeRoleWithOIDC", redact=[token])

        response = await send(
            self._client, build, parse_error=parse, policy=self._policy, sleep=self._sleep, rand=self._rand
        )
        try:
            data: Any = response.json()
            creds = data["Credentials"]
            result = Credentials(
                access_key_id=str(creds["AccessKeyId"]),
                access_key_secret=str(creds["AccessKeySecret"]),
                security_token=str(creds["SecurityToken"]),
                expiration=_parse_expiration(str(creds["Expiration"])),
                source=self.source,
            )
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                "STS AssumeRoleWithOIDC returned no usable Credentials", code="InvalidResponse"
            ) from None
        logger.info("obtained STS credentials from AssumeRoleWithOIDC (expires %s)", result.expiration)
        return result


class CLIProfileCredentialsProvider:
    """``~/.aliyun/config.json``: modes AK, StsToken and OIDC."""

    name = "cli_profile"

    def __init__(
        self,
        path: Path,
        env: Mapping[str, str],
        oidc_factory: Callable[[str, str, str, str | None], OIDCRoleArnCredentialsProvider],
    ) -> None:
        self.path = path
        self._env = env
        self._oidc_factory = oidc_factory
        self._oidc: OIDCRoleArnCredentialsProvider | None = None

    def _profile(self) -> dict[str, Any]:
        if not self.path.is_file():
            raise Unavailable(f"{self.path} does not exist")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise Unavailable(f"{self.path} is not readable JSON ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise Unavailable(f"{self.path} is not a JSON object")
        wanted = self._env.get(ENV_PROFILE, "").strip() or str(data.get("current") or "")
        if not wanted:
            raise Unavailable(f"{self.path} names no current profile and {ENV_PROFILE} is not set")
        for profile in data.get("profiles") or []:
            if isinstance(profile, dict) and profile.get("name") == wanted:
                return profile
        raise Unavailable(f"profile {wanted!r} is not in {self.path}")

    async def get(self) -> Credentials:
        if self._oidc is not None:
            return await self._oidc.get()
        profile = self._profile()
        name = profile.get("name")
        mode = str(profile.get("mode") or "AK")
        source = f"cli_profile:{name}"
        if mode in ("AK", "StsToken"):
            ak_id = str(profile.get("access_key_id") or "").strip()
            secret = str(profile.get("access_key_secret") or "").strip()
            if not ak_id or not secret:
                raise Unavailable(f"profile {name!r} ({mode}) lacks access_key_id or access_key_secret")
            token = None
            if mode == "StsToken":
                token = str(profile.get("sts_token") or "").strip()
                if not token:
                    raise Unavailable(f"profile {name!r} (StsToken) lacks sts_token")
            return Credentials(ak_id, secret, token, source=source)
        if mode == "OIDC":
            role = str(profile.get("ram_role_arn") or "")
            provider_arn = str(profile.get("oidc_provider_arn") or "")
            token_file = str(profile.get("oidc_token_file") or "")
            if not (role and provider_arn and token_file):
                raise Unavailable(f"profile {name!r} (OIDC) lacks ram_role_arn, oidc_provider_arn or oidc_token_file")
            self._oidc = self._oidc_factory(role, provider_arn, token_file, profile.get("role_session_name"))
            self._oidc.source = source
            return await self._oidc.get()
        raise Unavailable(
            f"profile {name!r} uses mode {mode}, which cloudjobs-mcp does not support (supported: AK, StsToken, OIDC)"
        )


class DefaultCredentialsChain(CredentialChain[Credentials]):
    """Environment → OIDC/RRSA → CLI profile; the first source that answers is reused afterwards."""

    name = "default"

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        sts_endpoint_override: str | None = None,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            "Alibaba Cloud",
            f"Set {ENV_AK_ID} and {ENV_AK_SECRET} (optionally {ENV_TOKEN}) in the server's environment, configure "
            "RRSA/OIDC, or run `aliyun configure` to create a profile.",
            logger,
        )
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._home = home
        self._client = client
        self._sts_override = sts_endpoint_override
        self._now = now
        self._sleep = sleep
        self._rand = rand

    def _oidc(
        self, role_arn: str, provider_arn: str, token_file: str, session_name: str | None
    ) -> OIDCRoleArnCredentialsProvider:
        sts = endpoints.sts_endpoint(
            self._sts_override,
            self._env.get(ENV_STS_REGION, "").strip() or None,
            self._env.get(ENV_VPC, "").strip().lower() == "true",
        )
        return OIDCRoleArnCredentialsProvider(
            role_arn=role_arn,
            oidc_provider_arn=provider_arn,
            token_file=token_file,
            client=self._client,
            sts=sts,
            session_name=session_name,
            now=self._now,
            sleep=self._sleep,
            rand=self._rand,
        )

    def sources(self) -> list[tuple[str, Source[Credentials] | str]]:
        env = self._env
        sources: list[tuple[str, Source[Credentials] | str]] = [("environment", EnvironmentCredentialsProvider(env))]
        oidc_vars = (ENV_ROLE_ARN, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE)
        missing = [v for v in oidc_vars if not env.get(v, "").strip()]
        if missing:
            sources.append(("OIDC/RRSA", f"{', '.join(missing)} not set"))
        else:
            sources.append(
                (
                    "OIDC/RRSA",
                    self._oidc(
                        env[ENV_ROLE_ARN].strip(),
                        env[ENV_OIDC_PROVIDER_ARN].strip(),
                        env[ENV_OIDC_TOKEN_FILE].strip(),
                        env.get(ENV_SESSION_NAME, "").strip() or None,
                    ),
                )
            )
        if env.get(ENV_PROFILE_DISABLED, "").strip().lower() == "true":
            sources.append(("CLI profile", f"disabled by {ENV_PROFILE_DISABLED}=true"))
        else:
            home = self._home if self._home is not None else Path(env.get("HOME") or Path.home())
            sources.append(
                ("CLI profile", CLIProfileCredentialsProvider(home / ".aliyun" / "config.json", env, self._oidc))
            )
        return sources


def as_provider(credentials: Credentials | CredentialsProvider | None, **chain_kwargs: Any) -> CredentialsProvider:
    return as_source(credentials, Credentials, lambda: DefaultCredentialsChain(**chain_kwargs))
