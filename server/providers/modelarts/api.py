"""Signed calls to ModelArts (training jobs v2, pools), IAM (project and domain ids) and BSS (prices).

:class:`ModelArtsApi` is the only place that builds requests: endpoint per service, query pairs
encoded and sorted exactly as signed (:mod:`.signing`; the wire query is the canonical query), compact
UTF-8 JSON bodies, every attempt signed afresh through :func:`server.http.send`, errors mapped by
:mod:`.errormap`. The thin methods below name each route; the sandbox's ModelArts face mirrors them.

Headers our client signs: ``host``, ``x-sdk-date``, ``x-project-id`` (ModelArts), ``x-domain-id`` (BSS),
``x-security-token`` (temporary credentials) and ``content-type`` when a body is sent
(``application/json;charset=utf-8`` where the SDK declares it — create, stop, search — else
``application/json``). Responses are the platform's dicts (or the bare list of ``/tasks``); mapping onto
the shared models is :mod:`.provider`'s job.
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

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import ConfigurationError, ProviderError
from cloudjobs_mcp.server.http import Endpoint, RetryPolicy, Sender
from cloudjobs_mcp.server.providers.modelarts import endpoints, errormap, signing
from cloudjobs_mcp.server.providers.modelarts.credentials import CredentialsProvider
from cloudjobs_mcp.server.providers.modelarts.signing import QueryPairs

logger = logging.getLogger("cloudjobs.modelarts.api")

JSON = "application/json"
JSON_UTF8 = "application/json;charset=utf-8"
ENV_DOMAIN_ID = "HUAWEICLOUD_SDK_DOMAIN_ID"


def seg(value: str) -> str:
    """A path parameter on the wire: ``quote(str(v), safe='')`` as the SDK's client does."""
    return signing.encode(str(value))


