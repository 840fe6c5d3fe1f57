"""The one shared object of the MCP server's lifespan.

Every tool handler reaches the provider through the engine, and every billable call goes through the
gate here; no handler talks to a provider on its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from cloudjobs_mcp.server import constraints
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import GateRefused, InvalidRequest, NotFound, ReadOnlyMode
from cloudjobs_mcp.server.gate import Confirmation, Gate
from cloudjobs_mcp.server.identity import LOCAL, Caller
from cloudjobs_mcp.server.models import JOB_TYPES, Job, JobRequest, JobStatus, JobTemplate, Quote, Spec, TemplateConfig
from cloudjobs_mcp.server.providers import LABELS, create_provider
from cloudjobs_mcp.server.providers.base import TAG_CREATED_BY, TAG_OWNER, TAG_QUOTE_ID, Provider, TemplateBackend
from cloudjobs_mcp.server.templates import TemplateStore

if TYPE_CHECKING:
    from cloudjobs_mcp.server.watch import Watch

SPEC_CACHE_SECONDS = 300.0
_NAME_RE = re.compile(r"^[0-9A-Za-z_.-]{1,256}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class CreateOutcome:
    job: Job
    quote: Quote
    reused: bool  # True when the quote had already created this job (an idempotent retry)


@dataclass
class Engine:
    settings: Settings
    provider: Provider
    gate: Gate
    _specs: tuple[float, list[Spec]] | None = None
    # What wait_job_complete remembers per job between calls (the overall timeout spans calls).
    watches: dict[str, Watch] = field(default_factory=dict)
    _templates: TemplateBackend | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, provider: Provider | None = None) -> AsyncIterator[Engine]:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        provider = provider or create_provider(settings)
        engine = cls(settings=settings, provider=provider, gate=Gate(settings))
        try:
            yield engine
        finally:
            await provider.aclose()

    @property
    def label(self) -> str:
        return LABELS.get(self.provider.name, self.provider.name)

    def known_secrets(self) -> tuple[str, ...]:
        """The provider's own secret values, masked wherever they might show up (e.g. in job logs)."""
        secrets = getattr(self.provider, "known_secrets", None)
        return tuple(secrets()) if callable(secrets) else ()

    # -- specs and images ----------------------------------------------------------------------------
    async def specs(self, *, fresh: bool = False) -> list[Spec]:
        now = time.monotonic()
        if fresh or self._specs is None or now - self._specs[0] > SPEC_CACHE_SECONDS:
            self._specs = (now, await self.provider.list_specs())
        return self._specs[1]

    async def spec(self, instance_type: str) -> Spec:
        name = (instance_type or "").strip()
        for spec in await self.specs():
            if spec.instance_type == name:
                return spec
        known = ", ".join(s.instance_type for s in (await self.specs())[:20])
        raise NotFound(
            f"Unknown spec {instance_type!r} on provider {self.provider.name}. "
            f"Call list_ecs_specs to see what is available (e.g. {known})."
        )

    # -- templates ------------------------------------------------------------------------------------
    def templates(self) -> TemplateBackend:
        """The platform's own job templates (PAI-DLC), else the server's store in the state directory."""
        if self._templates is None:
            backend = self.provider.template_backend()
            self._templates = backend if backend is not None else TemplateStore(self.settings.state_dir)
        return self._templates

    async def from_template(
        self, template_id: str, version: int | None, overrides: dict[str, Any], *, check_required: bool = True
    ) -> tuple[JobTemplate, TemplateConfig]:
        """The template (at ``version`` or its default) and the run's config after its constraints."""
        template = await self.templates().get(template_id, version)
        return template, constraints.apply(template, overrides, check_required=check_required)

    async def request(
        self,
        fields: dict[str, Any],
        *,
        template_id: str | None = None,
        template_version: int | None = None,
        quote: Quote | None = None,
    ) -> JobRequest:
        """The JobRequest of a create call: its own fields, or a template's config with them as overrides."""
        if template_id:
            if template_version is None and quote is not None and quote.template_id == template_id:
                template_version = quote.template_version  # the version the user was quoted
            template, config = await self.from_template(template_id, template_version, _config_fields(fields))
            merged = {**{k: v for k, v in fields.items() if v is not None}, **config.model_dump(exclude_none=True)}
            merged.setdefault("display_name", template.name)
            merged["template_id"], merged["template_version"] = template.template_id, template.version
        else:
            merged = {k: v for k, v in fields.items() if v is not None}
        missing = [
            k for k in ("display_name", "user_command", "job_type", "ecs_spec", "worker_count") if k not in merged
        ]
        if missing:
            raise InvalidRequest(
                f"Missing {', '.join(missing)}: give them, or a template_id whose config has them (list_job_templates)."
            )
        merged.pop("max_runtime_minutes", None)  # the quote's max runtime is the job's
        return JobRequest(max_runtime_minutes=1, **merged)

    # -- cost ----------------------------------------------------------------------------------------
    async def estimate(
        self,
        *,
        ecs_spec: str | None,
        worker_count: int | None,
        estimated_minutes: float,
        max_runtime_minutes: float | None,
        job_type: str | None,
        template_id: str | None = None,
        template_version: int | None = None,
        spot: bool = False,
        spot_price_limit: float | None = None,
        caller: Caller,
    ) -> Quote:
        tpl: JobTemplate | None = None
        if template_id:
            overrides: dict[str, Any] = {"ecs_spec": ecs_spec, "worker_count": worker_count, "job_type": job_type}
            overrides["max_runtime_minutes"] = max_runtime_minutes
            tpl, config = await self.from_template(template_id, template_version, overrides, check_required=False)
            ecs_spec, worker_count, job_type = config.ecs_spec, config.worker_count, config.job_type
            max_runtime_minutes = config.max_runtime_minutes
        missing = [n for n, v in (("ecs_spec", ecs_spec), ("worker_count", worker_count)) if v is None]
        if max_runtime_minutes is None:
            missing.append("max_runtime_minutes")
        if missing:
            raise InvalidRequest(f"Missing {', '.join(missing)}: give them, or a template_id whose config has them.")
        assert ecs_spec is not None and worker_count is not None and max_runtime_minutes is not None
        job_type = job_type or "PyTorchJob"
        check_job_type(job_type)
        check_worker_count(worker_count)
        spec = await self.spec(ecs_spec)
        # Refuse at quote time what the provider could never run (e.g. beyond this machine, or spot on local).
        self.provider.validate_request(
            JobRequest(
                display_name="quote",
                user_command="true",
                job_type=job_type,
                ecs_spec=spec.instance_type,
                worker_count=worker_count,
                max_runtime_minutes=max_runtime_minutes,
                spot=spot,
                spot_price_limit=spot_price_limit,
            ),
            spec,
        )
        price = await self.provider.price(spec.instance_type)
        expected, worst = price.per_worker_hourly, None
        if spot:
            expected = await self.spot_price(spec.instance_type)
            worst = spot_price_limit if spot_price_limit is not None else price.per_worker_hourly
        elif spot_price_limit is not None:
            raise InvalidRequest("spot_price_limit needs spot=true.")
        return self.gate.issue(
            provider=self.provider.name,
            provider_label=self.label,
            region=self.provider.region,
            spec=spec,
            worker_count=worker_count,
            job_type=job_type,
            per_worker_hourly=expected,
            currency=price.currency,
            estimated_minutes=estimated_minutes,
            max_runtime_minutes=max_runtime_minutes,
            worst_per_worker_hourly=worst,
            spot=spot,
            spot_price_limit=spot_price_limit,
            template_id=tpl.template_id if tpl else None,
            template_version=tpl.version if tpl else None,
            identity=caller.identity,
        )

    async def spot_price(self, instance_type: str) -> float:
        history = await self.provider.spot_price_history(instance_type, 24)
        if not history:
            raise InvalidRequest(
                f"No spot price is known for {instance_type} in the last 24 hours: quote it without spot, "
                "or pick a spec whose spot stock list_ecs_specs shows."
            )
        return history[-1].price

    # -- creation ------------------------------------------------------------------------------------
    def require_writable(self, action: str) -> None:
        if self.settings.read_only:
            raise ReadOnlyMode(
                f"This server runs read-only (CLOUDJOBS_READ_ONLY=1): it does not {action}. "
                "Ask the operator to unset CLOUDJOBS_READ_ONLY to allow it."
            )

    async def preflight(self, request: JobRequest, quote_id: str | None, caller: Caller) -> tuple[Quote, bool]:
        """Everything that must hold before a human is asked: inputs, spec, capacity and the quote.

        Returns the quote and whether it already created a job (then nothing needs confirming).
        """
        self.require_writable("create jobs")
        check_request(request)
        quote, state, _ = self.gate.get(quote_id)
        self.gate.check_identity(quote, caller.identity)
        if state == "used":
            return quote, True
        self.gate.check(quote, request, provider=self.provider.name, region=self.provider.region)
        spec = await self.spec(request.ecs_spec)
        self.provider.validate_request(
            request.model_copy(update={"max_runtime_minutes": quote.max_runtime_minutes}), spec
        )
        return quote, False

    async def create(
        self, request: JobRequest, quote_id: str | None, confirmation: Confirmation | None, *, caller: Caller
    ) -> CreateOutcome:
        quote, used = await self.preflight(request, quote_id, caller)
        if used:
            return CreateOutcome(job=await self._job_of_used_quote(quote), quote=quote, reused=True)
        self.gate.authorize(quote, confirmation)
        claim = self.gate.claim(quote.quote_id)
        if claim is None:
            # Another call holds this quote right now (or just finished with it).
            quote, state, _ = self.gate.get(quote.quote_id)
            if state == "used":
                return CreateOutcome(job=await self._job_of_used_quote(quote), quote=quote, reused=True)
            raise GateRefused(
                f"A create with quote {quote.quote_id} is already under way. Call list_jobs in a few "
                "seconds to see its job; do not request another quote for the same job."
            )
        try:
            if claim.attempted_before:
                found = await self.provider.find_job_by_tag(TAG_QUOTE_ID, quote.quote_id)
                if found is not None:
                    self.gate.mark_used(quote.quote_id, found.job_id)
                    return CreateOutcome(job=found, quote=quote, reused=True)
            final = request.model_copy(
                update={
                    "max_runtime_minutes": quote.max_runtime_minutes,
                    "tags": {
                        **request.tags,
                        TAG_CREATED_BY: "true",
                        TAG_QUOTE_ID: quote.quote_id,
                        TAG_OWNER: quote.identity,
                    },
                }
            )
            with anyio.CancelScope(shield=True):  # a cancelled call must not lose a created job
                job = await self.provider.create_job(final)
                self.gate.mark_used(quote.quote_id, job.job_id)
        except BaseException:
            self.gate.release(quote.quote_id)
            raise
        return CreateOutcome(job=job, quote=quote.model_copy(update={"job_id": job.job_id}), reused=False)

    async def _job_of_used_quote(self, quote: Quote) -> Job:
        assert quote.job_id is not None
        try:
            return await self.provider.get_job(quote.job_id)
        except NotFound:
            raise GateRefused(
                f"Quote {quote.quote_id} was already used for job {quote.job_id}, which no longer exists "
                "(deleted). A quote is used once: call estimate_cost for a new one."
            ) from None

    # -- jobs ----------------------------------------------------------------------------------------
    async def stop(self, job_id: str, *, caller: Caller) -> Job:
        self.require_writable("stop jobs")
        await self.owned(job_id, caller, "stop")
        return await self.provider.stop_job(check_job_id(job_id))

    async def delete(self, job_id: str, *, caller: Caller) -> None:
        self.require_writable("delete jobs")
        await self.owned(job_id, caller, "delete")
        await self.provider.delete_job(check_job_id(job_id))

    def owner_of(self, job: Job) -> str | None:
        """Who created the job: its owner label, else the quote that paid for it; None when not this server."""
        if owner := job.tags.get(TAG_OWNER):
            return owner
        quote = self.gate.quote_of_job(job.job_id)
        if quote is not None:
            return quote.identity
        return LOCAL if TAG_CREATED_BY in job.tags else None  # made here before there were identities

    async def owned(self, job_id: str, caller: Caller, action: str) -> Job:
        """The job, when ``caller`` may ``action`` it (its creator, an admin, or nobody's job)."""
        job = await self.provider.get_job(check_job_id(job_id))
        caller.require_owner(self.owner_of(job), action, job.job_id)
        return job

    async def get(self, job_id: str) -> Job:
        return await self.provider.get_job(check_job_id(job_id))

    async def list(
        self,
        status: JobStatus | None = None,
        *,
        only_ours: bool = False,
        labels: dict[str, str] | None = None,
        limit: int = 50,
        include_training_jobs: bool = False,
        only_of: str | None = None,
    ) -> list[Job]:
        """Jobs newest first; ``only_of`` keeps the jobs that identity created."""
        tags = {**(labels or {}), **({TAG_CREATED_BY: "true"} if only_ours or only_of else {})}
        if only_of is not None and only_of != LOCAL:
            tags[TAG_OWNER] = only_of  # ``local`` also owns the jobs made before identities, without the label
        jobs = await self.provider.list_jobs(
            status=status, tags=tags or None, limit=limit, include_training_jobs=include_training_jobs
        )
        return jobs if only_of is None else [j for j in jobs if self.owner_of(j) == only_of]

    # -- labels --------------------------------------------------------------------------------------
    async def set_labels(self, job_id: str, labels: dict[str, str], *, caller: Caller) -> Job:
        self.require_writable("change labels")
        check_labels(labels.keys())
        await self.owned(job_id, caller, "label")
        return await self.provider.label_job(check_job_id(job_id), labels)

    async def remove_labels(self, job_id: str, keys: Sequence[str], *, caller: Caller) -> tuple[Job, tuple[str, ...]]:
        """The job without ``keys``, and the keys it did not carry (kubectl's "label not found": said, not
        silently ignored; nothing is sent to the platform for them)."""
        self.require_writable("change labels")
        check_labels(keys)
        job = await self.owned(job_id, caller, "unlabel")
        wanted = list(dict.fromkeys(keys))
        absent = tuple(k for k in wanted if k not in job.tags)
        present = [k for k in wanted if k in job.tags]
        if present:
            job = await self.provider.unlabel_job(job.job_id, present)
        return job, absent


