"""Across providers: every enabled provider's specs in one list, and the offers that meet a need ranked
by whole-job cost (SkyPilot's optimizer idea, for an assistant), and each provider's state.

Currencies are never mixed silently: offers rank within their currency, and are converted only with a
rate from the price table's ``fx_rates``, which the result then names.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
from pydantic import Field

from cloudjobs_mcp.server.errors import CloudJobsError
from cloudjobs_mcp.server.gate import money
from cloudjobs_mcp.server.models import Accelerator, Model, Spec
from cloudjobs_mcp.server.pricing import PriceTable
from cloudjobs_mcp.server.providers.base import Provider

if TYPE_CHECKING:
    from cloudjobs_mcp.server.engine import Engine

MAX_PRICE_LOOKUPS = 25  # API price calls per provider and comparison; the smallest fitting specs first
PRICE_CONCURRENCY = 8
PROBE_SECONDS = 5.0


class SpecRow(Spec):
    provider: str


def priced_rows(engine: Engine, found: dict[str, list[Spec]]) -> list[SpecRow]:
    """Each provider's specs as rows naming provider and currency; a price the listing lacks from the table."""
    table = PriceTable.from_settings(engine.settings)
    rows: list[SpecRow] = []
    for name, specs in found.items():
        provider = engine.providers[name]
        for spec in specs:
            update: dict[str, object] = {"currency": spec.currency or provider.currency}
            if spec.price_per_hour is None and (listed := table.lookup(name, spec)) is not None:
                update = {"price_per_hour": listed.per_worker_hourly, "currency": listed.currency}
            rows.append(SpecRow(**{**spec.model_dump(), **update}, provider=name))
    return rows


# -- compare_offers -------------------------------------------------------------------------------------
class Offer(Model):
    rank: int | None = Field(description="1 = cheapest in its currency group; None: price unknown")
    provider: str
    instance_type: str
    accelerator: Accelerator
    cpu: int
    memory_gb: float
    gpu_count: int
    gpu_type: str | None
    available: bool
    per_worker_hourly: float | None
    currency: str
    job_cost: float | None = Field(description="per_worker_hourly × workers × estimated hours; None: unknown")
    cost_text: str
    price_source: str


class OfferComparison(Model):
    need: str
    worker_count: int
    estimated_minutes: float
    ranked_in: str | None = Field(description="The one currency all priced offers were ranked in; None: per currency")
    conversions: list[str] = Field(description="Every currency conversion made, with its configured rate")
    offers: list[Offer] = Field(description="Cheapest first within each currency group; price unknown last")
    cheapest: dict[str, str] = Field(description="Per currency, the cheapest offer")
    total_matching: int
    truncated: bool
    unavailable: dict[str, str] = Field(description="Providers that could not be asked, and why")
    note: str


async def compare(
    engine: Engine,
    *,
    gpu_type: str | None,
    gpu_count: int | None,
    min_cpu: int | None,
    min_memory_gb: float | None,
    worker_count: int,
    estimated_minutes: float,
    currency: str | None,
    include_unavailable: bool,
    limit: int,
    provider: str | None = None,
) -> OfferComparison:
    table = PriceTable.from_settings(engine.settings)
    target = currency.strip().upper() if currency else None
    found, failures = await engine.all_specs(provider)

    def fits(s: Spec) -> bool:
        return (
            (include_unavailable or s.available)
            and (min_cpu is None or s.cpu >= min_cpu)
            and (min_memory_gb is None or s.memory_gb >= min_memory_gb)
            and (gpu_count is None or s.gpu_count >= gpu_count)
            and (not gpu_count or s.gpu_count > 0)
            and (gpu_type is None or gpu_type.lower() in (s.gpu_type or "").lower())
            and (s.max_workers is None or worker_count <= s.max_workers)
        )

    offers: list[Offer] = []

    async def price_all(name: str, specs: list[Spec]) -> None:
        chosen = engine.providers[name]
        limiter = anyio.CapacityLimiter(PRICE_CONCURRENCY)
        matching = sorted((s for s in specs if fits(s)), key=lambda s: (s.gpu_count, s.cpu, s.memory_gb))

        async def one(spec: Spec, may_ask: bool) -> None:
            async with limiter:
                hourly, unit, source = await _price(chosen, spec, table, may_ask)
            cost = None if hourly is None else hourly * worker_count * estimated_minutes / 60
            offers.append(
                Offer(
                    rank=None,
                    provider=name,
                    instance_type=spec.instance_type,
                    accelerator=spec.accelerator,
                    cpu=spec.cpu,
                    memory_gb=spec.memory_gb,
                    gpu_count=spec.gpu_count,
                    gpu_type=spec.gpu_type,
                    available=spec.available,
                    per_worker_hourly=hourly,
                    currency=unit,
                    job_cost=cost,
                    cost_text=money(cost, unit),
                    price_source=source,
                )
            )

        async with anyio.create_task_group() as tg:
            for i, spec in enumerate(matching):
                tg.start_soon(one, spec, i < MAX_PRICE_LOOKUPS)

    async with anyio.create_task_group() as tg:
        for name, specs in found.items():
            tg.start_soon(price_all, name, specs)

    conversions: list[str] = []
    if target:
        for i, offer in enumerate(offers):
            if offer.job_cost is None or offer.currency == target:
                continue
            rate = table.rate(offer.currency, target)
            if rate is None:
                continue  # no configured rate: it stays in its own currency group
            note = f"{offer.currency}→{target} at {rate:g} (fx_rates in {table.path})"
            if note not in conversions:
                conversions.append(note)
            hourly = None if offer.per_worker_hourly is None else offer.per_worker_hourly * rate
            cost = offer.job_cost * rate
            offers[i] = offer.model_copy(
                update={
                    "per_worker_hourly": hourly,
                    "job_cost": cost,
                    "currency": target,
                    "cost_text": f"{money(cost, target)} (converted from {money(offer.job_cost, offer.currency)})",
                }
            )
    offers.sort(
        key=lambda o: (
            o.job_cost is None,
            o.currency != target if target else False,
            o.currency,
            o.job_cost or 0.0,
            o.provider,
            o.instance_type,
        )
    )
    cheapest: dict[str, str] = {}
    ranks: dict[str, int] = {}
    for i, offer in enumerate(offers):
        if offer.job_cost is None:
            continue
        ranks[offer.currency] = ranks.get(offer.currency, 0) + 1
        offers[i] = offer.model_copy(update={"rank": ranks[offer.currency]})
        cheapest.setdefault(offer.currency, f"{offer.provider} {offer.instance_type}: {offer.cost_text}")
    currencies = sorted(ranks)
    ranked_in = currencies[0] if len(currencies) == 1 and (target is None or currencies[0] == target) else None
    return OfferComparison(
        need=_need(gpu_type, gpu_count, min_cpu, min_memory_gb),
        worker_count=worker_count,
        estimated_minutes=estimated_minutes,
        ranked_in=ranked_in,
        conversions=conversions,
        offers=offers[:limit],
        cheapest=cheapest,
        total_matching=len(offers),
        truncated=len(offers) > limit,
        unavailable=failures,
        note=_note(currencies, target, table, offers),
    )


