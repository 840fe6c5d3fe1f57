"""PAI sandbox: an offline cloud that speaks PAI-DLC's wire protocol, for rehearsal, demos and tests.

One ASGI app (:class:`Sandbox`, ``sandbox.app``) answers the subset of PAI-DLC 2020-12-03,
AIWorkspace 2021-02-04, ECS 2014-05-26 (DescribePrice) and PaiStudio 2022-01-12 (training jobs, quota
workloads) that the ``pai`` provider uses, on one loopback port, routed by the ``x-acs-version`` /
``x-acs-action`` headers. It verifies every ``ACS3-HMAC-SHA256`` signature against its access keys and
answers as the cloud does; it runs jobs for real through the local provider's executor (GPU specs run on
the CPU, their GPU metrics are synthetic; images are recorded, not pulled) with real CPU/memory samples
and pre-flight sanity checks; faults are injected per instance through ``sandbox.faults`` (throttling,
503s, latency, image pulls, queues, failing sanity checks, idle GPUs, spot reclaims, quota queues).

    from cloudjobs_mcp.server.sandbox import Sandbox, SandboxSettings, serve

    async with serve(SandboxSettings(state_dir=tmp)) as running:
        running.url              # http://127.0.0.1:PORT: every pai_endpoint_* override
        running.access_key       # the AccessKey pair it accepts (generated)
        running.faults.throttle(3, retry_after_ms=100)
        running.sandbox.create_training_job("tj", "python train.py")   # a PaiStudio train… job

``cloudjobs-mcp sandbox`` runs one from the command line (``runner.py``).

Modules: ``settings`` (SandboxSettings, AccessKey), ``auth`` (signature checks), ``catalog`` (specs,
prices, images), ``jobs`` (CreateJob validation, timeline, shapes), ``faults``, ``observe`` (metrics,
sanity check results), ``studio`` (PaiStudio training jobs), ``quotas`` (quota queues), ``store``
(SQLite), ``app`` (routing, handlers, scheduler), ``runner`` (serve, CLI).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudjobs_mcp.server.sandbox.app import CallRecord, Sandbox, create_app
    from cloudjobs_mcp.server.sandbox.faults import Faults, JobFault, RequestFault, register
    from cloudjobs_mcp.server.sandbox.runner import RunningSandbox, serve
    from cloudjobs_mcp.server.sandbox.settings import (
        AccessKey,
        SandboxSettings,
        generate_access_key,
        generate_sts_credential,
    )

# Imported on first use, so that ``cloudjobs-mcp serve`` does not load the sandbox (Starlette, uvicorn).
_EXPORTS = {
    "AccessKey": "settings",
    "CallRecord": "app",
    "Faults": "faults",
    "JobFault": "faults",
    "RequestFault": "faults",
    "RunningSandbox": "runner",
    "Sandbox": "app",
    "SandboxSettings": "settings",
    "create_app": "app",
    "generate_access_key": "settings",
    "generate_sts_credential": "settings",
    "register": "faults",
    "serve": "runner",
}
__all__ = [
    "AccessKey",
    "CallRecord",
    "Faults",
    "JobFault",
    "RequestFault",
    "RunningSandbox",
    "Sandbox",
    "SandboxSettings",
    "create_app",
    "generate_access_key",
    "generate_sts_credential",
    "register",
    "serve",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudjobs_mcp.server.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cloudjobs_mcp.server.sandbox.{module}"), name)
