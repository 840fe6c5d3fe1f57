"""The floor: the least an MCP server can do for a PAI-DLC GetJob / ListJobs, to measure cloudjobs-mcp against.

A bare ``MCPServer`` (the official SDK, no toolsets, no middleware) with two tools. ``get_job`` awaits ONE
signed GET /api/v1/jobs/{id} through one pooled ``httpx.AsyncClient`` and returns the parsed JSON;
``list_jobs`` does the same for one page of ``limit`` jobs. No retries, no models, no error mapping: what is
left of a cloudjobs-mcp call above this is our own cost. Signing is kept (ACS3-HMAC-SHA256 with the project's
signer, the same code both servers run): a GetJob cannot be made without it, and the official SDK signs too.

It reads the same environment as the ``pai`` provider, so ``../shared/bench/mcp_side.py`` drives it with only
its command changed (``bench/compare.py`` does that):

    CLOUDJOBS_PAI_ENDPOINT_DLC=http://127.0.0.1:PORT ALIBABA_CLOUD_ACCESS_KEY_ID=... \\
    ALIBABA_CLOUD_ACCESS_KEY_SECRET=... python bench/floor.py        # MCP over stdio
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import httpx
from mcp.server import MCPServer

from cloudjobs_mcp.server.providers.pai import signing

ENDPOINT = urlsplit(os.environ.get("CLOUDJOBS_PAI_ENDPOINT_DLC", "http://127.0.0.1:8080"))
KEY_ID = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
KEY_SECRET = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
VERSION = "2020-12-03"

mcp = MCPServer("cloudjobs-floor")
client = httpx.AsyncClient(timeout=30)


async def signed_get(action: str, path: str, query: dict[str, str | None]) -> dict[str, Any]:
    headers = signing.sign_headers(
        method="GET",
        host=ENDPOINT.netloc,
        path=path,
        query=query,
        body=b"",
        action=action,
        version=VERSION,
        access_key_id=KEY_ID,
        access_key_secret=KEY_SECRET,
        extra_headers={"accept": "application/json"},
    )
    url = signing.build_url(ENDPOINT.scheme, ENDPOINT.netloc, path, query)
    response = await client.get(url, headers=headers)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


@mcp.tool()
async def get_job(job_id: str) -> dict[str, Any]:
    """One PAI-DLC job, as the API returns it."""
    return await signed_get("GetJob", f"/api/v1/jobs/{signing.percent_encode(job_id)}", {"NeedDetail": "true"})


@mcp.tool()
async def list_jobs(limit: int = 20) -> dict[str, Any]:
    """One page of PAI-DLC jobs, newest first, as the API returns it."""
    query = {"PageNumber": "1", "PageSize": str(limit), "SortBy": "GmtCreateTime", "Order": "desc"}
    return await signed_get("ListJobs", "/api/v1/jobs", query)


if __name__ == "__main__":
    mcp.run()
