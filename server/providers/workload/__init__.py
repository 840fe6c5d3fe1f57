"""The ``workload`` provider: a Primus-SaFE Kubernetes AI workload platform (seed 003's Workload API)."""

from cloudjobs_mcp.server.providers.workload.provider import WorkloadProvider

__all__ = ["WorkloadProvider"]
