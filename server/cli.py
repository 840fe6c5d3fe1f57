"""The ``cloudjobs-mcp`` command: serve (stdio or HTTP), demo, sandbox, config, bundle, --version."""

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
    _add_config(sub)
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
    if args.command == "config":
        from cloudjobs_mcp.server import clients

        return clients.main(args.client, _config_env(args), runner=args.runner, pin=args.pin)
    if args.command == "sandbox":
        from cloudjobs_mcp.server.sandbox.runner import run

        return run(args)
    return _serve(http=getattr(args, "http", False), port=getattr(args, "port", 8765))


def _add_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from cloudjobs_mcp.server.clients import CLIENTS, RUNNERS

    config = sub.add_parser(
        "config",
        help="print the block that adds this server to an MCP client (credentials as placeholders or inputs)",
    )
    config.add_argument("client", choices=CLIENTS)
    config.add_argument("--provider", help="CLOUDJOBS_PROVIDER (default local)")
    config.add_argument("--region", help="CLOUDJOBS_REGION")
    config.add_argument("--max-job-cost", help="CLOUDJOBS_MAX_JOB_COST: refuse quotes whose worst case is above")
    config.add_argument("--max-hourly", help="CLOUDJOBS_MAX_HOURLY: refuse quotes whose hourly total is above")
    config.add_argument("--read-only", action="store_true", help="CLOUDJOBS_READ_ONLY=1")
    config.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other setting, e.g. CLOUDJOBS_STATE_DIR=~/jobs",
    )
    config.add_argument(
        "--runner",
        choices=RUNNERS,
        default="uvx",
        help="how the client starts the server: uvx (default), pipx run, "
        "or this installation's own cloudjobs-mcp (path)",
    )
    config.add_argument("--pin", action="store_true", help="pin this version (uvx cloudjobs-mcp@VERSION)")


def _config_env(args: argparse.Namespace) -> dict[str, str]:
    env = {
        f"CLOUDJOBS_{flag.upper()}": str(value)
        for flag in ("provider", "region", "max_job_cost", "max_hourly")
        if (value := getattr(args, flag)) is not None
    }
    if args.read_only:
        env["CLOUDJOBS_READ_ONLY"] = "1"
    for item in args.set:
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        env[name if name.startswith("CLOUDJOBS_") else f"CLOUDJOBS_{name}"] = value if sep else ""
    return env


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
