"""The ``workload`` provider: training jobs as workloads on a Primus-SaFE Kubernetes AI platform.

Specs are workspaces × node flavors × what one node can allocate (``/nodeflavors/{id}/avail``); a
request beyond that (or with more replicas than the workspace has nodes) is refused here, before the
platform's 503 ``Primus.00008`` would. Images come from ``/images?flat=true``; an explicit image reference
passes through (the platform does not check it against that list). The platform has no pricing: prices
come from the server's price table (``CLOUDJOBS_PRICE_TABLE``), else they are unknown.

A job is a ``PyTorchJob`` workload: the command base64-encoded as ``entryPoint``, envs (hyperparameters
as ``HP_<NAME>``), per-pod resources of the spec, ``replica`` = workers, ``timeout`` = the quote's max
runtime, ``ttlSecondsAfterFinished`` = ``CLOUDJOBS_WORKLOAD_TTL_SECONDS`` (the platform's default, 60 s,
would delete the pods' logs a minute after the end). Builds after 2026-01-09 take ``resources[]``/``images[]``/
``entryPoints[]`` instead and refuse the seed-era body with 400 "the resources are empty" (their admission
webhook: nothing was created), so that answer is met by sending the new shape once, and the provider keeps
using it. The seed-era API has no idempotency key, so the
server's tags (who created it, which quote paid for it) ride in the ``description`` and a create whose
answer was lost looks its quote up there before it sends again. GET and list read a database mirror
that the platform fills asynchronously: a workload may be missing (404) or phase ``""`` for a moment after
its create, which ``get_job`` tolerates for workloads this provider just created.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import InvalidRequest, NotFound, ProviderError
from cloudjobs_mcp.server.http import RemoteNotFound, RetryPolicy, submit_once
from cloudjobs_mcp.server.hyperparameters import env_name
from cloudjobs_mcp.server.models import (
    Accelerator,
    Event,
    Image,
    Job,
    JobRequest,
    JobStatus,
    LogPage,
    MetricKind,
    OutputModels,
    PodMetricSeries,
    Price,
    SanityCheckResult,
    Spec,
    SpotPricePoint,
    WorkloadInfo,
)
from cloudjobs_mcp.server.pricing import PriceTable
from cloudjobs_mcp.server.providers.base import TAG_QUOTE_ID, TemplateBackend
from cloudjobs_mcp.server.providers.common import (
    PooledClient,
    check_max_lines,
    job_for_quote,
    look_again,
    untracked_outputs,
)
from cloudjobs_mcp.server.providers.workload import mapping
from cloudjobs_mcp.server.providers.workload.api import WorkloadApi
from cloudjobs_mcp.server.providers.workload.logbook import LogBook, split_lines

logger = logging.getLogger("cloudjobs.workload")

NAME = "workload"
DISPLAY_NAME = re.compile(r"^[a-z][-a-z0-9]{0,43}[a-z0-9]$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
PRIORITIES = (0, 2)
WHOLE_LOG_LINES = 50_000  # tailLines asked for "the whole log"
PAGE = 100
# A workload this provider created is tolerated as missing (404) this long: the platform's DB mirror lags.
CREATE_LAG_SECONDS = 30.0
# After a create whose answer was lost: look for it by its quote token at these delays (the mirror lags).
RECONCILE_DELAYS = (0.0, 2.0, 4.0, 8.0)
NO_LOGS_AFTER_TTL = (
    "The logs of workload {job} are gone: the platform deletes a workload's pods {ttl} after it ends "
    "(ttlSecondsAfterFinished), and log search is not enabled on this platform. New jobs keep them "
    "longer (CLOUDJOBS_WORKLOAD_TTL_SECONDS)."
)


@dataclass
class BatchOutcome:
    """What a batch stop or delete did to one workload."""

    job_id: str
    outcome: str  # stopped | deleted | already_finished | not_found | failed
    status: str | None = None
    detail: str = ""


class WorkloadProvider(PooledClient):
    """Async provider for a Primus-SaFE platform; one pooled client, one login."""

    name = NAME
    currency = "USD"

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        reconcile_delays: tuple[float, ...] = RECONCILE_DELAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.api = WorkloadApi(settings, self._open_client(settings, client), policy=policy, sleep=sleep)
        self.region = urlsplit(self.api.base).netloc or "workload"
        self.workspace = (settings.workload_workspace or "").strip() or None
        self.ttl_seconds = settings.workload_ttl_seconds
        self._clock = clock
        self._reconcile_delays = reconcile_delays
        self._shapes: dict[str, mapping.SpecShape] = {}
        self._specs: dict[str, Spec] = {}
        self._created: dict[str, tuple[float, Job]] = {}  # just created: tolerated while the mirror lags
        self.logbook = LogBook(clock)
        self._log_search: bool | None = None  # None: not tried yet
        self._plural_body = False  # the platform wants resources[]/images[]/entryPoints[] (learnt from its 400)

    def known_secrets(self) -> tuple[str, ...]:
        return self.api.auth.secrets()

    # ------------------------------------------------------------------------------ specs

    async def list_specs(self, accelerator: Accelerator | None = None) -> list[Spec]:
        workspaces, flavors = await gather(self.api.workspaces(), self.api.node_flavors())
        items = [w for w in _items(workspaces) if not self.workspace or w.get("workspaceId") == self.workspace]
        if self.workspace and not items:
            raise NotFound(
                f"Workspace {self.workspace!r} (CLOUDJOBS_WORKLOAD_WORKSPACE) is not among the workspaces this "
                f"user can see: {', '.join(str(w.get('workspaceId')) for w in _items(workspaces)) or 'none'}."
            )
        by_flavor = {str(f.get("flavorId")): f for f in _items(flavors)}
        used = sorted({str(w.get("flavorId")) for w in items if str(w.get("flavorId")) in by_flavor})
        avails = dict(zip(used, await gather(*(self.api.flavor_avail(f) for f in used)), strict=True))
        specs: list[Spec] = []
        shapes: dict[str, mapping.SpecShape] = {}
        for ws in items:
            if "Train" not in (ws.get("scopes") or ["Train"]):
                continue  # a workspace for inference or authoring only refuses PyTorchJobs (403)
            flavor_id = str(ws.get("flavorId"))
            if flavor_id not in by_flavor or not isinstance(avails.get(flavor_id), dict):
                continue
            running = ws.get("phase") in (None, "", "Running")
            for shape in mapping.shapes_of(ws, by_flavor[flavor_id], avails[flavor_id]):
                spec = mapping.spec_from(shape, by_flavor[flavor_id], available=running and shape.nodes > 0)
                if accelerator is None or spec.accelerator == accelerator:
                    specs.append(spec)
                shapes[shape.name] = shape
        self._shapes.update(shapes)
        self._specs.update((s.instance_type, s) for s in specs)
        return specs

    async def price(self, instance_type: str) -> Price:
        """From the server's price table: the platform itself has no price, cost or billing API."""
        if instance_type not in self._specs:
            await self.list_specs()
        spec = self._specs.get(instance_type)
        if spec is None:
            raise NotFound(f"Unknown spec {instance_type!r}: call list_ecs_specs for this platform's specs.")
        found = PriceTable.from_settings(self.settings).lookup(self.name, spec)
        if found is None:
            return Price(
                instance_type=instance_type,
                per_worker_hourly=None,
                currency=self.currency,
                source="none: the workload platform has no pricing, and CLOUDJOBS_PRICE_TABLE has no price for "
                f'{instance_type} (add it under "workload", by name or per resource under "*")',
            )
        return found.model_copy(update={"source": f"{found.source}; the workload platform has no pricing of its own"})

    async def resolve_image(self, job_type: str, chip_type: Accelerator) -> Image:
        """The newest ready image from ``/images?flat=true`` that suits the job (PyTorch, ROCm for GPUs)."""
        data = await self.api.images()
        images = [i for i in data if isinstance(i, dict) and i.get("tag")] if isinstance(data, list) else []
        if not images:
            raise NotFound(
                "The workload platform lists no ready images (/images?flat=true): pass image=<registry/repo:tag> "
                "to create_training_job; the platform takes any reference its workspace can pull."
            )

        def score(item: Mapping[str, Any]) -> tuple[int, int, float]:
            tag = str(item["tag"]).lower()
            framework = int("pytorch" in tag or "torch" in tag)
            chip = int(("rocm" in tag) == (chip_type == "GPU")) if "rocm" in tag or "cpu" in tag else 0
            return framework, chip, float(item.get("created_at") or 0)

        best = max(images, key=score)
        return Image(
            uri=str(best["tag"]),
            job_type=job_type,
            chip_type=chip_type,
            name=str(best.get("description") or ""),
            note="The newest ready image of the platform's registry for this job; pass image=<reference> to use "
            "any other (it is not checked against this list).",
        )

    # ---------------------------------------------------------------------------- validate

    def validate_request(self, request: JobRequest, spec: Spec) -> None:
        if request.job_type != "PyTorchJob":
            raise InvalidRequest(
                f"job_type {request.job_type!r} is not a kind this workload platform trains with; use PyTorchJob "
                "(its other kinds, Deployment/StatefulSet/Authoring, are services and dev machines)."
            )
        if request.display_name != "quote" and not DISPLAY_NAME.match(request.display_name):
            suggestion = re.sub(r"[^a-z0-9-]+", "-", request.display_name.lower()).strip("-")[:45] or "my-job"
            raise InvalidRequest(
                f"display_name {request.display_name!r} is not allowed by the workload platform: 2-45 characters, "
                f"lower-case letters, digits and '-', starting with a letter (e.g. {suggestion!r})."
            )
        shape = self._shapes.get(spec.instance_type)
        if shape is None:
            raise InvalidRequest(
                f"ecs_spec {spec.instance_type!r} is not a spec of this workload platform: see list_ecs_specs."
            )
        if not spec.available:
            raise InvalidRequest(
                f"Workspace {shape.workspace} has no healthy node now, so {spec.instance_type} cannot run; "
                "pick another spec from list_ecs_specs."
            )
        if request.worker_count > shape.nodes:
            raise InvalidRequest(
                f"worker_count {request.worker_count} is more than workspace {shape.workspace} has nodes "
                f"({shape.nodes}); one node runs one worker of {spec.instance_type}, and the platform refuses "
                f"more (503 Insufficient resource). Use at most {shape.nodes} workers."
            )
        low, high = PRIORITIES
        if request.priority is not None and not low <= request.priority <= high:
            raise InvalidRequest(f"priority must be {low} (normal), 1 (high) or {high} (highest) on this platform.")
        if request.image is not None and not IMAGE_REF.match(request.image.strip()):
            raise InvalidRequest(f"image {request.image!r} is not an image reference such as registry/repo:tag.")
        if request.spot or request.spot_price_limit is not None:
            raise InvalidRequest("The workload platform has no spot capacity: quote without spot.")
        if request.resource_id:
            raise InvalidRequest("resource_id is a PAI quota; on the workload platform the spec names the workspace.")
        if request.sanity_check:
            raise InvalidRequest("The workload platform runs no pre-flight sanity checks: create without sanity_check.")
        self._envs(request)

    @staticmethod
    def _envs(request: JobRequest) -> dict[str, str]:
        envs = dict(request.envs)
        bad = [k for k in envs if not ENV_NAME.match(k)]
        if bad:
            raise InvalidRequest(f"Invalid environment variable names: {', '.join(bad)}.")
        for name, value in request.hyperparameters.items():
            var = env_name(name)
            if var in envs:
                raise InvalidRequest(
                    f"hyperparameter {name!r} becomes the variable {var}, which envs (or another hyperparameter) "
                    "sets too; rename one."
                )
            envs[var] = value
        return envs

    # ------------------------------------------------------------------------------ create

    async def _shape(self, spec_name: str) -> mapping.SpecShape:
        if spec_name not in self._shapes:
            await self.list_specs()
        shape = self._shapes.get(spec_name)
        if shape is None:
            raise InvalidRequest(f"ecs_spec {spec_name!r} is not a spec of this workload platform: see list_ecs_specs.")
        return shape

    async def create_body(self, request: JobRequest) -> dict[str, Any]:
        shape = await self._shape(request.ecs_spec)
        image = (request.image or "").strip() or (
            await self.resolve_image(request.job_type, "GPU" if shape.gpu else "CPU")
        ).uri
        resource: dict[str, Any] = {
            "cpu": str(shape.cpu),
            "memory": f"{shape.memory_gib}Gi",
            "replica": request.worker_count,
        }
        if shape.gpu:
            resource["gpu"] = str(shape.gpu)
        body: dict[str, Any] = {
            "displayName": request.display_name,
            "description": mapping.encode_tags("Created by cloudjobs-mcp.", request.tags),
            "workspaceId": shape.workspace,
            "groupVersionKind": {"kind": "PyTorchJob", "version": "v1"},
            "image": image,
            "entryPoint": mapping.encode_entry_point(request.user_command),
            "resource": resource,
            "priority": request.priority or 0,
            # The platform counts whole seconds; rounding up never stops a job before its quoted limit.
            "timeout": math.ceil(request.max_runtime_minutes * 60),
            "maxRetry": 0,
            "ttlSecondsAfterFinished": self.ttl_seconds,
            "env": self._envs(request),
        }
        return body

    async def create_job(self, request: JobRequest) -> Job:
        existing = await job_for_quote(request, self._find, logger, what="workload")
        if existing is not None:
            return existing
        quote = request.tags.get(TAG_QUOTE_ID)
        body = await self.create_body(request)
        job_id = await self._submit(body, quote)
        placeholder = Job(
            job_id=job_id,
            name=request.display_name,
            provider=self.name,
            status=JobStatus.CREATING,
            raw_status="",
            job_type=request.job_type,
            ecs_spec=request.ecs_spec,
            worker_count=request.worker_count,
            image=body["image"],
            user_command=request.user_command,
            max_runtime_minutes=request.max_runtime_minutes,
            tags=dict(request.tags),
            priority=request.priority,
            created_at=datetime.now(UTC),
        )
        now = self._clock()
        self._created = {k: v for k, v in self._created.items() if now - v[0] < CREATE_LAG_SECONDS}
        self._created[job_id] = (now, placeholder)
        return await self.get_job(job_id)

    async def _submit(self, body: Mapping[str, Any], quote: str | None) -> str:
        """POST /workloads exactly once: after an unknown outcome, look for the quote before sending again."""

        async def submit() -> str:
            data = await self._create(body)
            job_id = str(data.get("workloadId") or "") if isinstance(data, dict) else ""
            if not job_id:
                raise ProviderError("Workload platform: create answered without a workloadId.", code="InvalidResponse")
            return job_id

        async def find() -> str | None:
            found = await self._reconcile(quote) if quote else None
            return found.job_id if found is not None else None

        return await submit_once(
            submit, find if quote else None, attempts=self.api.policy.max_attempts, what="workload"
        )

    async def _create(self, body: Mapping[str, Any]) -> Any:
        """One POST of ``body`` in the shape this platform takes; a seed-era body refused as a newer build
        refuses it (400, so nothing was created) is sent once more, in the new shape."""
        if self._plural_body:
            return await self.api.create_workload(mapping.plural_body(body))
        try:
            return await self.api.create_workload(body)
        except ProviderError as exc:
            if exc.status != 400 or mapping.RESOURCES_EMPTY not in exc.message:
                raise
        logger.info("the workload platform takes resources[]/images[]/entryPoints[] (a build after 2026-01-09)")
        self._plural_body = True
        return await self.api.create_workload(mapping.plural_body(body))

    async def _reconcile(self, quote: str) -> Job | None:
        return await look_again(functools.partial(self._find, TAG_QUOTE_ID, quote), self._reconcile_delays, anyio.sleep)

    async def _find(self, key: str, value: str) -> Job | None:
        """The oldest workload whose description carries the tag (a clone copies the description: the
        original is the oldest)."""
        token = mapping.tag_token(key, value)
        matches: list[Job] = []
        async for item in self._items({"description": token}):
            if mapping.decode_tags(item.get("description")).get(key) == value:
                matches.append(mapping.job_from(item, self.name))
        if not matches:
            return None
        first = min(matches, key=lambda j: (j.created_at or datetime.max.replace(tzinfo=UTC), j.job_id))
        return await self.get_job(first.job_id)

    async def find_job_by_tag(self, key: str, value: str) -> Job | None:
        return await self._find(key, value)

    # -------------------------------------------------------------------------------- read

    async def _raw(self, job_id: str) -> dict[str, Any]:
        data = await self.api.get_workload(check_id(job_id))
        if not isinstance(data, dict):
            raise ProviderError(f"Workload platform: get workload {job_id} answered {data!r}.", code="InvalidResponse")
        return data

    async def get_job(self, job_id: str) -> Job:
        try:
            data = await self._raw(job_id)
        except RemoteNotFound:
            recent = self._created.get(job_id)
            if recent is not None and self._clock() - recent[0] < CREATE_LAG_SECONDS:
                return recent[1]  # just created: the platform's mirror has not caught up yet
            raise
        if not data.get("phase") and job_id in self._created:
            return self._created[job_id][1]  # the row exists, its phase not yet: still "just created"
        self._created.pop(job_id, None)
        return mapping.job_from(data, self.name)

    async def _items(self, query: Mapping[str, Any], limit: int | None = None) -> Any:
        """Listing items page by page (offset/limit), newest first."""
        base = {"workspaceId": self.workspace, "order": "desc", **query}
        offset, seen = 0, 0
        while True:
            size = PAGE if limit is None else max(1, min(PAGE, limit - seen))
            data = await self.api.list_workloads({**base, "offset": offset, "limit": size})
            items = _items(data)
            for item in items:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            total = int(data.get("totalCount") or 0) if isinstance(data, dict) else 0
            offset += len(items)
            if not items or offset >= total:
                return

    async def list_jobs(
        self,
        status: JobStatus | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | None = None,
        limit: int = 100,
        *,
        include_training_jobs: bool = False,
    ) -> list[Job]:
        if limit <= 0:
            return []
        query: dict[str, Any] = {}
        if status is not None:
            phases = mapping.PHASE_FILTER[status]
            if phases is None:
                return []  # the platform has no such phase (Creating, Stopping)
            query["phase"] = phases
        if created_after is not None:
            query["since"] = mapping.format_time(created_after)
        if tags:
            key, value = next(iter(tags.items()))
            query["description"] = mapping.tag_token(key, value)
        jobs: list[Job] = []
        async for item in self._items(query, None if tags else limit):
            job = mapping.job_from(item, self.name)
            if tags and any(job.tags.get(k) != v for k, v in tags.items()):
                continue
            jobs.append(job)
            if len(jobs) >= limit:
                break
        return jobs

    # ---------------------------------------------------------------------------- actions

    async def stop_job(self, job_id: str) -> Job:
        job = await self.get_job(job_id)
        # Seed-era builds overwrite a finished workload's phase with Stopped while its CR lives: only stop
        # what still runs.
        if not job.status.is_terminal:
            await self.api.stop_workload(job.job_id)
        return await self.get_job(job.job_id)

    async def delete_job(self, job_id: str) -> None:
        await self.get_job(job_id)  # the platform answers 200 for unknown ids too: say NotFound instead
        await self.api.delete_workload(check_id(job_id))
        self.logbook.forget(job_id)

    async def _batch(self, action: str, job_ids: list[str]) -> list[BatchOutcome]:
        ids = list(dict.fromkeys(check_id(j) for j in job_ids))
        if not ids:
            raise InvalidRequest("No job ids given.")
        before = await self._states(ids)
        targets = [
            i
            for i, was in before.items()
            if isinstance(was, Job) and (action == "delete" or not was.status.is_terminal)
        ]
        error = ""
        if targets:
            try:
                await self.api.batch(action, targets)
            except ProviderError as exc:  # 500 when every one failed; each is reported below
                error = exc.message
        after = await self._states(targets)
        out: list[BatchOutcome] = []
        for i in ids:
            was = before[i]
            if not isinstance(was, Job):
                out.append(BatchOutcome(i, "not_found", None, str(was)))
                continue
            if i not in targets:
                out.append(BatchOutcome(i, "already_finished", was.status.value, "not stopped: it had already ended"))
                continue
            now: Job | NotFound = after[i]
            if action == "delete":
                if isinstance(now, NotFound):
                    out.append(BatchOutcome(i, "deleted"))
                else:
                    out.append(BatchOutcome(i, "failed", was.status.value, error or "still there after the delete"))
            elif isinstance(now, Job) and (now.status.is_terminal or now.status == JobStatus.STOPPING):
                out.append(BatchOutcome(i, "stopped", now.status.value))
            else:
                state = now.status.value if isinstance(now, Job) else None
                out.append(BatchOutcome(i, "failed", state, error or "still running after the stop"))
        for i in targets:
            if action == "delete":
                self.logbook.forget(i)
        return out

    async def _states(self, ids: list[str]) -> dict[str, Job | NotFound]:
        async def one(i: str) -> Job | NotFound:
            try:
                return await self.get_job(i)
            except NotFound as exc:
                return exc

        return dict(zip(ids, await gather(*(one(i) for i in ids)), strict=True))

    async def stop_jobs(self, job_ids: list[str]) -> list[BatchOutcome]:
        """Batch stop (``POST /workloads/stop``), reporting each workload: the platform's answer does not."""
        return await self._batch("stop", job_ids)

    async def delete_jobs(self, job_ids: list[str]) -> list[BatchOutcome]:
        """Batch delete (``POST /workloads/delete``), reporting each workload."""
        return await self._batch("delete", job_ids)

    async def clone_job(self, job_id: str) -> Job:
        """``POST /workloads/clone``: a new workload with the same body. The platform answers ``null`` (no
        id), so the clone is found as the newest workload with the same description created after the call.
        Billable without a quote: the MCP server does not offer it as a tool."""
        original = await self._raw(job_id)
        started = datetime.now(UTC).replace(microsecond=0)
        await self.api.batch("clone", [job_id])
        description = str(original.get("description") or "")
        for delay in (0.0, *self._reconcile_delays):
            if delay:
                await anyio.sleep(delay)
            async for item in self._items({"description": description} if description else {}, 20):
                created = mapping.parse_time(item.get("creationTime"))
                if (
                    item.get("workloadId") != job_id
                    and item.get("displayName") == original.get("displayName")
                    and created is not None
                    and created >= started
                ):
                    return await self.get_job(str(item["workloadId"]))
        raise ProviderError(
            f"Workload platform: clone of {job_id} was accepted, but the new workload did not show up; "
            "look for it with list_jobs.",
            code="CloneNotFound",
        )

    async def pod_containers(self, job_id: str, pod_id: str) -> list[str]:
        data = await self.api.pod_containers(check_id(job_id), pod_id)
        containers = data.get("containers") if isinstance(data, dict) else None
        return [str(c.get("name")) for c in containers or [] if isinstance(c, dict) and c.get("name")]

    async def service(self, job_id: str) -> dict[str, Any]:
        """The workload's Kubernetes service: seed-era a ServiceSpec (``ports``, ``clusterIP``, ``type``), HEAD
        ``{port, clusterIp, internalDomain, externalDomain, type}``; returned as the platform gave it."""
        data = await self.api.service(check_id(job_id))
        return data if isinstance(data, dict) else {}

    # -------------------------------------------------------------------------------- logs

    async def pod_logs(
        self,
        job_id: str,
        pod_id: str,
        *,
        max_lines: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> LogPage:
        check_max_lines(max_lines)
        check_id(job_id)
        asked = max_lines or WHOLE_LOG_LINES
        query: dict[str, Any] = {"tailLines": asked}
        if since is not None:
            seconds = math.ceil(self._clock() - since.timestamp())
            if seconds <= 0:
                return LogPage(pod_id=pod_id, lines=[])
            query["sinceSeconds"] = seconds
        try:
            data = await self.api.pod_logs(job_id, pod_id, query)
        except RemoteNotFound as exc:
            return await self._expired_logs(job_id, pod_id, exc, max_lines=max_lines, since=since, until=until)
        raw = [str(x) for x in (data.get("logs") or [])] if isinstance(data, dict) else []
        if since is not None:  # a time window: what the platform returned, not the whole log
            lines, partial = split_lines(raw)
            shown = lines + ([partial] if partial else [])
            return LogPage(pod_id=pod_id, lines=shown[-asked:], truncated=len(shown) >= asked)
        book = self.logbook.merge(job_id, pod_id, raw, whole=len(raw) < asked)
        lines = [line for line, t in zip(book.lines, book.seen, strict=True) if until is None or t < until.timestamp()]
        if book.partial and until is None:
            lines.append(book.partial)
        if max_lines is not None:
            return LogPage(pod_id=pod_id, lines=lines[-max_lines:], truncated=len(lines) > max_lines)
        return LogPage(pod_id=pod_id, lines=lines, truncated=len(raw) >= asked and len(book.lines) <= asked)

    async def _expired_logs(
        self,
        job_id: str,
        pod_id: str,
        error: RemoteNotFound,
        *,
        max_lines: int | None,
        since: datetime | None,
        until: datetime | None,
    ) -> LogPage:
        """The pod's log once the platform deleted it: log search when enabled, else what was read before."""
        job = await self.get_job(job_id)  # NotFound for an unknown workload
        if pod_id not in {p.pod_id for p in job.pods}:
            raise NotFound(
                f"Workload {job_id} has no pod {pod_id!r}; its pods: {', '.join(p.pod_id for p in job.pods) or 'none'}."
            )
        if self._log_search is not False:
            lines = await self._search(job_id, pod_id, since, until)
            if lines is not None:
                self._log_search = True
                bound = max_lines or WHOLE_LOG_LINES
                return LogPage(pod_id=pod_id, lines=lines[-bound:], truncated=len(lines) > bound)
        book = self.logbook.get(job_id, pod_id)
        if book is not None and book.lines:
            shown = [
                line for line, t in zip(book.lines, book.seen, strict=True) if until is None or t < until.timestamp()
            ]
            if max_lines is not None:
                shown = shown[-max_lines:]
            note = "[cloudjobs-mcp: the platform deleted this pod's log; these are the lines read before that]"
            return LogPage(pod_id=pod_id, lines=[note, *shown], truncated=True)
        if not job.status.is_terminal:
            raise error
        ttl = f"{self.ttl_seconds} s"
        raise NotFound(
            NO_LOGS_AFTER_TTL.format(job=job_id, ttl=f"ttlSecondsAfterFinished ({ttl} for jobs created here)")
        )

    async def _search(
        self, job_id: str, pod_id: str, since: datetime | None, until: datetime | None
    ) -> list[str] | None:
        """Log search (OpenSearch): all of the pod's lines, oldest first; None when the platform has none."""
        lines: list[str] = []
        offset, size = 0, 1000
        while offset < 10_000:  # the platform caps offset + limit at 10 000
            body: dict[str, Any] = {
                "podNames": pod_id,
                "order": "asc",
                "offset": offset,
                "limit": min(size, 10_000 - offset),
            }
            if since is not None:
                body["since"] = since.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            if until is not None:
                body["until"] = until.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            try:
                data = await self.api.search_logs(job_id, body)
            except ProviderError as exc:
                if exc.status == 500 and "not enabled" in exc.message:
                    self._log_search = False
                    return None
                raise
            hits = ((data or {}).get("hits") or {}).get("hits") or [] if isinstance(data, dict) else []
            for hit in hits:
                message = str(((hit or {}).get("_source") or {}).get("message") or "")
                lines.append(message.rstrip("\n"))
            offset += len(hits)
            total = (((data or {}).get("hits") or {}).get("total") or {}).get("value") if isinstance(data, dict) else 0
            if not hits or offset >= int(total or 0):
                break
        return lines

    # -------------------------------------------------------------------------- observing

    async def events(self, job_id: str, pod_id: str | None = None) -> list[Event]:
        """The workload's conditions (scheduled, dispatched, running, stopped, …) and its pods' container
        terminations; oldest first."""
        data = await self._raw(job_id)
        out: list[Event] = []
        if pod_id is None:
            for c in data.get("conditions") or []:
                if isinstance(c, dict):
                    text = " ".join(x for x in (str(c.get("type") or ""), str(c.get("message") or "")) if x)
                    out.append(Event(time=mapping.parse_time(c.get("lastTransitionTime")), source=job_id, message=text))
        for p in data.get("pods") or []:
            if not isinstance(p, dict) or (pod_id is not None and p.get("podId") != pod_id):
                continue
            pid = str(p.get("podId") or "")
            where = p.get("k8sNodeName") or p.get("adminNodeName")
            if where:
                out.append(
                    Event(time=mapping.parse_time(p.get("startTime")), source=pid, message=f"scheduled on {where}")
                )
            for c in p.get("containers") or []:
                if isinstance(c, dict) and (c.get("reason") or c.get("exitCode") is not None):
                    text = (
                        f"container {c.get('name')}: {c.get('reason') or 'terminated'} (exit code {c.get('exitCode')})"
                    )
                    if c.get("message"):
                        text += f": {c['message']}"
                    out.append(Event(time=mapping.parse_time(p.get("endTime")), source=pid, message=text))
        if pod_id is not None and not any(
            isinstance(p, dict) and p.get("podId") == pod_id for p in data.get("pods") or []
        ):
            raise NotFound(f"Workload {job_id} has no pod {pod_id!r}.")
        return sorted(out, key=lambda e: e.time or datetime.min.replace(tzinfo=UTC))

    async def metrics(
        self, job_id: str, metric: MetricKind, *, since: datetime | None = None, step_seconds: int | None = None
    ) -> list[PodMetricSeries]:
        """None: the Workload API serves no resource metrics (the platform's monitoring is elsewhere); the
        metrics tool still reads training metrics from the logs."""
        await self._raw(job_id)  # NotFound for an unknown workload
        return []

    async def sanity_checks(self, job_id: str) -> list[SanityCheckResult]:
        await self._raw(job_id)
        return []

    async def workload_info(self, job_id: str) -> WorkloadInfo:
        data = await self._raw(job_id)
        job = mapping.job_from(data, self.name)
        position = mapping.queue_position(data)
        pending = data.get("phase") == "Pending"
        return WorkloadInfo(
            job_id=job.job_id,
            name=job.name,
            workload_type=job.job_type,
            workspace_id=str(data.get("workspaceId") or "") or None,
            workspace_name=str(data.get("workspaceId") or "") or None,
            status={"Pending": "Pending", "Running": "Running", "Succeeded": "Succeeded"}.get(
                str(data.get("phase")),
                "Failed" if job.status == JobStatus.FAILED else str(data.get("phase") or "Pending"),
            ),
            created_at=job.created_at,
            user_id=str(data.get("userId") or "") or None,
            user_name=str(data.get("userName") or "") or None,
            priority=job.priority,
            is_scheduled=not pending,
            in_quota=True,
            queue_position=position,
            quota_id=str(data.get("workspaceId") or "") or None,
            source="Workload API GET /workloads/{id} (schedulerOrder / queuePosition, message)",
            unavailable=["tenant_id", "enqueued_at", "queue_metas"],
            note=(str(data.get("message") or "") if pending else "")
            or ("" if position is not None or not pending else "The platform reports no queue position for it."),
        )

    async def error_info(self, job_id: str) -> str | None:
        job = await self.get_job(job_id)
        if job.status != JobStatus.FAILED:
            return None
        return job.reason

    async def label_job(self, job_id: str, labels: dict[str, str]) -> Job:
        raise InvalidRequest("The workload platform cannot change a workload's labels after its creation.")

    async def unlabel_job(self, job_id: str, keys: list[str]) -> Job:
        raise InvalidRequest("The workload platform cannot change a workload's labels after its creation.")

    async def spot_price_history(self, instance_type: str, hours: float) -> list[SpotPricePoint]:
        raise InvalidRequest("The workload platform has no spot capacity.")

    async def output_models(self, job_id: str) -> OutputModels:
        await self._raw(job_id)
        return untracked_outputs(
            job_id,
            "The workload platform does not track outputs: a job writes them to its workspace's volumes.",
        )

    def template_backend(self) -> TemplateBackend | None:
        return None


def check_id(job_id: str) -> str:
    job_id = (job_id or "").strip()
    if not job_id or "/" in job_id or len(job_id) > 128:
        raise InvalidRequest(f"{job_id!r} is not a workload id: pass the id create_training_job or list_jobs returned.")
    return job_id


def _items(data: Any) -> list[dict[str, Any]]:
    """A listing's ``items`` (``null`` when empty, not ``[]``)."""
    items = data.get("items") if isinstance(data, dict) else None
    return [i for i in items or [] if isinstance(i, dict)]


async def gather(*calls: Awaitable[Any]) -> list[Any]:
    """Await concurrently, in order; the first failure is raised as itself (not as an exception group)."""
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    async def one(i: int, call: Awaitable[Any]) -> None:
        try:
            results[i] = await call
        except Exception as exc:  # re-raised below, the first one as it is
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(one, i, call)
    if errors:
        raise errors[0]
    return results
