"""create_training_job (behind the cost gate), get_job, list_jobs, stop_job, delete_job."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    Resolve,
)
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from server.config import Settings
from server.errors import GateRefused
from server.gate import Confirmation, money
from server.models import Job, JobRequest, JobStatus, JobType
from tools._common import engine_of, tool_errors

MAX_PODS_SHOWN = 32


class ConfirmLaunch(BaseModel):
    """What the human is asked. Flat and primitive: elicitation forms allow nothing else."""

    confirm: bool = Field(description="Launch this job and accept its cost?")


class _NoQuestion(ConfirmLaunch):
    """Resolver outcome when nobody was asked: the client cannot elicit, or the quote already made a job."""

    reason: Literal["no-elicitation", "already-created"]


class JobView(Job):
    pods_total: int = Field(description="Pods the job has; `pods` shows at most 32")


class CreateResult(BaseModel):
    job: JobView
    quote_id: str
    reused: bool = Field(description="True when this quote had already created this job: no new job was made")
    confirmation: str = Field(description="How the cost was confirmed: elicited (the server asked) or argument")
    next_step: str


class JobList(BaseModel):
    jobs: list[JobView]
    count: int
    truncated: bool


def view(job: Job) -> JobView:
    return JobView(**{**job.model_dump(), "pods": job.pods[:MAX_PODS_SHOWN]}, pods_total=len(job.pods))


def _request(
    display_name: str,
    user_command: str,
    job_type: str,
    ecs_spec: str,
    worker_count: int,
    image: str | None,
    envs: dict[str, str] | None,
    thirdparty_libs: list[str] | None,
    workspace_id: str | None,
    resource_id: str | None,
    priority: int | None = None,
    sanity_check: bool = False,
    sanity_check_args: str | None = None,
) -> JobRequest:
    return JobRequest(
        display_name=display_name,
        user_command=user_command,
        job_type=job_type,
        ecs_spec=ecs_spec,
        worker_count=worker_count,
        max_runtime_minutes=1,  # the quote's max runtime replaces this in the engine
        image=image,
        envs=envs or {},
        thirdparty_libs=thirdparty_libs or [],
        workspace_id=workspace_id,
        resource_id=resource_id,
        priority=priority,
        sanity_check=sanity_check,
        sanity_check_args=sanity_check_args,
    )


async def confirm_launch(
    display_name: str,
    user_command: str,
    job_type: str,
    ecs_spec: str,
    worker_count: int,
    quote_id: str,
    image: str | None,
    envs: dict[str, str] | None,
    thirdparty_libs: list[str] | None,
    workspace_id: str | None,
    resource_id: str | None,
    priority: int | None,
    sanity_check: bool,
    sanity_check_args: str | None,
    ctx: Context[Any, Any],
) -> ConfirmLaunch | Elicit[ConfirmLaunch]:
    """Ask the human to approve the quoted cost, after everything else was checked.

    Runs before the tool body (and again on each round of a multi-round call), so a bad request or quote
    is refused without bothering anyone, and nothing is created before the answer is in.
    """
    engine = engine_of(ctx)
    request = _request(
        display_name, user_command, job_type, ecs_spec, worker_count, image, envs, thirdparty_libs,
        workspace_id, resource_id, priority, sanity_check, sanity_check_args,
    )  # fmt: skip
    with tool_errors():
        quote, used = await engine.preflight(request, quote_id)
    if used:
        return _NoQuestion(confirm=False, reason="already-created")
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        return _NoQuestion(confirm=False, reason="no-elicitation")
    command = user_command if len(user_command) <= 200 else user_command[:197] + "..."
    # Everything the human approves is in the question, so a changed request re-asks (the SDK keys
    # an answer to the exact text it was given).
    return Elicit(
        f"Launch {display_name!r} on {engine.label} ({quote.region}): {quote.ecs_spec} x {quote.worker_count} "
        f"{'worker' if quote.worker_count == 1 else 'workers'}, {money(quote.total_hourly, quote.currency)}/hour, "
        f"at most {money(quote.worst_case_total, quote.currency)} if it runs the full max runtime of "
        f"{quote.max_runtime_minutes:g} minutes (estimate {money(quote.estimated_total, quote.currency)}). "
        f"Command: {command}  [quote {quote.quote_id}]",
        ConfirmLaunch,
    )


def register(mcp: MCPServer, settings: Settings) -> None:
    writable = not settings.read_only

    if writable:

        @mcp.tool(
            title="Create a training job",
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
            ),
        )
        async def create_training_job(
            ctx: Context[Any, Any],
            confirmation: Annotated[ElicitationResult[ConfirmLaunch], Resolve(confirm_launch)],
            display_name: str = Field(description="Job name: letters, digits, '_', '.', '-'"),
            user_command: str = Field(description="Shell command every worker runs, e.g. 'python train.py'"),
            job_type: JobType = Field(description="Must match the quote"),
            ecs_spec: str = Field(description="Spec from list_ecs_specs; must match the quote"),
            worker_count: int = Field(description="Workers; must match the quote"),
            quote_id: str = Field(description="quote_id from estimate_cost, approved by the user"),
            image: str | None = Field(default=None, description="Container image; omit to resolve from the spec"),
            envs: dict[str, str] | None = Field(default=None, description="Environment variables"),
            thirdparty_libs: list[str] | None = Field(default=None, description="pip packages to install"),
            workspace_id: str | None = Field(default=None, description="Workspace; omit to auto-detect"),
            resource_id: str | None = Field(default=None, description="Resource quota id; omit for public"),
            priority: int | None = Field(default=None, ge=1, le=9, description="Scheduling priority, 9 first"),
            sanity_check: bool = Field(default=False, description="Run pre-flight checks before the workers start"),
            sanity_check_args: str | None = Field(default=None, description="Sanity-check options, key=value,..."),
            confirmed: bool = Field(
                default=False,
                description="Set true ONLY after the user approved this quote's cost in the conversation. "
                "Ignored when the server can ask the user itself.",
            ),
        ) -> CreateResult:
            """Create (launch) a training job from an approved quote. Requires quote_id from estimate_cost
            with the same ecs_spec, worker_count and job_type; the job's max runtime is the quote's. When
            the client supports elicitation the server asks the user to confirm the cost itself;
            otherwise set confirmed=true only after the user approved the quoted cost. Calling again with
            the same quote returns the same job, never a second one. Returns the job; then call
            wait_job_complete."""
            engine = engine_of(ctx)
            request = _request(
                display_name, user_command, job_type, ecs_spec, worker_count, image, envs, thirdparty_libs,
                workspace_id, resource_id, priority, sanity_check, sanity_check_args,
            )  # fmt: skip
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
                outcome = await engine.create(request, quote_id, how)
            job = outcome.job
            return CreateResult(
                job=view(job),
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

    @mcp.tool(title="Get a job", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def get_job(ctx: Context[Any, Any], job_id: str) -> JobView:
        """Get one job's current status (normalized and the platform's raw status), pods, times, reason
        and max runtime. Use wait_job_complete to wait for it to finish."""
        with tool_errors():
            return view(await engine_of(ctx).get(job_id))

    @mcp.tool(title="List jobs", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def list_jobs(
        ctx: Context[Any, Any],
        status: JobStatus | None = Field(default=None, description="Only jobs in this status"),
        only_created_here: bool = Field(default=False, description="Only jobs this server created"),
        limit: int = Field(default=20, ge=1, le=100),
    ) -> JobList:
        """List jobs newest first, optionally by status. Returns at most `limit` jobs (pods omitted: call
        get_job for one job's pods)."""
        with tool_errors():
            jobs = await engine_of(ctx).list(status, only_ours=only_created_here, limit=limit + 1)
        shown = [view(j.model_copy(update={"pods": []})) for j in jobs[:limit]]
        return JobList(jobs=shown, count=len(shown), truncated=len(jobs) > limit)

    if not writable:
        return

    @mcp.tool(
        title="Stop a job",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    )
    async def stop_job(ctx: Context[Any, Any], job_id: str) -> JobView:
        """Stop a running or queued job (billing stops with it). Stopping a finished job changes nothing.
        Returns the job; its status becomes Stopping, then Stopped."""
        with tool_errors():
            return view(await engine_of(ctx).stop(job_id))

    @mcp.tool(
        title="Delete a job",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    )
    async def delete_job(ctx: Context[Any, Any], job_id: str) -> str:
        """Delete a finished job's record (and, on the local provider, its logs and files). Stop a running
        job first. This cannot be undone."""
        with tool_errors():
            await engine_of(ctx).delete(job_id)
        return f"Deleted job {job_id}."
