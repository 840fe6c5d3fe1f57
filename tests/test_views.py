"""The MCP Apps side of the server, through a real MCP client: view links, view resources, the text
fallback for hosts without the extension, and the data the views read (cost so far, the job's metrics)."""

from __future__ import annotations

import json
import re
import shlex
import sys

import pytest
from mcp import Client
from mcp.client import advertise

from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.ui import COMPARE_VIEW, JOB_VIEW
from tests.conftest import Asker, call, connect, create_args, make_settings, quote, smallest_cpu_spec, wait_done

pytestmark = pytest.mark.anyio
APPS = advertise("io.modelcontextprotocol/ui", {"mimeTypes": ["text/html;profile=mcp-app"]})
MIME = "text/html;profile=mcp-app"
LINKED = {
    "get_job": JOB_VIEW,
    "wait_job_complete": JOB_VIEW,
    "get_job_metrics": JOB_VIEW,
    "diagnose_job": JOB_VIEW,
    "compare_jobs": COMPARE_VIEW,
}


def loss_program(steps: int = 12) -> str:
    program = f"for i in range({steps}): print(f'step {{i}} loss {{2 * 0.8 ** i:.4f}} top1={{i / {steps}:.3f}}')"
    return shlex.quote(sys.executable) + " -c " + shlex.quote(program)


async def launch(client: Client, command: str, **kw) -> str:
    spec = await smallest_cpu_spec(client)
    q = await quote(client, spec, minutes=1, max_minutes=5)
    return (await call(client, "create_training_job", create_args(spec, q["quote_id"], command, **kw)))["job"]["job_id"]


async def test_tools_link_the_views_and_the_views_are_self_contained(state_dir, tmp_path):
    settings = make_settings(tmp_path, view_refresh_seconds=7)
    async with Client(build_server(settings), extensions=[APPS], cache=None) as client:
        assert client.server_capabilities.extensions == {"io.modelcontextprotocol/ui": {}}
        tools = {
            t.name: t.model_dump(mode="json", by_alias=True, exclude_none=True)
            for t in (await client.list_tools()).tools
        }
        for name, uri in LINKED.items():
            assert tools[name]["_meta"] == {"ui": {"resourceUri": uri}}, name
        unlinked = [n for n, t in tools.items() if "_meta" in t and n not in LINKED]
        assert unlinked == [], "only the tools the views belong to carry a link"
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        for uri in (JOB_VIEW, COMPARE_VIEW):
            assert listed[uri].mime_type == MIME
            content = (await client.read_resource(uri)).contents[0]
            assert content.mime_type == MIME
            assert content.meta == {"ui": {"csp": {"connectDomains": [], "resourceDomains": []}, "prefersBorder": True}}
            html = content.text  # type: ignore[union-attr]
            assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
            assert "/*@view" not in html and "__REFRESH_SECONDS__" not in html, "every shared part is inlined"
            # No external script, style, font, image or request: the only URL is the SVG namespace.
            assert set(re.findall(r"\b(?:https?|wss?)://[^\s\"'`)]+", html)) <= {"http://www.w3.org/2000/svg"}
            for forbidden in ("<script src", "<link", "@import", "url(", "fetch(", "XMLHttpRequest", "WebSocket",
                              "localStorage", "document.cookie", "100vh", "eval("):  # fmt: skip
                assert forbidden not in html, (uri, forbidden)
            assert len(html.encode()) < 60_000
        job_html = (await client.read_resource(JOB_VIEW)).contents[0].text  # type: ignore[union-attr]
        assert 'Number("7")' in job_html, "the refresh interval is the server's setting"


async def test_hosts_without_the_extension_get_the_same_results(state_dir, tmp_path):
    settings = make_settings(tmp_path, local_price_per_hour=36.0)
    async with connect(settings, asker=Asker()) as plain:
        job_id = await launch(plain, loss_program())
        await wait_done(plain, job_id)
    calls = [
        ("get_job", {"job_id": job_id}),
        ("get_job_metrics", {"job_id": job_id, "metrics": ["cpu"]}),
        ("diagnose_job", {"job_id": job_id}),
        ("compare_jobs", {"job_ids": [job_id]}),
    ]
    results = {}
    for mode, extensions in (("legacy", []), ("auto", [APPS])):
        async with Client(build_server(settings), mode=mode, extensions=extensions, cache=None) as client:
            if mode == "legacy":
                assert client.server_capabilities.extensions is None
            for name, args in calls:
                result = await client.call_tool(name, args)
                assert not result.is_error and [c.type for c in result.content] == ["text"]
                assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
                results.setdefault(name, []).append(result.structured_content)
    for name, (without, with_views) in results.items():
        if name == "get_job_metrics":  # the CPU sampler may add a point between the two reads
            without, with_views = {**without, "usage": []}, {**with_views, "usage": []}
        assert without == with_views, name


async def test_get_job_tells_the_cost_so_far_against_the_quote(state_dir, tmp_path):
    settings = make_settings(tmp_path, local_price_per_hour=36.0)
    async with connect(settings, asker=Asker()) as client:
        job_id = await launch(client, loss_program(), worker_count=1)
        await wait_done(client, job_id)
        job = await call(client, "get_job", {"job_id": job_id})
        cost = job["cost"]
        assert cost["currency"] == "CNY" and cost["hourly"] == 36.0
        assert cost["so_far"] == pytest.approx(36.0 * job["duration_seconds"] / 3600, abs=1e-6)
        assert cost["estimate"] == pytest.approx(36.0 / 60) and cost["worst_case"] == pytest.approx(36.0 * 5 / 60)
        compared = await call(client, "compare_jobs", {"job_ids": [job_id]})
        assert compared["rows"][0]["cost"] == cost["so_far"]  # one cost rule for both tools


async def test_get_job_metrics_reads_the_jobs_own_metric_definitions(state_dir, tmp_path):
    definitions = [{"name": "top1", "regex": r"top1=([0-9.]+)"}, {"name": "loss", "regex": r"loss ([0-9.]+)"}]
    async with connect(make_settings(tmp_path), asker=Asker()) as client:
        job_id = await launch(client, loss_program(), metric_definitions=definitions)
        await wait_done(client, job_id)
        metrics = await call(client, "get_job_metrics", {"job_id": job_id})
        assert {t["name"] for t in metrics["training"]} == {"top1", "loss"}
        top1 = next(t for t in metrics["training"] if t["name"] == "top1")
        assert top1["summary"]["latest"] == pytest.approx(11 / 12, abs=1e-3)
        assert "with the metric definitions" in metrics["note"]
        asked = await call(client, "get_job_metrics", {"job_id": job_id, "metric_definitions": definitions[:1]})
        assert {t["name"] for t in asked["training"]} == {"top1"}, "definitions given in the call win"
