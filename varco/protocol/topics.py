"""MQTT topics: the only place a Varco topic string is spelled.

Layout: ``varco/v1/<site>/<device>/<channel>``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

PREFIX = "varco"
WIRE_VERSION = "v1"

# Ids travel inside topics, so they must never contain MQTT wildcards or separators.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)


class Channel(enum.StrEnum):
    """What a message on a device's topic carries."""

    TAP = "tap"
    DECISION = "decision"
    DOOR = "door"
    DESK = "desk"
    STATUS = "status"
    ALLOWLIST = "allowlist"
    CONFIG = "config"
    COMMAND = "command"
    RECEIPT = "receipt"


# Who publishes on which channel; a device may only publish the first set.
EDGE_TO_GATEWAY = frozenset({Channel.TAP, Channel.DOOR, Channel.DESK, Channel.STATUS})
GATEWAY_TO_EDGE = frozenset(
    {Channel.DECISION, Channel.ALLOWLIST, Channel.CONFIG, Channel.COMMAND, Channel.RECEIPT}
)


class TopicError(ValueError):
    """A topic that is not a Varco topic."""


class UnknownChannelError(TopicError):
    """A Varco topic whose channel is not part of the wire contract."""


def is_valid_id(value: str) -> bool:
    """Tell whether ``value`` may be used as a site, device, door or desk id."""
    return _ID_RE.fullmatch(value) is not None


def _check_id(kind: str, value: str) -> str:
    # fullmatch: with re.match, "$" would also accept a trailing newline.
    if _ID_RE.fullmatch(value) is None:
        raise TopicError(f"{kind} id {value!r} must match {ID_PATTERN}")
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed Varco topic."""

    site: str
    device: str
    channel: Channel

    def __str__(self) -> str:
        return topic(self.site, self.device, self.channel)


def topic(site: str, device: str, channel: Channel) -> str:
    """Build the topic of ``channel`` for ``device`` at ``site``."""
    _check_id("site", site)
    _check_id("device", device)
    return f"{PREFIX}/{WIRE_VERSION}/{site}/{device}/{_channel(channel).value}"


def _channel(value: str | Channel) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise UnknownChannelError(f"unknown channel {value!r}") from None


def parse(name: str) -> Topic:
    """Parse a concrete topic; raise ``TopicError`` with the reason if it is not ours."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != PREFIX:
        raise TopicError(f"not a {PREFIX} topic: {name!r}")
    if parts[1] != WIRE_VERSION:
        raise TopicError(f"unsupported wire version {parts[1]!r} in {name!r}")
    _, _, site, device, channel = parts
    _check_id("site", site)
    _check_id("device", device)
    try:
        parsed_channel = Channel(channel)
    except ValueError:
        raise UnknownChannelError(f"unknown channel {channel!r} in {name!r}") from None
    return Topic(site, device, parsed_channel)


def subscription(channel: str | Channel, *, site: str = "+", device: str = "+") -> str:
    """Build a subscription filter; ``+`` stands for any site or device.

    ``channel`` may be ``"+"`` to match every channel (a watcher's filter; the gateway takes
    only what devices send, ``gateway_subscriptions``).
    """
    if site != "+":
        _check_id("site", site)
    if device != "+":
        _check_id("device", device)
    name = channel if channel == "+" else _channel(channel).value
    return f"{PREFIX}/{WIRE_VERSION}/{site}/{device}/{name}"


def gateway_subscriptions() -> tuple[str, ...]:
    """Build the filters the gateway takes devices' messages with: their channels, no other.

    Not ``+``: the gateway would receive back every decision and allow-list it publishes.
    """
    return tuple(subscription(c) for c in Channel if c in EDGE_TO_GATEWAY)


def shared(group: str, filter_: str) -> str:
    """Wrap a filter as an MQTT shared subscription, so replicas share the load."""
    _check_id("group", group)
    return f"$share/{group}/{filter_}"


# Mosquitto's dynamic-security plugin takes commands here and answers on the response topic;
# the gateway uses them to give each device its broker identity.
DYNSEC_CONTROL = "$CONTROL/dynamic-security/v1"
DYNSEC_RESPONSE = f"{DYNSEC_CONTROL}/response"


@dataclass(frozen=True, slots=True)
class DeviceGrants:
    """The topic filters a device's broker identity may publish and subscribe to."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def device_grants(device: str, site: str) -> DeviceGrants:
    """Build the filters that confine ``device`` to its own topics, at its own ``site``.

    A device that could publish under another site's segment would be believed by the access
    log and the per-site reports; the gateway refuses it too, this keeps it off the broker.
    """
    _check_id("device", device)
    _check_id("site", site)
    where = {"site": site, "device": device}
    return DeviceGrants(
        publish=tuple(subscription(c, **where) for c in Channel if c in EDGE_TO_GATEWAY),
        subscribe=tuple(subscription(c, **where) for c in Channel if c in GATEWAY_TO_EDGE),
    )
