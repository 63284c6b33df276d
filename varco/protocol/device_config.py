"""The ``config`` channel: the settings the gateway overrides on a device (gateway -> edge).

The device's file stays the base; a config names only what the API overrides, per door, with
a version that only grows. It is retained, so a device that connects later gets the newest.
The edge checks the result with the same schema as its file, applies it without a restart
(a reader's hold-off needs one: the agent restarts cleanly), and says in its status which
version it runs, or why it refused one (then it keeps running on the last good one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from varco.protocol.payloads import Id, UnlockSeconds, _Payload

AwareDatetime = Annotated[datetime, Meta(tz=True)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
MAX_CONFIG_BYTES = 64 * 1024
MAX_REASON = 300


class DoorOverrides(_Payload, frozen=True, kw_only=True):
    """What a door's settings become; a field left out keeps the file's value."""

    unlock_seconds: UnlockSeconds | None = None
    held_open_seconds: Annotated[float, Meta(gt=0, le=3600)] | None = None
    decision_timeout_seconds: Annotated[float, Meta(gt=0, le=10)] | None = None
    fail_mode: Literal["secure", "safe"] | None = None
    hold_off_seconds: Annotated[float, Meta(ge=0, le=60)] | None = None


class DeviceConfig(_Payload, frozen=True, kw_only=True):
    """The overrides a device runs with, as of ``version`` (retained on its config channel)."""

    v: Literal[1] = 1
    version: Annotated[int, Meta(ge=1)]
    issued_at: AwareDatetime
    log_level: LogLevel | None = None
    doors: Annotated[dict[Id, DoorOverrides], Meta(max_length=64)] = msgspec.field(
        default_factory=dict
    )
