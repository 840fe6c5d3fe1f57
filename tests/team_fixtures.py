"""A team server on loopback for tests: the real HTTP app under uvicorn, an issuer with a JWKS, signed JWTs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx2
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from cloudjobs_mcp.server.app import build_server, http_app
from cloudjobs_mcp.server.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def team_server(settings: Settings, *, bound_as: str = "127.0.0.1") -> AsyncIterator[str]:
    """The server's streamable-HTTP app (auth as configured) on a free loopback port; yields its /mcp URL.

    ``bound_as``: the ``--host`` the app is built for (its Host/Origin lists), while it really listens on
    127.0.0.1 (no test ever listens elsewhere)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    app = http_app(build_server(settings, http_url=url), settings, host=bound_as, port=port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(20):
            while not server.started:
                await anyio.sleep(0.02)
        try:
            yield url
        finally:
            server.should_exit = True


@asynccontextmanager
async def connect_http(url: str, token: str | None, *, mode: str = "auto", **kw: Any) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, **kw) as client:  # type: ignore[arg-type]
            yield client


@dataclass
class Issuer:
    """An OAuth issuer on loopback: RFC 8414 metadata and a JWKS whose keys a test can rotate."""

    url: str = ""
    keys: dict[str, Any] = field(default_factory=dict)  # kid → private key (published: its public half)
    jwks_requests: int = 0

    def add_key(self, kid: str, kind: str = "ec") -> None:
        self.keys[kid] = (
            ec.generate_private_key(ec.SECP256R1())
            if kind == "ec"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
            algo = jwt.algorithms.ECAlgorithm if is_ec else jwt.algorithms.RSAAlgorithm
            jwk = json.loads(algo.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": out}

    def token(
        self,
        sub: str,
        *,
        kid: str | None = None,
        scope: str = "jobs:read jobs:write",
        aud: str | None = None,
        iss: str | None = None,
        exp_in: float = 300,
        nbf_in: float | None = None,
        key: Any = None,
    ) -> str:
        kid = kid or next(iter(self.keys))
        key = key or self.keys[kid]
        now = time.time()
        claims: dict[str, Any] = {"sub": sub, "iss": iss or self.url, "aud": aud, "scope": scope}
        claims["exp"] = int(now + exp_in)
        if nbf_in is not None:
            claims["nbf"] = int(now + nbf_in)
        alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
        return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    issuer = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/oauth-authorization-server":
                body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
            elif self.path == "/jwks.json":
                issuer.jwks_requests += 1
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        httpd.shutdown()
        httpd.server_close()
