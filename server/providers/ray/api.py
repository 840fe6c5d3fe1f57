"""The Ray Jobs REST API (the dashboard's HTTP port), over the shared client and retry loop.

Only this module knows Ray's paths and error bodies. What the head really does (measured on Ray 2.60):

* The collection has a trailing slash and nothing else does: ``GET|POST /api/jobs/``, ``GET|DELETE
  /api/jobs/{id}``, ``POST /api/jobs/{id}/stop``; ``/api/jobs`` (no slash) is a 404 ``404: Not Found``.
* Error bodies are ``text/plain`` (often a Python traceback), never JSON: 401 ``Unauthorized: Missing
  authentication token``, 403 ``Forbidden: Invalid authentication token``, 404 ``Job X does not exist``,
  400 validation tracebacks, and **500** for a duplicate ``submission_id`` ("already exists"), for a
  DELETE of a job that is not finished ("non-terminal state") and for a log file that is not there
  ("A file is not found at: ...").
* Token auth: ``Authorization: Bearer <token>``; browser-looking headers get 405 on POST/DELETE, so
  none is ever sent.
* A per-node file under Ray's log directory is read with ``GET /api/v0/logs/file?node_id=&filename=&lines=``
  (``lines=-1``: the whole file; otherwise its last N lines), served by that node's dashboard agent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from cloudjobs_mcp.server.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequest,
    ProviderError,
    TransportError,
)
from cloudjobs_mcp.server.http import RemoteNotFound, RetryPolicy, send

# Ray accepts almost any submission id, but one with a slash or over ~255 characters leaves a phantom job
# stuck PENDING forever (it cannot even be addressed or deleted): only these reach the cluster.
JOB_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_MAX_MESSAGE = 300

# Codes of ProviderError this module raises for Ray's 500s that are answers, not failures.
ALREADY_EXISTS = "AlreadyExists"
NOT_TERMINAL = "NotTerminal"
FILE_MISSING = "LogFileMissing"


def check_job_id(job_id: str) -> str:
    if not JOB_ID_RE.match(job_id):
        raise InvalidRequest(
            f"{job_id[:80]!r} is not a Ray job id: ids are 1-128 letters, digits, '.', '_' or '-' "
            "(the id create_training_job or list_jobs returned)."
        )
    return job_id


def _last_line(text: str) -> str:
    """The line of a text/plain error that says what happened (a traceback's last line)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    line = re.sub(r"^(\w+\.)*\w+(Error|Exception):\s*", "", line)  # "ValueError: Job ..." → "Job ..."
    return line[:_MAX_MESSAGE]


class RayApi:
    """JSON calls to one Ray cluster's dashboard; owns no client (the provider does)."""

    def __init__(self, address: str, token: str | None, client: httpx.AsyncClient, policy: RetryPolicy) -> None:
        self.address = address.rstrip("/")
        self._token = token
        self.client = client
        self.policy = policy

    # ------------------------------------------------------------------ transport

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        return headers

    def parse_error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        text = response.text
        line = _last_line(text)
        where = f"the Ray cluster at {self.address}"
        if status == 401:
            return AuthenticationError(
                f"{where} requires a token: set RAY_AUTH_TOKEN to the cluster's token "
                "(`ray get-auth-token` on the head, or the file `cloudjobs-mcp ray up` printed).",
                code="Unauthorized",
                status=status,
            )
        if status == 403:
            return AuthenticationError(
                f"{where} rejected the token in RAY_AUTH_TOKEN (Ray: {line or 'Forbidden'}): it is not this "
                "cluster's token. Set RAY_AUTH_TOKEN to the token the cluster was started with.",
                code="Forbidden",
                status=status,
            )
        if status == 404:
            if "does not exist" in text:
                return RemoteNotFound(f"Ray: {line}.", code="NotFound", status=status)
            return ProviderError(
                f"{where} has no Jobs API at this path (HTTP 404): CLOUDJOBS_RAY_ADDRESS must be the "
                "dashboard address (e.g. http://127.0.0.1:8265) of a head started with ray[default].",
                code="NoJobsApi",
                status=status,
            )
        if status == 405:
            return ProviderError(f"{where} refused the request (HTTP 405: {line}).", code="MethodNotAllowed")
        if status == 400:
            return ProviderError(f"{where} rejected the request: {line}", code="BadRequest", status=status)
        if "already exists" in text:
            return ProviderError(f"Ray: {line}", code=ALREADY_EXISTS, status=status)
        if "non-terminal state" in text:
            return ProviderError(f"Ray: {line}", code=NOT_TERMINAL, status=status)
        if "A file is not found" in text:
            return ProviderError("Ray has no such log file yet.", code=FILE_MISSING, status=status)
        if "Agent for node id" in text:
            return ProviderError(
                "The Ray node that ran this job has left the cluster; its worker logs went with it.",
                code="NodeGone",
                status=status,
            )
        return ProviderError(
            f"{where} failed (HTTP {status}): {line or response.reason_phrase}",
            code=f"HTTP{status}",
            status=status,
            retryable=status >= 500,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One call with the shared retries. Submissions are idempotent too: the submission_id makes a
        repeated POST answer "already exists" instead of creating a second job."""
        url = self.address + path

        def build() -> httpx.Request:
            return self.client.build_request(
                method,
                url,
                params=params,
                headers=self._headers(),
                json=body if content is None and body is not None else None,
                content=content,
            )

        try:
            return await send(self.client, build, parse_error=self.parse_error, policy=self.policy)
        except TransportError as exc:
            raise type(exc)(
                f"Could not reach the Ray cluster at {self.address} ({exc.message}). Is it running? "
                "Start one with `cloudjobs-mcp ray up`, or fix CLOUDJOBS_RAY_ADDRESS.",
                code=exc.code,
                retryable=exc.retryable,
            ) from None

    async def json(self, method: str, path: str, **kw: Any) -> Any:
        response = await self.request(method, path, **kw)
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                f"The Ray cluster at {self.address} answered {method} {path} with something that is not JSON: "
                "is CLOUDJOBS_RAY_ADDRESS the dashboard address?",
                code="InvalidResponse",
            ) from None

    # ------------------------------------------------------------------ routes

    async def version(self) -> dict[str, Any]:
        data = await self.json("GET", "/api/version")
        return data if isinstance(data, dict) else {}

    async def nodes(self) -> list[dict[str, Any]]:
        """``GET /api/v0/nodes?detail=1`` → data.result.result: node_id, node_ip, state, resources_total."""
        data = await self.json("GET", "/api/v0/nodes", params={"detail": 1, "limit": 1000})
        try:
            return list(data["data"]["result"]["result"])
        except (KeyError, TypeError):
            raise ProviderError("Ray's node list had an unexpected shape.", code="InvalidResponse") from None

    async def usage_by_node(self) -> dict[str, dict[str, list[float]]]:
        """``GET /api/cluster_status`` → node id → resource → [used, total]. **Ray camel-cases the resource
        names here** (``accel_test`` → ``accelTest``); see :func:`camel`."""
        data = await self.json("GET", "/api/cluster_status")
        try:
            usage = data["data"]["clusterStatus"]["loadMetricsReport"]["usageByNode"]
        except (KeyError, TypeError):
            return {}
        return usage if isinstance(usage, dict) else {}

    async def list_jobs(self) -> list[dict[str, Any]]:
        data = await self.json("GET", "/api/jobs/")
        return [j for j in data if isinstance(j, dict)] if isinstance(data, list) else []

    async def get_job(self, job_id: str) -> dict[str, Any]:
        data = await self.json("GET", f"/api/jobs/{quote(check_job_id(job_id), safe='')}")
        if not isinstance(data, dict):
            raise ProviderError("Ray's job answer had an unexpected shape.", code="InvalidResponse")
        return data

    async def submit(self, body: Mapping[str, Any]) -> str:
        data = await self.json("POST", "/api/jobs/", body=dict(body))
        return str(data.get("submission_id") or body["submission_id"])

    async def stop(self, job_id: str) -> bool:
        data = await self.json("POST", f"/api/jobs/{quote(check_job_id(job_id), safe='')}/stop")
        return bool(isinstance(data, dict) and data.get("stopped"))

    async def delete(self, job_id: str) -> None:
        await self.request("DELETE", f"/api/jobs/{quote(check_job_id(job_id), safe='')}")

    async def node_file(self, node_id: str, filename: str, lines: int) -> str | None:
        """The last ``lines`` lines (-1: all) of a file under the node's Ray log directory; None when absent."""
        try:
            response = await self.request(
                "GET", "/api/v0/logs/file", params={"node_id": node_id, "filename": filename, "lines": lines}
            )
        except ProviderError as exc:
            if exc.code == FILE_MISSING:
                return None
            raise
        return response.text

    async def driver_log(self, job_id: str, node_id: str, lines: int) -> str:
        """The last ``lines`` lines of a job's driver log (``job-driver-<id>.log`` on its node)."""
        text = await self.node_file(node_id, f"job-driver-{check_job_id(job_id)}.log", lines)
        return text or ""

    async def has_package(self, name: str) -> bool:
        """``GET /api/packages/gcs/<name>``: 200 (and pinned for a while) or 404."""
        try:
            await self.request("GET", f"/api/packages/gcs/{name}")
        except ProviderError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def put_package(self, name: str, data: bytes) -> None:
        await self.request("PUT", f"/api/packages/gcs/{name}", content=data)


def camel(name: str) -> str:
    """A resource name as /api/cluster_status spells it (Ray's ``to_camel_case``)."""
    parts = name.split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def address_of(raw: str | None) -> str:
    """The dashboard URL from CLOUDJOBS_RAY_ADDRESS (``host:port`` gets ``http://``)."""
    value = (raw or "").strip()
    if not value:
        raise ConfigurationError(
            "The ray provider needs CLOUDJOBS_RAY_ADDRESS: the Ray dashboard address, e.g. "
            "http://127.0.0.1:8265. Start a local cluster with `cloudjobs-mcp ray up`, which prints it."
        )
    if "://" not in value:
        value = "http://" + value
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"CLOUDJOBS_RAY_ADDRESS must be an http(s) URL, got {value!r}.")
    return value.rstrip("/")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