def encode_body(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ModelArtsApi:
    """Signed JSON calls for one region; shares the provider's client and credentials."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        credentials: CredentialsProvider,
        *,
        env: Mapping[str, str],
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.region = settings.modelarts_region
        self.client = client
        self.credentials = credentials
        self.env = env
        self.policy = policy or RetryPolicy.from_settings(settings)
        self._send = Sender(client, self.policy, sleep, rand, clock)
        self._now = now
        self.modelarts: Endpoint = endpoints.modelarts(self.region, env)
        self.bss: Endpoint = endpoints.bss(self.region, settings.modelarts_bss_endpoint)
        self.secrets_in_use: tuple[str, ...] = ()
        self._project_id: str | None = None
        self._domain_id: str | None = env.get(ENV_DOMAIN_ID, "").strip() or None
        self._ids_lock = anyio.Lock()

    # ------------------------------------------------------------------------------- one call

    async def request(
        self,
        service: str,
        action: str,
        method: str,
        endpoint: Endpoint,
        path: str,
        *,
        query: QueryPairs = (),
        body: Any = None,
        content_type: str | None = None,
        project_id: str | None = None,
        domain_id: str | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        creds = await self.credentials.get()
        self.secrets_in_use = creds.secrets()
        payload = encode_body(body) if body is not None else b""
        headers: dict[str, str] = {}
        if payload or content_type:
            headers["Content-Type"] = content_type or JSON

        def build() -> httpx.Request:
            signed = signing.sign_request(
                method=method,
                host=endpoint.host,
                path=path,
                query=query,
                headers=headers,
                body=payload,
                access_key=creds.access_key,
                secret_key=creds.secret_key,
                project_id=project_id,
                domain_id=domain_id,
                security_token=creds.security_token,
                date=signing.sdk_date(self._now()),
            )
            return self.client.build_request(
                method, endpoint.base_url + signed.path_and_query, headers=signed.headers, content=payload or None
            )

        def parse(response: httpx.Response) -> ProviderError:
            return errormap.parse_error(response, service=service, action=action, redact=creds.secrets())

        return await self._send(build, parse_error=parse, idempotent=idempotent)

    @staticmethod
    def parse(response: httpx.Response, service: str, action: str) -> Any:
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                f"{service} {action} returned a response that is not JSON (HTTP {response.status_code})",
                code="InvalidResponse",
                status=response.status_code,
            ) from None

    async def call(
        self,
        action: str,
        method: str,
        *segments: str,
        query: QueryPairs = (),
        body: Any = None,
        content_type: str | None = None,
        idempotent: bool = True,
    ) -> Any:
        """A ModelArts call on ``/v2/{project_id}/<segments>``; the parsed JSON (``{}`` for no body)."""
        pid = await self.project_id()
        path = "/v2/" + "/".join([seg(pid), *segments])
        response = await self.request(
            "ModelArts",
            action,
            method,
            self.modelarts,
            path,
            query=query,
            body=body,
            content_type=content_type,
            project_id=pid,
            idempotent=idempotent,
        )
        return {"_status": 204} if response.status_code == 204 else self.parse(response, "ModelArts", action)

    # ---------------------------------------------------------------------------------- ids (IAM)

    async def project_id(self) -> str:
        """The credentials' project id, else IAM ``GET /v3/projects?name=<region>`` (cached)."""
        if self._project_id:
            return self._project_id
        creds = await self.credentials.get()
        if creds.project_id:
            self._project_id = creds.project_id
            return creds.project_id
        async with self._ids_lock:
            if self._project_id:
                return self._project_id
            iam = endpoints.iam(self.region, self.env, creds.iam_endpoint)
            response = await self.request(
                "IAM", "KeystoneListProjects", "GET", iam, "/v3/projects", query=[("name", self.region)]
            )
            data = self.parse(response, "IAM", "KeystoneListProjects")
            projects = [p for p in (data.get("projects") or []) if isinstance(p, dict) and p.get("id")]
            if not projects:
                raise ConfigurationError(
                    f"IAM lists no project named {self.region!r} for these credentials: set HUAWEICLOUD_SDK_PROJECT_ID "
                    "to the project id (IAM console > My Credentials > API Credentials)."
                )
            if len(projects) > 1:
                raise ConfigurationError(
                    f"IAM lists {len(projects)} projects named {self.region!r}: set HUAWEICLOUD_SDK_PROJECT_ID to the "
                    "one to use."
                )
            self._project_id = str(projects[0]["id"])
            logger.info("project id for %s looked up from IAM", self.region)
            return self._project_id

    async def domain_id(self) -> str:
        """``HUAWEICLOUD_SDK_DOMAIN_ID``, else IAM ``GET /v3/auth/domains`` → ``domains[0].id`` (cached)."""
        if self._domain_id:
            return self._domain_id
        creds = await self.credentials.get()
        async with self._ids_lock:
            if self._domain_id:
                return self._domain_id
            iam = endpoints.iam(self.region, self.env, creds.iam_endpoint)
            response = await self.request("IAM", "KeystoneListAuthDomains", "GET", iam, "/v3/auth/domains")
            domains = self.parse(response, "IAM", "KeystoneListAuthDomains").get("domains") or []
            if not domains or not isinstance(domains[0], dict) or not domains[0].get("id"):
                raise ConfigurationError("IAM returned no account (domain) id: set HUAWEICLOUD_SDK_DOMAIN_ID.")
            self._domain_id = str(domains[0]["id"])
            return self._domain_id

    # ------------------------------------------------------------------- training jobs (v2)

    async def list_flavors(self, flavor_type: str | None = None) -> dict[str, Any]:
        """GET /v2/{pid}/training-job-flavors?flavor_type=CPU|GPU|Ascend → ``{"total_count", "flavors": [...]}``."""
        return await self.call(
            "ShowTrainingJobFlavors", "GET", "training-job-flavors", query=[("flavor_type", flavor_type)]
        )

    async def list_engines(self) -> dict[str, Any]:
        """GET /v2/{pid}/training-job-engines → ``{"total", "items": [{"engine_id", "engine_name", ...}]}``."""
        return await self.call("ShowTrainingJobEngines", "GET", "training-job-engines")

    async def create_job(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v2/{pid}/training-jobs (201) → the job. Not idempotent: an unknown outcome raises OutcomeUnknown."""
        return await self.call(
            "CreateTrainingJob", "POST", "training-jobs", body=body, content_type=JSON_UTF8, idempotent=False
        )

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """GET /v2/{pid}/training-jobs/{id}; a missing job is 400 ModelArts.2775."""
        return await self.call("ShowTrainingJobDetails", "GET", "training-jobs", seg(job_id))

    async def search_jobs(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /v2/{pid}/training-job-searches ``{"offset" (page index), "limit" (1-50), "filters", ...}``."""
        return await self.call("ListTrainingJobs", "POST", "training-job-searches", body=body, content_type=JSON_UTF8)

    async def stop_job(self, job_id: str) -> dict[str, Any]:
        """POST /v2/{pid}/training-jobs/{id}/actions ``{"action_type": "terminate"}`` (202) → the job."""
        return await self.call(
            "StopTrainingJob",
            "POST",
            "training-jobs",
            seg(job_id),
            "actions",
            body={"action_type": "terminate"},
            content_type=JSON_UTF8,
        )

    async def delete_job(self, job_id: str) -> None:
        """DELETE /v2/{pid}/training-jobs/{id} (202, empty body)."""
        await self.call("DeleteTrainingJob", "DELETE", "training-jobs", seg(job_id))

    async def events(self, job_id: str, query: QueryPairs) -> dict[str, Any]:
        """GET /v2/{pid}/training-jobs/{id}/events?offset&limit(1-100)&order&level&pattern&start_time&end_time."""
        return await self.call("ListTrainingJobEvents", "GET", "training-jobs", seg(job_id), "events", query=query)

    async def tasks(self, job_id: str) -> Any:
        """GET /v2/{pid}/training-jobs/{id}/tasks → a bare list ``[{"task", "ip", "host_ip", "schedule_count"}]``."""
        return await self.call("ListTrainingJobTasks", "GET", "training-jobs", seg(job_id), "tasks")

    async def log_preview(self, job_id: str, task: str) -> dict[str, Any]:
        """GET …/training-jobs/{id}/tasks/{task}/logs/preview → ``{"content", "current_size", "full_size"}``
        (at most 5 MB, the newest part); 204 ``ModelArts.2776`` while no log exists yet."""
        return await self.call(
            "ShowTrainingJobLogsPreview", "GET", "training-jobs", seg(job_id), "tasks", seg(task), "logs", "preview"
        )

    async def log_lines(self, job_id: str, task: str, query: QueryPairs) -> dict[str, Any]:
        """GET …/training-jobs/{id}/logs/{task}?base_line&lines(1-500)&order
        → ``{"start_line", "end_line", "lines", "content"}`` (AOM line paging)."""
        return await self.call(
            "ShowTrainingJobLogsFromAom", "GET", "training-jobs", seg(job_id), "logs", seg(task), query=query
        )

    async def metrics(self, job_id: str, task: str) -> dict[str, Any]:
        """GET …/training-jobs/{id}/metrics/{task} → ``{"metrics": [{"metric", "value": [float]}]}`` (1-min means)."""
        return await self.call("ShowTrainingJobMetrics", "GET", "training-jobs", seg(job_id), "metrics", seg(task))

    # ------------------------------------------------------------------------------------ pools

    async def list_pools(self, query: QueryPairs = ()) -> dict[str, Any]:
        """GET /v2/{pid}/pools?workspaceId&labelSelector&status → ``{"kind": "PoolList", "items": [Pool]}``."""
        return await self.call("ListPools", "GET", "pools", query=query)

    async def show_pool(self, pool_name: str) -> dict[str, Any]:
        """GET /v2/{pid}/pools/{pool_name}; 404 ModelArts.50015001 (or .2890) when absent."""
        return await self.call("ShowPool", "GET", "pools", seg(pool_name))

    async def list_workloads(self, pool_name: str, query: QueryPairs) -> dict[str, Any]:
        """GET /v2/{pid}/pools/{pool_name}/workloads?type (repeated)&status&sort&ascend&offset&limit(0-500)."""
        return await self.call("ListWorkloads", "GET", "pools", seg(pool_name), "workloads", query=query)

    # -------------------------------------------------------------------------------------- BSS

    async def rate_on_demand(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """BSS POST /v2/bills/ratings/on-demand-resources (global: ``X-Domain-Id``, no project id header)."""
        domain = await self.domain_id()
        response = await self.request(
            "BSS",
            "ListOnDemandResourceRatings",
            "POST",
            self.bss,
            "/v2/bills/ratings/on-demand-resources",
            body=body,
            content_type=JSON,
            domain_id=domain,
        )
        data = self.parse(response, "BSS", "ListOnDemandResourceRatings")
        return data if isinstance(data, dict) else {}
