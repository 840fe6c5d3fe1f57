"""What every cloud's default credential chain shares: its sources are tried in order, the first that
answers is kept and asked again afterwards, and when none answers the error lists each source and why.

The sources themselves (environment variables, profile files, metadata services, STS) and the shape of a
cloud's credentials stay in that cloud's ``credentials.py``; no reason or message here holds a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import anyio

from cloudjobs_mcp.server.errors import CredentialsNotFound


class Unavailable(Exception):
    """A source in the chain has nothing to offer; ``reason`` says why (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Credentials(Protocol):
    @property
    def source(self) -> str: ...


C = TypeVar("C", bound=_Credentials)
C_co = TypeVar("C_co", bound=_Credentials, covariant=True)


class Source(Protocol[C_co]):
    async def get(self) -> C_co: ...


class StaticSource(Generic[C]):
    """Credentials given to the provider directly (tests, an embedding program)."""

    name = "static"

    def __init__(self, credentials: C) -> None:
        self._credentials = credentials

    async def get(self) -> C:
        return self._credentials


class RefreshingSource(Generic[C]):
    """A source whose credentials expire (STS, a metadata service): fetched once, reused while ``_fresh``
    says so, then fetched again; one fetch at a time, which concurrent callers wait for and share."""

    def __init__(self) -> None:
        self._cached: C | None = None
        self._lock = anyio.Lock()

    def _fresh(self, cached: C) -> bool:
        raise NotImplementedError

    async def _fetch(self) -> C:
        raise NotImplementedError

    async def get(self) -> C:
        cached = self._cached
        if cached is not None and self._fresh(cached):
            return cached
        async with self._lock:
            cached = self._cached
            if cached is not None and self._fresh(cached):
                return cached
            self._cached = await self._fetch()
            return self._cached


class CredentialChain(Generic[C]):
    """The sources of :meth:`sources`, in order; the first that answers is reused afterwards (a later
    :class:`Unavailable` from it is CredentialsNotFound, not a walk on to the next source)."""

    def __init__(self, cloud: str, advice: str, log: logging.Logger) -> None:
        self._cloud = cloud  # "Alibaba Cloud": how errors and the log name these credentials
        self._advice = advice  # the sentence that says how to provide credentials
        self._log = log
        self._chosen: Source[C] | None = None
        self._lock = anyio.Lock()

    def sources(self) -> list[tuple[str, Source[C] | str]]:
        """``(label, source or the reason it is not configured)`` in chain order."""
        raise NotImplementedError

    async def _refresh(self, source: Source[C]) -> C:
        try:
            return await source.get()
        except Unavailable as exc:  # e.g. a token file that vanished after the first success
            raise CredentialsNotFound(f"{self._cloud} credentials are no longer available: {exc.reason}") from None

    async def get(self) -> C:
        if self._chosen is not None:
            return await self._refresh(self._chosen)
        async with self._lock:
            if self._chosen is not None:
                return await self._refresh(self._chosen)
            reasons: list[str] = []
            for label, source in self.sources():
                if isinstance(source, str):
                    reasons.append(f"{label}: {source}")
                    continue
                try:
                    credentials = await source.get()
                except Unavailable as exc:
                    reasons.append(f"{label}: {exc.reason}")
                    continue
                self._chosen = source
                self._log.info("using %s credentials from %s", self._cloud, credentials.source)
                return credentials
        raise CredentialsNotFound(
            f"No {self._cloud} credentials found. Tried, in order: "
            + "; ".join(f"{i}) {r}" for i, r in enumerate(reasons, 1))
            + f". {self._advice}"
        )


def as_source(
    credentials: C | Source[C] | None, credentials_type: type[C], default: Callable[[], Source[C]]
) -> Source[C]:
    """What a provider was given, as a source: nothing → the cloud's default chain, fixed credentials →
    a :class:`StaticSource`, a source → itself."""
    if credentials is None:
        return default()
    if isinstance(credentials, credentials_type):
        return StaticSource(credentials)
    return credentials  # type: ignore[return-value]
