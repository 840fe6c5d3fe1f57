"""The job and comparison views in a real browser: headless Chromium as the MCP Apps host, real local jobs.

Screenshots land in tests/artifacts/views/ (not committed).
"""

from __future__ import annotations

import shlex
import sys

import anyio
import pytest

from cloudjobs_mcp.server.verdict import NEXT_STEPS
from tests.browser_host import browser_host
from tests.conftest import Asker, call, connect, create_args, make_settings, quote, smallest_cpu_spec, wait_done

pytestmark = pytest.mark.anyio
REFRESH = 0.4
PRICE = 360.0  # per worker-hour: a job of a few seconds costs a readable amount


def falling_loss(steps: int, pause: float, *, rate: str = "0.9", fail: str | None = None) -> str:
    """A training program: `step i loss x` lines with a loss that falls every step (then, maybe, a crash)."""
    program = (
        "import os, time\n"
        f"rate = {rate}\n"
        f"for i in range({steps}):\n"
        "    print(f'step {i} loss {2 * rate ** i:.4f}', flush=True)\n"
        f"    time.sleep({pause})\n"
    )
    if fail:
        program += f"raise ValueError({fail!r})\n"
    return shlex.quote(sys.executable) + " -c " + shlex.quote(program)


async def launch(client, command: str, **kw) -> str:
    spec = await smallest_cpu_spec(client)
    q = await quote(client, spec, minutes=1, max_minutes=5)
    created = await call(client, "create_training_job", create_args(spec, q["quote_id"], command, **kw))
    return created["job"]["job_id"]


def settings_for(tmp_path):
    return make_settings(tmp_path, local_price_per_hour=PRICE, view_refresh_seconds=REFRESH)


def money(amount: float) -> str:
    return "< CNY 0.01" if 0 < amount < 0.01 else f"CNY {amount:,.2f}"


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


