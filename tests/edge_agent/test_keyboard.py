"""Keyboard-style USB readers: the kernel's input events through a pipe, below evdev.

This machine has no /dev/uinput, so no real event device: the reader gets the bytes a kernel
event device gives (``struct input_event``, key presses, releases, shifts, sync reports) on a
pipe. Opening and grabbing go through the real ``evdev`` package, whose refusals are tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import sys
from collections.abc import Iterator

import pytest

from edge_agent.config import KeyboardReaderConfig, parse_config
from edge_agent.errors import ConfigError, ReaderError
from edge_agent.keyboard import EV_KEY, EVENT, KeyboardReader
from edge_agent.readers import open_reader

EV_SYN, LEFT_SHIFT, ENTER, KP_ENTER = 0, 42, 28, 96
CODES = {
    **{str(digit): code for digit, code in zip(range(1, 10), range(2, 11), strict=True)},
    "0": 11, "a": 30, "b": 48, "c": 46, "d": 32, "e": 18, "f": 33, "x": 45, ";": 39,
}  # fmt: skip
KEYPAD = {"7": 71, "8": 72, "9": 73, "4": 75, "5": 76, "6": 77, "1": 79, "2": 80, "3": 81, "0": 82}


def event(kind: int, code: int, value: int) -> bytes:
    return EVENT.pack(1_700_000_000, 0, kind, code, value)


def typed(text: str, *, enter: int = ENTER, keypad: bool = False) -> bytes:
    """The events a keyboard sends for ``text`` and Enter: press, sync, release, sync."""
    out = b""
    for char in text:
        shifted = char.isupper() or char == ":"
        code = (KEYPAD if keypad else CODES)[char.lower().replace(":", ";")]
        keys = [LEFT_SHIFT, code] if shifted else [code]
        for key in keys:
            out += event(EV_KEY, key, 1) + event(EV_SYN, 0, 0)
        for key in reversed(keys):
            out += event(EV_KEY, key, 0) + event(EV_SYN, 0, 0)
    return out + event(EV_KEY, enter, 1) + event(EV_KEY, enter, 0) + event(EV_SYN, 0, 0)


@contextlib.contextmanager
def keyboard(hold_off_seconds: float = 0.0) -> Iterator[tuple[KeyboardReader, int]]:
    """A reader on the read end of a pipe; the test writes events to the other end."""
    read_end, write_end = os.pipe()
    reader = KeyboardReader(read_end, name="keyboard test", hold_off_seconds=hold_off_seconds)
    try:
        yield reader, write_end
    finally:
        reader.close()
        with contextlib.suppress(OSError):
            os.close(write_end)


async def tap(reader: KeyboardReader) -> str:
    return await asyncio.wait_for(reader.read(), 2)


@pytest.mark.parametrize(
    ("events", "uid"),
    [
        pytest.param(typed("04a22b1a"), "04A22B1A", id="hex"),
        pytest.param(typed("04A22B1A"), "04A22B1A", id="shifted hex"),
        pytest.param(typed("0012345678"), "00BC614E", id="10 decimal digits"),
        pytest.param(typed("0012345678", keypad=True, enter=KP_ENTER), "00BC614E", id="keypad"),
        pytest.param(typed("04:A2:2B:1A"), "04A22B1A", id="colons"),
    ],
)
async def test_a_typed_card_number_is_a_tap(events: bytes, uid: str) -> None:
    with keyboard() as (reader, device):
        os.write(device, events)

        assert await tap(reader) == uid
        assert reader.bad_reads == 0


async def test_events_split_anywhere_between_reads_make_the_same_tap() -> None:
    with keyboard() as (reader, device):
        events = typed("04a22b1a")
        for start in range(0, len(events), 37):  # mid-event, as a read may return
            os.write(device, events[start : start + 37])
            await asyncio.sleep(0.005)

        assert await tap(reader) == "04A22B1A"


async def test_a_line_that_is_no_card_is_counted_and_the_next_one_read() -> None:
    with keyboard() as (reader, device):
        os.write(device, typed("0x04a2") + typed("04a22b1a"))

        assert await tap(reader) == "04A22B1A"
        assert reader.bad_reads == 1


async def test_a_card_typed_twice_within_the_hold_off_is_one_tap() -> None:
    with keyboard(hold_off_seconds=5) as (reader, device):
        os.write(device, typed("04a22b1a") + typed("04a22b1a") + typed("deadbeef"))

        assert [await tap(reader), await tap(reader)] == ["04A22B1A", "DEADBEEF"]


async def test_an_unplugged_reader_raises_on_read() -> None:
    with keyboard() as (reader, device):
        os.close(device)  # the read end now gives end of file, as a gone device's read fails

        with pytest.raises(ReaderError, match=r"keyboard test: stopped reading: .*unplugged"):
            await tap(reader)


@pytest.mark.parametrize(
    ("device", "reason"),
    [
        (
            "/dev/input/by-id/no-such-reader",
            "no such device (is the reader plugged in? see ls /dev/input/by-id/)",
        ),
        ("/dev/null", "not an input event device"),
    ],
)
async def test_a_device_evdev_cannot_open_is_named_with_the_reason(
    device: str, reason: str
) -> None:
    with pytest.raises(ReaderError) as raised:
        open_reader(KeyboardReaderConfig(device=device))

    assert str(raised.value).startswith(f"keyboard {device}: cannot open: {reason}")


async def test_without_evdev_the_reader_asks_for_the_pi_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "evdev", None)

    with pytest.raises(ReaderError, match=r"evdev package is missing.*pip install 'varco\[pi\]'"):
        open_reader(KeyboardReaderConfig(device="/dev/input/event0"))


def test_a_keyboard_reader_is_configured_by_its_device() -> None:
    base = {"device_id": "d1", "site": "milano"}
    door = {"id": "front", "relay_pin": 17}
    reader = {"kind": "keyboard", "device": "/dev/input/by-id/usb-reader-event-kbd"}

    config = parse_config({**base, "doors": [{**door, "reader": reader}]}, source="edge.yaml")
    assert config.doors[0].reader == KeyboardReaderConfig(device=reader["device"])
    with pytest.raises(ConfigError, match=r"^x: doors\.0\.reader\.device: missing$"):
        parse_config({**base, "doors": [{**door, "reader": {"kind": "keyboard"}}]}, source="x")


def test_the_event_layout_is_the_kernels() -> None:
    # struct input_event: a timeval of two longs, then __u16 type, __u16 code, __s32 value.
    assert EVENT.size == 2 * struct.calcsize("l") + 8
    assert EV_KEY == 1