async def _price(provider: Provider, spec: Spec, table: PriceTable, may_ask: bool) -> tuple[float | None, str, str]:
    """(per-worker hourly price, currency, where it came from): the listing, the provider's price API
    (for the first few fitting specs), else the price table."""
    if spec.price_per_hour is not None:
        return spec.price_per_hour, spec.currency or provider.currency, f"{provider.name} spec listing"
    if may_ask:
        try:
            price = await provider.price(spec.instance_type)
        except CloudJobsError:
            price = None
        if price is not None and price.per_worker_hourly is not None:
            return price.per_worker_hourly, price.currency, price.source
    listed = table.lookup(provider.name, spec)
    if listed is not None and listed.per_worker_hourly is not None:
        return listed.per_worker_hourly, listed.currency, listed.source
    why = "price unknown" if may_ask else f"price not looked up (only the {MAX_PRICE_LOOKUPS} smallest fits are)"
    return None, spec.currency or provider.currency, why


def _need(gpu_type: str | None, gpu_count: int | None, min_cpu: int | None, min_memory_gb: float | None) -> str:
    parts = [
        *([f"≥{gpu_count} GPU"] if gpu_count else []),
        *([f"GPU type {gpu_type}"] if gpu_type else []),
        *([f"≥{min_cpu} vCPU"] if min_cpu else []),
        *([f"≥{min_memory_gb:g} GiB"] if min_memory_gb else []),
    ]
    return ", ".join(parts) or "any spec"


def _note(currencies: list[str], target: str | None, table: PriceTable, offers: list[Offer]) -> str:
    unknown = sum(1 for o in offers if o.job_cost is None)
    text = []
    if len(currencies) > 1:
        text.append(
            f"Offers are in {', '.join(currencies)} and are ranked within each currency, never converted silently"
            + (
                f": no rate in the price table's fx_rates converts them to {target}."
                if target
                else (
                    "; pass currency to rank them together with the price table's fx_rates."
                    if table.fx
                    else "; add fx_rates to the price table (CLOUDJOBS_PRICE_TABLE) to rank them together."
                )
            )
        )
    if unknown:
        text.append(f"{unknown} offers have no known price (listed last): add them to the price table to rank them.")
    text.append("Quote the chosen one with estimate_cost(provider=…, ecs_spec=…) before creating anything.")
    return " ".join(text)


# -- list_providers -------------------------------------------------------------------------------------
class ProviderState(Model):
    name: str
    label: str
    default: bool = Field(description="Used when a call names no provider and nothing else decides")
    region: str
    currency: str
    credentials_found: bool
    credentials: str = Field(description="Where credentials come from (a source's name, never a value), or why none")
    api_answered: bool
    api: str = Field(description="What the live probe saw")


async def provider_states(engine: Engine) -> list[ProviderState]:
    """Every enabled provider, probed at once with a short timeout (its spec listing, which also warms the cache)."""

    async def one(p: Provider) -> ProviderState:
        found, credentials = await _credentials(p)
        answered, api = False, f"no answer within {PROBE_SECONDS:g} s"
        start = time.monotonic()
        with anyio.move_on_after(PROBE_SECONDS):
            try:
                count = len(await engine.specs(p.name, fresh=True))
                answered, api = True, f"answered in {time.monotonic() - start:.2f} s ({count} specs)"
            except CloudJobsError as exc:
                api = f"failed: {exc}"
        return ProviderState(
            name=p.name,
            label=engine.label_of(p.name),
            default=p is engine.provider,
            region=p.region,
            currency=p.currency,
            credentials_found=found,
            credentials=credentials,
            api_answered=answered,
            api=api[:400],
        )

    states, _ = await engine.each(engine.providers, one)  # `one` catches what it can; nothing is lost
    return list(states.values())


async def _credentials(provider: Provider) -> tuple[bool, str]:
    source = getattr(provider, "credential_source", None)
    if source is None:
        return True, "not reported by this provider"
    try:
        with anyio.fail_after(PROBE_SECONDS):
            return True, str(await source())
    except TimeoutError:
        return False, f"the credential chain did not answer within {PROBE_SECONDS:g} s"
    except CloudJobsError as exc:
        return False, str(exc)[:400]
