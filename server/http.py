"""The one HTTP transport every HTTP provider uses: a pooled ``httpx.AsyncClient`` and one retry loop.

* :func:`create_client` builds the provider's client (pool limits, timeouts, user agent). A provider
  creates one and reuses it for every call; it owns it and closes it in ``aclose``.
* :func:`send` sends one logical request with retries. ``build_request`` is called for *every*
  attempt, so a signing provider re-signs each attempt (fresh date and nonce). Retried: throttling,
  5xx / errors the provider's ``parse_error`` marks ``retryable``, timeouts, connection errors and
  resets; exponential backoff with full jitter, or the server's retry-after when it sent one
  (``ProviderError.retry_after``, seconds); bounded in attempts *and* in total time. Non-retryable
  errors (400, 403, ...) raise at once. Transport failures become :class:`~server.errors.TransportError`.
* Non-idempotent requests (``idempotent=False``, e.g. "create a job") are only retried when the
  request certainly never reached the server (connect errors, pool timeouts, throttling). Any other
  failure — a read timeout, a reset after sending, a 5xx — raises :class:`OutcomeUnknown`; the caller
  must find out whether the operation happened (e.g. look the job up by its idempotency tag) before
  sending it again.

* A platform with login tokens passes ``reauthenticate``: on the first 401 of a call the loop awaits it
  (a fresh login) and sends again at once; a second 401 raises. One re-login per call, never a loop
  (a 401 is the auth layer's answer: the request was not processed, so re-sending a create is safe).
* A platform whose 503 sometimes means "no capacity" (not an outage) says so through ``parse_error``:
  such an error is not ``retryable`` and raises at once, like any other answer that retrying cannot change.

``sleep``, ``rand`` and ``clock`` are injectable so tests never wait. Log lines name the method, host
and path only — never the query string, headers or body (they can carry tokens).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit
from urllib.request import getproxies

import anyio
import httpx

from cloudjobs_mcp.server import __version__
from cloudjobs_mcp.server.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFound,
    ProviderError,
    Throttled,
    TransportError,
)

logger = logging.getLogger("cloudjobs.http")

USER_AGENT = f"cloudjobs-mcp/{__version__}"
T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    """Where a platform API answers: ``scheme`` and ``host[:port]`` exactly as signed and sent."""

    scheme: str
    host: str

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"


def parse_override(value: str) -> Endpoint:
    """An endpoint override: ``host[:port]`` (HTTPS) or ``http(s)://host[:port]`` → Endpoint."""
    raw = value.strip()
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ConfigurationError(
            f"invalid endpoint override {value!r}: use host[:port] or http(s)://host[:port] without a path"
        )
    return Endpoint(parts.scheme, parts.netloc)


class _HasHttpSettings(Protocol):
    http_timeout_seconds: float
    max_retries: int


class OutcomeUnknown(TransportError):
    """A non-idempotent request failed after it may have reached the server: it may have happened."""


class RemoteNotFound(ProviderError, NotFound):
    """The platform answered "no such resource" (HTTP 404 for a job, pod, ...); both a ProviderError
    (code, request id) and a NotFound (what the engine and tools catch)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard :func:`send` tries. ``max_attempts`` counts the first attempt."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_total: float = 120.0
    max_retry_after: float = 60.0

    @classmethod
    def from_settings(cls, settings: _HasHttpSettings) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_retries + 1,
            max_total=max(60.0, 4 * settings.http_timeout_seconds),
        )

    def backoff(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Full-jitter exponential delay before retry number ``retry`` (0-based)."""
        return rand() * min(self.max_delay, self.base_delay * (2**retry))

    def delay(
        self,
        retry: int,
        retry_after: float | None,
        rand: Callable[[], float] = random.random,
        window: tuple[float, float] | None = None,
    ) -> float:
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_retry_after)
        if window is not None:  # the platform's advised range, jittered within it
            low, high = window
            return min(low + rand() * max(0.0, high - low), self.max_retry_after)
        return self.backoff(retry, rand)


