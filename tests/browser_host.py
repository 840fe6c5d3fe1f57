"""Headless Chromium (Debian's package, driven by the playwright client) playing an MCP Apps host.

The host page (tests/data/apps_host.html) is served from a loopback HTTP server; it loads a view the real
server returns from resources/read into a sandboxed iframe and proxies the view's tool calls to that
server through an MCP client. The browser may reach nothing but loopback: every other request is
aborted and recorded, and the test fails if there was one.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from mcp import Client

DATA = Path(__file__).parent / "data"
ARTIFACTS = Path(__file__).parent / "artifacts" / "views"
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser() -> str:
    """Debian's chromium, or a skip that says what is missing (a failure under CI, which must run these)."""
    missing = []
    path = chromium_path()
    if path is None:
        missing.append("Debian's chromium (apt-get install -y chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[test]')")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message}; CI must run them (.ci/run installs both)")
        pytest.skip(message)
    assert path is not None
    return path


@contextmanager
def loopback_server(root: Path) -> Iterator[str]:
    """A static file server on 127.0.0.1 (a free port) for the host page."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Host:
    """One host page with one view in it."""

    def __init__(self, page: Any, client: Client, base_url: str) -> None:
        self.page = page
        self.client = client
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.tool_calls: list[tuple[str, dict[str, Any]]] = []
        self.delays: dict[str, float] = {}  # tool → seconds its proxied calls take longer (to widen a race)

    async def open(
        self,
        tool: str,
        args: dict[str, Any],
        *,
        theme: str = "light",
        width: int = 640,
        server_tools: bool = True,
    ) -> Any:
        """Call ``tool`` as a host would: show its view (from the tool's _meta.ui.resourceUri) with the
        arguments at once and the result when the call returns. Returns the view's frame locator."""
        listed = {t.name: t for t in (await self.client.list_tools()).tools}
        meta = listed[tool].meta or {}
        uri = meta["ui"]["resourceUri"]
        read = await self.client.read_resource(uri)
        content = read.contents[0]
        assert content.mime_type == "text/html;profile=mcp-app"
        visibility = {
            name: ((t.meta or {}).get("ui", {}).get("visibility") or ["model", "app"]) for name, t in listed.items()
        }
        await self.page.evaluate(
            "o => startApp(o)",
            {
                "html": content.text,
                "csp": ((content.meta or {}).get("ui") or {}).get("csp"),
                "args": args,
                "tools": visibility,
                "theme": theme,
                "width": width,
                "capabilities": {"serverTools": {}, "logging": {}} if server_tools else {},
            },
        )
        result = await self.client.call_tool(tool, args)
        await self.page.evaluate(
            "r => deliverResult(r)", result.model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        return self.page.frame_locator("#app-frame")

    async def proxy(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.tool_calls.append((name, arguments))
        if self.delays.get(name):
            await anyio.sleep(self.delays[name])
        result = await self.client.call_tool(name, arguments)
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)

    def calls(self, name: str) -> list[dict[str, Any]]:
        return [args for called, args in self.tool_calls if called == name]

    async def log(self) -> list[dict[str, Any]]:
        return await self.page.evaluate("JSON.parse(JSON.stringify(hostLog))")

    async def frame_eval(self, script: str) -> Any:
        frame = next(f for f in self.page.frames if f is not self.page.main_frame)
        return await frame.evaluate(script)

    async def fitted(self) -> None:
        """Wait until the frame has the height the view reported for its content (size-changed works)."""
        content = frame = 0.0
        for _ in range(30):
            content = await self.frame_eval("Math.ceil(document.documentElement.getBoundingClientRect().height)")
            frame = await self.page.evaluate("document.getElementById('app-frame').getBoundingClientRect().height")
            if abs(content - frame) <= 1:
                return
            await self.page.wait_for_timeout(100)  # the view reports its new height after a short debounce
        raise AssertionError(f"the frame is {frame}px tall but the view's content is {content}px")

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.fitted()
        path = ARTIFACTS / f"{name}.png"
        # A viewport as tall as the page: Chromium's full-page capture cuts a tall iframe at the viewport.
        viewport = self.page.viewport_size
        height = await self.page.evaluate("document.documentElement.scrollHeight")
        await self.page.set_viewport_size({"width": viewport["width"], "height": max(height, 200)})
        await self.page.screenshot(path=str(path))
        await self.page.set_viewport_size(viewport)
        return path


@asynccontextmanager
async def browser_host(client: Client, *, viewport_width: int = 700) -> AsyncIterator[Host]:
    """Chromium with the host page loaded; fails the test if the page tried any non-loopback request."""
    executable = require_browser()
    from playwright.async_api import async_playwright

    blocked: list[str] = []

    async def only_loopback(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOOPBACK:
            blocked.append(route.request.url)
            await route.abort()
            return
        await route.continue_()

    with loopback_server(DATA) as base_url:
        async with async_playwright() as p:
            # Playwright's defaults keep background networking, component updates, sync and metrics
            # reporting off; running as root needs chromium's own sandbox off (Playwright's default too).
            browser = await p.chromium.launch(executable_path=executable, headless=True)
            try:
                context = await browser.new_context(viewport={"width": viewport_width, "height": 900})
                await context.route("**/*", only_loopback)
                page = await context.new_page()
                host = Host(page, client, base_url)
                page.on("console", lambda m: host.console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: host.console_errors.append(f"uncaught: {e}"))
                await page.expose_function("mcpCallTool", host.proxy)
                await page.goto(f"{base_url}/apps_host.html")
                yield host
                assert host.console_errors == [], host.console_errors
            finally:
                await browser.close()
    assert blocked == [], f"the browser tried to reach beyond loopback: {blocked}"
