"""create_training_job (behind the cost gate), get_job, list_jobs, stop_job, delete_job."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    Resolve,
)
from mcp.types import ToolAnnotations
from pydantic import Field

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import GateRefused
from cloudjobs_mcp.server.gate import Confirmation, cost_summary, money
from cloudjobs_mcp.server.job_cost import JobCost, job_cost
from cloudjobs_mcp.server.models import Job, JobRequest, JobStatus, JobType, MetricDefinition, Model
from cloudjobs_mcp.server.toolserver import CloudJobsServer
from cloudjobs_mcp.server.ui import JOB_LINK
from cloudjobs_mcp.tools._common import ProviderArg, caller_of, engine_of, tool_errors

MAX_PODS_SHOWN = 32
SUMMARY_REASON_CHARS = 200


class ConfirmLaunch(Model):
    """What the human is asked. Flat and primitive: elicitation forms allow nothing else."""

    confirm: bool = Field(description="Launch this job and accept its cost?")


class _NoQuestion(ConfirmLaunch):
    """Resolver outcome when nobody was asked: the client cannot elicit, or the quote already made a job."""

    reason: Literal["no-elicitation", "already-created"]


class JobView(Job):
    pods_total: int = Field(description="Pods the job has; `pods` shows at most 32")


class JobDetail(JobView):
    cost: JobCost | None = Field(default=None, description="Cost so far vs the quote; None without a quote here")


class JobSummary(Model):
    """A job in a listing or an action's answer: what tells jobs apart (get_job has pods, image, command)."""

    job_id: str
    name: str
    provider: str
    status: JobStatus
    raw_status: str
    ecs_spec: str | None = None
    worker_count: int | None = None
    created_at: datetime | None = None
    duration_seconds: float | None = None
    max_runtime_minutes: float | None = None
    reason: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    spot: bool | None = None


def summary(job: Job) -> JobSummary:
    reason = job.reason
    if reason and len(reason) > SUMMARY_REASON_CHARS:
        reason = reason[: SUMMARY_REASON_CHARS - 1] + "…"
    return JobSummary.model_construct(  # the job's fields were validated when it was read
        job_id=job.job_id, name=job.name, provider=job.provider, status=job.status, raw_status=job.raw_status,
        ecs_spec=job.ecs_spec, worker_count=job.worker_count, created_at=job.created_at,
        duration_seconds=job.duration_seconds, max_runtime_minutes=job.max_runtime_minutes, reason=reason,
        tags=job.tags, spot=job.spot or None,
    )  # fmt: skip


class CreateResult(Model):
    job: JobSummary
    quote_id: str
    reused: bool = Field(description="True when this quote had already created this job: no new job was made")
    confirmation: str = Field(description="How the cost was confirmed: elicited (the server asked) or argument")
    next_step: str


class JobList(Model):
    jobs: list[JobSummary]
    count: int
    truncated: bool
    unavailable: dict[str, str] = Field(default_factory=dict, description="Providers that failed, and why")


def detail(job: Job, cost: JobCost | None) -> JobDetail:
    """``job`` with at most MAX_PODS_SHOWN pods and its cost. Built from the job's fields as they are: they were
    validated when the job was read, and validating them again (twice, through a dump) was a third of
    get_job's own CPU."""
    fields = {**dict(job), "pods": job.pods[:MAX_PODS_SHOWN]}
    return JobDetail.model_construct(**fields, pods_total=len(job.pods), cost=cost)


async def launch_request(
    ctx: Context[Any, Any],
    quote_id: str,
    display_name: str | None,
    user_command: str | None,
    job_type: str | None,
    ecs_spec: str | None,
    worker_count: int | None,
    image: str | None,
    envs: dict[str, str] | None,
    thirdparty_libs: list[str] | None,
    workspace_id: str | None,
    resource_id: str | None,
    priority: int | None,
    sanity_check: bool,
    sanity_check_args: str | None,
    hyperparameters: dict[str, str] | None,
    metric_definitions: list[MetricDefinition] | None,
    spot: bool,
    spot_price_limit: float | None,
    template_id: str | None,
    template_version: int | None,
) -> JobRequest:
    """The request a create call makes (a template's config plus the call's overrides), shared by the
    confirmation question and the tool body."""
    fields = {
        "display_name": display_name,
        "user_command": user_command,
        "job_type": job_type,
        "ecs_spec": ecs_spec,
        "worker_count": worker_count,
        "image": image,
        "envs": envs,
        "thirdparty_libs": thirdparty_libs,
        "workspace_id": workspace_id,
        "resource_id": resource_id,
        "priority": priority,
        "sanity_check": sanity_check,
        "sanity_check_args": sanity_check_args,
        "hyperparameters": hyperparameters,
        "metric_definitions": metric_definitions,
        "spot": spot,
        "spot_price_limit": spot_price_limit,
    }
    engine = engine_of(ctx)
    with tool_errors():
        return await engine.request(
            fields, template_id=template_id, template_version=template_version, quote=engine.gate.peek(quote_id)
        )


