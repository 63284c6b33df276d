"""``varco broker init``: write this host's broker configuration, its accounts, and what next.

Nothing is written until every check has passed, and every refusal names its real cause: a
plugin that is not installed, a directory the broker's user cannot enter, a key it cannot
read, a line of the main configuration that contradicts ours.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path

from varco.broker import host
from varco.broker.config import MAIN_CONFLICTS, MAIN_KEEPS, Listeners, render
from varco.broker.dynsec import dynsec_document, new_password

DYNSEC_FILE = "dynamic-security.json"
SNIPPET = "varco.conf"
GATEWAY_ENV = "varco-gateway.env"
ADMIN_ENV = "dynsec-admin.env"


class BrokerSetupError(RuntimeError):
    """The broker cannot be set up as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class BrokerSetup:
    """What ``varco broker init`` was asked for; unset paths are found on the host."""

    config: Path | None = None  # None: a snippet in the main configuration's conf.d
    main_config: Path = host.DEBIAN_MAIN_CONFIG
    data_dir: Path | None = None
    secrets_dir: Path | None = None
    port: int = 1883
    bind: str | None = None  # 0.0.0.0, or 127.0.0.1 when a TLS listener takes the Pis
    tls_port: int = 8883
    tls_cert: Path | None = None
    tls_key: Path | None = None
    user: str | None = None
    plugin: Path | None = None
    gateway_username: str = "varco-gateway"
    admin_username: str = "admin"
    device_host: str = field(default_factory=socket.getfqdn)
    log_file: Path | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class SetupResult:
    config: Path
    dynsec_file: Path
    gateway_env: Path
    admin_env: Path
    user: str
    snippet: bool
    next_steps: str


def init_broker(setup: BrokerSetup) -> SetupResult:
    """Check the host, then write the configuration, the plugin's file and the env files."""
    plugin = setup.plugin or host.find_plugin()
    if plugin is None or not plugin.is_file():
        raise BrokerSetupError(
            f"mosquitto's dynamic-security plugin is not at {plugin}"
            if plugin
            else "mosquitto's dynamic-security plugin is not installed (looked for "
            f"{', '.join(host.PLUGIN_PATTERNS)}): on Debian, `apt install mosquitto` (2.0 or "
            "later) ships it; elsewhere pass --plugin PATH"
        )
    main = host.read_main_config(setup.main_config)
    config = setup.config
    if config is None:
        if main is None:
            raise BrokerSetupError(
                f"{setup.main_config} does not include a folder of snippets (include_dir): "
                "say where to write a whole configuration with --config PATH"
            )
        config = main.include_dir / SNIPPET
    elif main is not None and config.parent.absolute() != main.include_dir.absolute():
        main = None  # a whole configuration of its own: the main file is not read with it
    skip = _check_main(main, setup) if main is not None else frozenset()
    configured_user = _main_value(main, "user") or setup.user
    try:
        account = host.broker_account(configured_user)
    except LookupError as exc:
        raise BrokerSetupError(str(exc)) from None
    data_dir = setup.data_dir or _main_path(main, "persistence_location") or config.parent / "data"
    dynsec_file = data_dir / DYNSEC_FILE
    secrets_dir = setup.secrets_dir or (main.path.parent if main else config.parent)
    if dynsec_file.exists() and not setup.force:
        raise BrokerSetupError(
            f"{dynsec_file} exists: this broker is set up already. --force writes it anew, "
            "dropping every device account in it (devices must then be created again)"
        )
    for path, write in ((data_dir, True), (dynsec_file, True), (plugin, False)):
        problem = host.cannot_use(path, account)
        problem = problem or (host.cannot_use(path, account, write=True) if write else None)
        if problem:
            raise BrokerSetupError(
                f"mosquitto runs as {account.name}, and {_cause(problem)}: "
                f"choose another --data-dir, or let {account.name} in"
            )
    listeners = _listeners(setup, account)
    if setup.log_file is not None:
        problem = host.cannot_use(setup.log_file, account, write=True)
        if problem:
            raise BrokerSetupError(f"mosquitto runs as {account.name}, and {_cause(problem)}")

    admin_password, gateway_password = new_password(), new_password()
    text = render(
        plugin=plugin,
        dynsec_file=dynsec_file,
        data_dir=data_dir,
        user=account.name,
        listeners=listeners,
        log_file=setup.log_file,
        skip=skip,
    )
    _make_dir(data_dir, account, mode=0o700)
    _write(config, text, mode=0o644)
    if setup.log_file is not None and not setup.log_file.exists():
        _write(setup.log_file, "", mode=0o640, owner=account)
    document = dynsec_document(
        admin=(setup.admin_username, admin_password),
        gateway=(setup.gateway_username, gateway_password),
    )
    _write(dynsec_file, json.dumps(document, indent=1) + "\n", mode=0o600, owner=account)
    secrets_dir.mkdir(parents=True, exist_ok=True)
    gateway_env = secrets_dir / GATEWAY_ENV
    admin_env = secrets_dir / ADMIN_ENV
    _write(gateway_env, _gateway_env(setup, gateway_password, listeners), mode=0o600)
    _write(
        admin_env,
        f"DYNSEC_ADMIN_USERNAME={setup.admin_username}\nDYNSEC_ADMIN_PASSWORD={admin_password}\n",
        mode=0o600,
    )
    result = SetupResult(
        config=config,
        dynsec_file=dynsec_file,
        gateway_env=gateway_env,
        admin_env=admin_env,
        user=account.name,
        snippet=main is not None,
        next_steps="",
    )
    return replace(result, next_steps=_next_steps(result, setup, listeners))


