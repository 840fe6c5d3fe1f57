"""get_job_metrics(plot=true) and compare_jobs(plot=true): the curves as a PNG picture, on real local jobs."""

from __future__ import annotations

import base64
import io
import json
import shlex
import sys

import pytest
from mcp import Client
from mcp.types import CallToolResult, ImageContent, TextContent

from cloudjobs_mcp.server import plot
from tests.conftest import Asker, call, call_error, connect, create_args, quote, smallest_cpu_spec, wait_done

Image = pytest.importorskip("PIL.Image", reason="the plot extra (matplotlib, with Pillow) is part of the test extra")
pytestmark = pytest.mark.anyio
BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's first two line colours


def falling(rate: float, steps: int = 60) -> str:
    program = f"for i in range({steps}): print(f'step {{i}} loss {{2 * {rate} ** i:.4f}}')"
    return shlex.quote(sys.executable) + " -c " + shlex.quote(program)


async def finished_job(client: Client, command: str, **kw) -> str:
    spec = await smallest_cpu_spec(client)
    q = await quote(client, spec, minutes=1, max_minutes=5)
    created = await call(client, "create_training_job", create_args(spec, q["quote_id"], command, **kw))
    job_id = created["job"]["job_id"]
    await wait_done(client, job_id)
    return job_id


def picture(result: CallToolResult) -> Image.Image:
    assert not result.is_error, result.content
    assert [c.type for c in result.content] == ["text", "image"]
    text, image = result.content
    assert isinstance(text, TextContent) and isinstance(image, ImageContent)
    assert json.loads(text.text) == result.structured_content, "the result is the same as without a plot"
    assert image.mime_type == "image/png"
    png = base64.b64decode(image.data)
    assert len(png) <= plot.MAX_BYTES
    decoded = Image.open(io.BytesIO(png))
    assert decoded.format == "PNG"
    return decoded.convert("RGB")


def pixels_of(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 40) -> list[tuple[int, int]]:
    width = image.size[0]
    r, g, b = colour
    data = image.tobytes()  # RGB, row by row
    return [
        (i // 3 % width, i // 3 // width)
        for i in range(0, len(data), 3)
        if abs(data[i] - r) + abs(data[i + 1] - g) + abs(data[i + 2] - b) <= tolerance
    ]


def falls(points: list[tuple[int, int]]) -> bool:
    """The line's leftmost pixels sit higher (smaller y) than its rightmost ones, across most of the width."""
    xs = sorted(x for x, _ in points)
    first, last = xs[0], xs[-1]
    left = [y for x, y in points if x <= first + 10]
    right = [y for x, y in points if x >= last - 10]
    return sum(left) / len(left) < sum(right) / len(right)


async def test_metrics_plot_decodes_has_the_requested_size_and_shows_the_falling_curve(state_dir, settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await finished_job(client, falling(0.93))
        image = picture(
            await client.call_tool("get_job_metrics", {"job_id": job_id, "plot": True, "plot_size": "640x360"})
        )
        assert image.size == (640, 360)
        line = pixels_of(image, BLUE)
        assert len(line) > 300, "the curve is drawn"
        xs = [x for x, _ in line]
        assert max(xs) - min(xs) > 0.6 * 640, "across most of the width"
        assert falls(line)
        plain = await client.call_tool("get_job_metrics", {"job_id": job_id})
        assert [c.type for c in plain.content] == ["text"], "no plot asked, no picture"


async def test_compare_plot_overlays_each_run(state_dir, settings):
    async with connect(settings, asker=Asker()) as client:
        fast = await finished_job(client, falling(0.8))
        slow = await finished_job(client, falling(0.97))
        image = picture(await client.call_tool("compare_jobs", {"job_ids": [fast, slow], "plot": True}))
        assert image.size == (800, 500)  # the default size
        fast_line, slow_line = pixels_of(image, BLUE), pixels_of(image, ORANGE)
        assert len(fast_line) > 300 and len(slow_line) > 300
        assert falls(fast_line) and falls(slow_line)
        # At the right end the fast run's loss is lower: lower on the picture (larger y).
        right = max(x for x, _ in fast_line) - 5
        assert min(y for x, y in fast_line if x >= right) > max(y for x, y in slow_line if x >= right)


def test_the_largest_busiest_picture_stays_under_150_kb():
    rates = [0.9 + i / 100 for i in range(plot.MAX_LINES)]
    runs = {
        f"run {r}": {
            "loss": [2 * r**i for i in range(4000)],
            "acc": [1 - r**i for i in range(4000)],
            "lr": [0.1 * 0.999**i for i in range(4000)],
            "grad_norm": [1 + (i % 7) / 10 for i in range(4000)],
            "step": list(range(4000)),
        }
        for r in rates
    }
    shown = plot.panels(runs)
    assert [p.title for p in shown] == ["loss", "acc", "grad_norm", "lr"] and len(shown[0].lines) == 10
    assert all(len(line.xs) == plot.PLOT_POINTS for line in shown[0].lines)
    for size in ((1600, 1200), (320, 200)):
        png = plot.render_png("ten runs", shown, size)
        assert len(png) <= plot.MAX_BYTES
        assert Image.open(io.BytesIO(png)).size == size


async def test_a_bad_plot_size_is_refused_with_what_is_allowed(state_dir, settings):
    async with connect(settings, asker=Asker()) as client:
        for size in ("big", "5000x100", "100x100"):
            text = await call_error(client, "get_job_metrics", {"job_id": "local-x", "plot": True, "plot_size": size})
            assert "WIDTHxHEIGHT" in text and "320-1600" in text, text
        text = await call_error(client, "compare_jobs", {"job_ids": ["local-x"], "plot": True, "plot_size": "0x0"})
        assert "WIDTHxHEIGHT" in text


async def test_without_matplotlib_the_result_says_how_to_get_the_picture(state_dir, settings, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    async with connect(settings, asker=Asker()) as client:
        job_id = await finished_job(client, falling(0.9, steps=5))
        result = await client.call_tool("get_job_metrics", {"job_id": job_id, "plot": True})
        assert not result.is_error
        assert [c.type for c in result.content] == ["text", "text"]
        assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
        note = result.content[1].text  # type: ignore[union-attr]
        assert "pip install 'cloudjobs-mcp[plot]'" in note and "matplotlib" in note
