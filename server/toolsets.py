"""Toolsets: which tools an assistant sees, like GitHub's MCP server (``CLOUDJOBS_TOOLSETS``).

The names and what each holds; every tool names its toolset where it is registered
(``@mcp.tool(..., toolset="observe")``, see ``toolserver.py``). Standard library only: settings read it.
"""

from __future__ import annotations

from collections.abc import Iterable

TOOLSETS: dict[str, str] = {
    "core": "the workflow: specs, images, quotes, create (behind the quote), wait, logs, get/list/stop/delete "
    "jobs, cleanup",
    "observe": "why a job is slow or failed: events, metrics, one-call diagnosis, queue position, sanity checks",
    "providers": "several providers: which are enabled and answer, and where a need is cheapest",
    "pools": "dedicated resource pools (ModelArts): the pools, and the jobs queued or running on one",
    "team": "runs as a team keeps them: labels, comparing runs, output models, spot price history",
    "templates": "job templates: save, list, get, delete, set the default version",
}
ALL = "all"
DEFAULT: tuple[str, ...] = ("core", "observe")  # and providers, when more than one provider is enabled
ALWAYS = "always"  # the toolset tool itself: listed whatever is enabled


POOL_PROVIDERS = ("modelarts",)  # the providers with dedicated pools (PoolProvider)


def default_toolsets(providers: tuple[str, ...]) -> tuple[str, ...]:
    """core and observe; providers with several providers; pools with a provider that has them."""
    extra = {"providers"} if len(providers) > 1 else set()
    extra |= {"pools"} if set(providers) & set(POOL_PROVIDERS) else set()
    return tuple(n for n in TOOLSETS if n in DEFAULT or n in extra)


def parse_toolsets(raw: str | Iterable[str]) -> tuple[str, ...]:
    """``"core,observe"`` / ``"all"`` → the toolset names, in TOOLSETS order; ValueError names the allowed."""
    names = [n.strip().lower() for n in (raw.split(",") if isinstance(raw, str) else raw) if n.strip()]
    unknown = [n for n in names if n != ALL and n not in TOOLSETS]
    if unknown:
        raise ValueError(f"unknown toolset {', '.join(map(repr, unknown))}; allowed: {', '.join(TOOLSETS)}, {ALL}")
    if not names:
        raise ValueError(f"name at least one toolset ({', '.join(TOOLSETS)}, {ALL})")
    return tuple(TOOLSETS) if ALL in names else tuple(n for n in TOOLSETS if n in names)
