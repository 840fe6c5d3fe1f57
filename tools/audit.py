"""The cloudjobs://audit/mine resource: the caller's own lines of the audit trail."""

from __future__ import annotations

import json

import anyio
from mcp.server import MCPServer

from cloudjobs_mcp.server.audit import AuditLog
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.identity import current_caller

MAX_ENTRIES = 100


def register(mcp: MCPServer, settings: Settings) -> None:
    log = AuditLog(settings.state_dir)

    @mcp.resource(
        "cloudjobs://audit/mine",
        name="my_audit_trail",
        title="My audit trail",
        description="Your last 100 audited calls (creates, stops, deletes, labels, templates, cleanups), one JSON "
        "object a line, oldest first.",
        mime_type="application/x-ndjson",
    )
    async def my_audit_trail() -> str:
        identity = current_caller().identity

        def read() -> list[dict[str, object]]:
            return list(log.entries(identity=identity))[-MAX_ENTRIES:]

        return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in await anyio.to_thread.run_sync(read))
