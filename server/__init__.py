"""cloudjobs-mcp engine: settings, domain models, the cost gate and the providers."""

__version__ = "0.1.0"
