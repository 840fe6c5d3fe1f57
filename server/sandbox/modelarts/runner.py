"""Serving the ModelArts face: in-process on a loopback port (:func:`serve_modelarts`, tests and the demo) and
``cloudjobs-mcp sandbox --cloud modelarts`` (:func:`run`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from cloudjobs_mcp.server.providers.modelarts import endpoints
from cloudjobs_mcp.server.sandbox.modelarts.app import ModelArtsSandbox, load_or_create
from cloudjobs_mcp.server.sandbox.runner import RunningFace
from cloudjobs_mcp.server.sandbox.settings import AccessKey, SandboxSettings

KEYS_FILE = "modelarts-sandbox-keys.json"
DEFAULT_REGION = "cn-north-4"


@dataclass
class RunningModelArts(RunningFace[ModelArtsSandbox]):
    @property
    def access_key(self) -> AccessKey:
        return self.sandbox.access_key

    @property
    def project_id(self) -> str:
        return self.sandbox.project_id

    def settings_overrides(self) -> dict[str, Any]:
        """``Settings`` fields that point the ``modelarts`` provider at this sandbox."""
        return {"providers": "modelarts", "modelarts_region": self.sandbox.region, "modelarts_bss_endpoint": self.url}

    def huawei_env(self, key: AccessKey | None = None) -> dict[str, str]:
        """The SDK's own variables: the endpoint override, IAM endpoint, AK/SK and project id."""
        key = key or self.access_key
        env = {
            endpoints.region_env_name("MODELARTS", self.sandbox.region): self.url,
            endpoints.ENV_IAM_ENDPOINT: self.url,
            "HUAWEICLOUD_SDK_AK": key.access_key_id,
            "HUAWEICLOUD_SDK_SK": key.access_key_secret,
            "HUAWEICLOUD_SDK_PROJECT_ID": self.project_id,
        }
        if key.security_token:
            env["HUAWEICLOUD_SDK_SECURITY_TOKEN"] = key.security_token
        return env

    def env(self, key: AccessKey | None = None) -> dict[str, str]:
        env = {f"CLOUDJOBS_{k.upper()}": str(v) for k, v in self.settings_overrides().items()}
        env.update(self.huawei_env(key))
        return env


@asynccontextmanager
async def serve_modelarts(
    sandbox: ModelArtsSandbox | SandboxSettings, host: str = "127.0.0.1", port: int = 0, *, stop_jobs: bool = True
) -> AsyncIterator[RunningModelArts]:
    from cloudjobs_mcp.server.sandbox.runner import serve_face

    face = sandbox if isinstance(sandbox, ModelArtsSandbox) else ModelArtsSandbox(sandbox)
    async with serve_face(face, host, port, stop=face.stop_all if stop_jobs else None) as bound:
        yield RunningModelArts(face, host, bound)


def banner(running: RunningModelArts, *, show_secret: bool) -> str:
    s = running.sandbox
    env = running.env()
    if not show_secret:
        env["HUAWEICLOUD_SDK_SK"] = "<the secret you gave>"
    lines = [
        f"ModelArts sandbox on {running.url}: training jobs v2, dedicated pools, IAM (projects, domains), BSS prices",
        f"region {s.region}; project id {s.project_id}; state {s.settings.state_dir}; jobs run as processes here",
        f"dedicated pools: {', '.join(p for p in ('pool-sandbox-train-0a1b2c3d4e5f6a7b8c9d0e1f',))} (train)",
        "",
        "Point cloudjobs-mcp's modelarts provider at it:",
        "",
        *[f"  export {k}={v}" for k, v in env.items()],
        "  export NO_PROXY=127.0.0.1,localhost   # only if you use an HTTP proxy",
        "",
        f"AK {running.access_key.access_key_id}. Faults at runtime (loopback only), e.g.:",
        f'  curl -s -X POST -H \'Content-Type: application/json\' -d \'{{"kind": "throttle", "count": 5}}\' '
        f"{running.url}/_sandbox/faults",
        "Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``cloudjobs-mcp sandbox --cloud modelarts``: serve until interrupted."""
    from cloudjobs_mcp.server.sandbox.runner import (
        apply_fault_flags,
        default_state_dir,
        serve_until_interrupted,
        settings_from_flags,
    )

    state = (args.state or default_state_dir()).expanduser()
    region = args.region if args.region != "cn-hangzhou" else DEFAULT_REGION
    if bool(args.access_key_id) != bool(args.access_key_secret):
        print("cloudjobs-mcp sandbox: give both --access-key-id and --access-key-secret, or neither", file=sys.stderr)
        return 2
    keys, project, domain = load_or_create(state / KEYS_FILE)
    generated = not args.access_key_id
    if args.access_key_id:
        keys = [AccessKey(args.access_key_id, args.access_key_secret)]
    try:
        settings = settings_from_flags(args, state, region, keys, quotas=())
        face = ModelArtsSandbox(settings, project_id=project, domain_id=domain, bss_prices=not args.no_bss)
        apply_fault_flags(face.faults, args)
    except (ValueError, OSError) as exc:
        print(f"cloudjobs-mcp sandbox: {exc}", file=sys.stderr)
        return 2

    def show(host: str, port: int) -> str:
        return banner(RunningModelArts(face, host, port), show_secret=generated)

    return serve_until_interrupted(face, args.host, args.port, show, "ModelArts")
