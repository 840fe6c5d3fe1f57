"""The ``cloudjobs-mcp`` command: serve (stdio or HTTP), token, audit, demo, sandbox, config, ray, bundle, --version."""

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
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    serve.add_argument(
        "--host", default="127.0.0.1", help="HTTP address to bind (with --http); other than loopback needs auth"
    )
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (with --http)")
    token = sub.add_parser("token", help="manage the team server's API tokens (CLOUDJOBS_HTTP_TOKENS_FILE)")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    token_add = token_sub.add_parser("add", help="make a token for NAME and print it once (only its hash is kept)")
    token_add.add_argument("name", help="the identity the token stands for, e.g. alice or chat-bot")
    token_add.add_argument(
        "--scopes", default="jobs:read,jobs:write", help="comma list of jobs:read, jobs:write, jobs:admin"
    )
    token_sub.add_parser("list", help="list the tokens' names and scopes (never the tokens)")
    token_revoke = token_sub.add_parser("revoke", help="revoke NAME's token (effective at once, no restart)")
    token_revoke.add_argument("name")
    audit = sub.add_parser("audit", help="print the audit trail (<state>/audit.jsonl), one JSON object a line")
    audit.add_argument("--since", help="only entries after this: 30m, 2h, 7d, or an ISO time")
    audit.add_argument("--identity", help="only this identity's entries (local: stdio and loopback callers)")
    audit.add_argument("--tool", help="only this tool's entries, e.g. create_training_job")
    demo = sub.add_parser("demo", help="walk the whole workflow with a small real job")
    demo.add_argument(
        "--provider",
        default="local",
        choices=["local", "pai-sandbox", "workload-sandbox", "modelarts-sandbox", "ray"],
        help="where the demo job runs: this machine, the pai / workload / modelarts provider against a sandbox "
        "started for it, or a Ray cluster (CLOUDJOBS_RAY_ADDRESS, else a local one started for the demo)",
    )
    demo.add_argument("--keep", action="store_true", help="keep the demo's state directory")
    sandbox = sub.add_parser(
        "sandbox",
        help="run an offline cloud sandbox on loopback: PAI (default) or --cloud modelarts (Huawei ModelArts)",
    )
    from cloudjobs_mcp.server.sandbox.cli import add_arguments

    add_arguments(sandbox)
    _add_config(sub)
    bundle = sub.add_parser("bundle", help="build an MCP Bundle (.mcpb) for Claude Desktop")
    bundle.add_argument("--output", default="dist", help="folder for cloudjobs-mcp-<version>.mcpb (default: dist)")
    ray = sub.add_parser("ray", help="a local Ray cluster for the ray provider: ray up | ray down")
    ray.add_argument("action", choices=["up", "down"])
    ray.add_argument("--cpus", type=int, default=2, help="CPUs the head offers to jobs (ray up)")
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
    if args.command == "ray":
        return _ray(args.action, args.cpus)
    if args.command == "config":
        from cloudjobs_mcp.server import clients

        return clients.main(args.client, _config_env(args), runner=args.runner, pin=args.pin)
    if args.command == "bundle":
        from pathlib import Path

        from cloudjobs_mcp.server import bundle as mcpb

        return mcpb.main(Path(args.output))
    if args.command == "sandbox" and args.cloud == "workload":
        from cloudjobs_mcp.server.sandbox.workload.runner import run as run_workload

        return run_workload(args)
    if args.command == "sandbox":
        from cloudjobs_mcp.server.sandbox.runner import run

        return run(args)
    if args.command == "token":
        return _token(args)
    if args.command == "audit":
        return _audit(args)
    return _serve(
        http=getattr(args, "http", False), host=getattr(args, "host", "127.0.0.1"), port=getattr(args, "port", 8765)
    )


def _add_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from cloudjobs_mcp.server.clients import CLIENTS, RUNNERS

    config = sub.add_parser(
        "config",
        help="print the block that adds this server to an MCP client (credentials as placeholders or inputs)",
    )
    config.add_argument("client", choices=CLIENTS)
    config.add_argument(
        "--provider",
        action="append",
        default=[],
        help="CLOUDJOBS_PROVIDERS: a provider to enable (repeat, or a comma list; the first is the default)",
    )
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
        for flag in ("region", "max_job_cost", "max_hourly")
        if (value := getattr(args, flag)) is not None
    }
    if args.provider:
        env["CLOUDJOBS_PROVIDERS"] = ",".join(p.strip() for item in args.provider for p in item.split(","))
    if args.read_only:
        env["CLOUDJOBS_READ_ONLY"] = "1"
    for item in args.set:
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        env[name if name.startswith("CLOUDJOBS_") else f"CLOUDJOBS_{name}"] = value if sep else ""
    return env


