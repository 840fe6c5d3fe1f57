"""cleanup_jobs: stop and delete finished or failed jobs, dry run first, the human confirming deletes."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, Resolve
from mcp.types import ToolAnnotations
from pydantic import Field

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import CloudJobsError, Forbidden
from cloudjobs_mcp.server.identity import SCOPE_ADMIN
from cloudjobs_mcp.server.models import Job, JobStatus, Model, utcnow
from cloudjobs_mcp.server.toolserver import CloudJobsServer
from cloudjobs_mcp.server.watch import until_terminal
from cloudjobs_mcp.tools._common import ProviderArg, caller_of, engine_of, tool_errors

CleanupKind = Literal["would_stop", "would_delete", "would_stop_and_delete", "stopped", "deleted", "skipped", "error"]
MAX_JOBS = 100


class ConfirmDelete(Model):
    confirm: bool = Field(description="Delete these jobs? This cannot be undone.")


class CleanupAction(Model):
    job_id: str
    provider: str
    name: str
    status: str
    action: CleanupKind
    detail: str = ""


class CleanupResult(Model):
    dry_run: bool
    matched: int
    actions: list[CleanupAction]
    unavailable: dict[str, str] = Field(default_factory=dict, description="Providers that failed, and why")
    summary: str


class Candidates(Model):
    jobs: list[Job]
    unavailable: dict[str, str]


async def cleanup_candidates(
    status: JobStatus,
    older_than_hours: float | None,
    name_prefix: str | None,
    only_created_here: bool,
    only_mine: bool,
    ctx: Context[Any, Any],
    provider: str | None = None,
) -> Candidates:
    """The jobs the call would touch (every provider's unless one is named); shared by the confirmation
    question and the tool body."""
    engine, caller = engine_of(ctx), caller_of(ctx)
    with tool_errors():
        engine.require_writable("clean up jobs")
        if not only_mine and not caller.admin:
            raise Forbidden(
                f"only_mine=false touches other identities' jobs: it needs the {SCOPE_ADMIN} scope, which "
                f"{caller.identity!r} does not have. Clean up your own jobs (only_mine=true)."
            )
        mine = caller.identity if only_mine else None
        listing = await engine.list(
            status, only_ours=only_created_here, only_of=mine, limit=MAX_JOBS, provider=provider
        )
    cutoff = utcnow() - timedelta(hours=older_than_hours) if older_than_hours is not None else None
    jobs = [
        j
        for j in listing.jobs
        if (not name_prefix or j.name.startswith(name_prefix))
        and (cutoff is None or (j.created_at is not None and j.created_at < cutoff))
    ]
    return Candidates(jobs=jobs, unavailable=listing.failures)


async def confirm_delete(
    delete: bool,
    dry_run: bool,
    found: Annotated[Candidates, Resolve(cleanup_candidates)],
    ctx: Context[Any, Any],
) -> ConfirmDelete | Elicit[ConfirmDelete]:
    """Ask the human to confirm the exact list before anything is deleted (when the client can be asked)."""
    candidates = found.jobs
    caps = ctx.client_capabilities
    if dry_run or not delete or not candidates or caps is None or caps.elicitation is None:
        return ConfirmDelete(confirm=True)
    shown = ", ".join(f"{j.job_id} ({j.provider}, {j.name}, {j.status.value})" for j in candidates[:20])
    more = f" and {len(candidates) - 20} more" if len(candidates) > 20 else ""
    return Elicit(f"Delete {len(candidates)} jobs: {shown}{more}? Running ones are stopped first.", ConfirmDelete)


def register(mcp: CloudJobsServer, settings: Settings) -> None:
    if settings.read_only:
        return

    @mcp.tool(
        toolset="core",
        title="Clean up jobs",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    )
    async def cleanup_jobs(
        ctx: Context[Any, Any],
        found: Annotated[Candidates, Resolve(cleanup_candidates)],
        answer: Annotated[ElicitationResult[ConfirmDelete], Resolve(confirm_delete)],
        status: JobStatus = Field(default=JobStatus.FAILED, description="Which jobs: Failed, Stopped, Succeeded, ..."),
        delete: bool = Field(default=False, description="Also delete them (running ones are stopped first)"),
        dry_run: bool = Field(default=True, description="Only list what would be done"),
        older_than_hours: float | None = Field(default=None, gt=0, description="Only jobs created before this"),
        name_prefix: str | None = Field(default=None, description="Only jobs whose name starts with this"),
        only_created_here: bool = Field(default=True, description="Touch only jobs this server created"),
        only_mine: bool = Field(default=True, description="Touch only jobs you created (false needs jobs:admin)"),
        provider: ProviderArg = None,
    ) -> CleanupResult:
        """Clean up jobs in one status (default Failed): stop those still running and, with delete=true,
        delete them. Dry run is the default and only lists what would happen; call again with
        dry_run=false to act. Deleting asks the user to confirm the list when the client supports it. By
        default only jobs you created on this server are touched, on every enabled provider unless one is
        named. Returns each job's action and why."""
        engine, caller = engine_of(ctx), caller_of(ctx)
        candidates, unavailable = found.jobs, found.unavailable
        if not (isinstance(answer, AcceptedElicitation) and answer.data.confirm):
            return CleanupResult(
                dry_run=dry_run,
                matched=len(candidates),
                actions=[_action(j, "skipped", "the user declined the deletion") for j in candidates],
                unavailable=unavailable,
                summary=f"The user declined: none of the {len(candidates)} jobs was stopped or deleted.",
            )
        actions: list[CleanupAction] = []
        for job in candidates:
            running = not job.status.is_terminal
            if dry_run:
                kind: CleanupKind = (
                    ("would_stop_and_delete" if delete else "would_stop")
                    if running
                    else ("would_delete" if delete else "skipped")
                )
                actions.append(
                    _action(job, kind, "already finished; pass delete=true to delete it" * (kind == "skipped"))
                )
                continue
            try:
                if running:
                    await engine.stop(job.job_id, job.provider, caller=caller)
                if delete:
                    if running:
                        await until_terminal(engine, job.job_id, provider=job.provider)
                    await engine.delete(job.job_id, job.provider, caller=caller)
                actions.append(
                    _action(job, "deleted")
                    if delete
                    else _action(job, "stopped")
                    if running
                    else _action(job, "skipped", "already finished; pass delete=true to delete it")
                )
            except CloudJobsError as exc:  # one job's failure must not hide what happened to the others
                actions.append(_action(job, "error", str(exc)))
            except TimeoutError:
                actions.append(_action(job, "error", "it did not stop within 60 s, so it was not deleted; retry later"))
        counts: dict[str, int] = {}
        for a in actions:
            counts[a.action] = counts.get(a.action, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or f"no {status.value} jobs matched"
        if dry_run and candidates:
            summary += ". Dry run: nothing was changed; call again with dry_run=false to do it."
        if unavailable:
            summary += f". Not cleaned (could not be asked): {', '.join(unavailable)}"
        return CleanupResult(
            dry_run=dry_run, matched=len(candidates), actions=actions, unavailable=unavailable, summary=summary
        )


def _action(job: Job, kind: CleanupKind, detail: str = "") -> CleanupAction:
    return CleanupAction(
        job_id=job.job_id, provider=job.provider, name=job.name, status=job.status.value, action=kind, detail=detail
    )
