"""The mosquitto configuration ``varco broker init`` writes: a whole file, or a conf.d snippet.

Every line is one the shipped configurations carry, for the same reasons (see
deploy/mosquitto/mosquitto-dynsec.conf); only the host's own paths and user differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from varco.protocol import BROKER_MAX_PACKET_SIZE, BROKER_MESSAGE_SIZE_LIMIT

# Options a main configuration (Debian's) sets that a snippet must not set again: mosquitto
# refuses a second persistence_location, and the main file's values are the host's.
MAIN_KEEPS = ("pid_file", "persistence", "persistence_location", "autosave_interval", "log_dest")
# Options whose presence in the main file makes our snippet wrong: say which line to remove.
MAIN_CONFLICTS = (
    "per_listener_settings",
    "allow_anonymous",
    "plugin",
    "plugin_opt_config_file",
    "password_file",
    "acl_file",
)


@dataclass(frozen=True, slots=True)
class Listeners:
    port: int
    bind: str
    tls_port: int | None = None
    tls_bind: str = "0.0.0.0"  # a listener for the Pis
    cert_file: Path | None = None
    key_file: Path | None = None


def render(
    *,
    plugin: Path,
    dynsec_file: Path,
    data_dir: Path,
    user: str,
    listeners: Listeners,
    log_file: Path | None,
    skip: frozenset[str] = frozenset(),
) -> str:
    """Render the configuration; options in ``skip`` are left to a main file that sets them."""
    lines = [
        "# Written by `varco broker init` for this host. Every client logs in; the",
        "# dynamic-security plugin confines each device to its own topics.",
        "",
        "# One set of rules for every listener: the plugin's.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"plugin {plugin}",
        "# Rewritten by the plugin on every change: owned by the broker's user.",
        f"plugin_opt_config_file {dynsec_file}",
        "",
        "# Started as root, mosquitto drops to this user; it owns the files below.",
        f"user {user}",
        "",
        "# Every Varco client turns Nagle off on its side; this does on the broker's:",
        "# request/reply at QoS 1 then takes ~1 ms, not ~40-90 ms.",
        "set_tcp_nodelay true",
        "",
        f"listener {listeners.port} {listeners.bind}",
    ]
    if listeners.tls_port is not None:
        lines += [
            "# Devices send their password when they connect: over TLS past this host.",
            f"listener {listeners.tls_port} {listeners.tls_bind}",
            f"certfile {listeners.cert_file}",
            f"keyfile {listeners.key_file}",
        ]
    lines += [
        "",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 30",
        "",
        "# The gateway acknowledges a message once it is committed to SQL: let the broker hold",
        "# its backlog meanwhile, wider than one device may keep uncommitted (500).",
        "max_inflight_messages 1000",
        "max_queued_messages 100000",
        "",
        "# The largest message Varco sends is an allow-list (4 MiB): refuse anything larger,",
        "# before the broker holds it.",
        f"message_size_limit {BROKER_MESSAGE_SIZE_LIMIT}",
        f"max_packet_size {BROKER_MAX_PACKET_SIZE}",
        "",
        f"log_dest file {log_file}" if log_file is not None else "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
    ]
    kept = [line for line in lines if line.split(" ", 1)[0] not in skip]
    if "user" in skip:
        kept = [line for line in kept if not line.startswith("# Started as root")]
    return "\n".join(kept) + "\n"