def _cause(problem: str) -> str:
    # "mosquitto cannot enter /x" -> "cannot enter /x", after "mosquitto runs as mosquitto, and".
    return problem.split(" ", 1)[1]


def _main_value(main: host.MainConfig | None, option: str) -> str | None:
    if main is None or option not in main.options:
        return None
    return main.options[option][1].partition(" ")[2].strip() or None


def _main_path(main: host.MainConfig | None, option: str) -> Path | None:
    value = _main_value(main, option)
    return None if value is None else Path(value)


def _check_main(main: host.MainConfig, setup: BrokerSetup) -> frozenset[str]:
    for option in MAIN_CONFLICTS:
        if option in main.options:
            number, line = main.options[option]
            raise BrokerSetupError(
                f"{main.path}:{number} says {line!r}, which contradicts the dynamic-security "
                "setup: remove that line, or write a whole configuration with --config PATH"
            )
    if "listener" in main.options:
        number, line = main.options["listener"]
        raise BrokerSetupError(
            f"{main.path}:{number} opens a listener ({line!r}): the snippet opens its own "
            f"({setup.port}); remove that line, or write a whole configuration with --config"
        )
    if _main_value(main, "persistence") == "false":
        number, line = main.options["persistence"]
        raise BrokerSetupError(
            f"{main.path}:{number} says {line!r}: the broker must keep sessions and queued "
            "messages across its restarts; set it to true"
        )
    skip = {option for option in MAIN_KEEPS if option in main.options}
    if "user" in main.options:
        skip.add("user")
    return frozenset(skip)


def _listeners(setup: BrokerSetup, account: host.Account) -> Listeners:
    if (setup.tls_cert is None) != (setup.tls_key is None):
        raise BrokerSetupError("--tls-cert and --tls-key go together")
    if setup.tls_cert is None or setup.tls_key is None:
        return Listeners(port=setup.port, bind=setup.bind or "0.0.0.0")
    for name, path in (("--tls-cert", setup.tls_cert), ("--tls-key", setup.tls_key)):
        if not path.is_file():
            raise BrokerSetupError(f"{name}: no such file: {path}")
        problem = host.cannot_use(path, account)
        if problem:
            raise BrokerSetupError(
                f"{name}: mosquitto runs as {account.name}, and {_cause(problem)}: "
                f"give it to that user (chown {account.name}) or a copy it may read"
            )
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(setup.tls_cert, setup.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerSetupError(f"--tls-cert/--tls-key cannot be used together: {exc}") from None
    return Listeners(
        port=setup.port,
        # The Pis come over TLS; the plain port stays for a gateway on this host.
        bind=setup.bind or "127.0.0.1",
        tls_port=setup.tls_port,
        cert_file=setup.tls_cert.absolute(),
        key_file=setup.tls_key.absolute(),
    )


def _make_dir(path: Path, account: host.Account, *, mode: int) -> None:
    if path.is_dir():
        return
    path.mkdir(parents=True, mode=mode)
    if os.geteuid() == 0:
        os.chown(path, account.uid, account.gid)


def _write(path: Path, text: str, *, mode: int, owner: host.Account | None = None) -> None:
    # Written whole, then moved into place: the broker never reads half a file.
    temporary = path.with_name(f".{path.name}.new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(temporary, mode)
    if owner is not None and os.geteuid() == 0:
        os.chown(temporary, owner.uid, owner.gid)
    os.replace(temporary, path)


def _gateway_env(setup: BrokerSetup, password: str, listeners: Listeners) -> str:
    device_port = listeners.tls_port or listeners.port
    lines = [
        "# The gateway's settings for this broker (varco gateway reads VARCO_*).",
        "VARCO_MQTT_HOST=127.0.0.1",
        f"VARCO_MQTT_PORT={listeners.port}",
        f"VARCO_MQTT_USERNAME={setup.gateway_username}",
        f"VARCO_MQTT_PASSWORD={password}",
        "VARCO_PROVISIONING=dynsec",
        "# The broker as the Pis reach it: written into each device's configuration.",
        f"VARCO_DEVICE_BROKER_HOST={setup.device_host}",
        f"VARCO_DEVICE_BROKER_PORT={device_port}",
    ]
    if listeners.tls_port is not None:
        lines.append("VARCO_DEVICE_BROKER_TLS=true")
    return "\n".join(lines) + "\n"


def _next_steps(result: SetupResult, setup: BrokerSetup, listeners: Listeners) -> str:
    start = (
        "sudo systemctl restart mosquitto"
        if result.snippet
        else f"mosquitto -c {result.config}   (or point your service at it)"
    )
    devices = f"{setup.device_host}:{listeners.tls_port or listeners.port}"
    return "\n".join(
        [
            "Wrote:",
            f"  {result.config}  the broker's configuration",
            f"  {result.dynsec_file}  its accounts ({setup.admin_username}, "
            f"{setup.gateway_username}); owner {result.user}, mode 0600",
            f"  {result.gateway_env}  the gateway's settings and broker password (mode 0600)",
            f"  {result.admin_env}  the broker admin's password, for mosquitto_ctrl (mode 0600)",
            "",
            "Next:",
            f"  1. Start the broker: {start}",
            "  2. Start the gateway with those settings:",
            f"       set -a; . {result.gateway_env}; set +a; varco gateway",
            "  3. Create each door controller and desk node with POST /devices: the answer holds",
            f"     its configuration file, with its own broker account, for {devices}.",
        ]
    )
