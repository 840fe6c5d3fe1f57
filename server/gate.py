"""The cost gate: no billable job without a matching, unexpired, confirmed, single-use quote.

A quote binds provider, region, spec, worker count, job type, price and max runtime. It lives in SQLite
in the state directory so a restarted server still honours (and refuses to reuse) the quotes it issued.
A quote moves ``open`` → ``claimed`` (a create is under way) → ``used`` (bound to a job id); a failed
create puts it back to ``open`` but remembers the attempt, so the next create first looks for a job that
the failed attempt may have made after all.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from cloudjobs_mcp.server.budgets import Budgets
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import Forbidden, GateRefused, InvalidRequest
from cloudjobs_mcp.server.identity import LOCAL
from cloudjobs_mcp.server.models import JobRequest, Quote, Spec, utcnow
from cloudjobs_mcp.server.sqlite import Database


class Confirmation(StrEnum):
    """How the human's approval of a quote reached the server."""

    ELICITED = "elicited"  # the server asked the human through MCP elicitation and they accepted
    ARGUMENT = "argument"  # the client cannot be asked; the assistant passed confirmed=true


@dataclass(frozen=True)
class Claim:
    quote: Quote
    attempted_before: bool  # an earlier create with this quote failed midway: look for its job first


UNKNOWN = "price unknown"


def money(amount: float | None, currency: str) -> str:
    """``amount`` in ``currency`` for a human; None (an unknown price) says so in words."""
    if amount is None:
        return UNKNOWN
    if 0 < amount < 0.01:
        return f"< {currency} 0.01"
    return f"{currency} {amount:,.2f}"


def per_hour(amount: float | None, currency: str) -> str:
    return UNKNOWN if amount is None else f"{money(amount, currency)}/hour"


def quote_text(quote: Quote, spec: Spec, provider_label: str, price_source: str = "") -> str:
    """The seed's cost display, extended with the worst case, where the price comes from and the quote's validity."""
    if spec.accelerator == "GPU" and spec.gpu_count:
        hw = f"{spec.cpu}vCPU {spec.memory_gb:g}GB, {spec.gpu_count}x {spec.gpu_type or 'GPU'}"
    else:
        hw = f"{spec.cpu}vCPU {spec.memory_gb:g}GB, CPU"
    workers = "Worker" if quote.worker_count == 1 else "Workers"
    unknown = quote.per_worker_hourly is None
    return "\n".join(
        [
            f"{provider_label} cost estimate:",
            *(
                [
                    "  PRICE UNKNOWN: the platform gives no price for this spec and the price table "
                    "(CLOUDJOBS_PRICE_TABLE) has none, so the cost of this job is NOT known."
                ]
                if unknown
                else []
            ),
            f"  Job type: {quote.job_type}",
            f"  Spec: {quote.ecs_spec} ({hw}) x {quote.worker_count} {workers}",
            f"  Per-worker price: {per_hour(quote.per_worker_hourly, quote.currency)}",
            *([f"  Price source: {price_source}"] if price_source else []),
            f"  Total price: {per_hour(quote.total_hourly, quote.currency)}",
            f"  Estimated runtime: ~{quote.estimated_minutes:g} minutes",
            f"  Estimated total cost: {money(quote.estimated_total, quote.currency)}",
            f"  Max runtime: {quote.max_runtime_minutes:g} minutes, worst case "
            f"{money(quote.worst_case_total, quote.currency)} (the job is stopped at that point)",
            *(
                [
                    "  Spot: priced at the latest spot price; the worst case is at "
                    + (
                        f"the price limit {money(quote.spot_price_limit, quote.currency)}/hour per worker"
                        if quote.spot_price_limit is not None
                        else "the on-demand price"
                    )
                    + ". Spot instances can be reclaimed at any time: the job may stop early."
                ]
                if quote.spot
                else []
            ),
            *([f"  Template: {quote.template_id} v{quote.template_version}"] if quote.template_id else []),
            "  Billing: pay-as-you-go, billing stops automatically when the job finishes",
            f"  Quote: {quote.quote_id}, valid until {quote.expires_at:%Y-%m-%d %H:%M:%S} UTC",
            "",
            "Proceed with creation at an unknown cost?" if unknown else "Proceed with creation?",
        ]
    )


