"""What a job has cost so far, against its quote's estimate and worst case (for get_job, compare_jobs, the view)."""

from __future__ import annotations

from pydantic import Field

from cloudjobs_mcp.server.models import Job, Model, Quote, utcnow


class JobCost(Model):
    currency: str
    hourly: float | None = Field(description="The quoted total price per hour (None: price unknown)")
    so_far: float | None = Field(description="Hourly price x the time the job has run so far")
    estimate: float | None = Field(description="The quote's estimated total")
    worst_case: float | None = Field(description="The quote's total if the job runs its full max runtime")


def run_seconds(job: Job) -> float | None:
    """Seconds the job has run (billing time): the platform's duration, else since it started."""
    if job.duration_seconds is not None:
        return job.duration_seconds
    if job.started_at is None:
        return None
    end = job.finished_at or utcnow()
    return max(0.0, (end - job.started_at).total_seconds())


def job_cost(job: Job, quote: Quote | None) -> JobCost | None:
    """The job's cost from the quote that paid for it; None when this server holds no such quote."""
    if quote is None:
        return None
    seconds = run_seconds(job)
    hourly = quote.total_hourly
    so_far = round(hourly * (seconds or 0.0) / 3600, 6) if hourly is not None else None
    return JobCost(
        currency=quote.currency,
        hourly=hourly,
        so_far=so_far,
        estimate=quote.estimated_total,
        worst_case=quote.worst_case_total,
    )
