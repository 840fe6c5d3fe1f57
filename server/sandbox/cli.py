"""The ``cloudjobs-mcp sandbox`` arguments (standard library only: parsed before anything is loaded)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_PORT = 8766
ENV_KEY_ID = "CLOUDJOBS_SANDBOX_ACCESS_KEY_ID"
ENV_KEY_SECRET = "CLOUDJOBS_SANDBOX_ACCESS_KEY_SECRET"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--cloud",
        choices=["pai", "workload", "modelarts"],
        default="pai",
        help="which platform's wire protocol: pai (PAI-DLC, the default), workload (a Primus-SaFE Workload API) "
        "or modelarts (Huawei Cloud ModelArts training jobs, pools, IAM, BSS)",
    )
    add("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (0: any free one; default {DEFAULT_PORT})")
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; keep it on loopback)")
    add(
        "--state",
        type=Path,
        default=None,
        help="state directory (default $CLOUDJOBS_STATE_DIR/sandbox, ~/.cloudjobs/sandbox)",
    )
    add(
        "--region",
        default="cn-hangzhou",
        help="the region the sandbox plays (default cn-hangzhou; cn-north-4 with --cloud modelarts)",
    )
    add("--no-bss", action="store_true", help="modelarts: refuse BSS price inquiries (CBC.0151), as for a sub-user")
    add(
        "--access-key-id",
        default=os.environ.get(ENV_KEY_ID),
        help=f"AccessKey id to accept (or ${ENV_KEY_ID}; default: generated once, kept in the state directory)",
    )
    add("--access-key-secret", default=os.environ.get(ENV_KEY_SECRET), help=f"its secret (or ${ENV_KEY_SECRET})")
    add("--creating-seconds", type=float, default=2.0, help="how long a job stays Creating (default 2)")
    add("--queuing-seconds", type=float, default=3.0, help="how long a job stays Queuing (default 3)")
    add(
        "--minute-seconds",
        type=float,
        default=60.0,
        help="real seconds per minute of JobMaxRunningTimeMinutes (default 60)",
    )
    add(
        "--quota",
        action="append",
        default=[],
        metavar="ID",
        help="a resource quota id jobs may use as ResourceId (repeatable; default: quota-sandbox-1)",
    )
    add(
        "--metrics-seconds",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often running pods' CPU and memory are sampled for GetJobMetrics (default 2)",
    )
    add("--throttle", type=int, metavar="N", help="answer the next N calls with 429 Throttling.User")
    add(
        "--throttle-retry-after-ms", type=int, default=1000, metavar="MS", help="their x-acs-retry-after (default 1000)"
    )
    add("--fail-503", type=int, metavar="N", help="answer the next N calls with 503 ServiceUnavailable")
    add("--latency", type=float, metavar="SECONDS", help="delay every call by SECONDS")
    add(
        "--image-pull-backoff",
        action="append",
        default=[],
        metavar="SUBSTRING",
        help="jobs whose image contains SUBSTRING end in ImagePullBackOff (repeatable)",
    )
    add(
        "--queue-forever",
        nargs="?",
        const="*",
        metavar="SUBSTRING",
        help="jobs whose DisplayName contains SUBSTRING (every job without one) stay Queuing",
    )
    add(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help='any fault as JSON, e.g. \'{"kind": "throttle", "count": 3}\' or '
        '\'{"kind": "quota_queue", "position": 3}\' '
        "(repeatable; kinds: throttle, fail_503, latency, image_pull_backoff, queue_forever, sanity_check_failure, "
        "idle_gpus, spot_reclaim, quota_queue)",
    )
    add("--log-ttl-seconds", type=int, default=60, help="workload: logs stay this long after the end by default (60)")
    add("--log-search", action="store_true", help="workload: serve log search (as with OpenSearch enabled)")
    add(
        "--head-schema",
        action="store_true",
        help="workload: play a build after 2026-01-09 (create takes resources[]/images[]/entryPoints[]; a body "
        "with only the seed-era resource/image/entryPoint gets 400 'the resources are empty')",
    )
    add("--password", default=None, help="workload: the sandbox user's password (default: generated)")
    add("--api-key", default=None, help="workload: the API key it accepts (default: generated, ak-…)")
