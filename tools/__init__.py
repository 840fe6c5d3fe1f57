"""MCP tools: one module per tool family, each with a ``register(mcp, settings)`` function.

Handlers are thin: they validate arguments, call the engine and shape a bounded, structured result.
"""