def cost_summary(quote: Quote) -> str:
    """The quote's cost in one phrase, for confirmations; an unknown price is said in words."""
    if quote.total_hourly is None:
        return "PRICE UNKNOWN: the cost of this job is not known"
    return f"{per_hour(quote.total_hourly, quote.currency)}, at most {money(quote.worst_case_total, quote.currency)}"


class Gate:
    def __init__(self, settings: Settings, db_path: Path | None = None) -> None:
        self.settings = settings
        self.budgets = Budgets.load(settings.budgets_file)
        # Shared by every server on this state directory: each change is one short write transaction.
        self._db = Database(db_path or settings.state_dir / "quotes.db")
        self._db.ensure_schema(
            [
                """CREATE TABLE IF NOT EXISTS quotes (
                    quote_id TEXT PRIMARY KEY,
                    body TEXT NOT NULL,
                    state TEXT NOT NULL DEFAULT 'open',
                    attempts INTEGER NOT NULL DEFAULT 0,
                    job_id TEXT
                )""",
                # get_job reads the quote of its job on every call
                "CREATE INDEX IF NOT EXISTS quotes_by_job ON quotes (job_id)",
            ]
        )

    # -- issuing -------------------------------------------------------------------------------------
    def issue(
        self,
        *,
        provider: str,
        provider_label: str,
        region: str,
        spec: Spec,
        worker_count: int,
        job_type: str,
        per_worker_hourly: float | None,
        currency: str,
        estimated_minutes: float,
        max_runtime_minutes: float,
        worst_per_worker_hourly: float | None = None,
        spot: bool = False,
        spot_price_limit: float | None = None,
        template_id: str | None = None,
        template_version: int | None = None,
        identity: str,
        price_source: str = "",
    ) -> Quote:
        """A quote; a spot quote's estimate is at the spot price and its worst case at ``worst_per_worker_hourly``
        (the price limit, or on-demand). A None price is unknown: so are the totals, and any budget cap refuses it."""
        if estimated_minutes <= 0:
            raise InvalidRequest(f"estimated_minutes must be > 0 (got {estimated_minutes:g}).")
        if max_runtime_minutes <= 0:
            raise InvalidRequest(f"max_runtime_minutes must be > 0 (got {max_runtime_minutes:g}).")
        if max_runtime_minutes < estimated_minutes:
            raise InvalidRequest(
                f"max_runtime_minutes ({max_runtime_minutes:g}) must be at least estimated_minutes "
                f"({estimated_minutes:g}): the job is stopped when it reaches its max runtime."
            )
        total_hourly = None if per_worker_hourly is None else per_worker_hourly * worker_count
        estimated_total = None if total_hourly is None else total_hourly * estimated_minutes / 60
        worst_rate = worst_per_worker_hourly if worst_per_worker_hourly is not None else per_worker_hourly
        worst_hourly = None if worst_rate is None else worst_rate * worker_count
        worst_case = None if worst_hourly is None else worst_hourly * max_runtime_minutes / 60
        highest = None if total_hourly is None or worst_hourly is None else max(total_hourly, worst_hourly)
        self._check_budget(highest, worst_case, currency)
        self._check_identity_budget(identity, highest, worst_case, currency)
        now = utcnow()
        quote = Quote(
            quote_id="q-" + secrets.token_hex(8),
            provider=provider,
            region=region,
            ecs_spec=spec.instance_type,
            worker_count=worker_count,
            job_type=job_type,
            per_worker_hourly=per_worker_hourly,
            total_hourly=total_hourly,
            estimated_minutes=estimated_minutes,
            max_runtime_minutes=max_runtime_minutes,
            estimated_total=estimated_total,
            worst_case_total=worst_case,
            currency=currency,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.quote_ttl_seconds),
            display_text="",
            spot=spot,
            spot_price_limit=spot_price_limit,
            template_id=template_id,
            template_version=template_version,
            identity=identity,
        )
        quote = quote.model_copy(update={"display_text": quote_text(quote, spec, provider_label, price_source)})
        with self._db.write() as db:
            db.execute("INSERT INTO quotes (quote_id, body) VALUES (?, ?)", (quote.quote_id, quote.model_dump_json()))
        return quote

    def _check_budget(self, total_hourly: float | None, worst_case: float | None, currency: str) -> None:
        cap_hourly, cap_job = self.settings.max_hourly, self.settings.max_job_cost
        caps = [
            f"CLOUDJOBS_{n}={c:g}" for n, c in (("MAX_HOURLY", cap_hourly), ("MAX_JOB_COST", cap_job)) if c is not None
        ]
        if caps and (total_hourly is None or worst_case is None):
            raise GateRefused(
                f"Price unknown: the platform gives no price for this spec and the price table has none, so the "
                f"budget cap ({', '.join(caps)}) cannot be checked and the job is refused. Add the spec's price to "
                "the price table (CLOUDJOBS_PRICE_TABLE), or pick a priced spec (compare_offers lists them)."
            )
        if cap_hourly is not None and total_hourly is not None and total_hourly > cap_hourly:
            raise GateRefused(
                f"Over budget: this job would cost {money(total_hourly, currency)}/hour, above the cap "
                f"CLOUDJOBS_MAX_HOURLY={cap_hourly:g}. Use fewer workers or a smaller spec."
            )
        if cap_job is not None and worst_case is not None and worst_case > cap_job:
            raise GateRefused(
                f"Over budget: if it runs its full max runtime this job would cost "
                f"{money(worst_case, currency)}, above the cap CLOUDJOBS_MAX_JOB_COST={cap_job:g}. "
                "Lower max_runtime_minutes, use fewer workers or a smaller spec."
            )

    def _check_identity_budget(
        self,
        identity: str,
        hourly: float | None,
        worst_case: float | None,
        currency: str,
        db: sqlite3.Connection | None = None,
    ) -> None:
        """The identity's budget (CLOUDJOBS_BUDGETS_FILE); inside ``db``'s write transaction when given, so two
        creates at once cannot both spend the last of a day's budget."""
        if self.budgets.limits(identity) is None:
            return
        if db is None:
            with self._db.read() as snapshot:
                spent = _spent_today(snapshot, identity)
        else:
            spent = _spent_today(db, identity)
        self.budgets.check(identity, hourly, worst_case, spent, lambda amount: money(amount, currency))

    def check_identity(self, quote: Quote, identity: str) -> None:
        """Only who asked for a quote can redeem it."""
        if quote.identity != identity:
            raise Forbidden(
                f"Quote {quote.quote_id} was issued to {quote.identity!r}, not to {identity!r}: a quote can only be "
                "used by whoever asked for it. Call estimate_cost yourself and confirm the cost with the user."
            )

    def peek(self, quote_id: str | None) -> Quote | None:
        """The quote, or None (no error): for reading what it binds before the real checks."""
        try:
            return self.get(quote_id)[0]
        except GateRefused:
            return None

    def quote_of_job(self, job_id: str) -> Quote | None:
        """The quote that paid for a job (for its cost), if this server created it."""
        with self._db.read() as db:
            row = db.execute("SELECT body FROM quotes WHERE job_id = ? AND state = 'used'", (job_id,)).fetchone()
        return Quote.model_validate_json(row[0]) if row else None

    # -- redeeming -----------------------------------------------------------------------------------
    def get(self, quote_id: str | None) -> tuple[Quote, str, int]:
        """The quote, its state and its attempt count; GateRefused when there is none."""
        if not quote_id or not quote_id.strip():
            raise GateRefused(
                "No quote: call estimate_cost first, show the user its cost, and pass the quote_id it "
                "returns to create_training_job once they approved it."
            )
        with self._db.read() as db:
            row = db.execute(
                "SELECT body, state, attempts FROM quotes WHERE quote_id = ?", (quote_id.strip(),)
            ).fetchone()
        if row is None:
            raise GateRefused(
                f"Unknown quote {quote_id!r}: quotes come from estimate_cost on this server. "
                "Call estimate_cost and use the quote_id it returns."
            )
        return Quote.model_validate_json(row[0]), row[1], row[2]

    def check(self, quote: Quote, request: JobRequest, *, provider: str, region: str) -> None:
        """Refuse a quote that does not match the request or has expired."""
        ecs_spec, worker_count, job_type = request.ecs_spec, request.worker_count, request.job_type
        mismatches = []
        if quote.provider != provider or quote.region != region:
            mismatches.append(
                f"it was issued for provider {quote.provider} ({quote.region}), this server runs {provider} ({region})"
            )
        if quote.ecs_spec != ecs_spec:
            mismatches.append(f"ecs_spec is {ecs_spec!r} but the quote is for {quote.ecs_spec!r}")
        if quote.worker_count != worker_count:
            mismatches.append(f"worker_count is {worker_count} but the quote is for {quote.worker_count}")
        if quote.job_type != job_type:
            mismatches.append(f"job_type is {job_type!r} but the quote is for {quote.job_type!r}")
        if quote.spot != request.spot or (request.spot and quote.spot_price_limit != request.spot_price_limit):
            mismatches.append(
                f"spot={request.spot} (limit {request.spot_price_limit}) but the quote is for spot={quote.spot} "
                f"(limit {quote.spot_price_limit})"
            )
        if (quote.template_id, quote.template_version) != (request.template_id, request.template_version):
            mismatches.append(
                f"template {request.template_id or 'none'} v{request.template_version} but the quote is for "
                f"{quote.template_id or 'none'} v{quote.template_version}"
            )
        if mismatches:
            raise GateRefused(
                f"Quote {quote.quote_id} does not match this request: {'; '.join(mismatches)}. "
                "Call estimate_cost for exactly this spec, worker count, job type, spot and template, confirm the new "
                "cost with the user, then create with the new quote_id."
            )
        if quote.job_id is None and utcnow() >= quote.expires_at:
            raise GateRefused(
                f"Quote {quote.quote_id} expired at {quote.expires_at:%H:%M:%S} UTC (quotes are valid "
                f"{self.settings.quote_ttl_seconds:g} s). Call estimate_cost again and confirm the cost "
                "with the user."
            )
        # Caps may have been lowered since the quote was issued (e.g. a restart with new settings), and the
        # identity may have spent its day's budget on other quotes meanwhile.
        self._check_budget(quote.total_hourly, quote.worst_case_total, quote.currency)
        self._check_identity_budget(quote.identity, quote.total_hourly, quote.worst_case_total, quote.currency)

    def authorize(self, quote: Quote, confirmation: Confirmation | None) -> None:
        if confirmation is None:
            raise GateRefused(
                f"Not confirmed: nothing was created. Show the user quote {quote.quote_id} "
                f"({cost_summary(quote)}) and only after they approve it call "
                "create_training_job again with confirmed=true."
            )
        if confirmation is Confirmation.ARGUMENT and self.settings.strict_confirm:
            raise GateRefused(
                "This server runs with CLOUDJOBS_STRICT_CONFIRM=1: it creates jobs only after asking the "
                "human itself, and this MCP client does not support elicitation. Nothing was created. "
                "Use a client that supports elicitation, or have the operator unset CLOUDJOBS_STRICT_CONFIRM."
            )

    def claim(self, quote_id: str) -> Claim | None:
        """Atomically take an open quote for one create. None when it is used or being used."""
        with self._db.write() as db:
            row = db.execute("SELECT body, state, attempts FROM quotes WHERE quote_id = ?", (quote_id,)).fetchone()
            if row is None or row[1] != "open":
                return None
            quote = Quote.model_validate_json(row[0])
            self._check_identity_budget(quote.identity, quote.total_hourly, quote.worst_case_total, quote.currency, db)
            db.execute("UPDATE quotes SET state = 'claimed', attempts = attempts + 1 WHERE quote_id = ?", (quote_id,))
        return Claim(quote=quote, attempted_before=row[2] > 0)

    def release(self, quote_id: str) -> None:
        with self._db.write() as db:
            db.execute("UPDATE quotes SET state = 'open' WHERE quote_id = ? AND state = 'claimed'", (quote_id,))

    def mark_used(self, quote_id: str, job_id: str) -> None:
        with self._db.write() as db:
            row = db.execute("SELECT body FROM quotes WHERE quote_id = ?", (quote_id,)).fetchone()
            body = Quote.model_validate_json(row[0]).model_copy(update={"job_id": job_id}).model_dump_json()
            db.execute(
                "UPDATE quotes SET state = 'used', job_id = ?, body = ? WHERE quote_id = ?",
                (job_id, body, quote_id),
            )


def _spent_today(db: sqlite3.Connection, identity: str) -> float:
    """What ``identity`` committed today: the worst cases of its quotes that made (or are making) a job."""
    day = utcnow().strftime("%Y-%m-%dT00:00:00")
    (spent,) = db.execute(
        "SELECT COALESCE(SUM(json_extract(body, '$.worst_case_total')), 0) FROM quotes "
        "WHERE state IN ('used', 'claimed') AND COALESCE(json_extract(body, '$.identity'), ?) = ? "
        "AND json_extract(body, '$.created_at') >= ?",
        (LOCAL, identity, day),
    ).fetchone()
    return float(spent)
