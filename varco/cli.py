"""``varco``: the command line. Subcommands import their packages lazily, so a Pi with only
the edge extra can run ``varco edge`` without FastAPI or SQLAlchemy installed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from varco import __version__

EXIT_USAGE = 2
# gateway.store.models.Role, spelled here so that `varco --help` needs no gateway install.
ROLES = ("admin", "operator", "viewer")
# gateway.store.tokens.DEFAULT_LIFETIME and MAX_LIFETIME_DAYS, for the same reason.
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 3650


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1-65535, got {value}")
    return number


def _days(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_TOKEN_DAYS:
        raise argparse.ArgumentTypeError(f"a token lives 1-{MAX_TOKEN_DAYS} days, got {value}")
    return number


def _token_id(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"a token id is a positive number, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="varco",
        description="Access control and resource monitoring for coworking spaces.",
    )
    parser.add_argument("--version", action="version", version=f"varco {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log (default: INFO; the demo logs warnings only)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gateway = commands.add_parser(
        "gateway",
        help="run the gateway: MQTT ingest, access decisions, admin API",
        description=(
            "Run the gateway. Settings come from the environment: VARCO_DATABASE_URL "
            "(default sqlite:///varco.db), VARCO_MQTT_HOST, VARCO_MQTT_PORT, "
            "VARCO_MQTT_USERNAME, VARCO_MQTT_PASSWORD, VARCO_GATEWAY_ID, VARCO_API_HOST, "
            "VARCO_API_PORT."
        ),
    )
    gateway.add_argument("--host", help="API address (default: VARCO_API_HOST or 127.0.0.1)")
    gateway.add_argument("--port", type=_port, help="API port (default: VARCO_API_PORT or 8000)")
    once = gateway.add_mutually_exclusive_group()
    once.add_argument(
        "--create-token",
        metavar="NAME",
        help="create an API token called NAME with --role, print it once, and exit",
    )
    once.add_argument(
        "--create-admin-token",
        metavar="NAME",
        help="the same as --create-token NAME --role admin",
    )
    once.add_argument(
        "--list-tokens",
        action="store_true",
        help="list the API tokens (id, role, expiry, state, name; never the token) and exit",
    )
    once.add_argument(
        "--revoke-token",
        type=_token_id,
        metavar="ID",
        help="revoke the API token with this id (see --list-tokens) and exit",
    )
    once.add_argument(
        "--upgrade",
        action="store_true",
        help="migrate the database to the newest schema and exit (the gateway also does so "
        "when it starts)",
    )
    gateway.add_argument(
        "--expires-in",
        type=_days,
        metavar="DAYS",
        help=f"with --create-token or --create-admin-token: how long the token is valid "
        f"(default: {DEFAULT_TOKEN_DAYS} days, at most {MAX_TOKEN_DAYS})",
    )
    gateway.add_argument(
        "--role",
        choices=ROLES,
        help="what the token may do: admin changes anything, operator reads, locks down and "
        "unlocks doors, viewer reads",
    )

    edge = commands.add_parser(
        "edge",
        help="run the edge agent on a door controller or desk node",
        description="Run the edge agent with a YAML configuration (see firmware_config/).",
    )
    edge.add_argument("--config", type=Path, help="path to the edge YAML file (required)")
    edge_commands = edge.add_subparsers(dest="edge_command", metavar="[tap]")
    tap = edge_commands.add_parser(
        "tap",
        help="tap a card at a running agent's door with a simulated reader",
        description=(
            "Hand CARD to the agent running with the same --config, as if it was held to a "
            "door's reader, and print what the door did. Only doors with "
            "`reader: {kind: simulated}` (or no reader) take taps this way."
        ),
    )
    tap.add_argument("card", metavar="CARD", help="a UID in hex (04A22B1A), or 10 decimal digits")
    tap.add_argument("--door", help="the door's id (needed when several have simulated readers)")
    # SUPPRESS: `varco edge --config FILE tap CARD` keeps the FILE given before `tap`.
    tap.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, help="path to the edge YAML file"
    )

    broker = commands.add_parser(
        "broker",
        help="set up the MQTT broker (mosquitto) for Varco",
        description="Set up mosquitto with dynamic security for Varco.",
    )
    broker_commands = broker.add_subparsers(dest="broker_command", required=True, metavar="STEP")
    _broker_init_arguments(
        broker_commands.add_parser(
            "init",
            help="write this host's mosquitto configuration and the gateway's broker account",
            description=(
                "Write a mosquitto configuration for this host (the dynamic-security plugin "
                "found, files owned by the user mosquitto runs as, a TLS listener when "
                "certificates are given), the plugin's file with the broker admin's and the "
                "gateway's accounts, and the gateway's settings; then say what to do next. On "
                "Debian, with no --config, it writes a snippet into the folder the main "
                "configuration includes (/etc/mosquitto/conf.d/varco.conf)."
            ),
        )
    )

    demo = commands.add_parser(
        "demo",
        help="run everything in one process: broker, gateway, simulated doors and desks",
        description=(
            "Run an embedded MQTT broker, the gateway on a SQLite file, two simulated doors "
            "and six desks, with seeded members tapping at random. The admin API is served "
            "on 127.0.0.1; its URL and an admin token are printed at start."
        ),
    )
    demo.add_argument("--port", type=_port, default=8000, help="API port (default: 8000)")
    demo.add_argument("--mqtt-port", type=_port, help="embedded broker port (default: a free port)")
    demo.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        help="where the demo's SQLite file goes (default: a new temporary folder)",
    )
    demo.add_argument("--seed", type=int, help="random seed, for a repeatable demo")
    return parser


def _broker_init_arguments(init: argparse.ArgumentParser) -> None:
    init.add_argument(
        "--config",
        type=Path,
        help="write a whole configuration here (default: a snippet in the main "
        "configuration's include_dir)",
    )
    init.add_argument(
        "--main-config",
        type=Path,
        default=Path("/etc/mosquitto/mosquitto.conf"),
        help="the main configuration that includes snippets (default: %(default)s)",
    )
    init.add_argument(
        "--data-dir",
        type=Path,
        help="persistence and the plugin's file (default: the main configuration's "
        "persistence_location, else the --config folder)",
    )
    init.add_argument(
        "--secrets-dir",
        type=Path,
        help="where the gateway's and the admin's env files go (default: beside the configuration)",
    )
    init.add_argument("--port", type=_port, default=1883, help="plain listener (default: 1883)")
    init.add_argument(
        "--bind",
        help="the plain listener's address (default: 0.0.0.0; 127.0.0.1 with TLS)",
    )
    init.add_argument("--tls-cert", type=Path, help="the broker's certificate (PEM)")
    init.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    init.add_argument("--tls-port", type=_port, default=8883, help="TLS listener (default: 8883)")
    init.add_argument("--user", help="the user mosquitto runs as (default: mosquitto)")
    init.add_argument("--plugin", type=Path, help="the dynamic-security plugin (default: found)")
    init.add_argument(
        "--device-host",
        help="the broker's name as the Pis reach it (default: this host's name)",
    )
    init.add_argument("--log-file", type=Path, help="mosquitto's log file (default: stderr)")
    init.add_argument(
        "--force",
        action="store_true",
        help="write the plugin's file anew even if it exists (drops every device account)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.command == "demo" and args.log_level == "INFO" else None
    logging.basicConfig(
        level=level or getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic announces each of its plugins as it is imported: noise for whoever runs us.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.command == "gateway":
        return _gateway(args)
    if args.command == "edge":
        return _edge(args)
    if args.command == "broker":
        return _broker(args)
    return _demo(args)


def _gateway(args: argparse.Namespace) -> int:
    if (args.role is None) != (args.create_token is None):
        print(
            f"varco gateway: --create-token NAME goes with --role {{{','.join(ROLES)}}}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.expires_in is not None and not (args.create_token or args.create_admin_token):
        print(
            "varco gateway: --expires-in DAYS goes with --create-token or --create-admin-token",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # Imported here so that a Pi with only the [edge] extra can run `varco edge`.
    from gateway.cli import (  # noqa: PLC0415
        create_token,
        list_tokens,
        revoke_token,
        serve,
        upgrade,
    )
    from gateway.settings import SettingsError  # noqa: PLC0415
    from gateway.store.models import Role  # noqa: PLC0415

    try:
        if args.upgrade:
            return upgrade()
        days = args.expires_in or DEFAULT_TOKEN_DAYS
        if args.create_admin_token:
            return create_token(args.create_admin_token, Role.ADMIN, days=days)
        if args.create_token:
            return create_token(args.create_token, Role(args.role), days=days)
        if args.list_tokens:
            return list_tokens()
        if args.revoke_token is not None:
            return revoke_token(args.revoke_token)
        return serve(host=args.host, port=args.port)
    except SettingsError as exc:
        print(f"varco gateway: invalid settings:\n{exc}", file=sys.stderr)
        return EXIT_USAGE


def _broker(args: argparse.Namespace) -> int:
    from varco.broker import BrokerSetup, BrokerSetupError, init_broker  # noqa: PLC0415

    given = {
        "config": args.config,
        "main_config": args.main_config,
        "data_dir": args.data_dir,
        "secrets_dir": args.secrets_dir,
        "port": args.port,
        "bind": args.bind,
        "tls_port": args.tls_port,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "user": args.user,
        "plugin": args.plugin,
        "device_host": args.device_host,
        "log_file": args.log_file,
        "force": args.force,
    }
    setup = BrokerSetup(**{key: value for key, value in given.items() if value is not None})
    try:
        result = init_broker(setup)
    except (BrokerSetupError, OSError) as exc:
        print(f"varco broker init: {exc}", file=sys.stderr)
        return 1
    print(result.next_steps)
    return 0


def _edge(args: argparse.Namespace) -> int:
    from edge_agent.agent import Agent  # noqa: PLC0415
    from edge_agent.config import load_config  # noqa: PLC0415
    from edge_agent.errors import ConfigError, EdgeError  # noqa: PLC0415

    if args.config is None:
        print("varco edge: the following arguments are required: --config", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"varco edge: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.edge_command == "tap":
        return _edge_tap(args, config.state_dir)
    try:
        asyncio.run(_until_signalled(Agent(config).run()))
    except EdgeError as exc:
        print(f"varco edge: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:
        # A reader that cannot be opened, a state folder that cannot be written: say which.
        failures = group.subgroup(EdgeError)
        if failures is None:
            raise
        for failure in failures.exceptions:
            print(f"varco edge: {failure}", file=sys.stderr)
        return 1
    return 0


def _edge_tap(args: argparse.Namespace, state_dir: Path) -> int:
    from edge_agent.tap_socket import SOCKET_NAME, NoAgentError, send_tap  # noqa: PLC0415

    path = state_dir / SOCKET_NAME
    try:
        answer = send_tap(path, args.card, door=args.door)
    except NoAgentError as exc:
        print(
            f"varco edge tap: {exc}: start the agent with `varco edge --config {args.config}` "
            "(it listens only when a door has a simulated reader)",
            file=sys.stderr,
        )
        return 1
    except PermissionError:
        print(
            f"varco edge tap: permission denied on {path}: run it as the agent's user "
            "(sudo -u varco varco edge tap ...)",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"varco edge tap: {path}: {exc}", file=sys.stderr)
        return 1
    print(answer)
    return 1 if answer.startswith("refused:") else 0


async def _until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until SIGINT or SIGTERM (systemd's stop), then let it clean up."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _demo(args: argparse.Namespace) -> int:
    from varco.demo import DemoOptions, run_demo  # noqa: PLC0415

    options = DemoOptions(
        api_port=args.port,
        mqtt_port=args.mqtt_port,
        duration=args.duration,
        data_dir=args.data_dir,
        seed=args.seed,
    )
    return run_demo(options)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
