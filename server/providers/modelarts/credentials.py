"""Huawei Cloud credentials: the SDK's default chain, in its order, never printed.

``huaweicloudsdkcore`` 3.1.219 ``CredentialProviderChain`` (first success wins and is reused):

1. **Environment**: ``HUAWEICLOUD_SDK_AK`` + ``HUAWEICLOUD_SDK_SK`` (both non-empty), optional
   ``HUAWEICLOUD_SDK_SECURITY_TOKEN`` (temporary AK/SK) and ``HUAWEICLOUD_SDK_PROJECT_ID``.
2. **Profile file**: ``$HUAWEICLOUD_SDK_CREDENTIALS_FILE`` or ``~/.huaweicloud/credentials`` (INI), section
   ``[basic]`` (documented) or, failing that, ``[basiccredentials]`` (what the SDK's ``ClientBuilder``
   really reads); keys ``ak``, ``sk``, ``security_token``, ``project_id``, ``iam_endpoint``.
3. **ECS metadata agency** (a server running on a Huawei Cloud ECS with an agency): ``PUT
   http://169.254.169.254/meta-data/latest/api/token`` (``X-Metadata-Token-Ttl-Seconds: 21600``; 404/405/503:
   no token, IMDSv1) then ``GET http://169.254.169.254/openstack/latest/securitykey`` (``X-Metadata-Token``),
   3-second timeouts; temporary AK/SK/token, fetched again when fewer than 40 minutes remain. A 401 that does
   not say "Please configure Cloud Service Agency first" refreshes the metadata token once.

Not implemented (the SDK has them): OIDC → STS (``HUAWEICLOUD_OIDC_*``), IdP federation
(``HUAWEICLOUD_SDK_IDP_ID``) and CCE pod identity (``HC_CONTAINER_*``). When nothing is found,
:class:`~server.errors.CredentialsNotFound` lists every source and why it gave nothing. :class:`Credentials`
masks the secret key and token in ``repr``/``str``.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cloudjobs_mcp.server.providers.credchain import (
    CredentialChain,
    RefreshingSource,
    Source,
    Unavailable,
    as_source,
)

logger = logging.getLogger("cloudjobs.modelarts.credentials")

ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
ENV_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_CREDENTIALS_FILE = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
PROFILE_SECTIONS = ("basic", "basiccredentials")
METADATA_URL = "http://169.254.169.254"  # the documented link-local address; nothing else is ever asked
METADATA_TOKEN_PATH = "/meta-data/latest/api/token"
METADATA_KEY_PATH = "/openstack/latest/securitykey"
METADATA_TIMEOUT = httpx.Timeout(3.0)
METADATA_TOKEN_TTL = "21600"
AGENCY_MISSING = "Please configure Cloud Service Agency first"
REFRESH_MARGIN = timedelta(minutes=40)


def _mask(access_key: str) -> str:
    return f"{access_key[:4]}****" if len(access_key) > 8 else "****"


@dataclass(frozen=True, repr=False)
class Credentials:
    """One AK/SK (+ token). ``repr``/``str`` never show the secret key or the token."""

    access_key: str
    secret_key: str
    security_token: str | None = None
    project_id: str | None = None
    iam_endpoint: str | None = None
    expires_at: datetime | None = None
    source: str = "static"

    def __repr__(self) -> str:
        token = ", security_token='***'" if self.security_token else ""
        expires = f", expires_at={self.expires_at.isoformat()}" if self.expires_at else ""
        return (
            f"Credentials(access_key={_mask(self.access_key)!r}, secret_key='***'{token}{expires}, "
            f"source={self.source!r})"
        )

    __str__ = __repr__

    def secrets(self) -> tuple[str, ...]:
        return tuple(v for v in (self.secret_key, self.security_token) if v)


CredentialsProvider = Source[Credentials]  # anything with ``async get() -> Credentials``


class EnvironmentSource:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    async def get(self) -> Credentials:
        ak, sk = self._env.get(ENV_AK, "").strip(), self._env.get(ENV_SK, "").strip()
        if not ak and not sk:
            raise Unavailable(f"{ENV_AK} and {ENV_SK} are not set")
        if not ak or not sk:
            raise Unavailable(f"{ENV_SK if ak else ENV_AK} is empty while {ENV_AK if ak else ENV_SK} is set")
        return Credentials(
            ak,
            sk,
            self._env.get(ENV_TOKEN, "").strip() or None,
            self._env.get(ENV_PROJECT_ID, "").strip() or None,
            source="environment",
        )


class ProfileSource:
    """``[basic]`` first, then ``[basiccredentials]`` (the SDK's ClientBuilder looks there)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def get(self) -> Credentials:
        if not self.path.is_file():
            raise Unavailable(f"{self.path} does not exist")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(self.path.read_text(encoding="utf-8"))
        except (OSError, configparser.Error) as exc:
            raise Unavailable(f"{self.path} is not a readable INI file ({type(exc).__name__})") from None
        for name in PROFILE_SECTIONS:
            if not parser.has_section(name):
                continue
            section = parser[name]
            ak, sk = section.get("ak", "").strip(), section.get("sk", "").strip()
            if not ak or not sk:
                raise Unavailable(f"section [{name}] of {self.path} lacks ak or sk")
            return Credentials(
                ak,
                sk,
                section.get("security_token", "").strip() or None,
                section.get("project_id", "").strip() or None,
                section.get("iam_endpoint", "").strip() or None,
                source=f"profile:{name}",
            )
        raise Unavailable(f"{self.path} has no [basic] or [basiccredentials] section")


def _expiry(raw: Any) -> datetime | None:
    if not raw:
        return None
    text = str(raw).strip()
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_security_key(text: str, source: str) -> Credentials:
    """The metadata service's (and STS's) credential JSON in every spelling the SDK accepts."""
    try:
        data = json.loads(text)
    except ValueError:
        raise Unavailable("the metadata service answered something that is not JSON") from None
    if not isinstance(data, dict):
        raise Unavailable("the metadata service answered unexpected JSON")
    inner = data.get("credential") or data.get("credentials") or data
    if not isinstance(inner, dict):
        raise Unavailable("the metadata service answered unexpected JSON")
    ak = inner.get("access") or inner.get("accessKeyId") or inner.get("access_key_id")
    sk = inner.get("secret") or inner.get("secretAccessKey") or inner.get("secret_access_key")
    token = inner.get("securitytoken") or inner.get("securityToken") or inner.get("security_token")
    if not ak or not sk:
        raise Unavailable("the metadata service's credential lacks access or secret")
    return Credentials(
        str(ak),
        str(sk),
        str(token) if token else None,
        expires_at=_expiry(inner.get("expires_at") or inner.get("expiration")),
        source=source,
    )


class MetadataSource(RefreshingSource[Credentials]):
    """The ECS metadata agency; the client is the provider's (tests mock it with respx)."""

    def __init__(self, client: httpx.AsyncClient, now: Callable[[], datetime]) -> None:
        super().__init__()
        self._client = client
        self._now = now
        self._token: str | None = None

    def _fresh(self, cached: Credentials) -> bool:
        return cached.expires_at is None or self._now() < cached.expires_at - REFRESH_MARGIN

    async def _update_token(self, *, required: bool) -> None:
        response = await self._client.put(
            METADATA_URL + METADATA_TOKEN_PATH,
            headers={"X-Metadata-Token-Ttl-Seconds": METADATA_TOKEN_TTL},
            timeout=METADATA_TIMEOUT,
        )
        if response.status_code == 200:
            self._token = response.text.strip()
        elif response.status_code in (404, 405, 503) and not required:
            self._token = None  # IMDSv1: go on without a token
        else:
            raise Unavailable(f"the metadata service refused a session token (HTTP {response.status_code})")

    async def _security_key(self) -> httpx.Response:
        headers = {"X-Metadata-Token": self._token} if self._token else {}
        return await self._client.get(METADATA_URL + METADATA_KEY_PATH, headers=headers, timeout=METADATA_TIMEOUT)

    async def _fetch(self) -> Credentials:
        try:
            if self._token is None:
                await self._update_token(required=False)
            response = await self._security_key()
            if response.status_code == 401 and AGENCY_MISSING not in response.text:
                await self._update_token(required=True)
                response = await self._security_key()
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"no ECS metadata service at {METADATA_URL} ({type(exc).__name__}: not running on a Huawei Cloud ECS)"
            ) from None
        if AGENCY_MISSING in response.text:
            raise Unavailable("this ECS has no agency: attach one in the ECS console (Management Information > Agency)")
        if response.status_code >= 400:
            raise Unavailable(f"the metadata service answered HTTP {response.status_code}")
        credentials = parse_security_key(response.text, "ecs-metadata")
        logger.info("obtained temporary credentials from the ECS metadata agency")
        return credentials


class DefaultChain(CredentialChain[Credentials]):
    """Environment → profile file → ECS metadata agency; the first that answers is reused afterwards."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(
            "Huawei Cloud",
            f"Set {ENV_AK} and {ENV_SK} (optionally {ENV_TOKEN} and {ENV_PROJECT_ID}) in the server's environment, "
            "or write them to ~/.huaweicloud/credentials under [basic] (ak = ..., sk = ...).",
            logger,
        )
        self._env: Mapping[str, str] = os.environ if env is None else env
        home = home if home is not None else Path(self._env.get("HOME") or Path.home())
        profile = self._env.get(ENV_CREDENTIALS_FILE, "").strip()
        self._sources: list[tuple[str, Source[Credentials] | str]] = [
            ("environment", EnvironmentSource(self._env)),
            ("profile file", ProfileSource(Path(profile) if profile else home / ".huaweicloud" / "credentials")),
            ("ECS metadata agency", MetadataSource(client, now)),
        ]

    def sources(self) -> list[tuple[str, Source[Credentials] | str]]:
        return self._sources


def as_provider(credentials: Credentials | CredentialsProvider | None, **chain: Any) -> CredentialsProvider:
    return as_source(credentials, Credentials, lambda: DefaultChain(**chain))
