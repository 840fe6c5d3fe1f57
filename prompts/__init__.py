"""MCP prompts: the workflows an assistant should follow, registered with ``register(mcp)``."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from pydantic import Field

TRAIN_MODEL = """\
Run this training task for me on cloudjobs-mcp: {task}
{extra}
Follow this workflow, in order:
1. Analyse the task first: does it really need a GPU? Shell scripts, data processing and small tests need
   only a CPU spec. Do not default to GPU; use one for model training, CUDA work or large-model fine-tuning.
2. Call list_ecs_specs (with accelerator_type CPU or GPU) and pick the smallest spec that fits.
3. Call estimate_cost with that spec, the worker count, your runtime estimate and a max runtime.
4. Show me the quote's display_text and ASK ME whether to proceed. Do not create anything before I approve
   the cost. If I decline, ask what to change and quote again.
5. Only after my approval call create_training_job with the quote_id (and confirmed=true if the server
   cannot ask me itself). The image is resolved from the spec unless I named one.
6. Follow the job with wait_job_complete; when it returns done=false, call it again.
7. When it ends, read get_job_logs and tell me the result. If it failed, explain the reason from the log
   tail and suggest a fix.
8. Offer cleanup_jobs (dry run first) for failed jobs.
"""

DEBUG_FAILED_JOB = """\
Job {job_id} did not succeed (or looks stuck). Find out why and tell me how to fix it.
1. Call diagnose_job: it gathers status, reason, the platform's error info, events, sanity checks, the
   error block of the failing pod's log and metric warnings, and names a verdict with its evidence.
2. If the evidence is thin, read get_job_logs (grep for the error) and get_job_events; for a slow or idle
   job, get_job_metrics; for a job that waits, get_workload_info (queue position).
3. Quote the relevant lines, name the failing pod, and say what to change: the command, the spec (more
   memory or a GPU), the image, the max runtime, or the queue/quota.
4. Do not create a new job on your own: if a rerun makes sense, quote it with estimate_cost and ask me.
{focus}"""


def register(mcp: MCPServer) -> None:
    @mcp.prompt(title="Train a model (end-to-end workflow)")
    def train_model(
        task: str = Field(description="What to train or run, e.g. 'fine-tune resnet18 on ./data'"),
        budget: str = Field(default="", description="Optional budget, e.g. 'at most CNY 20'"),
        data: str = Field(default="", description="Optional location of the data or code"),
    ) -> list[Message]:
        """The full workflow: specs, image, quote, the user's approval, create, wait, logs, cleanup."""
        extra = "\n".join(x for x in (f"Budget: {budget}" if budget else "", f"Data/code: {data}" if data else "") if x)
        return [UserMessage(TRAIN_MODEL.format(task=task, extra=extra))]

    @mcp.prompt(title="Debug a failed job")
    def debug_failed_job(
        job_id: str = Field(description="The job that failed or was stopped"),
        focus: str = Field(default="", description="Optional: what to look at first"),
    ) -> list[Message]:
        """Find why a job failed from its status, pods and logs, and propose a fix."""
        return [UserMessage(DEBUG_FAILED_JOB.format(job_id=job_id, focus=f"Focus: {focus}" if focus else ""))]
