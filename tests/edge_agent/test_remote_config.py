"""The gateway's overrides of a device's file: applied live, refused with the reason, kept."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import DoorConfig, EdgeConfig, parse_config
from edge_agent.remote_config import RemoteConfig
from varco import protocol
from varco.protocol import DeviceConfig, DoorOverrides

ISSUED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class HeldDoor:
    """A door as the remote config sees it: the settings it reads at each tap."""

    config: DoorConfig


def edge_config(state_dir: Path) -> EdgeConfig:
    return parse_config(
        {
            "device_id": "door-ctl-1",
            "site": "test-site",
            "state_dir": str(state_dir),
            "doors": [
                {"id": "front-door", "relay_pin": 17, "reader": {"kind": "rdm6300"}},
                {"id": "office-door", "relay_pin": 27},
            ],
        },
        source="test",
    )


def config(version: int, **doors: DoorOverrides) -> bytes:
    return protocol.encode(DeviceConfig(version=version, issued_at=ISSUED, doors=doors))


@pytest.fixture
def root_level() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
def remote(tmp_path: Path, root_level: None) -> tuple[RemoteConfig, dict[str, HeldDoor]]:
    base = edge_config(tmp_path)
    remote = RemoteConfig(base, tmp_path / "remote-config.json")
    doors = {door.id: HeldDoor(door) for door in remote.start().doors}
    remote.attach(doors)
    return remote, doors


def test_a_config_changes_the_doors_at_once_and_is_kept_for_the_next_start(
    remote: tuple[RemoteConfig, dict[str, HeldDoor]], tmp_path: Path
) -> None:
    rc, doors = remote
    raw = protocol.encode(
        DeviceConfig(
            version=5,
            issued_at=ISSUED,
            log_level="DEBUG",
            doors={"front-door": DoorOverrides(unlock_seconds=7.0, fail_mode="safe")},
        )
    )
    applied = rc.receive(raw)
    again = RemoteConfig(edge_config(tmp_path), tmp_path / "remote-config.json").start()

    assert applied
    assert (rc.applied_version, rc.error, rc.restart.is_set()) == (5, None, False)
    front = doors["front-door"].config
    assert (front.unlock_seconds, front.fail_mode, front.relay_pin) == (7.0, "safe", 17)
    assert doors["office-door"].config.unlock_seconds == 5.0  # the file's
    assert logging.getLogger().level == logging.DEBUG
    assert again.doors[0].unlock_seconds == 7.0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            config(6, **{"back-door": DoorOverrides(unlock_seconds=3.0)}),
            "config 6 refused: doors.back-door: this device has no such door",
        ),
        (
            json.dumps(
                {
                    "v": 1,
                    "version": 7,
                    "issued_at": "2026-12-01T09:00:00Z",
                    "doors": {"front-door": {"unlock_seconds": 900}},
                }
            ).encode(),
            "a config refused: not a config: doors",
        ),
        (b"{not json", "a config refused: not a config: payload is not JSON"),
    ],
    ids=["unknown-door", "out-of-range", "not-json"],
)
def test_a_config_that_cannot_run_is_refused_with_the_reason_and_the_last_good_one_stays(
    remote: tuple[RemoteConfig, dict[str, HeldDoor]], raw: bytes, reason: str
) -> None:
    rc, doors = remote
    rc.receive(config(5, **{"front-door": DoorOverrides(unlock_seconds=7.0)}))

    applied = rc.receive(raw)

    assert not applied
    assert rc.error is not None
    assert rc.error.startswith(reason)
    assert "unlock_seconds: Expected `float` <= 300.0" in rc.error or "900" not in str(raw)
    assert rc.applied_version == 5
    assert doors["front-door"].config.unlock_seconds == 7.0


def test_an_older_or_the_same_version_is_not_applied_again(
    remote: tuple[RemoteConfig, dict[str, HeldDoor]],
) -> None:
    rc, doors = remote
    rc.receive(config(5, **{"front-door": DoorOverrides(unlock_seconds=7.0)}))

    stale = rc.receive(config(4, **{"front-door": DoorOverrides(unlock_seconds=2.0)}))

    assert (stale, rc.applied_version, rc.error) == (False, 5, None)
    assert doors["front-door"].config.unlock_seconds == 7.0


def test_a_reader_hold_off_is_applied_by_a_clean_restart(
    remote: tuple[RemoteConfig, dict[str, HeldDoor]], tmp_path: Path
) -> None:
    rc, _ = remote
    rc.receive(config(5, **{"front-door": DoorOverrides(hold_off_seconds=4.0)}))
    restarted = RemoteConfig(edge_config(tmp_path), tmp_path / "remote-config.json").start()

    assert rc.restart.is_set()
    assert restarted.doors[0].reader.hold_off_seconds == 4.0


def test_a_kept_config_that_no_longer_fits_the_file_is_dropped(tmp_path: Path) -> None:
    kept: dict[str, Any] = {"front-door": DoorOverrides(unlock_seconds=7.0)}
    (tmp_path / "remote-config.json").write_bytes(config(5, **kept))
    # The file changed since: the door is gone.
    base = parse_config(
        {
            "device_id": "door-ctl-1",
            "site": "test-site",
            "state_dir": str(tmp_path),
            "doors": [{"id": "office-door", "relay_pin": 27}],
        },
        source="test",
    )
    rc = RemoteConfig(base, tmp_path / "remote-config.json")

    assert rc.start() == base
    assert rc.applied_version is None
