"""Providers: one module or package per platform behind the ``Provider`` protocol in ``base``.

This module is the one registry of provider names: ``LABELS`` (which ``server.config`` validates
``CLOUDJOBS_PROVIDERS`` against) and ``create_provider``. A new platform adds a line to each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the local supervisor imports this package: keep its start-up free of pydantic
    from cloudjobs_mcp.server.config import Settings
    from cloudjobs_mcp.server.providers.base import Provider

# What a quote's display calls each platform; the keys are every provider name the server knows.
LABELS = {
    "local": "Local machine",
    "pai": "PAI-DLC",
    "workload": "Workload platform (Primus-SaFE)",
    "modelarts": "ModelArts",
    "ray": "Ray cluster",
}


def create_provider(name: str, settings: Settings) -> Provider:
    """The provider called ``name``, imported lazily: no platform loads another's code."""
    if name == "local":
        from cloudjobs_mcp.server.providers.local import LocalProvider

        return LocalProvider(settings)
    if name == "pai":
        from cloudjobs_mcp.server.providers.pai import PaiProvider

        return PaiProvider(settings)
    if name == "workload":
        from cloudjobs_mcp.server.providers.workload import WorkloadProvider

        return WorkloadProvider(settings)
    if name == "modelarts":
        from cloudjobs_mcp.server.providers.modelarts import ModelArtsProvider

        return ModelArtsProvider(settings)
    if name == "ray":
        from cloudjobs_mcp.server.providers.ray import RayProvider

        return RayProvider(settings)
    from cloudjobs_mcp.server.errors import ConfigurationError

    raise ConfigurationError(f"unknown provider {name!r}; allowed: {', '.join(LABELS)}")
