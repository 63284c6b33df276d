"""Which payload each channel carries, and parsing a message by its channel."""

from __future__ import annotations

from typing import Any

from varco.protocol.allowlist import MAX_ALLOWLIST_BYTES, Allowlist, AllowlistDelta
from varco.protocol.device_config import MAX_CONFIG_BYTES, DeviceConfig
from varco.protocol.payloads import (
    MAX_EVENT_BYTES,
    MAX_RECEIPT_BYTES,
    MAX_STATUS_BYTES,
    Command,
    Decision,
    DeskEvent,
    DoorEvent,
    PayloadError,
    Receipt,
    Status,
    Tap,
    decode_as,
)
from varco.protocol.topics import Channel

Payload = (
    Tap
    | Decision
    | DoorEvent
    | DeskEvent
    | Status
    | Allowlist
    | AllowlistDelta
    | Command
    | Receipt
    | DeviceConfig
)

# The allow-list channel carries a whole list or an update, told apart by their "kind".
MODELS: dict[Channel, Any] = {
    Channel.TAP: Tap,
    Channel.DECISION: Decision,
    Channel.DOOR: DoorEvent,
    Channel.DESK: DeskEvent,
    Channel.STATUS: Status,
    Channel.ALLOWLIST: Allowlist | AllowlistDelta,
    Channel.COMMAND: Command,
    Channel.CONFIG: DeviceConfig,
    Channel.RECEIPT: Receipt,
}

_LIMITS: dict[Channel, int] = {
    Channel.STATUS: MAX_STATUS_BYTES,
    Channel.ALLOWLIST: MAX_ALLOWLIST_BYTES,
    Channel.CONFIG: MAX_CONFIG_BYTES,
    Channel.RECEIPT: MAX_RECEIPT_BYTES,
}


def max_bytes(channel: Channel) -> int:
    """Return the largest payload accepted on ``channel``."""
    return _LIMITS.get(channel, MAX_EVENT_BYTES)


def decode(channel: Channel, raw: bytes) -> Payload:
    """Parse ``raw`` as the payload of ``channel``; raise ``PayloadError`` with the reason."""
    model = MODELS.get(channel)
    if model is None:
        raise PayloadError(f"no payload model for channel {channel.value!r}")
    payload: Payload = decode_as(model, raw, limit=max_bytes(channel))
    return payload
