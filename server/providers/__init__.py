"""Providers: one module or package per platform behind the ``Provider`` protocol in ``base``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the local supervisor imports this package: keep its start-up free of pydantic
    from cloudjobs_mcp.server.config import Settings
    from cloudjobs_mcp.server.providers.base import Provider

# What a quote's display calls each platform.
LABELS = {"local": "Local machine", "pai": "PAI-DLC"}


def create_provider(settings: Settings) -> Provider:
    """The provider CLOUDJOBS_PROVIDER names, imported lazily: no platform loads another's code."""
    if settings.provider == "local":
        from cloudjobs_mcp.server.providers.local import LocalProvider

        return LocalProvider(settings)
    if settings.provider == "pai":
        from cloudjobs_mcp.server.providers.pai import PaiProvider

        return PaiProvider(settings)
    raise AssertionError(f"unhandled provider {settings.provider}")  # Settings validates the name
