"""Training curves as a PNG picture, for chat clients that show images but not the MCP Apps views.

matplotlib is an optional extra (``cloudjobs-mcp[plot]``), imported only when a plot is asked for; it
draws off the event loop on a private Figure (no pyplot global state). Pictures stay under 150 KB.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

from cloudjobs_mcp.server.errors import CloudJobsError, InvalidRequest
from cloudjobs_mcp.server.metrics import downsample

MAX_BYTES = 150_000
DEFAULT_SIZE = "800x500"
MIN_SIZE, MAX_SIZE = (320, 200), (1600, 1200)
PLOT_POINTS = 400  # per line: more than a chat picture can show
MAX_PANELS = 4
MAX_LINES = 10
MISSING = (
    "plot=true needs matplotlib, which is not installed here: install the plot extra "
    "(pip install 'cloudjobs-mcp[plot]') and restart the server. The numbers are in the result; no picture was made."
)
_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")


class PlotUnavailable(CloudJobsError):
    """The plotting library is missing."""


@dataclass(frozen=True)
class Line:
    label: str
    xs: list[float]
    ys: list[float]


@dataclass(frozen=True)
class Panel:
    title: str
    x_label: str
    lines: list[Line]


def parse_size(text: str) -> tuple[int, int]:
    match = _SIZE.match(text or "")
    width, height = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise InvalidRequest(
            f"plot_size {text!r} is not allowed: give WIDTHxHEIGHT in pixels, width {MIN_SIZE[0]}-{MAX_SIZE[0]} "
            f"and height {MIN_SIZE[1]}-{MAX_SIZE[1]}, e.g. {DEFAULT_SIZE!r}."
        )
    return width, height


def panels(runs: dict[str, dict[str, list[float]]]) -> list[Panel]:
    """One panel per training metric (loss first; `step` becomes the x axis), one line per run or pod.

    ``runs`` maps a line's label to that run's metric values, as read from its log.
    """
    names = sorted({n for values in runs.values() for n in values if n != "step"}, key=lambda n: (n != "loss", n))
    out: list[Panel] = []
    for name in names[:MAX_PANELS]:
        lines: list[Line] = []
        stepped = False
        for label, values in list(runs.items())[:MAX_LINES]:
            ys = values.get(name)
            if not ys:
                continue
            steps = values.get("step")
            use_steps = bool(steps) and len(steps or []) == len(ys)
            stepped = stepped or use_steps
            xs = [float(s) for s in steps] if steps and use_steps else [float(i) for i in range(1, len(ys) + 1)]
            pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
            if pairs:
                lines.append(
                    Line(
                        label,
                        downsample([p[0] for p in pairs], PLOT_POINTS),
                        downsample([p[1] for p in pairs], PLOT_POINTS),
                    )
                )
        if lines:
            out.append(Panel(name, "step" if stepped else "log sample", lines))
    return out


def render_png(title: str, shown: list[Panel], size: tuple[int, int]) -> bytes:
    """The panels as one PNG of exactly ``size`` pixels. Blocking: run it in a worker thread."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable(MISSING) from None
    width, height = size
    dpi = 100
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=11)
    # Each panel needs room for its ticks and labels: a small picture shows fewer metrics (loss first).
    cols = max(1, min(2, width // 320, len(shown)))
    fit = cols * max(1, height // 200)
    shown = shown[:fit]
    if not shown:
        figure.text(0.5, 0.5, "No training metrics in the log yet", ha="center", va="center", fontsize=12)
    else:
        cols = min(cols, len(shown))
        rows = math.ceil(len(shown) / cols)
        for i, panel in enumerate(shown, 1):
            axes = figure.add_subplot(rows, cols, i)
            for line in panel.lines:
                axes.plot(line.xs, line.ys, linewidth=1.6, label=line.label, marker="." if len(line.xs) < 30 else None)
            axes.set_title(panel.title, fontsize=10)
            axes.set_xlabel(panel.x_label, fontsize=9)
            axes.tick_params(labelsize=8)
            axes.grid(True, alpha=0.3)
            if len(panel.lines) > 1:
                axes.legend(fontsize=7, loc="best")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    png = buffer.getvalue()
    for colours in (64, 16):  # antialiased lines make many shades: a palette keeps a big picture small
        if len(png) <= MAX_BYTES:
            break
        png = _palette(png, colours)
    return png


def _palette(png: bytes, colours: int) -> bytes:
    """The same picture with at most ``colours`` colours; line plots look the same to the eye."""
    from PIL import Image  # matplotlib depends on Pillow

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=colours)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