async def test_job_view_follows_a_running_job_and_stops_refreshing_when_it_ends(state_dir, tmp_path):
    from playwright.async_api import expect

    async with connect(settings_for(tmp_path), asker=Asker()) as client, browser_host(client) as host:
        job_id = await launch(client, falling_loss(24, 0.2))
        view = await host.open("get_job", {"job_id": job_id}, theme="light")
        status = view.locator("#status")
        await expect(status).to_have_attribute("data-status", "Running", timeout=20_000)
        loss = view.locator('.chart[data-metric="loss"] path.line')
        await expect(loss).to_have_count(1, timeout=10_000)
        await expect(view.locator("#footer")).to_contain_text("refreshing every 0.4 s")
        await host.screenshot("job-running-light")

        await expect(status).to_have_attribute("data-status", "Succeeded", timeout=30_000)
        await expect(view.locator("#footer")).to_contain_text("no longer refreshes")
        # It refreshed while the job ran (each refresh reads get_job first), and saw it running more than once.
        seen = [e["result"]["structuredContent"]["status"] for e in await host.log() if _get_job_reply(e)]
        assert seen.count("Running") >= 2 and seen[-1] == "Succeeded", seen
        reads = len(host.calls("get_job"))
        await anyio.sleep(REFRESH * 5)
        assert len(host.calls("get_job")) == reads, "the view kept reading a job that had ended"
        assert await view.locator("#footer").get_attribute("data-refreshing") == "false"

        # What it shows is what the server says now that the job is over.
        job = await call(client, "get_job", {"job_id": job_id})
        metrics = await call(client, "get_job_metrics", {"job_id": job_id})
        series = next(t for t in metrics["training"] if t["name"] == "loss")["summary"]["series"]
        shown = floats(await loss.get_attribute("data-values") or "")
        assert shown == series and len(shown) == 20 and shown[0] > shown[-1]
        ys = [float(p.split(",")[1]) for p in (await loss.get_attribute("d") or "").lstrip("M").split("L")]
        assert ys[0] < ys[-1], "a falling loss is drawn falling (SVG y grows downwards)"
        steps = floats(await loss.get_attribute("data-x") or "")
        assert steps[0] < steps[-1] <= 23  # the x axis is the logged step
        cost = job["cost"]
        assert cost["so_far"] > 0
        await expect(view.locator("#cost-so-far")).to_have_text(money(cost["so_far"]))
        await expect(view.locator("#cost-estimate")).to_have_text(money(cost["estimate"]))
        await expect(view.locator("#cost-worst")).to_have_text(money(cost["worst_case"]))
        assert cost["estimate"] == pytest.approx(PRICE / 60) and cost["worst_case"] == pytest.approx(PRICE * 5 / 60)
        await expect(view.locator("#summary")).to_contain_text("elapsed")
        await expect(view.locator("#pod-table")).to_contain_text("Succeeded")
        await expect(view.locator("#tail")).to_contain_text("step 23 loss")
        await expect(view.locator("#stop")).to_be_hidden()
        await expect(view.locator("#verdict")).to_be_hidden()
        await host.screenshot("job-succeeded-light")

        # The host switches to dark: the view follows without reloading.
        await host.page.evaluate("c => changeContext(c)", {"theme": "dark"})
        await expect(view.locator("html")).to_have_attribute("data-theme", "dark")  # a message: not at once
        background = await host.frame_eval("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(23, 25, 29)"
        await host.screenshot("job-succeeded-dark")
        assert await host.page.evaluate("teardown().then(r => r.result)") == {}


def _get_job_reply(entry: dict) -> bool:
    result = entry.get("result") or {}
    content = result.get("structuredContent") or {}
    return entry["direction"] == "host->view" and "pods" in content and "raw_status" in content


async def test_a_failing_job_shows_its_error_block_verdict_and_next_step(state_dir, tmp_path):
    from playwright.async_api import expect

    async with connect(settings_for(tmp_path), asker=Asker()) as client, browser_host(client) as host:
        job_id = await launch(client, falling_loss(6, 0.1, fail="batch 3 has NaN labels"))
        # A slow diagnosis: the wait's failure and the refresh that sees it both arrive while it is pending.
        host.delays["diagnose_job"] = 1.5
        # The view opens with wait_job_complete's arguments and follows the job while the call waits.
        view = await host.open(
            "wait_job_complete", {"job_id": job_id, "interval": 0.1, "max_wait_seconds": 30}, theme="dark"
        )
        await expect(view.locator("#status")).to_have_attribute("data-status", "Failed", timeout=30_000)
        block = view.locator("#error-block")
        await expect(block).to_contain_text("Traceback (most recent call last)")
        await expect(block).to_contain_text("ValueError: batch 3 has NaN labels")
        await expect(block).to_contain_text("Error block: python traceback")
        highlighted = view.locator("#tail span.err")
        assert await highlighted.count() >= 2
        await expect(highlighted.last).to_contain_text("ValueError: batch 3 has NaN labels")
        await expect(view.locator("#verdict-name")).to_have_text("Verdict: user_code")
        await expect(view.locator("#next-step")).to_contain_text(NEXT_STEPS["user_code"])
        await expect(view.locator('.chart[data-metric="loss"] path.line')).to_have_count(1)
        await expect(view.locator("#stop")).to_be_hidden()
        # Settled: the view stopped reading and shows diagnose_job's verdict (not only the wait's).
        await expect(view.locator("#footer")).to_contain_text("no longer refreshes")
        await expect(view.locator("#verdict .notice")).to_have_attribute("data-source", "diagnose_job")
        await anyio.sleep(REFRESH * 3)
        assert len(host.calls("diagnose_job")) == 1  # one diagnosis, however many told the view of the failure
        await host.screenshot("job-failed-dark")


async def test_the_stop_button_asks_first_then_stops_the_job_through_stop_job(state_dir, tmp_path):
    from playwright.async_api import expect

    async with (
        connect(settings_for(tmp_path), asker=Asker()) as client,
        browser_host(client, viewport_width=400) as host,
    ):
        job_id = await launch(client, falling_loss(400, 0.2))
        view = await host.open("get_job_metrics", {"job_id": job_id}, width=360)
        await expect(view.locator("#status")).to_have_attribute("data-status", "Running", timeout=20_000)
        await expect(view.locator('.chart[data-metric="loss"] path.line')).to_have_count(1, timeout=10_000)
        # Narrow: nothing wider than the frame.
        assert await host.frame_eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        await host.screenshot("job-running-narrow")

        await view.locator("#stop").click()
        await expect(view.locator("#confirm")).to_be_visible()
        await expect(view.locator("#confirm-text")).to_contain_text(f"Stop job {job_id}")
        await host.screenshot("job-stop-confirm-narrow")
        await view.locator("#confirm-cancel").click()
        await expect(view.locator("#confirm")).to_be_hidden()
        assert host.calls("stop_job") == []
        assert (await call(client, "get_job", {"job_id": job_id}))["status"] == "Running"

        await view.locator("#stop").click()
        await view.locator("#confirm-stop").click()
        await expect(view.locator("#status")).to_have_attribute("data-status", "Stopped", timeout=20_000)
        assert host.calls("stop_job") == [{"job_id": job_id}]
        assert (await call(client, "get_job", {"job_id": job_id}))["status"] == "Stopped"
        await expect(view.locator("#footer")).to_contain_text("no longer refreshes")
        reads = len(host.calls("get_job"))
        await anyio.sleep(REFRESH * 4)
        assert len(host.calls("get_job")) == reads
        await host.screenshot("job-stopped-narrow")


async def test_compare_view_overlays_the_curves_and_puts_runs_side_by_side(state_dir, tmp_path):
    from playwright.async_api import expect

    async with connect(settings_for(tmp_path), asker=Asker()) as client, browser_host(client) as host:
        program = falling_loss(15, 0.02, rate="1 - float(os.environ['HP_LR'])")
        fast = await launch(client, program, hyperparameters={"lr": "0.3"}, display_name="lr-0.3")
        slow = await launch(client, program, hyperparameters={"lr": "0.05"}, display_name="lr-0.05")
        for job_id in (fast, slow):
            await wait_done(client, job_id)
        table = await call(client, "compare_jobs", {"job_ids": [fast, slow]})
        view = await host.open("compare_jobs", {"job_ids": [fast, slow]}, theme="dark")
        lines = view.locator('.chart[data-metric="loss"] path.line')
        await expect(lines).to_have_count(2, timeout=10_000)
        for i, job_id in enumerate((fast, slow)):
            metrics = await call(client, "get_job_metrics", {"job_id": job_id})
            series = next(t for t in metrics["training"] if t["name"] == "loss")["summary"]["series"]
            assert floats(await lines.nth(i).get_attribute("data-values") or "") == series
        assert await lines.nth(0).get_attribute("data-label") == fast
        lr = view.locator('tr[data-row="hp.lr"] td')
        await expect(lr).to_have_text(["0.3", "0.05"])
        finals = [r["final_metrics"]["loss"] for r in table["rows"]]
        assert finals[0] < finals[1]
        final = view.locator('tr[data-row="metric.loss"] td')
        await expect(final).to_have_text([str(v) for v in finals])
        await expect(final.first).to_have_class("num best")
        await expect(view.locator('tr[data-row="cost"] td').first).to_contain_text("CNY")
        await host.screenshot("compare-dark")


async def test_a_host_that_proxies_no_tool_calls_gets_the_result_alone(state_dir, tmp_path):
    from playwright.async_api import expect

    async with connect(settings_for(tmp_path), asker=Asker()) as client, browser_host(client) as host:
        job_id = await launch(client, falling_loss(2, 0.01))
        await wait_done(client, job_id)
        view = await host.open("get_job", {"job_id": job_id}, server_tools=False)
        await expect(view.locator("#status")).to_have_attribute("data-status", "Succeeded")
        await expect(view.locator("#footer")).to_contain_text("does not let the view call tools")
        await expect(view.locator("#cost-so-far")).to_contain_text("CNY")
        assert not [e for e in await host.log() if e.get("method") == "tools/call"]
        assert host.tool_calls == []
