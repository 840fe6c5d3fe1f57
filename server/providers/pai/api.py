"""Signed calls to PAI-DLC, AIWorkspace and ECS, exactly as the official SDKs put them on the wire.

:class:`PaiApi` is the only place that builds requests: it resolves the product's endpoint, encodes
the query (RFC 3986, sorted, the same string in the URL and the signature), serialises JSON bodies
compactly (UTF-8, no ASCII escaping), signs every attempt afresh through :func:`server.http.send` and
maps error responses with :mod:`.errormap`. The thin methods below (one per API) document each
route — method, path, which parameters go in the query and which in the body — so a sandbox server
can mirror them. Responses are returned as the platform's PascalCase dicts; mapping onto the shared
models is :mod:`.provider`'s job. (STS ``AssumeRoleWithOIDC`` is unsigned and lives in
:mod:`.credentials`.)
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx

from server.config import Settings
from server.errors import ProviderError
from server.http import RetryPolicy, send
from server.providers.pai import endpoints, errormap, signing
from server.providers.pai.credentials import CredentialsProvider
from server.providers.pai.endpoints import AIWORKSPACE, DLC, ECS, Endpoint, Product

logger = logging.getLogger("cloudjobs.pai.api")

QueryValue = str | int | float | bool | dict[str, Any] | list[Any] | None


def query_value(value: QueryValue) -> str | None:
    """Python value → query string value: booleans ``true``/``false``, maps/lists as compact JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def to_query(params: Mapping[str, QueryValue] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        encoded = query_value(value)
        if encoded is not None:
            out[key] = encoded
    return out


def encode_body(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def path(*segments: str) -> str:
    """``/a/b/{id}`` with every segment percent-encoded (``quote(x, safe='')``), as the SDK does."""
    return "/" + "/".join(signing.percent_encode(s) for s in segments)


class PaiApi:
    """Signed JSON calls for one region; shares the provider's client and credentials."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        credentials: CredentialsProvider,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonce: Callable[[], str] = signing.new_nonce,
    ) -> None:
        self.settings = settings
        self.client = client
        self.credentials = credentials
        self.policy = policy or RetryPolicy.from_settings(settings)
        self._sleep = sleep
        self._rand = rand
        self._clock = clock
        self._now = now
        self._nonce = nonce
        # The secret values of the credentials last used, for masking them wherever they could surface.
        self.secrets_in_use: tuple[str, ...] = ()
        self.endpoints: dict[str, Endpoint] = {
            p.key: endpoints.resolve(
                p, settings.region, settings.pai_network, getattr(settings, f"pai_endpoint_{p.key}", None)
            )
            for p in (DLC, AIWORKSPACE, ECS, endpoints.PAISTUDIO)
        }

    async def call(
        self,
        product: Product,
        action: str,
        method: str,
        pathname: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """One API call; returns the parsed JSON object or raises a typed ``ProviderError``."""
        creds = await self.credentials.get()
        self.secrets_in_use = creds.secrets()
        endpoint = self.endpoints[product.key]
        q = to_query(query)
        payload = encode_body(body) if body is not None else b""
        url = signing.build_url(endpoint.scheme, endpoint.host, pathname, q)

        def build() -> httpx.Request:
            headers = signing.sign_headers(
                method=method,
                host=endpoint.host,
                path=pathname,
                query=q,
                body=payload,
                action=action,
                version=product.version,
                access_key_id=creds.access_key_id,
                access_key_secret=creds.access_key_secret,
                security_token=creds.security_token,
                date=signing.utc_timestamp(self._now()),
                nonce=self._nonce(),
                extra_headers={"accept": "application/json"},
            )
            return self.client.build_request(method, url, headers=headers, content=payload or None)

        def parse(response: httpx.Response) -> ProviderError:
            return errormap.parse_error(response, product=product, action=action, redact=creds.secrets())

        response = await send(
            self.client,
            build,
            parse_error=parse,
            policy=self.policy,
            idempotent=idempotent,
            sleep=self._sleep,
            rand=self._rand,
            clock=self._clock,
        )
        label = errormap.PRODUCT_LABELS.get(product.key, product.key)
        try:
            data = response.json() if response.content else {}
        except ValueError:
            raise ProviderError(
                f"{label} {action} returned a response that is not JSON (HTTP {response.status_code})",
                code="InvalidResponse",
                status=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise ProviderError(f"{label} {action} returned unexpected JSON", code="InvalidResponse")
        logger.debug("%s %s ok (RequestId %s)", label, action, data.get("RequestId", ""))
        return data

    # ------------------------------------------------------------------ PAI-DLC 2020-12-03 (ROA)

    async def create_job(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/v1/jobs, JSON body (DisplayName, JobType, JobSpecs, UserCommand, ...) → {JobId}.

        Not idempotent: a failure after sending raises ``OutcomeUnknown``."""
        return await self.call(DLC, "CreateJob", "POST", "/api/v1/jobs", body=body, idempotent=False)

    async def get_job(self, job_id: str, need_detail: bool = True) -> dict[str, Any]:
        """GET /api/v1/jobs/{JobId}?NeedDetail=true"""
        return await self.call(
            DLC, "GetJob", "GET", path("api", "v1", "jobs", job_id), query={"NeedDetail": need_detail}
        )

    async def list_jobs(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/jobs?PageNumber&PageSize&Status&StartTime&Tags={json}&WorkspaceId&SortBy&Order"""
        return await self.call(DLC, "ListJobs", "GET", "/api/v1/jobs", query=query)

    async def stop_job(self, job_id: str) -> dict[str, Any]:
        """POST /api/v1/jobs/{JobId}/stop, empty body (no content-type)."""
        return await self.call(DLC, "StopJob", "POST", path("api", "v1", "jobs", job_id, "stop"))

    async def delete_job(self, job_id: str) -> dict[str, Any]:
        """DELETE /api/v1/jobs/{JobId}"""
        return await self.call(DLC, "DeleteJob", "DELETE", path("api", "v1", "jobs", job_id))

    async def get_pod_logs(self, job_id: str, pod_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/jobs/{JobId}/pods/{PodId}/logs?MaxLines&StartTime&EndTime&DownloadToFile=false"""
        return await self.call(
            DLC, "GetPodLogs", "GET", path("api", "v1", "jobs", job_id, "pods", pod_id, "logs"), query=query
        )

    async def get_pod_events(self, job_id: str, pod_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/jobs/{JobId}/pods/{PodId}/events?MaxEventsNum&StartTime&EndTime"""
        return await self.call(
            DLC, "GetPodEvents", "GET", path("api", "v1", "jobs", job_id, "pods", pod_id, "events"), query=query
        )

    async def get_job_events(self, job_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/jobs/{JobId}/events?MaxEventsNum&StartTime&EndTime"""
        return await self.call(DLC, "GetJobEvents", "GET", path("api", "v1", "jobs", job_id, "events"), query=query)

    async def list_ecs_specs(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/ecsspecs?AcceleratorType&PageNumber&PageSize&SortBy&Order&InstanceTypes"""
        return await self.call(DLC, "ListEcsSpecs", "GET", "/api/v1/ecsspecs", query=query)

    # ------------------------------------------------------------ AIWorkspace 2021-02-04 (ROA)

    async def list_images(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/images?Labels=k=v,k=v&Name&Verbose=true&PageNumber&PageSize"""
        return await self.call(AIWORKSPACE, "ListImages", "GET", "/api/v1/images", query=query)

    async def list_workspaces(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/workspaces?PageNumber&PageSize&WorkspaceName"""
        return await self.call(AIWORKSPACE, "ListWorkspaces", "GET", "/api/v1/workspaces", query=query)

    async def create_workspace(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/v1/workspaces, JSON {WorkspaceName, DisplayName, Description, EnvTypes} → {WorkspaceId}."""
        return await self.call(
            AIWORKSPACE, "CreateWorkspace", "POST", "/api/v1/workspaces", body=body, idempotent=False
        )

    # ----------------------------------------------------------------- ECS 2014-05-26 (RPC, V3)

    async def describe_price(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """POST / with every parameter in the query (RegionId, InstanceType, PriceUnit, SystemDisk.*),
        empty body — the SDK's formData RPC style under V3 signing."""
        return await self.call(ECS, "DescribePrice", "POST", "/", query=query)
