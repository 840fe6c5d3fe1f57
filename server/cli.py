"""The ``cloudjobs-mcp`` command: serve (stdio or HTTP), demo, sandbox, --version."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from cloudjobs_mcp.server import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloudjobs-mcp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cloudjobs-mcp {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP on 127.0.0.1 instead of stdio")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (with --http)")
    demo = sub.add_parser("demo", help="walk the whole workflow with a small real job")
    demo.add_argument(
        "--provider",
        default="local",
        choices=["local", "pai-sandbox"],
        help="where the demo job runs: this machine, or the pai provider against a PAI sandbox started for it",
    )
    demo.add_argument("--keep", action="store_true", help="keep the demo's state directory")
    sandbox = sub.add_parser(
        "sandbox", help="run an offline PAI sandbox (PAI-DLC, AIWorkspace, ECS DescribePrice) on loopback"
    )
    from cloudjobs_mcp.server.sandbox.cli import add_arguments

    add_arguments(sandbox)
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("CLOUDJOBS_LOG_LEVEL", "WARNING").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if args.command == "demo":
        from cloudjobs_mcp.server.demo import run_demo

        return run_demo(provider=args.provider, keep=args.keep)
    if args.command == "sandbox":
        from cloudjobs_mcp.server.sandbox.runner import run

        return run(args)
    return _serve(http=getattr(args, "http", False), port=getattr(args, "port", 8765))


def _serve(*, http: bool, port: int) -> int:
    from cloudjobs_mcp.server.app import build_server
    from cloudjobs_mcp.server.errors import ConfigurationError

    try:
        mcp = build_server()
    except ConfigurationError as exc:
        print(f"cloudjobs-mcp: {exc}", file=sys.stderr)
        return 2
    if http:
        mcp.run(transport="streamable-http", host="127.0.0.1", port=port)
    else:
        mcp.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