def _ray(action: str, cpus: int) -> int:
    from cloudjobs_mcp.server.config import Settings
    from cloudjobs_mcp.server.errors import ConfigurationError
    from cloudjobs_mcp.server.providers.ray import cluster

    try:
        state_dir = Settings.from_env().state_dir
        if action == "up":
            head = cluster.start_head(state_dir, cpus=cpus)
            print(f"Ray head running at {head.address} (pid {head.pid}, token auth on, usage stats off).")
            print("Point cloudjobs-mcp at it with:\n")
            print(cluster.settings_text(head))
            print("Stop it with: cloudjobs-mcp ray down")
            return 0
        stopped = cluster.down(state_dir)
    except ConfigurationError as exc:
        return _fail(exc)
    print(f"Stopped the Ray head at {stopped.address}." if stopped else "No Ray cluster started by cloudjobs-mcp here.")
    return 0


def _fail(message: object) -> int:
    print(f"cloudjobs-mcp: {message}", file=sys.stderr)
    return 2


def _serve(*, http: bool, host: str, port: int) -> int:
    from cloudjobs_mcp.server.app import build_server, http_app
    from cloudjobs_mcp.server.config import Settings
    from cloudjobs_mcp.server.errors import ConfigurationError

    try:
        settings = Settings.from_env()
        if not http:
            build_server(settings, freeze_after_start=True).run()
            return 0
        from cloudjobs_mcp.server.auth import auth_configured
        from cloudjobs_mcp.server.rebinding import is_loopback

        if not 0 < port < 65536:
            return _fail(f"--port {port} is not a TCP port (1-65535).")
        if not is_loopback(host) and not auth_configured(settings):
            return _fail(
                f"refusing to serve on {host}, which other machines can reach, without authentication. Set "
                "CLOUDJOBS_HTTP_TOKENS_FILE (API tokens: `cloudjobs-mcp token add NAME`) and/or "
                "CLOUDJOBS_OAUTH_ISSUER (OAuth access tokens), or serve on 127.0.0.1."
            )
        shown = f"[{host}]" if ":" in host else host
        url = settings.http_public_url or f"http://{shown}:{port}/mcp"
        app = http_app(build_server(settings, http_url=url, freeze_after_start=True), settings, host=host, port=port)
    except ConfigurationError as exc:
        return _fail(exc)
    import anyio
    import uvicorn

    anyio.run(uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info")).serve)
    return 0


def _audit(args: argparse.Namespace) -> int:
    import json

    from cloudjobs_mcp.server.audit import AuditLog, parse_since
    from cloudjobs_mcp.server.config import Settings
    from cloudjobs_mcp.server.errors import ConfigurationError

    try:
        since = parse_since(args.since) if args.since else None
        log = AuditLog(Settings.from_env().state_dir)
    except (ValueError, ConfigurationError) as exc:
        return _fail(exc)
    for entry in log.entries(since=since, identity=args.identity, tool=args.tool):
        print(json.dumps(entry, ensure_ascii=False))
    return 0


def _token(args: argparse.Namespace) -> int:
    from cloudjobs_mcp.server.auth import TokenStore
    from cloudjobs_mcp.server.config import Settings
    from cloudjobs_mcp.server.errors import CloudJobsError

    try:
        settings = Settings.from_env()
        if settings.http_tokens_file is None:
            return _fail("set CLOUDJOBS_HTTP_TOKENS_FILE to the tokens file (it is created on the first `token add`).")
        store = TokenStore(settings.http_tokens_file)
        if args.token_command == "add":
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
            token = store.add(args.name, scopes)
            print(token)
            print(
                f"Token for {args.name!r} ({', '.join(scopes)}): shown once, only its hash is stored in "
                f"{store.path}. Clients send it as 'Authorization: Bearer <token>'.",
                file=sys.stderr,
            )
        elif args.token_command == "list":
            for entry in store.load().tokens:
                print(f"{entry.name}\t{','.join(entry.scopes)}\tcreated {entry.created_at:%Y-%m-%d %H:%M:%S} UTC")
        elif not store.revoke(args.name):
            known = ", ".join(e.name for e in store.load().tokens) or "none"
            return _fail(f"no token named {args.name!r} (tokens: {known}).")
        else:
            print(f"Revoked the token of {args.name!r}: it stops working at once.", file=sys.stderr)
    except CloudJobsError as exc:
        return _fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
