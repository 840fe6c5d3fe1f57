"""The credential chain every cloud's default credentials share (server/providers/credchain.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import pytest

from cloudjobs_mcp.server.errors import CredentialsNotFound
from cloudjobs_mcp.server.providers.credchain import (
    CredentialChain,
    RefreshingSource,
    Source,
    StaticSource,
    Unavailable,
    as_source,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Keys:
    secret: str
    source: str


class Scripted:
    """A source that answers from a script: a Keys, or the reason it has none."""

    def __init__(self, *answers: Keys | str) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def get(self) -> Keys:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, str):
            raise Unavailable(answer)
        await anyio.lowlevel.checkpoint()  # let concurrent callers meet the lock
        return answer


class Chain(CredentialChain[Keys]):
    def __init__(self, *sources: tuple[str, Source[Keys] | str]) -> None:
        super().__init__("Test Cloud", "Set TEST_KEY.", logging.getLogger("cloudjobs.test.credchain"))
        self._listed = list(sources)

    def sources(self) -> list[tuple[str, Source[Keys] | str]]:
        return self._listed


async def test_the_first_source_that_answers_wins_and_is_asked_again_afterwards() -> None:
    env, profile, metadata = Scripted("TEST_KEY not set"), Scripted(Keys("s1", "profile")), Scripted(Keys("s2", "md"))
    chain = Chain(("environment", env), ("profile", profile), ("metadata", metadata))
    assert await chain.get() == Keys("s1", "profile")
    assert await chain.get() == Keys("s1", "profile")
    assert (env.calls, profile.calls, metadata.calls) == (1, 2, 0)  # the walk is not repeated


async def test_concurrent_first_calls_walk_the_chain_once() -> None:
    env, profile = Scripted("not set"), Scripted(Keys("s1", "profile"))
    chain = Chain(("environment", env), ("profile", profile))
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(chain.get)
    assert env.calls == 1  # the others waited for the first walk and reused its choice


async def test_nothing_found_lists_every_source_and_why_then_says_what_to_do() -> None:
    chain = Chain(("environment", Scripted("TEST_KEY is not set")), ("OIDC", "TEST_ROLE not set"))
    with pytest.raises(CredentialsNotFound) as caught:
        await chain.get()
    assert str(caught.value) == (
        "No Test Cloud credentials found. Tried, in order: 1) environment: TEST_KEY is not set; "
        "2) OIDC: TEST_ROLE not set. Set TEST_KEY."
    )


async def test_a_chosen_source_that_stops_answering_is_an_error_not_a_walk_to_the_next() -> None:
    chosen, fallback = Scripted(Keys("s1", "oidc"), "the token file is gone"), Scripted(Keys("s2", "profile"))
    chain = Chain(("OIDC", chosen), ("profile", fallback))
    assert (await chain.get()).source == "oidc"
    with pytest.raises(CredentialsNotFound, match="Test Cloud credentials are no longer available: the token file"):
        await chain.get()
    assert fallback.calls == 0


async def test_as_source_wraps_fixed_credentials_and_passes_a_source_through() -> None:
    keys, scripted = Keys("s", "static"), Scripted(Keys("s3", "x"))
    static = as_source(keys, Keys, lambda: Chain())
    assert isinstance(static, StaticSource) and await static.get() is keys
    assert as_source(scripted, Keys, lambda: Chain()) is scripted
    default = Chain()
    assert as_source(None, Keys, lambda: default) is default


class Expiring(RefreshingSource[Keys]):
    """Each fetch answers the next secret; credentials stay fresh while ``valid`` says so."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches = 0
        self.valid = True

    def _fresh(self, cached: Keys) -> bool:
        return self.valid

    async def _fetch(self) -> Keys:
        self.fetches += 1
        await anyio.lowlevel.checkpoint()  # let concurrent callers meet the lock
        return Keys(f"s{self.fetches}", "sts")


async def test_expiring_credentials_are_fetched_once_reused_while_fresh_and_fetched_again_after() -> None:
    source = Expiring()
    got: list[Keys] = []

    async def get() -> None:
        got.append(await source.get())

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(get)
    assert source.fetches == 1 and {k.secret for k in got} == {"s1"}  # concurrent callers shared one fetch
    assert (await source.get()).secret == "s1"
    source.valid = False
    assert (await source.get()).secret == "s2" and source.fetches == 2
