"""`quantbot ...`: run the daemon, check a config, list plugins."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import urllib.parse
from collections.abc import Sequence
from typing import Any

from quantbot import __version__
from quantbot.config import EX_CONFIG, PLUGIN_SECTIONS, ConfigError, LoadedConfig, default_paths, load_config, redacted
from quantbot.plugins import PluginCatalog, PluginLoadError
from quantbot.secrets import Redactor

DESCRIPTION = """\
quantbot: a headless trading daemon for Solana and Aptos.
Watches both chains, tracks whales, scans new tokens, runs them through filter and strategy
plugins, and sends every order through the risk engine. Paper mode unless the config says
mode = "live" and provides a signing key.
"""

CONFIG_HELP = (
    "config file, or directory of *.toml merged in name order; repeat to layer (later wins). "
    "Default: $CONFIGURATION_DIRECTORY, else ./config/quantbot.toml, else /etc/quantbot. "
    "Environment QUANTBOT__SECTION__KEY=value overrides any key."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantbot", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"quantbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run the daemon until SIGTERM/SIGINT (SIGHUP reloads the config)",
        description="Run the daemon in the foreground. SIGTERM/SIGINT stop it cleanly (exit 0); "
        "SIGHUP re-reads the config and applies filters, strategy parameters, risk limits and the "
        "log level live. Exit 78 on a config error.",
    )
    run.add_argument("-c", "--config", action="append", metavar="PATH", help=CONFIG_HELP)

    check = sub.add_parser(
        "check-config",
        help="validate the config and print the effective values (secrets redacted)",
        description="Validate the config exactly as `run` would and print the effective config as "
        "JSON with every secret redacted. Exit 0 if valid, 78 if not.",
    )
    check.add_argument("-c", "--config", action="append", metavar="PATH", help=CONFIG_HELP)

    for name, text in (
        ("halt", "stop new entries now (exits still pass); persisted, survives restarts"),
        ("resume", "lift a halt: trading is active again"),
    ):
        p = sub.add_parser(
            name,
            help=text,
            description=f"{text[0].upper()}{text[1:]}. With [http] control_token configured and the daemon "
            "answering, goes through its control endpoint; otherwise writes the trading state straight into the "
            "store the config names, so it works with no token and with the daemon stopped; a running daemon "
            "applies it to its next order intent.",
        )
        p.add_argument("-c", "--config", action="append", metavar="PATH", help=CONFIG_HELP)
        p.add_argument("--reason", default="operator", help="why (recorded with the state)")

    flatten = sub.add_parser(
        "flatten",
        help="sell every position (or one token's), reduce-only; works while halted",
        description="The emergency exit: asks the daemon, through the store, to sell every open position "
        "(or only --token's) with reduce-only orders, which pass even while trading is halted. A running "
        "daemon acts on its next tick; a stopped one when it starts.",
    )
    flatten.add_argument("-c", "--config", action="append", metavar="PATH", help=CONFIG_HELP)
    flatten.add_argument("--token", help="only this token (mint or asset type)")

    plugins = sub.add_parser(
        "plugins",
        help="list installed plugins per group with their config schema",
        description="List every plugin found through entry points (quantbot.filters, quantbot.strategies, "
        "quantbot.executors, quantbot.notifiers) with its distribution, version and parameter schema.",
    )
    plugins.add_argument("--json", action="store_true", help="machine-readable output")

    status = sub.add_parser(
        "status",
        help="show a running daemon's state: trading, positions, plugins, components, watchers",
        description="Ask the running daemon's HTTP endpoint (/status) and print a summary, or the full JSON "
        "with --json. Exit 0 if it answered, 3 if no daemon answers.",
    )
    status.add_argument("-c", "--config", action="append", metavar="PATH", help=CONFIG_HELP)
    status.add_argument("--url", help="the daemon's endpoint (default: from [http] host and port in the config)")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    inspect = sub.add_parser(
        "inspect",
        help="show what the parsers make of chain data (one transaction as JSON-line events)",
        description="Run chain data through quantbot's parsers and print the normalized events.",
    )
    inspect_sub = inspect.add_subparsers(dest="what", metavar="WHAT", required=True)
    inspect_tx = inspect_sub.add_parser(
        "tx",
        help="events of one transaction, from a file or fetched by id",
        description="Print the events (Swap, Transfer, TokenLaunch, PumpTrade...) one transaction yields, one "
        "JSON object per line. TARGET is a file (Solana: a getTransaction response or its result, any encoding; "
        "Aptos: REST transaction JSON) or an id fetched from the first configured endpoint (Solana: a "
        "signature; Aptos: a version or hash). Exit 0 on success, 1 when the target cannot be read, fetched "
        "or parsed, 78 on a config error.",
    )
    inspect_tx.add_argument("target", metavar="FILE|SIGNATURE", help="file path, or transaction id to fetch")
    inspect_tx.add_argument("--chain", choices=("solana", "aptos"), default="solana", help="default: solana")
    inspect_tx.add_argument("-c", "--config", action="append", metavar="PATH", help=CONFIG_HELP)

    record = sub.add_parser(
        "record",
        help="run the daemon and record its chain-level events to a file (for replay)",
        description="Run the daemon exactly as `run` does, and also write the chain-level events (swaps, "
        "transfers, pump.fun trades, launches, account updates, prices) and the raw transactions they came "
        "from to FILE (gzip JSON lines, appended, flushed every [record] flush_interval_s and at stop). "
        "Same as `run` with [record] path = FILE.",
    )
    record.add_argument("-o", "--output", required=True, metavar="FILE", help="recording file (e.g. session.jsonl.gz)")
    record.add_argument("-c", "--config", action="append", metavar="PATH", help=CONFIG_HELP)

    from quantbot.replay_cli import add_replay_parser

    add_replay_parser(sub, CONFIG_HELP)
    demo = sub.add_parser(
        "demo",
        help="offline demo: a simulated market on a local Solana node, traded in paper mode and narrated",
        description="Start a local Solana node (LiteSVM) and a local launch feed, script a small market on them "
        "(real mints, pools and signed swaps: a token that pumps, one whales accumulate, a rug), run the daemon "
        "against them in paper mode and narrate what it does: launches, filter verdicts, whale signals, orders "
        "approved and refused, fills, PnL. No network needed. Exit 0 after a clean stop; Ctrl-C stops cleanly.",
    )
    demo.add_argument(
        "--speed",
        type=float,
        help="pacing: 2 runs twice as fast (default 1: a few seconds); with --recording, simulated time / SPEED "
        "(default: as fast as possible)",
    )
    demo.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    demo.add_argument("--recording", metavar="FILE", help="replay this recording instead of the simulated market")
    demo.add_argument(
        "-c", "--config", action="append", metavar="PATH", help="with --recording: the config to replay with"
    )

    from quantbot.analytics_cli import add_analytics_parsers

    add_analytics_parsers(sub, CONFIG_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "plugins":
            return _plugins(as_json=args.json)
        if args.command == "status" and args.url:
            return asyncio.run(_status(args.url, as_json=args.json))
        if args.command == "inspect":
            return _inspect(args.target, chain=args.chain, config_paths=args.config)
        if args.command == "demo":
            return _demo(args)
        if args.command == "replay":
            from quantbot.replay_cli import replay_command

            return replay_command(args)
        paths = args.config or default_paths()
        catalog = PluginCatalog.discover()
        if args.command == "record":
            from quantbot.replay_cli import record_environ

            loaded = load_config(paths, plugins=catalog, environ=record_environ(args.output))
            return _run(loaded, paths, catalog)
        loaded = load_config(paths, plugins=catalog)
        if args.command in ("leaderboard", "candles"):
            from quantbot.analytics_cli import candles_command, leaderboard_command

            command = leaderboard_command if args.command == "leaderboard" else candles_command
            return asyncio.run(command(loaded.config, args))
        if args.command == "flatten":
            return asyncio.run(_flatten(loaded, token=args.token))
        if args.command in ("halt", "resume"):
            return asyncio.run(_halt_or_resume(loaded, halt=args.command == "halt", reason=args.reason))
        if args.command == "status":
            from quantbot.ops.client import base_url

            return asyncio.run(_status(base_url(loaded.config), as_json=args.json))
        if args.command == "check-config":
            print(json.dumps(redacted(loaded), indent=2, sort_keys=False, default=str))
            print(f"config OK: {', '.join(loaded.sources)} (mode={loaded.config.mode})", file=sys.stderr)
            return 0
        return _run(loaded, paths, catalog)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"config error: {line}", file=sys.stderr)
        return EX_CONFIG


def _run(loaded: LoadedConfig, paths: Sequence[str], catalog: PluginCatalog) -> int:
    from quantbot.daemon import Daemon
    from quantbot.logs import setup_logging

    redactor = Redactor(loaded.secrets)
    d = loaded.config.daemon
    # What the daemon writes (the store with order details, sent logs, recordings) is the operator's alone, also
    # when started by hand under a 022 umask (the systemd unit sets UMask=0077 itself).
    os.umask(os.umask(0o077) | 0o077)
    setup_logging(level=d.log_level, fmt=d.log_format, redactor=redactor)
    used = {(s, spec.use) for s in PLUGIN_SECTIONS for spec in getattr(loaded.config, s)}
    catalog.warn_unloadable(used)
    daemon = Daemon(loaded=loaded, config_paths=list(paths), catalog=catalog, redactor=redactor)
    return asyncio.run(daemon.run())


EX_NOT_RUNNING = 3  # as `systemctl status` / LSB: program is not running


def _is_http_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def _status(url: str, *, as_json: bool) -> int:
    from quantbot.ops.client import DaemonRefused, DaemonUnreachable, fetch_status, render_status

    if not _is_http_url(url):
        print(f"status: --url {url!r} is not an http(s) URL; give e.g. http://127.0.0.1:8080", file=sys.stderr)
        return 2
    try:
        st = await fetch_status(url)
    except DaemonUnreachable as exc:
        print(f"error: {exc}; is it running? (systemctl status quantbot; [http] enabled?)", file=sys.stderr)
        return EX_NOT_RUNNING
    except DaemonRefused as exc:
        print(f"error: the daemon at {url} refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(st, indent=2) if as_json else render_status(st))
    return 0


async def _halt_or_resume(loaded: LoadedConfig, *, halt: bool, reason: str) -> int:
    """Through the running daemon when a control token is configured and it answers; else the store."""
    from quantbot.ops.client import DaemonRefused, DaemonUnreachable, base_url, control

    http = loaded.config.http
    if http.enabled and http.control_token is not None:
        url = base_url(loaded.config)
        try:
            body = await control(url, "halt" if halt else "resume", token=http.control_token.reveal(), reason=reason)
        except (DaemonUnreachable, DaemonRefused) as exc:
            print(f"note: {exc}; writing the trading state to the store instead", file=sys.stderr)
        else:
            print(f"trading: {body.get('before')} -> {body.get('trading')} ({body.get('reason')})")
            print(f"(applied by the daemon at {url})", file=sys.stderr)
            return 0
    return await _set_trading(loaded, halt=halt, reason=reason)


async def _set_trading(loaded: LoadedConfig, *, halt: bool, reason: str) -> int:
    from quantbot.clock import WallClock
    from quantbot.daemon import open_store
    from quantbot.risk import TradingState, read_trading_state, set_trading_state
    from quantbot.store import StoreError

    state = TradingState.HALTED if halt else TradingState.ACTIVE
    try:
        async with open_store(loaded.config) as store:
            before = await read_trading_state(store)
            await set_trading_state(store, state, reason=reason, now=WallClock().now())
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"trading: {before.value} -> {state.value} ({reason})")
    return 0


async def _flatten(loaded: LoadedConfig, *, token: str | None) -> int:
    from quantbot.assets import normalise
    from quantbot.clock import WallClock
    from quantbot.daemon import open_store
    from quantbot.exits import request_flatten
    from quantbot.store import StoreError

    try:
        async with open_store(loaded.config) as store:
            request_id = await request_flatten(store, token=token, now=WallClock().now())
            open_positions = [
                p
                for p in await store.positions()
                if p.quantity > 0 and (token is None or normalise(p.chain, token) == normalise(p.chain, p.token))
            ]
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"flatten requested ({request_id}): {len(open_positions)} open position(s) to sell")
    return 0


def _plugins(*, as_json: bool) -> int:
    catalog = PluginCatalog.discover()
    report: dict[str, list[dict[str, object]]] = {}
    for section in PLUGIN_SECTIONS:
        rows: list[dict[str, object]] = []
        for e in catalog.entries(section):
            row: dict[str, object] = {"name": e.name, "distribution": e.distribution, "version": e.version}
            try:
                row["schema"] = catalog.schema(section, e.name)
            except PluginLoadError as exc:
                row["error"] = str(exc)
            rows.append(row)
        report[f"quantbot.{section}"] = rows
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    for group, rows in report.items():
        print(f"{group}:")
        if not rows:
            print("  (none installed)")
        for row in rows:
            print(f"  {row['name']}  ({row['distribution']} {row['version']})")
            if "error" in row:
                print(f"    ERROR: {row['error']}")
                continue
            for line in _schema_lines(row["schema"]):  # type: ignore[arg-type]
                print(f"    {line}")
    return 0


def _schema_lines(schema: dict[str, Any]) -> list[str]:
    """One line per parameter: name, type, default, description."""
    defs: dict[str, Any] = schema.get("$defs", {})
    body: dict[str, Any] = defs.get(str(schema.get("$ref", "")).rsplit("/", 1)[-1], schema)
    props: dict[str, Any] = body.get("properties", {})
    required = set(body.get("required", []))
    if not props:
        return ["(no parameters)"]
    return [f"{name}: {_kind(spec)}, {_default(name, spec, required)}{_desc(spec)}" for name, spec in props.items()]


def _kind(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "one of " + ", ".join(json.dumps(v) for v in spec["enum"])
    if "anyOf" in spec:
        return " | ".join(_kind(s) for s in spec["anyOf"])
    kind = str(spec.get("type", "any"))
    if kind == "array":
        return f"array of {_kind(spec.get('items', {}))}"
    return kind


def _default(name: str, spec: dict[str, Any], required: set[str]) -> str:
    return "required" if name in required else f"default {json.dumps(spec.get('default'))}"


def _desc(spec: dict[str, Any]) -> str:
    return f" - {spec['description']}" if spec.get("description") else ""


def _inspect(target: str, *, chain: str, config_paths: list[str] | None) -> int:
    from quantbot.config import Config
    from quantbot.events import encode
    from quantbot.inspect import inspect_tx
    from quantbot.logs import setup_logging

    setup_logging(level="error", stream=sys.stderr)  # stdout carries only the events
    try:
        config = load_config(config_paths or default_paths(), plugins=PluginCatalog.discover()).config
    except ConfigError:
        if config_paths:
            raise
        config = Config()  # no config file: a file target needs none; a fetch then names the missing endpoint
    try:
        events = asyncio.run(inspect_tx(target, chain=chain, config=config))
    except ModuleNotFoundError as exc:
        print(f"error: the {chain} inspector is not available in this build ({exc.name})", file=sys.stderr)
        return 1
    except ValueError as exc:  # InspectError / AptosInspectError: a one-line message for the operator
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout.buffer
    for event in events:
        out.write(encode(event) + b"\n")
    out.flush()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from quantbot.demo.run import run_demo, run_recording

    if args.speed is not None and not (math.isfinite(args.speed) and args.speed > 0):
        print(f"demo: --speed must be a finite number > 0, got {args.speed}", file=sys.stderr)
        return 2
    if args.config and not args.recording:
        print("demo: -c/--config applies only with --recording (the simulated market builds its own)", file=sys.stderr)
        return 2
    if args.recording:
        return asyncio.run(
            run_recording(Path(args.recording), speed=args.speed, as_json=args.json, config_paths=args.config)
        )
    try:
        return asyncio.run(run_demo(speed=args.speed or 1.0, as_json=args.json))
    except KeyboardInterrupt:  # Ctrl-C before the daemon took over SIGINT: nothing was started yet
        return 130