RESERVED_LABEL_PREFIX = "cloudjobs-"  # the server's own ownership and quote labels
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=+@-]{0,127}$")


def check_labels(keys: Iterable[str]) -> None:
    keys = list(keys)
    if not keys:
        raise InvalidRequest("No labels given: pass at least one key.")
    own = (TAG_CREATED_BY, TAG_QUOTE_ID, TAG_OWNER)
    reserved = [k for k in keys if k.startswith(RESERVED_LABEL_PREFIX) or k in own]
    if reserved:
        raise InvalidRequest(
            f"Labels {', '.join(reserved)} belong to the server (who created the job, which quote paid for it) "
            "and cannot be set, changed or removed through this tool."
        )
    bad = [k for k in keys if not _LABEL_RE.match(k)]
    if bad:
        raise InvalidRequest(f"Invalid label keys {', '.join(bad)}: 1-128 letters, digits and _ . : / = + @ -.")


def check_job_type(job_type: str) -> None:
    if job_type not in JOB_TYPES:
        raise InvalidRequest(f"Unknown job_type {job_type!r}; allowed: {', '.join(JOB_TYPES)}.")


def check_worker_count(worker_count: int) -> None:
    if worker_count < 1:
        raise InvalidRequest(f"worker_count must be at least 1 (got {worker_count}).")
    if worker_count > 1000:
        raise InvalidRequest(f"worker_count must be at most 1000 (got {worker_count}).")


def check_job_id(job_id: str) -> str:
    job_id = (job_id or "").strip()
    if not job_id:
        raise InvalidRequest("job_id is empty: pass the id create_training_job or list_jobs returned.")
    return job_id


def check_request(request: JobRequest) -> None:
    if not _NAME_RE.match(request.display_name):
        raise InvalidRequest(
            f"display_name {request.display_name!r} is invalid: use 1-256 characters from "
            "letters, digits, '_', '.' and '-'."
        )
    if not request.user_command.strip():
        raise InvalidRequest("user_command is empty: pass the shell command each worker runs.")
    check_job_type(request.job_type)
    check_worker_count(request.worker_count)
    bad = [k for k in request.envs if not _ENV_RE.match(k)]
    if bad:
        raise InvalidRequest(f"Invalid environment variable names in envs: {', '.join(bad)}.")


def _config_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The create call's fields that a template's config holds (the overrides its constraints judge)."""
    return {k: v for k, v in fields.items() if k in TemplateConfig.model_fields}
