"""The shared client's transport (server/http.py): the CA bundle is loaded on the first https request only,
https is always verified, and a proxy in the environment keeps httpx's own transport."""

from __future__ import annotations

import ssl

import anyio
import httpx
import pytest
import respx

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.http import TlsOnFirstUse, create_client

pytestmark = pytest.mark.anyio

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def ssl_context_of(transport: httpx.AsyncHTTPTransport) -> ssl.SSLContext:
    return transport._pool._ssl_context  # type: ignore[attr-defined,no-any-return]


async def test_plain_http_is_served_without_loading_the_ca_bundle(no_proxy_env):
    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, answer)
        async with create_client(Settings.from_env({})) as client:
            response = await client.get(f"http://127.0.0.1:{port}/api/v1/jobs")
            transport = client._transport
            assert response.json() == {}
            assert isinstance(transport, TlsOnFirstUse)
            assert transport._tls is None  # no TLS pool, no CA bundle
            assert transport._plain is not None
            assert ssl_context_of(transport._plain).cert_store_stats()["x509_ca"] == 0
        tg.cancel_scope.cancel()


async def test_https_goes_through_a_verified_pool_with_the_ca_bundle(no_proxy_env):
    async with create_client(Settings.from_env({})) as client:
        with respx.mock(assert_all_called=True) as mock:
            mock.get("https://pai-dlc.cn-hangzhou.aliyuncs.com/api/v1/jobs").respond(json={"Jobs": []})
            await client.get("https://pai-dlc.cn-hangzhou.aliyuncs.com/api/v1/jobs")
        transport = client._transport
        assert isinstance(transport, TlsOnFirstUse) and transport._tls is not None
        context = ssl_context_of(transport._tls)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0


async def test_a_proxy_in_the_environment_keeps_the_proxy(monkeypatch, no_proxy_env):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    async with create_client(Settings.from_env({})) as client:
        assert not isinstance(client._transport, TlsOnFirstUse)
        proxied = [t for t in client._mounts.values() if t is not None]
        assert proxied, "the https proxy from the environment is mounted"
