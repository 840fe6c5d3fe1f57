"""Keep server/tool_schemas.json (the listed schemas a start reads instead of building them) in step.

    python scripts/tool_schemas.py          # rewrite it from a fresh build of every tool
    python scripts/tool_schemas.py --check  # exit 1 and name the tools that differ (tests/test_tool_schemas.py)

Every tool of every toolset is built the SDK's way (``Tool.from_function``: argument model, input and output
schemas), made tight and compact as tools/list shows them (``server/toolserver.py``), and written with the
fingerprint of its parameters. Run it after changing a tool's parameters, its return model or any model
they use; a start that finds a tool's fingerprint changed builds that tool itself, so a forgotten run costs
start-up time, and the check in the test suite says which tools to refresh.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.toolserver import SNAPSHOT, read_snapshot


def fresh() -> dict[str, Any]:
    """The snapshot as a fresh build of every tool (every toolset, writes allowed) gives it."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({}, state_dir=Path(tmp), toolsets="all", read_only=False)
        return {"tools": build_server(settings).fresh_snapshot()}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def differences() -> list[str]:
    """The tools whose committed entry is not what a fresh build gives (missing, extra or changed)."""
    committed = read_snapshot()
    built = fresh()["tools"]
    return sorted(n for n in committed.keys() | built.keys() if committed.get(n) != built.get(n))


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = differences()
        if stale:
            print(f"{SNAPSHOT.name} is stale for: {', '.join(stale)}; run python scripts/tool_schemas.py")
            return 1
        print(f"{SNAPSHOT.name} is current")
        return 0
    SNAPSHOT.write_text(render(fresh()), encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
