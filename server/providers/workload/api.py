"""Calls to the Primus-SaFE apiserver (the seed's "Workload API"), as its code puts them on the wire.

:class:`WorkloadApi` is the only place that builds requests. Base path: ``{CLOUDJOBS_WORKLOAD_URL}`` +
``{CLOUDJOBS_WORKLOAD_API_PREFIX}`` — ``/api/v1`` in the platform's code at every version; the seed's
``/api/custom`` exists only in the document (accepted for servers built from it). Every answer is HTTP 200
with JSON — ``null`` where the seed promises 204 — or an error ``{"errorCode", "errorMessage"}``
(``errormap``). Calls go through the one retry loop (``server.http.send``).

Authentication (``Auth``): an API key (``ak-…``) is sent as ``Authorization: Bearer ak-…``; a user and
password log in once (``POST /login`` → ``{"token", "expire"}``) and the token goes both as
``Authorization: Bearer`` and as the ``Token`` cookie (the seed-era build reads only the cookie, later
ones either). A 401 triggers one fresh login for that call (``send``'s ``reauthenticate``), never a loop.
The ``userId`` header (trusted blindly by old builds) is never sent.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import AuthenticationError, ConfigurationError, ProviderError
from cloudjobs_mcp.server.http import RetryPolicy, Sender
from cloudjobs_mcp.server.providers.workload import errormap

logger = logging.getLogger("cloudjobs.workload.api")

QueryValue = str | int | None
LOGIN_REFUSED_SECONDS = 30.0  # a refused login is answered from memory this long (no login storms)


class Auth:
    """The credentials of one provider: an API key, or a user whose login token is cached."""

    def __init__(self, settings: Settings) -> None:
        key = settings.workload_api_key.get_secret_value() if settings.workload_api_key else ""
        password = settings.workload_password.get_secret_value() if settings.workload_password else ""
        self.api_key = key.strip()
        self.user = (settings.workload_user or "").strip()
        self.password = password
        if not self.api_key and not (self.user and self.password):
            raise ConfigurationError(
                "The workload provider needs credentials: CLOUDJOBS_WORKLOAD_API_KEY (an ak-… key), or "
                "CLOUDJOBS_WORKLOAD_USER and CLOUDJOBS_WORKLOAD_PASSWORD."
            )
        self.token = ""
        self.expires_at: float | None = None  # unix seconds; None = never
        self.logins = 0
        self.refused: tuple[float, AuthenticationError] | None = None  # the last refused login, and when
        self._lock = anyio.Lock()

    @property
    def mode(self) -> str:
        return "api key" if self.api_key else "user login"

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.api_key, self.password, self.token) if s)

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"authorization": f"Bearer {self.api_key}"}
        return {"authorization": f"Bearer {self.token}", "cookie": f"Token={self.token}"}

    def _valid(self) -> bool:
        return bool(self.token) and (self.expires_at is None or self.expires_at - 30 > time.time())


class WorkloadApi:
    """JSON calls for one platform; shares the provider's pooled client."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        url = (settings.workload_url or "").strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                "CLOUDJOBS_WORKLOAD_URL must be the platform's base URL, e.g. https://safe.example.com "
                f"(got {url or 'nothing'!r})."
            )
        self.base = url + settings.workload_api_prefix
        self.client = client
        self.auth = Auth(settings)
        self.policy = policy or RetryPolicy.from_settings(settings)
        self._send = Sender(client, self.policy, sleep, rand, clock)

    # ------------------------------------------------------------------------------ transport

    async def login(self, *, stale: str | None = None) -> None:
        """Log in (once: concurrent callers share it). ``stale``: the token a 401 rejected; a newer one is kept."""
        async with self.auth._lock:
            if self.auth._valid() and self.auth.token != stale:
                return
            refused = self.auth.refused
            if refused is not None and time.monotonic() - refused[0] < LOGIN_REFUSED_SECONDS:
                raise refused[1]  # callers waiting on the same refused login: no second attempt
            self.auth.token = ""
            body = json.dumps({"name": self.auth.user, "password": self.auth.password}).encode()

            def build() -> httpx.Request:
                return self.client.build_request(
                    "POST", self.base + "/login", content=body, headers={"content-type": "application/json"}
                )

            def parse(response: httpx.Response) -> ProviderError:
                return errormap.parse_error(response, what=f"login as {self.auth.user}", redact=self.auth.secrets())

            try:
                response = await self._send(build, parse_error=parse)
            except AuthenticationError as exc:
                self.auth.refused = (time.monotonic(), exc)
                raise
            self.auth.refused = None
            data = _json(response, "login")
            token = data.get("token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise AuthenticationError(
                    f"{errormap.LABEL}: login as {self.auth.user} answered without a token.", code="InvalidResponse"
                )
            expire = data.get("expire")
            self.auth.token = token
            self.auth.expires_at = float(expire) if isinstance(expire, int | float) and expire > 0 else None
            self.auth.logins += 1
            logger.info("logged in to the workload platform as %s", self.auth.user)

    async def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Mapping[str, QueryValue] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """One call; returns the parsed JSON (``None`` for the platform's ``null``) or raises a typed error."""
        relogin = None
        if not self.auth.api_key:
            if not self.auth._valid():
                await self.login()

            async def relogin() -> None:
                await self.login(stale=self.auth.token)

        params = {k: str(v) for k, v in (query or {}).items() if v is not None and v != ""}
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else None
        url = self.base + path

        def build() -> httpx.Request:
            headers = {"accept": "application/json", **self.auth.headers()}
            if payload is not None:
                headers["content-type"] = "application/json"
            return self.client.build_request(method, url, params=params or None, content=payload, headers=headers)

        def parse(response: httpx.Response) -> ProviderError:
            return errormap.parse_error(response, what=what, redact=self.auth.secrets())

        response = await self._send(build, parse_error=parse, idempotent=idempotent, reauthenticate=relogin)
        return _json(response, what)

    # ------------------------------------------------------------------------------ routes

    async def workspaces(self) -> Any:
        """GET /workspaces → {totalCount, items: [{workspaceId, flavorId, currentNodeCount, phase, …}]}"""
        return await self.call("GET", "/workspaces", what="list workspaces")

    async def workspace(self, workspace_id: str) -> Any:
        """GET /workspaces/{id} → the item plus totalQuota/availQuota/usedQuota (resource name → integer)."""
        return await self.call("GET", f"/workspaces/{seg(workspace_id)}", what=f"get workspace {workspace_id}")

    async def node_flavors(self) -> Any:
        """GET /nodeflavors → {totalCount, items: [{flavorId, cpu: {product, quantity}, memory, gpu: {…}}]}"""
        return await self.call("GET", "/nodeflavors", what="list node flavors")

    async def flavor_avail(self, flavor_id: str) -> Any:
        """GET /nodeflavors/{id}/avail → one node's allocatable: {"cpu": int, "memory": bytes, "amd.com/gpu": int}"""
        return await self.call("GET", f"/nodeflavors/{seg(flavor_id)}/avail", what=f"get node flavor {flavor_id}")

    async def images(self, tag: str | None = None) -> Any:
        """GET /images?flat=true → a bare array [{id, tag, description, created_at, created_by}] (ready ones)."""
        return await self.call("GET", "/images", query={"flat": "true", "tag": tag}, what="list images")

    async def create_workload(self, body: Mapping[str, Any]) -> Any:
        """POST /workloads → {"workloadId"}. Not idempotent: a failure after sending is OutcomeUnknown."""
        return await self.call("POST", "/workloads", body=body, idempotent=False, what="create workload")

    async def list_workloads(self, query: Mapping[str, QueryValue]) -> Any:
        """GET /workloads?workspaceId&phase&description&since&offset&limit&order → {totalCount, items|null}"""
        return await self.call("GET", "/workloads", query=query, what="list workloads")

    async def get_workload(self, workload_id: str) -> Any:
        return await self.call("GET", f"/workloads/{seg(workload_id)}", what=f"get workload {workload_id}")

    async def stop_workload(self, workload_id: str) -> Any:
        return await self.call("POST", f"/workloads/{seg(workload_id)}/stop", what=f"stop workload {workload_id}")

    async def delete_workload(self, workload_id: str) -> Any:
        return await self.call("DELETE", f"/workloads/{seg(workload_id)}", what=f"delete workload {workload_id}")

    async def batch(self, action: str, workload_ids: list[str]) -> Any:
        """POST /workloads/{stop|delete|clone} {"workloadIds": [...]} → null (500 when every one failed)."""
        return await self.call(
            "POST",
            f"/workloads/{action}",
            body={"workloadIds": workload_ids},
            idempotent=action != "clone",
            what=f"{action} workloads {', '.join(workload_ids)}",
        )

    async def pod_logs(self, workload_id: str, pod_id: str, query: Mapping[str, QueryValue]) -> Any:
        """GET /workloads/{id}/pods/{pod}/logs?tailLines&sinceSeconds&container → {workloadId, podId, logs, …}"""
        return await self.call(
            "GET",
            f"/workloads/{seg(workload_id)}/pods/{seg(pod_id)}/logs",
            query=query,
            what=f"read the log of pod {pod_id}",
        )

    async def pod_containers(self, workload_id: str, pod_id: str) -> Any:
        return await self.call(
            "GET",
            f"/workloads/{seg(workload_id)}/pods/{seg(pod_id)}/containers",
            what=f"list the containers of pod {pod_id}",
        )

    async def service(self, workload_id: str) -> Any:
        return await self.call(
            "GET", f"/workloads/{seg(workload_id)}/service", what=f"get the service of {workload_id}"
        )

    async def search_logs(self, workload_id: str, body: Mapping[str, Any]) -> Any:
        """POST /workloads/{id}/logs (OpenSearch) → raw {hits: {total: {value}, hits: [{_source: {message, …}}]}}"""
        return await self.call(
            "POST", f"/workloads/{seg(workload_id)}/logs", body=dict(body), what=f"search the logs of {workload_id}"
        )


def seg(value: str) -> str:
    return quote(value, safe="")


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        raise ProviderError(
            f"{errormap.LABEL}: {what} answered HTTP {response.status_code} with a body that is not JSON.",
            code="InvalidResponse",
            status=response.status_code,
        ) from None
