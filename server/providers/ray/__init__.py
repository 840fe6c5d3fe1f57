"""The ``ray`` provider: jobs on a Ray cluster through the Ray Jobs REST API (see ``provider``)."""

from cloudjobs_mcp.server.providers.ray.provider import RayProvider

__all__ = ["RayProvider"]