class TlsOnFirstUse(httpx.AsyncBaseTransport):
    """httpx's transport, with its TLS context made on the first https request.

    httpx loads the CA bundle (~150 certificates: ~25 ms and ~2.5 MB) when a client is made, whether or not
    it will ever speak TLS. A provider pointed at a sandbox or a cluster on plain http:// (the sandboxes,
    ``ray up``, a bench) never needs it, and one pointed at a cloud needs it at its first call, not at start.
    Plain-http requests go through a pool without certificates; https ones through the usual verified pool.
    Not used when the environment names a proxy: httpx routes through proxies only with its own transport."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._plain: httpx.AsyncHTTPTransport | None = None
        self._tls: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            if self._tls is None:
                self._tls = httpx.AsyncHTTPTransport(limits=self._limits)  # verify=True: the CA bundle
            return await self._tls.handle_async_request(request)
        if self._plain is None:
            # verify=False only skips loading certificates: this pool never opens a TLS connection.
            self._plain = httpx.AsyncHTTPTransport(limits=self._limits, verify=False)
        return await self._plain.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self._plain, self._tls):
            if transport is not None:
                await transport.aclose()


def create_client(
    settings: _HasHttpSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 32,
) -> httpx.AsyncClient:
    """One pooled client per provider; HTTP/1.1, no redirects, proxies from the environment."""
    timeout = httpx.Timeout(settings.http_timeout_seconds, connect=min(10.0, settings.http_timeout_seconds))
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max(1, max_connections // 2),
        keepalive_expiry=30.0,
    )
    if transport is None and not getproxies():
        transport = TlsOnFirstUse(limits)
    return httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
        transport=transport,
    )


# Failures of these kinds happen before a single byte of the request left this machine.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _label(request: httpx.Request) -> str:
    return f"{request.method} {request.url.host}{request.url.path}"


def _transport_message(label: str, exc: Exception) -> str:
    detail = str(exc).strip()[:200]
    return f"{label}: {type(exc).__name__}" + (f" ({detail})" if detail else "")


def _with_note(err: ProviderError, note: str) -> ProviderError:
    new = type(err)(
        f"{err.message} {note}",
        code=err.code,
        request_id=err.request_id,
        status=err.status,
        retryable=err.retryable,
        retry_after=err.retry_after,
        retry_window=err.retry_window,
    )
    return new


async def send(
    client: httpx.AsyncClient,
    build_request: Callable[[], httpx.Request],
    *,
    parse_error: Callable[[httpx.Response], ProviderError],
    policy: RetryPolicy,
    idempotent: bool = True,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    rand: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
    reauthenticate: Callable[[], Awaitable[None]] | None = None,
) -> httpx.Response:
    """Send with retries; returns the first 2xx response or raises a ``ProviderError``.

    ``parse_error`` turns a non-2xx response into the provider's typed error; its ``retryable`` and
    ``retry_after`` drive the loop. See the module docstring for what ``idempotent=False`` changes.
    """
    start = clock()
    attempt = 0
    reauthenticated = False
    while True:
        attempt += 1
        request = build_request()
        label = _label(request)
        err: ProviderError
        try:
            response = await client.send(request)
        except httpx.TransportError as exc:
            message = _transport_message(label, exc)
            if not idempotent and not isinstance(exc, _NOT_SENT):
                raise OutcomeUnknown(
                    f"{message}: the request may or may not have been processed",
                    code=type(exc).__name__,
                    retryable=True,
                ) from None
            err = TransportError(message, code=type(exc).__name__, retryable=True)
        else:
            if response.is_success:
                return response
            err = parse_error(response)
            if response.status_code == 401 and reauthenticate is not None and not reauthenticated:
                reauthenticated = True
                logger.info("%s answered 401; logging in again once", label)
                await reauthenticate()
                attempt -= 1  # the re-login's retry is not a failed attempt
                continue
            # An authentication failure is final whatever the provider says: some platforms lock a key
            # after a few failed signatures in a row (Huawei Cloud: five), so a retry loop would lock it.
            if not err.retryable or isinstance(err, AuthenticationError):
                raise err
            if not idempotent and not isinstance(err, Throttled):
                raise OutcomeUnknown(
                    f"{err.message} (the request may or may not have been processed)",
                    code=err.code,
                    request_id=err.request_id,
                    status=err.status,
                    retryable=True,
                    retry_after=err.retry_after,
                )

        delay = policy.delay(attempt - 1, err.retry_after, rand, err.retry_window)
        elapsed = clock() - start
        if attempt >= policy.max_attempts or elapsed + delay > policy.max_total:
            raise _with_note(err, f"(gave up after {attempt} attempt{'s' if attempt != 1 else ''}).")
        logger.warning(
            "%s failed (%s); retry %d/%d in %.2fs",
            label,
            err.code or type(err).__name__,
            attempt,
            policy.max_attempts - 1,
            delay,
        )
        await sleep(delay)


@dataclass(frozen=True)
class Sender:
    """:func:`send` bound to one API's client and retry policy (and, in tests, its sleep, jitter and clock)."""

    client: httpx.AsyncClient
    policy: RetryPolicy
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    rand: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic

    async def __call__(
        self,
        build_request: Callable[[], httpx.Request],
        *,
        parse_error: Callable[[httpx.Response], ProviderError],
        idempotent: bool = True,
        reauthenticate: Callable[[], Awaitable[None]] | None = None,
    ) -> httpx.Response:
        return await send(
            self.client, build_request, parse_error=parse_error, policy=self.policy, idempotent=idempotent,
            sleep=self.sleep, rand=self.rand, clock=self.clock, reauthenticate=reauthenticate,
        )  # fmt: skip


async def submit_once(
    submit: Callable[[], Awaitable[T]],
    find: Callable[[], Awaitable[T | None]] | None,
    *,
    attempts: int,
    what: str,
) -> T:
    """Send a non-idempotent create (``submit``) exactly once. After an :class:`OutcomeUnknown`, ``find``
    looks for what it may have created (e.g. by the quote's tag) and returns that instead of sending again;
    it is sent again only when nothing is found, at most ``attempts`` times. Without ``find`` (nothing to
    look for) the OutcomeUnknown is raised, saying to check before creating again."""
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            return await submit()
        except OutcomeUnknown as exc:
            if find is None:
                raise OutcomeUnknown(
                    f"{exc.message.rstrip('.')}. The {what} may have been created: check list_jobs before "
                    "creating it again.",
                    code=exc.code,
                    request_id=exc.request_id,
                    status=exc.status,
                    retryable=False,
                ) from None
            found = await find()
            if found is not None:
                logger.info("the %s's create had an unknown outcome; found it: %s", what, found)
                return found
            if attempt == attempts:
                raise
            logger.warning("the %s's create had an unknown outcome and it was not found; sending again", what)
    raise AssertionError("unreachable")