async def confirm_launch(
    quote_id: str,
    request: Annotated[JobRequest, Resolve(launch_request)],
    ctx: Context[Any, Any],
    provider: str | None = None,
) -> ConfirmLaunch | Elicit[ConfirmLaunch]:
    """Ask the human to approve the quoted cost, after everything else was checked.

    Runs before the tool body (and again on each round of a multi-round call), so a bad request or quote
    is refused without bothering anyone, and nothing is created before the answer is in.
    """
    engine = engine_of(ctx)
    with tool_errors():
        quote, used = await engine.preflight(request, quote_id, caller_of(ctx), provider)
    if used:
        return _NoQuestion(confirm=False, reason="already-created")
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        return _NoQuestion(confirm=False, reason="no-elicitation")
    command = request.user_command
    command = command if len(command) <= 200 else command[:197] + "..."
    spot = " on SPOT capacity (it can be reclaimed)" if quote.spot else ""
    # Everything the human approves is in the question, so a changed request re-asks (the SDK keys
    # an answer to the exact text it was given).
    return Elicit(
        f"Launch {request.display_name!r} on {engine.label_of(quote.provider)} ({quote.region}){spot}: "
        f"{quote.ecs_spec} x {quote.worker_count} {'worker' if quote.worker_count == 1 else 'workers'}, "
        f"{cost_summary(quote)} if it runs the full max runtime of {quote.max_runtime_minutes:g} minutes "
        f"(estimate {money(quote.estimated_total, quote.currency)}). Command: {command}  [quote {quote.quote_id}]",
        ConfirmLaunch,
    )


