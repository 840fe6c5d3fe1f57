"""The floor: the least an MCP server can do for a PAI-DLC GetJob / ListJobs, to measure cloudjobs-mcp against.

A bare ``MCPServer`` (the official SDK, no toolsets, no middleware) with two tools. ``get_job`` awaits ONE
signed GET /api/v1/jobs/{id} through one pooled ``httpx.AsyncClient`` and returns the parsed JSON;
``list_jobs`` does the same for one page of ``limit`` jobs. No retries, no models, no error mapping: what is
left of a cloudjobs-mcp call above this is our own cost. Signing is kept (ACS3-HMAC-SHA256, a few lines of the
standard library below): a GetJob cannot be made without it, and the official SDK signs too. It imports nothing
of cloudjobs-mcp, so its start and memory are those of the MCP stack alone.

It reads the same environment as the ``pai`` provider, so ``../shared/bench/mcp_side.py`` drives it with only
its command changed (``bench/compare.py`` does that):

    CLOUDJOBS_PAI_ENDPOINT_DLC=http://127.0.0.1:PORT ALIBABA_CLOUD_ACCESS_KEY_ID=... \\
    ALIBABA_CLOUD_ACCESS_KEY_SECRET=... python bench/floor.py        # MCP over stdio
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from mcp.server import MCPServer

ENDPOINT = urlsplit(os.environ.get("CLOUDJOBS_PAI_ENDPOINT_DLC", "http://127.0.0.1:8080"))
KEY_ID = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
KEY_SECRET = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
VERSION = "2020-12-03"

mcp = MCPServer("cloudjobs-floor")
client = httpx.AsyncClient(timeout=30)


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def encode(value: str) -> str:
    return quote(value, safe="~")


async def signed_get(action: str, path: str, query: dict[str, str]) -> dict[str, Any]:
    """GET with an ACS3-HMAC-SHA256 Authorization (the V3 signature of alibabacloud_tea_openapi)."""
    qs = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(query.items()))
    headers = {
        "host": ENDPOINT.netloc,
        "x-acs-action": action,
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": secrets.token_hex(16),
        "x-acs-version": VERSION,
    }
    names = ";".join(headers)  # already sorted
    canonical = "\n".join(["GET", path, qs, "".join(f"{k}:{v}\n" for k, v in headers.items()), names, EMPTY_SHA256])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(KEY_SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders={names},Signature={signature}"
    headers["accept"] = "application/json"
    response = await client.get(f"{ENDPOINT.scheme}://{ENDPOINT.netloc}{path}?{qs}", headers=headers)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


@mcp.tool()
async def get_job(job_id: str) -> dict[str, Any]:
    """One PAI-DLC job, as the API returns it."""
    return await signed_get("GetJob", f"/api/v1/jobs/{encode(job_id)}", {"NeedDetail": "true"})


@mcp.tool()
async def list_jobs(limit: int = 20) -> dict[str, Any]:
    """One page of PAI-DLC jobs, newest first, as the API returns it."""
    query = {"PageNumber": "1", "PageSize": str(limit), "SortBy": "GmtCreateTime", "Order": "desc"}
    return await signed_get("ListJobs", "/api/v1/jobs", query)


if __name__ == "__main__":
    mcp.run()
