"""DNS-rebinding protection of the HTTP transport: which ``Host`` and ``Origin`` headers the server answers.

A web page the user opens can make the browser resolve its own name to this server's address and then
talk to it with the page's ``Origin`` and ``Host``. So a request is answered only when its ``Host`` is one
this server is reached at (the bind address and port, the host of ``CLOUDJOBS_HTTP_PUBLIC_URL``, the names
in ``CLOUDJOBS_HTTP_ALLOWED_HOSTS``) and its ``Origin``, when it carries one, is the server's own origin or
one in ``CLOUDJOBS_HTTP_ALLOWED_ORIGINS``. On loopback the SDK's own loopback lists stay (any port).

The same lists go to the SDK's transport (both protocol eras check them there), and :class:`HostGate` checks
them first, for every route, before a token is even looked at, answering in words the operator can act on.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cloudjobs_mcp.server.config import Settings

# What the SDK allows on its own when it serves 127.0.0.1, localhost or ::1 (mcp.server.lowlevel.server).
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]", ""})
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host.strip('[]')}]" if ":" in host else host


def _public(url: str) -> tuple[list[str], list[str]]:
    """The Host values and the origin of a public URL (``https://cj.example.com/mcp``)."""
    parts = urlsplit(url)
    scheme, name = parts.scheme.lower(), _bracketed((parts.hostname or "").lower())
    port = parts.port or DEFAULT_PORTS.get(scheme)
    explicit = f"{name}:{port}"
    if port == DEFAULT_PORTS.get(scheme):  # clients leave a default port out of Host and Origin
        return [name, explicit], [f"{scheme}://{name}"]
    return [explicit], [f"{scheme}://{explicit}"]


def allowed_requests(settings: Settings, *, host: str, port: int) -> TransportSecuritySettings:
    """The Host and Origin values a server bound to ``host``:``port`` answers (DNS-rebinding protection on)."""
    hosts: list[str] = []
    origins: list[str] = []
    if is_loopback(host) or host in WILDCARD_BINDS:  # a wildcard bind is reached on loopback too
        hosts += LOOPBACK_HOSTS
        origins += LOOPBACK_ORIGINS
    names = [socket.gethostname()] if host in WILDCARD_BINDS else [host]
    for name in names:
        where = f"{_bracketed(name.lower())}:{port}"
        hosts.append(where)
        origins.append(f"http://{where}")
    if settings.http_public_url:
        more_hosts, more_origins = _public(settings.http_public_url)
        hosts += more_hosts
        origins += more_origins
    hosts += settings.http_allowed_hosts
    origins += settings.http_allowed_origins
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(dict.fromkeys(hosts)),
        allowed_origins=list(dict.fromkeys(origins)),
    )


class HostGate:
    """ASGI middleware: a request with a foreign ``Host`` gets 421, one with a foreign ``Origin`` 403, both
    before authentication and before any route; the SDK's own check (same lists) stays behind it."""

    def __init__(self, app: ASGIApp, allowed: TransportSecuritySettings) -> None:
        self.app = app
        self._check = TransportSecurityMiddleware(allowed)  # the SDK's matching (exact, or ``name:*``)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = await self._check.validate_request(Request(scope))
        if refused is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if refused.status_code == 421:
            what = headers.get(b"host", b"").decode("latin-1")[:200]
            text = (
                f"Misdirected request: this MCP server does not answer to Host {what!r} (DNS-rebinding "
                "protection). If clients really reach it under that name, its operator adds it to "
                "CLOUDJOBS_HTTP_ALLOWED_HOSTS or sets CLOUDJOBS_HTTP_PUBLIC_URL."
            )
        else:
            what = headers.get(b"origin", b"").decode("latin-1")[:200]
            text = (
                f"Forbidden: requests from the web origin {what!r} are refused (DNS-rebinding protection). If "
                "that origin is a client of this server, its operator adds it to CLOUDJOBS_HTTP_ALLOWED_ORIGINS."
            )
        await PlainTextResponse(text, status_code=refused.status_code)(scope, receive, send)