def register(mcp: CloudJobsServer, settings: Settings) -> None:
    writable = not settings.read_only

    if writable:

        @mcp.tool(
            toolset="core",
            title="Create a training job",
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
            ),
        )
        async def create_training_job(
            ctx: Context[Any, Any],
            confirmation: Annotated[ElicitationResult[ConfirmLaunch], Resolve(confirm_launch)],
            request: Annotated[JobRequest, Resolve(launch_request)],
            quote_id: str = Field(description="quote_id from estimate_cost, approved by the user"),
            display_name: str | None = Field(default=None, description="Job name: letters, digits, '_', '.', '-'"),
            user_command: str | None = Field(default=None, description="Shell command every worker runs"),
            job_type: JobType | None = Field(default=None, description="Must match the quote"),
            ecs_spec: str | None = Field(default=None, description="Spec from list_ecs_specs; must match the quote"),
            worker_count: int | None = Field(default=None, description="Workers; must match the quote"),
            image: str | None = Field(default=None, description="Container image; omit to resolve from the spec"),
            envs: dict[str, str] | None = Field(default=None, description="Environment variables"),
            thirdparty_libs: list[str] | None = Field(default=None, description="pip packages to install"),
            workspace_id: str | None = Field(default=None, description="Workspace; omit to auto-detect"),
            resource_id: str | None = Field(default=None, description="Resource quota id; omit for public"),
            priority: int | None = Field(default=None, ge=1, le=9, description="Scheduling priority, 9 first"),
            sanity_check: bool = Field(default=False, description="Run pre-flight checks before the workers start"),
            sanity_check_args: str | None = Field(default=None, description="Sanity-check options, key=value,..."),
            hyperparameters: dict[str, str] | None = Field(
                default=None, description="Reach the program as HP_<NAME> variables and a JSON file; recorded"
            ),
            metric_definitions: list[MetricDefinition] | None = Field(
                default=None, description="Training metrics to read from the log: [{name, regex}]"
            ),
            spot: bool = Field(default=False, description="Spot capacity; must match the quote"),
            spot_price_limit: float | None = Field(default=None, description="Must match the quote"),
            template_id: str | None = Field(default=None, description="Make the job from this template"),
            template_version: int | None = Field(default=None, description="Template version; default: the quote's"),
            provider: ProviderArg = None,
            confirmed: bool = Field(
                default=False,
                description="Set true ONLY after the user approved this quote's cost in the conversation. "
                "Ignored when the server can ask the user itself.",
            ),
        ) -> CreateResult:
            """Create (launch) a training job from an approved quote. Requires quote_id from estimate_cost
            with the same ecs_spec, worker_count, job_type, spot and template; the job's max runtime is the
            quote's. With template_id the template's config is used and the other fields override it (its
            constraints decide what may be overridden). When the client supports elicitation the server
            asks the user to confirm the cost itself; otherwise set confirmed=true only after the user
            approved the quoted cost. Calling again with the same quote returns the same job, never a second
            one. Returns the job; then call wait_job_complete."""
            engine = engine_of(ctx)
            how: Confirmation | None
            match confirmation:
                case AcceptedElicitation(data=_NoQuestion(reason="no-elicitation")):
                    how = Confirmation.ARGUMENT if confirmed else None
                case AcceptedElicitation(data=_NoQuestion(reason="already-created")):
                    how = None  # the engine returns the quote's job without creating anything
                case AcceptedElicitation(data=ConfirmLaunch(confirm=True)):
                    how = Confirmation.ELICITED
                case _:
                    with tool_errors():
                        raise GateRefused(
                            "The user declined the launch: nothing was created. Ask what to change (spec, "
                            "workers, max runtime) and get a new quote with estimate_cost."
                        )
            with tool_errors():
                outcome = await engine.create(request, quote_id, how, provider, caller=caller_of(ctx))
            job = outcome.job
            return CreateResult(
                job=summary(job),
                quote_id=outcome.quote.quote_id,
                reused=outcome.reused,
                confirmation="reused" if outcome.reused else str(how),
                next_step=(
                    f"Quote {outcome.quote.quote_id} already created job {job.job_id}; no new job was made. "
                    if outcome.reused
                    else ""
                )
                + f"Call wait_job_complete(job_id={job.job_id!r}) to follow it, then get_job_logs.",
            )

    @mcp.tool(
        toolset="core",
        title="Get a job",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
        meta=JOB_LINK,
    )
    async def get_job(ctx: Context[Any, Any], job_id: str, provider: ProviderArg = None) -> JobDetail:
        """Get one job's current status (normalized and the platform's raw status), pods, times, reason,
        max runtime and cost so far against its quote. Use wait_job_complete to wait for it to finish."""
        engine = engine_of(ctx)
        with tool_errors():
            job = await engine.get(job_id, provider)
        return detail(job, job_cost(job, engine.gate.quote_of_job(job.job_id)))

    @mcp.tool(toolset="core", title="List jobs", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def list_jobs(
        ctx: Context[Any, Any],
        status: JobStatus | None = Field(default=None, description="Only jobs in this status"),
        only_created_here: bool = Field(default=False, description="Only jobs this server created"),
        only_mine: bool = Field(default=False, description="Only jobs you (this caller's identity) created"),
        labels: dict[str, str] | None = Field(default=None, description="Only jobs carrying all these labels"),
        include_training_jobs: bool = Field(
            default=False, description="pai: also PaiStudio training jobs (train… ids); one more API call"
        ),
        limit: int = Field(default=20, ge=1, le=100),
        provider: ProviderArg = None,
    ) -> JobList:
        """List jobs newest first, optionally by status and labels; without `provider`, every enabled
        provider's (one that fails is named in `unavailable`). Returns at most `limit` jobs, each with what
        tells it apart (status, spec, workers, times, reason, labels): get_job has one job's pods, image and
        command; compare_jobs puts runs side by side."""
        with tool_errors():
            listing = await engine_of(ctx).list(
                status,
                only_ours=only_created_here,
                only_of=caller_of(ctx).identity if only_mine else None,
                labels=labels,
                limit=limit + 1,
                include_training_jobs=include_training_jobs,
                provider=provider,
            )
        jobs = listing.jobs
        shown = [summary(j) for j in jobs[:limit]]
        return JobList(jobs=shown, count=len(shown), truncated=len(jobs) > limit, unavailable=listing.failures)

    if not writable:
        return

    @mcp.tool(
        toolset="core",
        title="Stop a job",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    )
    async def stop_job(ctx: Context[Any, Any], job_id: str, provider: ProviderArg = None) -> JobSummary:
        """Stop a running or queued job (billing stops with it). Stopping a finished job changes nothing.
        Returns the job; its status becomes Stopping, then Stopped."""
        with tool_errors():
            return summary(await engine_of(ctx).stop(job_id, provider, caller=caller_of(ctx)))

    @mcp.tool(
        toolset="core",
        title="Delete a job",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    )
    async def delete_job(ctx: Context[Any, Any], job_id: str, provider: ProviderArg = None) -> str:
        """Delete a finished job's record (and, on the local provider, its logs and files). Stop a running
        job first. This cannot be undone."""
        with tool_errors():
            await engine_of(ctx).delete(job_id, provider, caller=caller_of(ctx))
        return f"Deleted job {job_id}."
