"""How a team manages runs: labels, job templates, spot prices, output models, side-by-side comparison."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from cloudjobs_mcp.server import constraints as template_rules
from cloudjobs_mcp.server import plot as pictures
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.engine import check_job_id
from cloudjobs_mcp.server.errors import CloudJobsError, InvalidRequest
from cloudjobs_mcp.server.job_cost import job_cost
from cloudjobs_mcp.server.metrics import DEFAULT_DEFINITIONS, compile_definitions, downsample, parse_training_metrics
from cloudjobs_mcp.server.models import JobTemplate, Model, OutputModels, TemplateConfig, TemplateConstraint
from cloudjobs_mcp.server.toolserver import CloudJobsServer
from cloudjobs_mcp.server.ui import COMPARE_LINK
from cloudjobs_mcp.tools._common import ProviderArg, caller_of, engine_of, tool_errors, with_plot
from cloudjobs_mcp.tools.jobs import JobSummary, summary

READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
MAX_COMPARE = 10


class Unlabeled(JobSummary):
    not_found: list[str] = Field(default_factory=list, description="Keys the job did not carry: nothing removed")
    note: str | None = None


class TemplateList(Model):
    templates: list[JobTemplate]
    source: str


class SpotHistory(Model):
    instance_type: str
    hours: float
    latest: float | None
    min: float | None
    max: float | None
    samples: int
    series: list[float] = Field(description="At most 20 bucket means, oldest first")
    note: str


class Comparison(Model):
    job_id: str
    name: str
    status: str
    hyperparameters: dict[str, str]
    final_metrics: dict[str, float] = Field(description="The last value of each training metric in the log")
    duration_seconds: float | None
    cost: float | None = Field(description="Time run x the quoted total hourly price (None without a quote)")
    currency: str | None


class ComparisonTable(Model):
    columns: list[str]
    rows: list[Comparison]
    note: str


def register(mcp: CloudJobsServer, settings: Settings) -> None:
    writable = not settings.read_only
    if writable:

        @mcp.tool(toolset="team", title="Label a job", annotations=WRITE)
        async def label_job(
            ctx: Context[Any, Any], job_id: str, labels: dict[str, str], provider: ProviderArg = None
        ) -> JobSummary:
            """Add or change labels (key → value) on a job, e.g. {"experiment": "lr-sweep"}; list_jobs can
            filter by them. The server's own labels (cloudjobs-*) cannot be changed."""
            with tool_errors():
                return summary(await engine_of(ctx).set_labels(job_id, labels, provider, caller=caller_of(ctx)))

        @mcp.tool(toolset="team", title="Remove labels from a job", annotations=WRITE)
        async def unlabel_job(
            ctx: Context[Any, Any], job_id: str, keys: list[str], provider: ProviderArg = None
        ) -> Unlabeled:
            """Remove labels from a job by key. The server's own labels (cloudjobs-*) cannot be removed.
            Returns the job with its remaining labels; keys the job did not carry are named in `not_found`
            (nothing was removed for them)."""
            with tool_errors():
                job, absent = await engine_of(ctx).remove_labels(job_id, keys, provider, caller=caller_of(ctx))
            note = "; ".join(f'label "{k}" not found' for k in absent) + "." if absent else None
            return Unlabeled(**summary(job).model_dump(), not_found=[*absent], note=note)

        @mcp.tool(toolset="templates", title="Save a job template", annotations=WRITE)
        async def save_job_template(
            ctx: Context[Any, Any],
            name: str = Field(description="Template name; saving an existing name makes a new version"),
            from_job_id: str | None = Field(default=None, description="Take the config from this job"),
            config: TemplateConfig | None = Field(default=None, description="The config (overrides from_job_id's)"),
            constraints: dict[str, TemplateConstraint] | None = Field(
                default=None, description="JSONPath → locked | overridable | required, e.g. {'$.ecs_spec': 'locked'}"
            ),
            description: str | None = None,
            provider: ProviderArg = None,
        ) -> JobTemplate:
            """Save one job configuration for many runs (a new version when the name exists). Runs are made
            with estimate_cost(template_id=…) and create_training_job(template_id=…, quote_id=…): a template
            never skips the quote. Constraints lock fields, leave them overridable or require the run to
            give them."""
            engine = engine_of(ctx)
            with tool_errors():
                base = TemplateConfig()
                if from_job_id:
                    job = await engine.get(from_job_id, provider)
                    base = TemplateConfig(
                        user_command=job.user_command, job_type=job.job_type, ecs_spec=job.ecs_spec,
                        worker_count=job.worker_count, image=job.image, max_runtime_minutes=job.max_runtime_minutes,
                        priority=job.priority, resource_id=job.resource_id, hyperparameters=job.hyperparameters,
                    )  # fmt: skip
                elif config is None:
                    raise InvalidRequest("Give config or from_job_id: the job configuration to save.")
                merged = TemplateConfig.model_validate(
                    {**base.model_dump(), **(config.model_dump(exclude_defaults=True) if config else {})}
                )
                rules = dict(constraints or {})
                template_rules.check_constraint_keys(rules)
                backend = engine.templates(provider)
                existing = next((t for t in await backend.list() if t.name == name), None)
                if existing is None:
                    return await backend.create(name, merged, rules, description or "")
                return await backend.update(existing.template_id, merged, rules, description)

        @mcp.tool(
            toolset="templates",
            title="Delete a job template",
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
        )
        async def delete_job_template(ctx: Context[Any, Any], template_id: str, provider: ProviderArg = None) -> str:
            """Delete a job template and all its versions. Jobs already made from it keep running and are not
            touched; quotes that name it can no longer create jobs."""
            with tool_errors():
                await engine_of(ctx).templates(provider).delete(template_id)
            return f"Deleted template {template_id}."

        @mcp.tool(toolset="templates", title="Set a template's default version", annotations=WRITE)
        async def set_default_template_version(
            ctx: Context[Any, Any], template_id: str, version: int, provider: ProviderArg = None
        ) -> JobTemplate:
            """Make `version` the template's default: estimate_cost and create_training_job use it when they
            name no template_version. Returns the template at that version."""
            with tool_errors():
                return await engine_of(ctx).templates(provider).set_default_version(template_id, version)

    @mcp.tool(toolset="templates", title="List job templates", annotations=READ)
    async def list_job_templates(ctx: Context[Any, Any], provider: ProviderArg = None) -> TemplateList:
        """The saved job templates, each at its default version, with its config and constraints."""
        with tool_errors():
            backend = engine_of(ctx).templates(provider)
            return TemplateList(templates=(await backend.list())[:50], source=backend.source)

    @mcp.tool(toolset="templates", title="Get a job template", annotations=READ)
    async def get_job_template(
        ctx: Context[Any, Any], template_id: str, version: int | None = None, provider: ProviderArg = None
    ) -> JobTemplate:
        """One job template at `version` (default: its default version): its config, its constraints
        (what a run may override or must give) and all its versions."""
        with tool_errors():
            return await engine_of(ctx).templates(provider).get(template_id, version)

    @mcp.tool(toolset="team", title="Spot price history", annotations=READ)
    async def get_spot_price_history(
        ctx: Context[Any, Any],
        instance_type: str,
        hours: float = Field(default=24, gt=0, le=720, description="How far back"),
        provider: ProviderArg = None,
    ) -> SpotHistory:
        """Spot prices of one instance type over the last hours, summarised (latest, min, max, a compact
        series): to decide whether a spot quote (estimate_cost spot=true) is worth the reclaim risk."""
        with tool_errors():
            engine = engine_of(ctx)
            chosen = engine.pick(provider)
            if not provider and len(engine.providers) > 1:
                chosen, _ = await engine.resolve_spec(instance_type, None)  # the one provider offering it
            points = await chosen.spot_price_history(instance_type, hours)
        prices = [p.price for p in points]
        return SpotHistory(
            instance_type=instance_type,
            hours=hours,
            latest=prices[-1] if prices else None,
            min=min(prices) if prices else None,
            max=max(prices) if prices else None,
            samples=len(prices),
            series=downsample(prices, 20),
            note="Per instance-hour. Spot instances can be reclaimed at any time."
            if prices
            else "No spot price was reported for this instance type in that window.",
        )

    @mcp.tool(toolset="team", title="List a job's output models", annotations=READ)
    async def list_output_models(ctx: Context[Any, Any], job_id: str, provider: ProviderArg = None) -> OutputModels:
        """What a job produced: its output models or files with sizes and paths (local: the files it
        wrote to $CLOUDJOBS_OUTPUT_DIR; PaiStudio: its output models; DLC: where outputs go)."""
        with tool_errors():
            chosen, job_id = await engine_of(ctx).route(job_id, provider)
            return await chosen.output_models(job_id)

    @mcp.tool(toolset="team", title="Compare jobs", annotations=READ, meta=COMPARE_LINK)
    async def compare_jobs(
        ctx: Context[Any, Any],
        job_ids: list[str],
        provider: ProviderArg = None,
        plot: bool = Field(default=False, description="Also return the runs' curves overlaid as a PNG image"),
        plot_size: str = Field(default=pictures.DEFAULT_SIZE, description="PNG WIDTHxHEIGHT in pixels"),
    ) -> Annotated[CallToolResult, ComparisonTable]:
        """Runs side by side: hyperparameters, final training metrics from each log (the job's metric
        definitions, else loss/acc/lr/step), duration and cost. At most 10 jobs. plot=true adds the
        runs' curves overlaid as a picture."""
        with tool_errors():
            if not job_ids or len(job_ids) > MAX_COMPARE:
                raise InvalidRequest(f"Give 1 to {MAX_COMPARE} job ids to compare (got {len(job_ids)}).")
            size = pictures.parse_size(plot_size) if plot else None
        engine = engine_of(ctx)
        rows: dict[str, Comparison] = {}
        curves: dict[str, dict[str, list[float]]] = {}

        async def one(job_id: str) -> None:
            job = await engine.get(job_id, provider)
            patterns = compile_definitions(job.metric_definitions or None)
            values: dict[str, list[float]] = {}
            for pod in job.pods[:1]:  # rank 0 logs the metrics in the usual setup
                lines = (await engine.provider_of(job).pod_logs(job.job_id, pod.pod_id, max_lines=20_000)).lines
                values = parse_training_metrics(lines, patterns)
            curves[job_id] = values
            quote = engine.gate.quote_of_job(job.job_id)
            cost = job_cost(job, quote)
            rows[job_id] = Comparison(
                job_id=job.job_id, name=job.name, status=job.status.value, hyperparameters=job.hyperparameters,
                final_metrics={k: v[-1] for k, v in values.items()}, duration_seconds=job.duration_seconds,
                cost=cost.so_far if cost else None, currency=quote.currency if quote else None,
            )  # fmt: skip

        with tool_errors():
            try:
                async with anyio.create_task_group() as tg:
                    for job_id in dict.fromkeys(job_ids):
                        tg.start_soon(one, check_job_id(job_id))
            except* CloudJobsError as group:
                raise group.exceptions[0] from None
        ordered = [rows[j] for j in dict.fromkeys(job_ids)]
        hp = sorted({k for r in ordered for k in r.hyperparameters})
        metrics = sorted({k for r in ordered for k in r.final_metrics})
        table = ComparisonTable(
            columns=[
                "job_id",
                "status",
                *[f"hp.{k}" for k in hp],
                *[f"metric.{k}" for k in metrics],
                "duration",
                "cost",
            ],
            rows=ordered,
            note="Final metrics are the last value in each job's log"
            + (
                ""
                if any(r.final_metrics for r in ordered)
                else f" (none found; defaults: {', '.join(DEFAULT_DEFINITIONS)})"
            )
            + ".",
        )
        if size is None:
            return table  # type: ignore[return-value]  # the SDK shapes a model result itself
        lines = {f"{r.name} ({r.job_id})": curves[r.job_id] for r in ordered}
        return await with_plot(table, f"{len(ordered)} runs compared", pictures.panels(lines), size)
