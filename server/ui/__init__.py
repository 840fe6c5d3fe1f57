"""MCP Apps views (the ``io.modelcontextprotocol/ui`` extension): HTML the host renders beside a tool result.

Each view is one self-contained HTML document (inline script and style, no network), assembled here from
package files: the shared protocol, chart and theme code (``view.js``, ``view.css``) is inlined into each
view's page. A tool links a view through ``_meta.ui.resourceUri``; hosts without the extension ignore the
link and see the same results as before.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from mcp.server.apps import Apps, ResourceCsp

from cloudjobs_mcp.server.config import Settings

JOB_VIEW = "ui://cloudjobs/job"
COMPARE_VIEW = "ui://cloudjobs/compare"
JOB_LINK: dict[str, Any] = {"ui": {"resourceUri": JOB_VIEW}}
COMPARE_LINK: dict[str, Any] = {"ui": {"resourceUri": COMPARE_VIEW}}
VIEWS = (
    (
        JOB_VIEW,
        "job",
        "Training job",
        "A job's status, cost against its quote, training curves, resource use and log tail, live.",
    ),
    (COMPARE_VIEW, "compare", "Compare runs", "Runs side by side: curves overlaid, hyperparameters, final metrics."),
)


@cache
def _file(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def page(name: str, refresh_seconds: float) -> str:
    """The view ``name`` (job or compare) as one HTML document with everything inlined."""
    return (
        _file(f"{name}.html")
        .replace("/*@view.css*/", _file("view.css"))
        .replace("/*@view.js*/", _file("view.js"))
        .replace("__REFRESH_SECONDS__", f"{refresh_seconds:g}")
    )


def extension(settings: Settings) -> Apps:
    """The Apps extension serving both views (the server advertises it to hosts that negotiate it)."""
    apps = Apps()
    for uri, name, title, description in VIEWS:
        apps.add_html_resource(
            uri,
            page(name, settings.view_refresh_seconds),
            name=f"{name}-view",
            title=title,
            description=description,
            csp=ResourceCsp(connect_domains=[], resource_domains=[]),  # no network at all
            prefers_border=True,
        )
    return apps
