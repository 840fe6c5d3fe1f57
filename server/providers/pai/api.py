"""Signed calls to PAI-DLC, AIWorkspace, ECS and PaiStudio, exactly as the official SDKs put them on the wire.

:class:`PaiApi` is the only place that builds requests: it resolves the product's endpoint, encodes
the query (RFC 3986, sorted, the same string in the URL and the signature), serialises JSON bodies
compactly (UTF-8, no ASCII escaping), signs every attempt afresh through :func:`server.http.send` and
maps error responses with :mod:`.errormap`. The thin methods below (one per API) document each
route — method, path, which parameters go in the query and which in the body — so a sandbox server
can mirror them. Responses are returned as the platform's PascalCase dicts; mapping onto the shared
models is :mod:`.provider`'s job. (STS ``AssumeRoleWithOIDC`` is unsigned and lives in
:mod:`.credentials`.)

Every product is ROA (PaiStudio too: product ``paistudio``, ``x-acs-version: 2022-01-12``, same
ACS3-HMAC-SHA256 signer) except ECS (RPC). Path parameters are percent-encoded segments; GET/DELETE
and bodiless POST/PUT carry no body and no content-type. Shapes below are the official SDKs' models
(alibabacloud-pai-dlc20201203 1.11.6, alibabacloud-paistudio20220112 2.6.2); quirks worth copying in a
sandbox are marked **quirk**.

Times: DLC takes and returns UTC ``YYYY-MM-DDTHH:MM:SSZ``. PaiStudio documents its query times as
``yyyy-MM-ddTHH:mmZ`` (minute precision, e.g. ``2024-01-01T00:05Z``) and returns ISO-8601 UTC strings.
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
from cloudjobs_mcp.server.errors import ProviderError
from cloudjobs_mcp.server.http import RetryPolicy, Sender
from cloudjobs_mcp.server.providers.pai import endpoints, errormap, signing
from cloudjobs_mcp.server.providers.pai.credentials import CredentialsProvider
from cloudjobs_mcp.server.providers.pai.endpoints import AIWORKSPACE, DLC, ECS, PAISTUDIO, Endpoint, Product

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
        self._send = Sender(client, self.policy, sleep, rand, clock)
        self._now = now
        self._nonce = nonce
        # The secret values of the credentials last used, for masking them wherever they could surface.
        self.secrets_in_use: tuple[str, ...] = ()
        self.endpoints: dict[str, Endpoint] = {
            p.key: endpoints.resolve(
                p, settings.region, settings.pai_network, getattr(settings, f"pai_endpoint_{p.key}", None)
            )
            for p in (DLC, AIWORKSPACE, ECS, PAISTUDIO)
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

        response = await self._send(build, parse_error=parse, idempotent=idempotent)
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
        # DLC's sanity-check APIs answer with ``RequestID`` (capital ID) instead of ``RequestId``.
        logger.debug("%s %s ok (RequestId %s)", label, action, data.get("RequestId") or data.get("RequestID") or "")
        return data

    # ------------------------------------------------------------------ PAI-DLC 2020-12-03 (ROA)

    async def create_job(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/v1/jobs, JSON body (DisplayName, JobType, JobSpecs, UserCommand, ...) → {JobId}.

        What this server adds (all CreateJobRequest fields): ``TemplateId`` (str) and ``TemplateVersion``
        (int) for a run from a template (the config is already resolved; the platform records them);
        spot runs set on every ``JobSpecs[]`` item ``"UseSpotInstance": true`` and ``"SpotSpec":
        {"SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": float}`` (**quirk**: SpotPriceLimit is
        per *minute*, CNY/minute in the SDK; the per-hour limit is divided by 60) or ``{"SpotStrategy":
        "SpotAsPriceGo"}`` without a limit; hyperparameters go in ``Envs`` as ``HP_<NAME>`` (upper case,
        other characters ``_``) plus ``CLOUDJOBS_HYPERPARAMETERS`` (a JSON object string, name → value),
        metric definitions as ``CLOUDJOBS_METRIC_DEFINITIONS`` (JSON ``[{"name", "regex"}]``). GetJob
        returns ``Envs`` and ``JobSpecs[].UseSpotInstance`` as sent, so they are read back from there.

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

    async def get_job_metrics(self, job_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/jobs/{JobId}/metrics?MetricType&StartTime&EndTime&TimeStep&Token

        ``MetricType`` (required): ``GpuCoreUsage`` | ``GpuMemoryUsage`` | ``CpuCoreUsage`` | ``MemoryUsage``
        (also ``NetworkInputRate``, ``NetworkOutputRate``, ``DiskReadRate``, ``DiskWriteRate``, unused here).
        ``StartTime``/``EndTime`` UTC ``YYYY-MM-DDTHH:MM:SSZ`` (defaults: now-1h / now). ``TimeStep`` a
        duration string such as ``5m`` (the default), ``1m``, ``30s``, ``1h``.
        → ``{"JobId", "RequestId", "PodMetrics": [{"PodId": str, "Metrics": [{"Time": int (epoch ms),
        "Value": float}]}]}``. The SDK states no unit for the usage values; they are read as a
        percentage of the pod's allocation (0-100, e.g. ``37.5``) — a sandbox should serve them so.
        Alibaba documents this API as no longer maintained for jobs on resource quotas (those report to
        CloudMonitor): a quota job may get empty ``PodMetrics``."""
        return await self.call(DLC, "GetJobMetrics", "GET", path("api", "v1", "jobs", job_id, "metrics"), query=query)

    async def list_job_sanity_check_results(self, job_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/jobs/{JobId}/sanitycheckresults?Order=asc|desc

        → ``{"RequestID", "TotalCount": int, "SanityCheckResults": [[SanityCheckResultItem, ...], ...]}``
        **quirk**: ``RequestID`` (capital ID), and a *list of lists* — one inner list per check run (one
        per ``CheckNumber``), each holding that run's phases. SanityCheckResultItem:
        ``{"CheckNumber": int, "Phase": str, "Status": str, "Message": str, "StartedAt": str,
        "FinishedAt": str}``; Phase is ``CheckInit`` | ``DeviceCheck`` | ``SingleNodeCommCheck`` |
        ``TwoNodeCommCheck`` | ``AllNodeCommCheck``; times UTC ISO-8601."""
        return await self.call(
            DLC,
            "ListJobSanityCheckResults",
            "GET",
            path("api", "v1", "jobs", job_id, "sanitycheckresults"),
            query=query,
        )

    async def get_job_sanity_check_result(self, job_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/jobs/{JobId}/sanitycheckresult?SanityCheckNumber&SanityCheckPhase&Token

        ``SanityCheckNumber`` (int) is required; ``SanityCheckPhase`` one of the phases above.
        → ``{"JobId", "RequestID", "SanityCheckResult": [SanityCheckResultItem, ...]}`` (**quirk**:
        ``RequestID``; singular ``SanityCheckResult`` holding a flat list)."""
        return await self.call(
            DLC,
            "GetJobSanityCheckResult",
            "GET",
            path("api", "v1", "jobs", job_id, "sanitycheckresult"),
            query=query,
        )

    async def list_ecs_specs(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/ecsspecs?AcceleratorType&PageNumber&PageSize&SortBy&Order&InstanceTypes"""
        return await self.call(DLC, "ListEcsSpecs", "GET", "/api/v1/ecsspecs", query=query)

    async def tag_resources(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/v1/tags, JSON body (TagResourcesRequest)::

            {"RegionId": "cn-hangzhou", "ResourceType": "Job", "ResourceId": ["dlc..."],
             "Tag": [{"Key": "team", "Value": "nlp"}]}

        ``ResourceType`` is ``Job`` (the SDK's only documented value); at most 50 ResourceIds and 20 tags;
        a key is up to 128 characters and may not start with ``aliyun`` or ``acs:`` nor contain
        ``http://``/``https://``. → ``{"RequestId"}``. Adding a key the job has replaces its value.
        The SDK (pai-dlc 2020-12-03) has no ListTagResources: a job's tags are read from GetJob
        ``Settings.Tags``, the same store ListJobs' ``Tags`` filter searches."""
        return await self.call(DLC, "TagResources", "POST", "/api/v1/tags", body=body)

    async def untag_resources(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """DELETE /api/v1/tags?RegionId&ResourceType=Job&ResourceId=["dlc..."]&TagKey=["k1","k2"]&All

        **quirk** (the SDK's shrink rule): ``ResourceId`` and ``TagKey`` are lists sent as compact JSON
        strings in the query (``ResourceId=%5B%22dlc1%22%5D``); ``All`` is the string ``true``/``false``
        (remove every tag; default false). No body. Absent keys are not an error. → ``{"RequestId"}``.
        (The SDK's UntagResourcesRequest has no RegionId; it is not sent.)"""
        return await self.call(DLC, "UntagResources", "DELETE", "/api/v1/tags", query=query)

    async def create_job_template(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/v1/jobtemplates, JSON body (CreateJobTemplateRequest)::

            {"TemplateName": str (required), "WorkspaceId": str (required), "Description": str,
             "Metadata": {str: any}, "Content": str (required: a JSON *string* of a CreateJob body),
             "Constraints": {JSONPath: "locked" | "overridable" | "required"}}

        Content example (seed 001): ``"{\"WorkspaceId\":\"15****05\",\"JobType\":\"PyTorchJob\",
        \"UserCommand\":\"echo hello\",\"JobSpecs\":[{\"Type\":\"Worker\",\"PodCount\":1,
        \"Image\":\"...\",\"EcsSpec\":\"ecs.gn7i-c8g1.2xlarge\"}]}"``; Constraints keys are paths
        into that body without a leading ``$.`` (seed: ``{"JobSpecs[0].Image": "locked", "UserCommand":
        "locked", "JobType": "locked"}``). Not idempotent.
        → ``{"RequestId", "TemplateId" (e.g. ``tplwk80096dw****``), "TemplateName", "Version": int (1),
        "DefaultVersion": int (1), "Description", "Metadata", "WorkspaceId", "UserId", "TenantId",
        "GmtCreateTime", "GmtModifyTime" (``yyyy-MM-ddTHH:mmZ``), "LastUsedTime"}``."""
        return await self.call(DLC, "CreateJobTemplate", "POST", "/api/v1/jobtemplates", body=body, idempotent=False)

    async def update_job_template(self, template_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /api/v1/jobtemplates/{TemplateId}, JSON body (UpdateJobTemplateRequest)::

            {"Content": str (JSON string; giving it creates a new version), "Constraints": {...},
             "Description": str, "Metadata": {...}, "TemplateName": str, "SetAsDefault": bool}

        (the SDK's lowercase ``version`` field is documented "Invalid field"; not sent). Not idempotent
        (each call with Content adds a version).
        → ``{"RequestId", "Version": int (the new version), "DefaultVersion": int, "VersionCreated": bool,
        "GmtModifyTime"}``."""
        return await self.call(
            DLC, "UpdateJobTemplate", "PUT", path("api", "v1", "jobtemplates", template_id), body=body, idempotent=False
        )

    async def get_job_template(self, template_id: str, version: str | int | None = None) -> dict[str, Any]:
        """GET /api/v1/jobtemplates/{TemplateId}?Version=<n>|all (omitted: the default version)

        → ``{"RequestId", "TemplateId", "TemplateName", "Description", "DefaultVersion": int,
        "TotalCount": int (1 for one version, the number of versions with ``all``), "Metadata",
        "WorkspaceId", "UserId", "TenantId", "ModifiedBy", "GmtCreateTime", "GmtModifyTime",
        "LastUsedTime", "Versions": [{"Version": int, "Content": str (the JSON string given; a sandbox
        may also return the object — both are read), "Constraints": {path: constraint}, "CreatedBy",
        "GmtCreateTime"}]}``. Unknown id → an error with HTTP 404 (a NotFound)."""
        return await self.call(
            DLC,
            "GetJobTemplate",
            "GET",
            path("api", "v1", "jobtemplates", template_id),
            query={"Version": None if version is None else str(version)},
        )

    async def list_job_templates(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/jobtemplates?WorkspaceId (required)&PageNumber&PageSize&TemplateName (fuzzy)&
        TemplateId (exact)&Description (fuzzy)&UserId&SortBy&Order

        → ``{"RequestId", "TotalCount": int, "PageNumber": int, "PageSize": int, "JobTemplates":
        [{"TemplateId", "TemplateName", "Description", "DefaultVersion": int, "Metadata", "WorkspaceId",
        "UserId", "TenantId", "ModifiedBy", "GmtCreateTime", "GmtModifyTime", "LastUsedTime"}]}`` —
        no Content/Constraints/versions here (GetJobTemplate has them)."""
        return await self.call(DLC, "ListJobTemplates", "GET", "/api/v1/jobtemplates", query=query)

    async def delete_job_template(self, template_id: str) -> dict[str, Any]:
        """DELETE /api/v1/jobtemplates/{TemplateId} (no query, no body) → ``{"RequestId", "TemplateId"}``.
        (Seed 001 shows ``?TemplateId=`` in the query of a gateway URL; the SDK puts it in the path.)"""
        return await self.call(DLC, "DeleteJobTemplate", "DELETE", path("api", "v1", "jobtemplates", template_id))

    async def set_job_template_default_version(self, template_id: str, version: int) -> dict[str, Any]:
        """PUT /api/v1/jobtemplates/{TemplateId}/defaultversion, JSON body ``{"Version": int}``
        → ``{"RequestId", "DefaultVersion": int, "GmtModifyTime"}``."""
        return await self.call(
            DLC,
            "SetJobTemplateDefaultVersion",
            "PUT",
            path("api", "v1", "jobtemplates", template_id, "defaultversion"),
            body={"Version": version},
        )

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

    # ------------------------------------------------------------- PaiStudio 2022-01-12 (ROA)
    # Host: pai.<region>.aliyuncs.com for mapped regions, **pai.cn-hangzhou.data.aliyun.com** for
    # cn-hangzhou, paistudio.<region>.aliyuncs.com elsewhere (CLOUDJOBS_PAI_ENDPOINT_PAISTUDIO overrides).
    # Training job ids look like ``train129f212o89d``; instance ids like ``train129f212o89d-master-0``.

    async def get_training_job(self, training_job_id: str) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}  (no query)

        → ``{"RequestId", "TrainingJobId", "TrainingJobName", "Status", "ReasonCode", "ReasonMessage",
        "WorkspaceId", "UserId", "Priority": int, "Duration": int (s), "GmtCreateTime", "GmtModifiedTime",
        "TrainingJobUrl", "AlgorithmSpec": {"Image", "JobType", "Command": [str], ...},
        "ComputeResource": {"EcsSpec", "EcsCount": int, "InstanceCount": int, "ResourceId" (quota id;
        absent/empty on public resources), "ResourceName", "InstanceSpec": {"CPU", "GPU", "GPUType",
        "Memory", "SharedMemory"} (strings), "UseSpotInstance", "SpotSpec"},
        "Instances": [{"Name" (the instance id), "Role", "Status"}],
        "StatusTransitions": [{"Status", "StartTime", "EndTime", "ReasonCode", "ReasonMessage"}],
        "Labels": [{"Key", "Value"}], "LatestMetrics": [{"Name", "Value": float, "Timestamp"}],
        "Scheduler": {"MaxRunningTimeInSeconds": str, "MaxRunningTimeInMinutes": str} (**quirk**: strings
        here, an int in ListTrainingJobs), "Settings": JobSettings, "Environments": {...}, ...}``.
        Status values (aliyun/pai-python-sdk ``TrainingJobStatus``): ``Creating``, ``Created``,
        ``Submitted``, ``Initializing``, ``Running``, ``Succeed`` (sic), ``Failed``, ``CreateFailed``,
        ``InitializeFailed``, ``Terminated``."""
        return await self.call(PAISTUDIO, "GetTrainingJob", "GET", path("api", "v1", "trainingjobs", training_job_id))

    async def list_training_jobs(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/trainingjobs?TrainingJobId&TrainingJobName&Status&WorkspaceId&StartTime&EndTime&
        Labels={json}&SortBy&Order&PageNumber&PageSize&AlgorithmName&AlgorithmProvider&IsTempAlgo

        → ``{"RequestId", "TotalCount": int, "TrainingJobs": [item]}``; items have GetTrainingJob's
        fields plus ``DlcJobId`` (the PAI-DLC job that runs the training job)."""
        return await self.call(PAISTUDIO, "ListTrainingJobs", "GET", "/api/v1/trainingjobs", query=query)

    async def stop_training_job(self, training_job_id: str) -> dict[str, Any]:
        """PUT /api/v1/trainingjobs/{TrainingJobId}/stop, no body → ``{"RequestId"}``."""
        return await self.call(
            PAISTUDIO, "StopTrainingJob", "PUT", path("api", "v1", "trainingjobs", training_job_id, "stop")
        )

    async def delete_training_job(self, training_job_id: str) -> dict[str, Any]:
        """DELETE /api/v1/trainingjobs/{TrainingJobId} → ``{"RequestId"}``."""
        return await self.call(
            PAISTUDIO, "DeleteTrainingJob", "DELETE", path("api", "v1", "trainingjobs", training_job_id)
        )

    async def list_training_job_events(self, training_job_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}/events?StartTime&EndTime&PageNumber&PageSize

        PageNumber default 1, PageSize default 100; StartTime default the job's start, EndTime now.
        → ``{"RequestId", "TotalCount": str, "Events": [str]}`` (**quirk**: TotalCount is a string).
        Each event is one string; the SDK gives no format. Like DLC's events they are read as a UTC time
        prefix and a message, ``"2024-01-01 00:00:05 Created pod: train...-worker-0"`` (ISO-8601 prefixes
        with ``T``, fractions and ``Z``/offsets parse too; an event without one keeps its order, undated)."""
        return await self.call(
            PAISTUDIO,
            "ListTrainingJobEvents",
            "GET",
            path("api", "v1", "trainingjobs", training_job_id, "events"),
            query=query,
        )

    async def list_training_job_instance_events(
        self, training_job_id: str, instance_id: str, query: Mapping[str, QueryValue]
    ) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}/instances/{InstanceId}/events?StartTime&EndTime&
        PageNumber&PageSize → ``{"RequestId", "TotalCount": str, "Events": [str]}`` (as above)."""
        return await self.call(
            PAISTUDIO,
            "ListTrainingJobInstanceEvents",
            "GET",
            path("api", "v1", "trainingjobs", training_job_id, "instances", instance_id, "events"),
            query=query,
        )

    async def list_training_job_instance_metrics(
        self, training_job_id: str, query: Mapping[str, QueryValue]
    ) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}/instancemetrics?MetricType&InstanceId&StartTime&
        EndTime&TimeStep

        ``MetricType`` required (same values as DLC GetJobMetrics); ``InstanceId`` optional (omitted: every
        instance); ``TimeStep`` one of ``1h``, ``30m``, ``5m``, ``10s``; StartTime default the job start.
        → ``{"RequestId", "InstanceMetrics": [{"InstanceId", "NodeName", "Metrics": [{"Time": str
        (ISO-8601 UTC), "Value": float}]}]}`` (**quirk**: Time is a string here, epoch ms in DLC)."""
        return await self.call(
            PAISTUDIO,
            "ListTrainingJobInstanceMetrics",
            "GET",
            path("api", "v1", "trainingjobs", training_job_id, "instancemetrics"),
            query=query,
        )

    async def list_training_job_metrics(self, training_job_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}/metrics?Name&StartTime&EndTime&Order=ASC|DESC&PageNumber&
        PageSize — the job's *training* metrics (loss, accuracy ... from its MetricDefinitions), not
        resource usage. → ``{"RequestId", "TotalCount": int, "Metrics": [{"Name", "Value": float,
        "Timestamp": str}]}``."""
        return await self.call(
            PAISTUDIO,
            "ListTrainingJobMetrics",
            "GET",
            path("api", "v1", "trainingjobs", training_job_id, "metrics"),
            query=query,
        )

    async def get_training_job_latest_metrics(
        self, training_job_id: str, query: Mapping[str, QueryValue]
    ) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}/latestmetrics?Names (comma list, optional)
        → ``{"RequestId", "Metrics": [{"Name", "Value": float, "Timestamp": str}]}``."""
        return await self.call(
            PAISTUDIO,
            "GetTrainingJobLatestMetrics",
            "GET",
            path("api", "v1", "trainingjobs", training_job_id, "latestmetrics"),
            query=query,
        )

    async def get_training_job_error_info(self, training_job_id: str) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}/errorinfo  (no query)
        → ``{"RequestId", "ErrorInfo": {"Code": str, "Message": str, "AdditionalInfo": str}}``."""
        return await self.call(
            PAISTUDIO,
            "GetTrainingJobErrorInfo",
            "GET",
            path("api", "v1", "trainingjobs", training_job_id, "errorinfo"),
        )

    async def list_training_job_logs(self, training_job_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}/logs?InstanceId&StartTime&EndTime&PageNumber&PageSize
        (``WorkerId`` is the deprecated name of InstanceId; not sent)

        → ``{"RequestId", "TotalCount": str, "Logs": [str]}`` — one string per line, oldest first;
        **quirk**: TotalCount is a string. Pages are 1-based; the server may cap PageSize, so paging
        follows TotalCount."""
        return await self.call(
            PAISTUDIO,
            "ListTrainingJobLogs",
            "GET",
            path("api", "v1", "trainingjobs", training_job_id, "logs"),
            query=query,
        )

    async def list_quota_workloads(self, quota_id: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/quotas/{QuotaId}/workloads?WorkloadIds&WithHistoricalData&PageNumber&PageSize
        (also WorkspaceIds, WorkloadType (e.g. ``dlc``), BeforeWorkloadId, Status (e.g. ``Enqueued``),
        ShowOwn, SubQuotaIds, UserIds, NodeName, WorkloadStatuses, SortBy, Order, Position, Priority,
        WorkloadNames, UseOversoldResource, the ``*TimeRange`` filters)

        ``WorkloadIds`` is a comma list of job ids (``dlc...`` or ``train...``); we send one id with
        ``WithHistoricalData=true`` so a workload that already left the queue is still listed.
        → ``{"RequestId", "TotalCount": int, "Workloads": [QueueInfo]}``. QueueInfo (all optional):

        * ``WorkloadId``, ``WorkloadName``, ``WorkloadType`` (``dlc``/``dsw``/``eas``), ``WorkloadStatus``
          (the product's own status, e.g. ``PreAllocation``), ``WorkspaceId``, ``WorkspaceName``,
          ``UserId``, ``UserName``;
        * ``Status``: the queue status — the docs' example is ``Enqueued``; ``Dequeued`` is inferred
          (a dequeued entry also has ``GmtDequeuedTime``);
        * ``Position``: int, ``Priority``: int, ``QuotaId``, ``Name`` (the QueueUnit), ``QueueStrategy``
          (e.g. ``PaiStrategyIntelligent``);
        * ``GmtCreatedTime``, ``GmtEnqueuedTime``, ``GmtDequeuedTime``, ``GmtPositionModifiedTime``;
        * ``Code``, ``CodeType``, ``Reason``: why it waits, e.g. ``roleMaximumResource`` / ``ConfigRule``
          / ``Current GPU Limit is 5, limited by Role PAI.AlgoDeveloper``;
        * ``Resource``: ``{"CPU", "GPU", "GPUType", "Memory", "GPUMemory"}`` (strings),
          ``UseOversoldResource``: bool.

        (The SDK also defines a ``WorkloadInfo`` model — seed 000's field set — that no 2.6.2 API returns.)"""
        return await self.call(
            PAISTUDIO,
            "ListQuotaWorkloads",
            "GET",
            path("api", "v1", "quotas", quota_id, "workloads"),
            query=query,
        )

    async def update_training_job_labels(self, training_job_id: str, labels: Mapping[str, str]) -> dict[str, Any]:
        """POST /api/v1/trainingjobs/{TrainingJobId}/labels, JSON body
        ``{"Labels": [{"Key": str, "Value": str}]}`` (adds, or replaces the value of, each key)
        → ``{"RequestId"}``. Seed 001's curl shows the same path and body."""
        body = {"Labels": [{"Key": k, "Value": v} for k, v in labels.items()]}
        return await self.call(
            PAISTUDIO,
            "UpdateTrainingJobLabels",
            "POST",
            path("api", "v1", "trainingjobs", training_job_id, "labels"),
            body=body,
        )

    async def delete_training_job_labels(self, training_job_id: str, keys: list[str]) -> dict[str, Any]:
        """DELETE /api/v1/trainingjobs/{TrainingJobId}/labels?Keys=k1,k2 (required; a comma list, a plain
        string in the SDK — not JSON) → ``{"RequestId"}``."""
        return await self.call(
            PAISTUDIO,
            "DeleteTrainingJobLabels",
            "DELETE",
            path("api", "v1", "trainingjobs", training_job_id, "labels"),
            query={"Keys": ",".join(keys)},
        )

    async def get_spot_price_history(self, instance_type: str, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """GET /api/v1/spots/{InstanceType}/pricehistory?StartTime&EndTime&SpotDuration&Order&SortBy&
        PageNumber&PageSize

        ``StartTime``/``EndTime`` UTC ``yyyy-MM-ddTHH:mm:ssZ`` (defaults: EndTime now, StartTime three days
        before it; StartTime may be at most 7 days before EndTime). ``SpotDuration`` (ECS types only): 0
        (default, no guaranteed hour) or 1. Order (``asc`` default | ``desc``), SortBy (``GmtCreatedTime``),
        PageNumber (default 1) and PageSize (default 10) apply to Lingjun instance types only.
        → ``{"RequestId", "TotalCount": int, "SpotPriceHistory": [{"InstanceType": str,
        "ZoneId": str, "SpotDiscount": float, "Timestamp": str (ISO-8601 UTC)}]}``.
        **quirk**: a *discount*, not a price — the fraction of the on-demand price (``0.12`` = 12 % of
        it, ECS's "1.2折"); the provider multiplies it by ECS DescribePrice's pay-as-you-go price."""
        return await self.call(
            PAISTUDIO,
            "GetSpotPriceHistory",
            "GET",
            path("api", "v1", "spots", instance_type, "pricehistory"),
            query=query,
        )

    async def list_training_job_output_models(self, training_job_id: str) -> dict[str, Any]:
        """GET /api/v1/trainingjobs/{TrainingJobId}/outputmodels  (no query)
        → ``{"RequestId", "OutputModels": [{"OutputChannelName": str (e.g. ``model``), "Uri": str
        (e.g. ``oss://bucket.oss-cn-hangzhou.aliyuncs.com/path/model/``), "SourceType" (e.g.
        ``TrainingService``), "SourceId" (``region=...,workspaceId=...,kind=TrainingJob,id=train...``),
        "Labels": [{"Key", "Value"}], "Metrics": {...}, "TrainingSpec": {...}, "InferenceSpec": {...},
        "EvaluationSpec": {...}, "CompressionSpec": {...}}]}`` — no sizes, no times, no paging."""
        return await self.call(
            PAISTUDIO,
            "ListTrainingJobOutputModels",
            "GET",
            path("api", "v1", "trainingjobs", training_job_id, "outputmodels"),
        )

    # ----------------------------------------------------------------- ECS 2014-05-26 (RPC, V3)

    async def describe_price(self, query: Mapping[str, QueryValue]) -> dict[str, Any]:
        """POST / with every parameter in the query (RegionId, InstanceType, PriceUnit, SystemDisk.*),
        empty body — the SDK's formData RPC style under V3 signing."""
        return await self.call(ECS, "DescribePrice", "POST", "/", query=query)
