"""The one shared object of the MCP server's lifespan.

Every tool handler reaches a provider through the engine, and every billable call goes through the
gate here; no handler talks to a provider on its own. The engine holds every enabled provider by name
(``CLOUDJOBS_PROVIDERS``, the first is the default) and routes a bare job id to its provider through
the job index (``server/jobindex.py``), asking every provider at once when the index does not know it.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import anyio

from cloudjobs_mcp.server import constraints
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import (
    CloudJobsError,
    GateRefused,
    InvalidRequest,
    NotFound,
    ProviderError,
    ReadOnlyMode,
)
from cloudjobs_mcp.server.gate import Confirmation, Gate
from cloudjobs_mcp.server.identity import LOCAL, Caller
from cloudjobs_mcp.server.jobindex import JobIndex
from cloudjobs_mcp.server.models import JOB_TYPES, Job, JobRequest, JobStatus, JobTemplate, Quote, Spec, TemplateConfig
from cloudjobs_mcp.server.providers import LABELS, create_provider
from cloudjobs_mcp.server.providers.base import TAG_CREATED_BY, TAG_OWNER, TAG_QUOTE_ID, Provider, TemplateBackend
from cloudjobs_mcp.server.templates import TemplateStore

if TYPE_CHECKING:
    from cloudjobs_mcp.server.watch import Watch

SPEC_CACHE_SECONDS = 300.0
T = TypeVar("T")
_NAME_RE = re.compile(r"^[0-9A-Za-z_.-]{1,256}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class CreateOutcome:
    job: Job
    quote: Quote
    reused: bool  # True when the quote had already created this job (an idempotent retry)


@dataclass
class Listing:
    """Jobs from one or every provider, newest first, and the providers that could not be asked."""

    jobs: list[Job]
    failures: dict[str, str] = field(default_factory=dict)  # provider name → what went wrong


class Providers(Mapping[str, Provider]):
    """The enabled providers by name (in CLOUDJOBS_PROVIDERS order), each made on first use: a platform's
    code, its credentials chain and its pooled HTTP client (a TLS context: ~25 ms and ~3 MB) are not needed to
    answer tools/list, and a session that never calls a tool never pays for them. A provider that cannot be
    made (bad settings) says so to the call that needed it, and is tried again by the next."""

    def __init__(
        self, names: Sequence[str], make: Callable[[str], Provider], made: Mapping[str, Provider] | None = None
    ) -> None:
        self._names = list(dict.fromkeys(names))
        self._make = make
        self._made: dict[str, Provider] = {n: p for n, p in (made or {}).items() if n in self._names}

    def __getitem__(self, name: str) -> Provider:
        made = self._made.get(name)
        if made is None:
            if name not in self._names:
                raise KeyError(name)
            made = self._made[name] = self._make(name)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def made(self) -> list[Provider]:
        """The providers made so far (what there is to close)."""
        return list(self._made.values())


@dataclass
class Engine:
    settings: Settings
    providers: Mapping[str, Provider]  # every enabled provider by name; the first is the default
    gate: Gate
    index: JobIndex
    _specs: dict[str, tuple[float, list[Spec]]] = field(default_factory=dict)
    # What wait_job_complete remembers per job between calls (the overall timeout spans calls).
    watches: dict[str, Watch] = field(default_factory=dict)
    _templates: dict[str, TemplateBackend] = field(default_factory=dict)
    _where: dict[str, str] = field(default_factory=dict)  # job id → provider, in front of the index

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, provider: Provider | None = None, providers: Mapping[str, Provider] | None = None
    ) -> AsyncIterator[Engine]:
        """The engine on ``settings``; ``provider`` replaces the one configured provider (tests, benchmarks),
        ``providers`` stand in for the enabled providers of those names (the rest are created; a provider
        the settings do not enable is not used)."""
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        given = dict(providers or {})
        if provider is not None and len(settings.providers) == 1 and not given:
            given = {provider.name: provider}
            names: Sequence[str] = [provider.name]
        else:
            if provider is not None:
                given.setdefault(provider.name, provider)
            names = settings.providers
        providers = Providers(names, lambda name: create_provider(name, settings), made=given)
        try:
            yield cls(settings=settings, providers=providers, gate=Gate(settings), index=JobIndex(settings.state_dir))
        finally:
            with anyio.CancelScope(shield=True):
                for opened in providers.made():
                    await opened.aclose()

    # -- providers -----------------------------------------------------------------------------------
    @property
    def provider(self) -> Provider:
        """The default provider: the first of CLOUDJOBS_PROVIDERS."""
        return next(iter(self.providers.values()))

    def pick(self, name: str | None) -> Provider:
        """The enabled provider called ``name``; None (or empty): the default one."""
        if name is None or not name.strip():
            return self.provider
        found = self.providers.get(name.strip().lower())
        if found is None:
            raise InvalidRequest(
                f"Unknown provider {name!r}: this server enables {', '.join(self.providers)} "
                "(CLOUDJOBS_PROVIDERS). list_providers describes them."
            )
        return found

    def provider_of(self, job: Job) -> Provider:
        """The provider that runs ``job`` (each job names its provider)."""
        return self.providers.get(job.provider, self.provider)

    def label_of(self, name: str) -> str:
        return LABELS.get(name, name)

    @property
    def label(self) -> str:
        return self.label_of(self.provider.name)

    def known_secrets(self) -> tuple[str, ...]:
        """Every provider's own secret values, masked wherever they might show up (e.g. in job logs)."""
        found: list[str] = []
        for provider in self.providers.values():
            secrets = getattr(provider, "known_secrets", None)
            if callable(secrets):
                found.extend(secrets())
        return tuple(found)

    async def each(
        self, names: Iterable[str], op: Callable[[Provider], Awaitable[T]]
    ) -> tuple[dict[str, T], dict[str, str]]:
        """``op`` on each named provider at once: what each answered, and what went wrong where it failed
        (one provider failing never hides the others' answers)."""
        answers: dict[str, T] = {}
        failures: dict[str, str] = {}

        async def one(name: str) -> None:
            try:
                answers[name] = await op(self.providers[name])
            except CloudJobsError as exc:
                failures[name] = str(exc)

        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(one, name)
        order = list(self.providers)
        return (
            {n: answers[n] for n in order if n in answers},
            {n: failures[n] for n in order if n in failures},
        )

    # -- specs and images ----------------------------------------------------------------------------
    async def specs(self, provider: str | None = None, *, fresh: bool = False) -> list[Spec]:
        """One provider's specs (the default's when None), cached a few minutes."""
        chosen = self.pick(provider)
        now = time.monotonic()
        cached = self._specs.get(chosen.name)
        if fresh or cached is None or now - cached[0] > SPEC_CACHE_SECONDS:
            cached = (now, await chosen.list_specs())
            self._specs[chosen.name] = cached
        return cached[1]

    async def all_specs(self, provider: str | None = None) -> tuple[dict[str, list[Spec]], dict[str, str]]:
        """Specs of ``provider``, or of every enabled provider at once when None, and who failed; raises
        when the one provider asked (or every one) failed."""
        if provider or len(self.providers) == 1:
            chosen = self.pick(provider)
            return {chosen.name: await self.specs(chosen.name)}, {}
        found, failures = await self.each(self.providers, lambda p: self.specs(p.name))
        if not found:
            raise_all_failed(failures)
        return found, failures

    async def spec(self, instance_type: str, provider: str | None = None) -> Spec:
        chosen = self.pick(provider)
        name = (instance_type or "").strip()
        specs = await self.specs(chosen.name)
        for spec in specs:
            if spec.instance_type == name:
                return spec
        known = ", ".join(s.instance_type for s in specs[:20])
        raise NotFound(
            f"Unknown spec {instance_type!r} on provider {chosen.name}. "
            f"Call list_ecs_specs to see what is available (e.g. {known})."
        )

    async def resolve_spec(self, instance_type: str, provider: str | None) -> tuple[Provider, Spec]:
        """The provider and spec a quote is for: the named provider's, or, with several providers and none
        named, the one provider that offers a spec of that name (a name on several is ambiguous: refused)."""
        if provider or len(self.providers) == 1:
            chosen = self.pick(provider)
            return chosen, await self.spec(instance_type, chosen.name)
        name = (instance_type or "").strip()
        found, failures = await self.all_specs()
        holders = [(p, s) for p, specs in found.items() for s in specs if s.instance_type == name]
        if len(holders) == 1:
            return self.providers[holders[0][0]], holders[0][1]
        if holders:
            raise InvalidRequest(
                f"Spec {name!r} exists on several providers ({', '.join(p for p, _ in holders)}): pass "
                "provider to say which one to quote."
            )
        unasked = "".join(f" {p} could not be asked: {why}." for p, why in failures.items())
        answered = ", ".join(found) or "none answered"
        raise NotFound(
            f"Unknown spec {instance_type!r} on every enabled provider ({answered}).{unasked} "
            "Call list_ecs_specs to see what is available, or pass provider."
        )

    # -- templates ------------------------------------------------------------------------------------
    def templates(self, provider: str | None = None) -> TemplateBackend:
        """The platform's own job templates (PAI-DLC), else the server's store in the state directory."""
        chosen = self.pick(provider)
        if chosen.name not in self._templates:
            backend = chosen.template_backend()
            self._templates[chosen.name] = backend if backend is not None else TemplateStore(self.settings.state_dir)
        return self._templates[chosen.name]

    async def from_template(
        self,
        template_id: str,
        version: int | None,
        overrides: dict[str, Any],
        *,
        check_required: bool = True,
        provider: str | None = None,
    ) -> tuple[JobTemplate, TemplateConfig]:
        """The template (at ``version`` or its default) and the run's config after its constraints."""
        template = await self.templates(provider).get(template_id, version)
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
            where = quote.provider if quote is not None and quote.provider in self.providers else None
            template, config = await self.from_template(
                template_id, template_version, _config_fields(fields), provider=where
            )
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
        provider: str | None = None,
        caller: Caller,
    ) -> Quote:
        tpl: JobTemplate | None = None
        if template_id:
            overrides: dict[str, Any] = {"ecs_spec": ecs_spec, "worker_count": worker_count, "job_type": job_type}
            overrides["max_runtime_minutes"] = max_runtime_minutes
            tpl, config = await self.from_template(
                template_id, template_version, overrides, check_required=False, provider=provider
            )
            ecs_spec, worker_count, job_type = config.ecs_spec, config.worker_count, config.job_type
            max_runtime_minutes = config.max_runtime_minutes
            # A template lives on one provider's backend: without a provider named, that is the default's.
            provider = provider or self.provider.name
        missing = [n for n, v in (("ecs_spec", ecs_spec), ("worker_count", worker_count)) if v is None]
        if max_runtime_minutes is None:
            missing.append("max_runtime_minutes")
        if missing:
            raise InvalidRequest(f"Missing {', '.join(missing)}: give them, or a template_id whose config has them.")
        assert ecs_spec is not None and worker_count is not None and max_runtime_minutes is not None
        job_type = job_type or "PyTorchJob"
        check_job_type(job_type)
        check_worker_count(worker_count)
        chosen, spec = await self.resolve_spec(ecs_spec, provider)
        # A platform that stops jobs only in coarser steps (ModelArts: whole hours) runs them up to the rounded
        # limit: the quote binds that limit, so its worst case is what the job can really cost.
        enforced = getattr(chosen, "enforced_max_runtime", None)
        if callable(enforced):
            max_runtime_minutes = float(enforced(max_runtime_minutes))
        # Refuse at quote time what the provider could never run (e.g. beyond this machine, or spot on local).
        chosen.validate_request(
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
        price = await chosen.price(spec.instance_type)
        expected, worst = price.per_worker_hourly, None
        if spot:
            expected = await self.spot_price(spec.instance_type, chosen.name)
            worst = spot_price_limit if spot_price_limit is not None else price.per_worker_hourly
        elif spot_price_limit is not None:
            raise InvalidRequest("spot_price_limit needs spot=true.")
        return self.gate.issue(
            provider=chosen.name,
            provider_label=self.label_of(chosen.name),
            region=chosen.region,
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
            price_source=price.source,
        )

    async def spot_price(self, instance_type: str, provider: str | None = None) -> float:
        history = await self.pick(provider).spot_price_history(instance_type, 24)
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

    def quote_provider(self, quote: Quote, named: str | None = None) -> Provider:
        """The provider a quote binds. A create that names another provider is refused, never re-routed."""
        if named is not None and named.strip() and (other := self.pick(named).name) != quote.provider:
            raise GateRefused(
                f"Quote {quote.quote_id} was issued for provider {quote.provider}, but this create names provider "
                f"{other}. A quote binds its provider: call estimate_cost with provider={other!r}, confirm "
                "that cost with the user, then create with the new quote_id."
            )
        found = self.providers.get(quote.provider)
        if found is None:
            raise GateRefused(
                f"Quote {quote.quote_id} was issued for provider {quote.provider}, which this server no longer "
                f"enables ({', '.join(self.providers)}). Call estimate_cost on an enabled provider."
            )
        return found

    async def preflight(
        self, request: JobRequest, quote_id: str | None, caller: Caller, provider: str | None = None
    ) -> tuple[Quote, bool]:
        """Everything that must hold before a human is asked: inputs, spec, capacity and the quote.

        Returns the quote and whether it already created a job (then nothing needs confirming).
        """
        self.require_writable("create jobs")
        check_request(request)
        quote, state, _ = self.gate.get(quote_id)
        self.gate.check_identity(quote, caller.identity)
        chosen = self.quote_provider(quote, provider)
        if state == "used":
            return quote, True
        self.gate.check(quote, request, provider=chosen.name, region=chosen.region)
        spec = await self.spec(request.ecs_spec, chosen.name)
        chosen.validate_request(request.model_copy(update={"max_runtime_minutes": quote.max_runtime_minutes}), spec)
        return quote, False

    async def create(
        self,
        request: JobRequest,
        quote_id: str | None,
        confirmation: Confirmation | None,
        provider: str | None = None,
        *,
        caller: Caller,
    ) -> CreateOutcome:
        quote, used = await self.preflight(request, quote_id, caller, provider)
        chosen = self.quote_provider(quote)  # the create goes to the quote's provider, whatever else was named
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
                found = await chosen.find_job_by_tag(TAG_QUOTE_ID, quote.quote_id)
                if found is not None:
                    self.gate.mark_used(quote.quote_id, found.job_id)
                    self._remember([(found.job_id, chosen.name)])
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
                job = await chosen.create_job(final)
                self.gate.mark_used(quote.quote_id, job.job_id)
                self._remember([(job.job_id, chosen.name)])
        except BaseException:
            self.gate.release(quote.quote_id)
            raise
        return CreateOutcome(job=job, quote=quote.model_copy(update={"job_id": job.job_id}), reused=False)

    async def _job_of_used_quote(self, quote: Quote) -> Job:
        assert quote.job_id is not None
        try:
            return await self.quote_provider(quote).get_job(quote.job_id)
        except NotFound:
            raise GateRefused(
                f"Quote {quote.quote_id} was already used for job {quote.job_id}, which no longer exists "
                "(deleted). A quote is used once: call estimate_cost for a new one."
            ) from None

    # -- finding a job's provider --------------------------------------------------------------------
    def _remember(self, pairs: Iterable[tuple[str, str]]) -> None:
        new = [(j, p) for j, p in pairs if self._where.get(j) != p]
        if new:
            self.index.remember(new)
            self._where.update(new)

    def _known(self, job_id: str) -> Provider | None:
        name = self._where.get(job_id)
        if name is None:
            name = self.index.get(job_id)
            if name is not None:
                self._where[job_id] = name
        return self.providers.get(name) if name else None

    def _forget(self, job_id: str) -> None:
        self._where.pop(job_id, None)
        self.index.forget(job_id)

    async def route(self, job_id: str, provider: str | None = None) -> tuple[Provider, str]:
        """The provider of a job id (and the id, checked): the named one, the only one, the one the index
        remembers, else the one that answers when every provider is asked."""
        job_id = check_job_id(job_id)
        if (provider and provider.strip()) or len(self.providers) == 1:
            return self.pick(provider), job_id
        known = self._known(job_id)
        if known is not None:
            return known, job_id
        return self.provider_of(await self._ask_all(job_id)), job_id

    async def get(self, job_id: str, provider: str | None = None) -> Job:
        job_id = check_job_id(job_id)
        if (provider and provider.strip()) or len(self.providers) == 1:
            return await self.pick(provider).get_job(job_id)
        known = self._known(job_id)
        if known is None:
            return await self._ask_all(job_id)
        try:
            return await known.get_job(job_id)
        except NotFound:
            self._forget(job_id)  # the index was stale (the job was deleted there): ask the others
            return await self._ask_all(job_id, skip={known.name})

    async def _ask_all(self, job_id: str, skip: set[str] | None = None) -> Job:
        names = [n for n in self.providers if n not in (skip or set())]

        async def lookup(p: Provider) -> Job | None:
            try:
                return await p.get_job(job_id)
            except (NotFound, InvalidRequest):  # an id this platform does not know (or cannot even parse)
                return None

        answers, failures = await self.each(names, lookup)
        found = [job for job in answers.values() if job is not None]
        if len(found) == 1:
            self._remember([(job_id, found[0].provider)])
            return found[0]
        if found:
            raise InvalidRequest(
                f"Job id {job_id!r} exists on several providers ({', '.join(j.provider for j in found)}): "
                "pass provider to say which one."
            )
        asked = ", ".join([*(skip or ()), *names])
        if failures:
            raise ProviderError(
                f"Job {job_id!r} was not found on {', '.join(answers) or 'any provider'}, and "
                + "; ".join(f"{p} could not be asked ({why})" for p, why in failures.items())
                + ". Try again, or pass provider.",
                code="ProviderUnreachable",
            )
        raise NotFound(f"No job {job_id!r} on any enabled provider (asked {asked}). Check the id with list_jobs.")

    # -- jobs ----------------------------------------------------------------------------------------
    async def stop(self, job_id: str, provider: str | None = None, *, caller: Caller) -> Job:
        self.require_writable("stop jobs")
        job = await self.owned(job_id, caller, "stop", provider)
        return await self.provider_of(job).stop_job(job.job_id)

    async def delete(self, job_id: str, provider: str | None = None, *, caller: Caller) -> None:
        self.require_writable("delete jobs")
        job = await self.owned(job_id, caller, "delete", provider)
        await self.provider_of(job).delete_job(job.job_id)

    def owner_of(self, job: Job) -> str | None:
        """Who created the job: its owner label, else the quote that paid for it; None when not this server."""
        if owner := job.tags.get(TAG_OWNER):
            return owner
        quote = self.gate.quote_of_job(job.job_id)
        if quote is not None:
            return quote.identity
        return LOCAL if TAG_CREATED_BY in job.tags else None  # made here before there were identities

    async def owned(self, job_id: str, caller: Caller, action: str, provider: str | None = None) -> Job:
        """The job, when ``caller`` may ``action`` it (its creator, an admin, or nobody's job)."""
        job = await self.get(job_id, provider)
        caller.require_owner(self.owner_of(job), action, job.job_id)
        return job

    async def list(
        self,
        status: JobStatus | None = None,
        *,
        only_ours: bool = False,
        labels: dict[str, str] | None = None,
        limit: int = 50,
        include_training_jobs: bool = False,
        provider: str | None = None,
        only_of: str | None = None,
    ) -> Listing:
        """Jobs newest first from ``provider``, or merged from every enabled provider, asked at once;
        ``only_of`` keeps the jobs that identity created."""
        tags = {**(labels or {}), **({TAG_CREATED_BY: "true"} if only_ours or only_of else {})}
        if only_of is not None and only_of != LOCAL:
            tags[TAG_OWNER] = only_of  # ``local`` also owns the jobs made before identities, without the label
        names = [self.pick(provider).name] if provider else list(self.providers)

        async def one(p: Provider) -> list[Job]:
            return await p.list_jobs(
                status=status, tags=tags or None, limit=limit, include_training_jobs=include_training_jobs
            )

        if len(names) == 1:  # one provider: its error is the answer
            jobs = await one(self.providers[names[0]])
            failures: dict[str, str] = {}
        else:
            answers, failures = await self.each(names, one)
            if not answers:
                raise_all_failed(failures)
            jobs = sorted(
                (j for found in answers.values() for j in found),
                key=lambda j: j.created_at.timestamp() if j.created_at else float("-inf"),
                reverse=True,
            )[:limit]
        if len(self.providers) > 1:
            self._remember((j.job_id, j.provider) for j in jobs)
        if only_of is not None:
            jobs = [j for j in jobs if self.owner_of(j) == only_of]
        return Listing(jobs=jobs, failures=failures)

    # -- labels --------------------------------------------------------------------------------------
    async def set_labels(
        self, job_id: str, labels: dict[str, str], provider: str | None = None, *, caller: Caller
    ) -> Job:
        self.require_writable("change labels")
        check_labels(labels.keys())
        job = await self.owned(job_id, caller, "label", provider)
        return await self.provider_of(job).label_job(job.job_id, labels)

    async def remove_labels(
        self, job_id: str, keys: Sequence[str], provider: str | None = None, *, caller: Caller
    ) -> tuple[Job, tuple[str, ...]]:
        """The job without ``keys``, and the keys it did not carry (kubectl's "label not found": said, not
        silently ignored; nothing is sent to the platform for them)."""
        self.require_writable("change labels")
        check_labels(keys)
        job = await self.owned(job_id, caller, "unlabel", provider)
        wanted = list(dict.fromkeys(keys))
        absent = tuple(k for k in wanted if k not in job.tags)
        present = [k for k in wanted if k in job.tags]
        if present:
            job = await self.provider_of(job).unlabel_job(job.job_id, present)
        return job, absent


def raise_all_failed(failures: Mapping[str, str]) -> NoReturn:
    raise ProviderError(
        "No provider answered: " + "; ".join(f"{p}: {why}" for p, why in failures.items()),
        code="ProvidersUnreachable",
    )


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
