"""The gateway's overrides of this device's file (the ``config`` channel), applied live.

The file stays the base: a config from the gateway names only what it overrides, per door,
with a version that only grows. Each is checked with the file's own schema (a door's settings
as ``DoorConfig`` reads them); one that fails is refused with the reason, which the device's
status reports, and the device keeps running on the last good one. A good one is applied at
once: a door reads its unlock time, decision timeout and fail mode at each tap. Its reader's
hold-off and its held-open time are set when the door is opened, so a change to those ends
the agent cleanly, and its service starts it again with them. The last good config is kept
on disk, so a restart, or a start without the broker, runs with it.

Hooks (``edge_agent.agent``): ``start()`` gives the configuration to open the doors with,
``attach()`` the doors to change, ``receive()`` takes a config message, ``applied_version``
and ``error`` are what the status reports, and ``restart`` is set when a restart is due.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import msgspec

from edge_agent.config import DoorConfig, EdgeConfig
from edge_agent.errors import EdgeError
from varco import protocol
from varco.protocol import Channel, DeviceConfig, PayloadError
from varco.protocol.validation import explain

log = logging.getLogger(__name__)

_MAX_ERROR = 300


class ConfiguredDoor(Protocol):
    config: DoorConfig


class ConfigRefusedError(EdgeError, ValueError):
    """A config this device will not run; the message says why."""


class RestartError(EdgeError):
    """The agent stops to start again with a config its doors read only when opened."""


class RemoteConfig:
    """The overrides this device runs with; see the module's docstring."""

    def __init__(self, base: EdgeConfig, path: Path) -> None:
        self.base = base
        self.path = path
        self.applied_version: int | None = None
        self.error: str | None = None
        self.restart = asyncio.Event()
        self._doors: Mapping[str, ConfiguredDoor] = {}
        self._running: EdgeConfig = base
        self._base_level = logging.getLogger().level

    def start(self) -> EdgeConfig:
        """Return the configuration to open the doors with: the file's, with the last good
        overrides; a kept config that no longer fits the file is dropped, and said so."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self.base
        try:
            config = protocol.decode_as(DeviceConfig, raw)
            self._running = self._merged(config)
        except (PayloadError, ConfigRefusedError) as exc:
            log.error("the kept config %s no longer fits this file (%s): not used", self.path, exc)
            return self.base
        self.applied_version = config.version
        self._set_log_level(config)
        return self._running

    def attach(self, doors: Mapping[str, ConfiguredDoor]) -> None:
        """Change these doors' settings as configs arrive."""
        self._doors = doors

    def receive(self, raw: bytes) -> bool:
        """Check and apply a config message; return whether it was applied."""
        try:
            config = protocol.decode(Channel.CONFIG, raw)
        except PayloadError as exc:
            self._refuse(None, f"not a config: {exc}")
            return False
        assert isinstance(config, DeviceConfig)
        if self.applied_version is not None and config.version <= self.applied_version:
            log.debug("config %d: not newer than %d; ignored", config.version, self.applied_version)
            return False
        try:
            merged = self._merged(config)
        except ConfigRefusedError as exc:
            self._refuse(config.version, str(exc))
            return False
        self._keep(raw)
        due = self._restart_due(merged)
        self._running = merged
        for door_config in merged.doors:
            door = self._doors.get(door_config.id)
            if door is not None:
                door.config = door_config  # read at each tap: in force from the next one
        self._set_log_level(config)
        self.applied_version, self.error = config.version, None
        log.info("config %d applied%s", config.version, "; restarting for it" if due else "")
        if due:
            self.restart.set()
        return True

    def _merged(self, config: DeviceConfig) -> EdgeConfig:
        ids = {door.id for door in self.base.doors}
        for door in config.doors:
            if door not in ids:
                raise ConfigRefusedError(f"doors.{door}: this device has no such door")
        doors = [self._door(door, config) for door in self.base.doors]
        return msgspec.structs.replace(self.base, doors=doors)

    def _door(self, door: DoorConfig, config: DeviceConfig) -> DoorConfig:
        overrides = config.doors.get(door.id)
        if overrides is None:
            return door
        values: dict[str, Any] = msgspec.to_builtins(door)
        for name, value in msgspec.structs.asdict(overrides).items():
            if value is None:
                continue
            if name == "hold_off_seconds":
                values["reader"]["hold_off_seconds"] = value
            else:
                values[name] = value
        try:
            # The file's own schema: what a file could not say, a config cannot either.
            return msgspec.convert(values, DoorConfig)
        except msgspec.ValidationError as exc:
            where, reason = explain(exc)
            raise ConfigRefusedError(f"doors.{door.id}.{where}: {reason}") from None

    def _restart_due(self, merged: EdgeConfig) -> bool:
        before = {door.id: door for door in self._running.doors}
        for door in merged.doors:
            old = before[door.id]
            if door.held_open_seconds != old.held_open_seconds:
                return True
            if door.reader.hold_off_seconds != old.reader.hold_off_seconds:
                return True
        return False

    def _refuse(self, version: int | None, reason: str) -> None:
        where = f"config {version}" if version is not None else "a config"
        self.error = f"{where} refused: {reason}"[:_MAX_ERROR]
        log.warning("%s; running config %s", self.error, self.applied_version or "of the file")

    def _set_log_level(self, config: DeviceConfig) -> None:
        level = config.log_level
        logging.getLogger().setLevel(getattr(logging, level) if level else self._base_level)

    def _keep(self, raw: bytes) -> None:
        # Written whole, then moved into place: a power cut leaves the old or the new.
        temporary = self.path.with_name(f".{self.path.name}.new")
        temporary.write_bytes(raw)
        os.replace(temporary, self.path)


__all__ = ["ConfigRefusedError", "ConfiguredDoor", "RemoteConfig", "RestartError"]
