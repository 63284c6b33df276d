"""Badge readers: serial ones through real pyserial on a pty pair (the RC522: test_rc522.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from edge_agent.config import (
    Rdm6300ReaderConfig,
    SerialLineReaderConfig,
    SimulatedReaderConfig,
)
from edge_agent.errors import EdgeError
from edge_agent.readers import (
    HoldOff,
    LineDecoder,
    Rdm6300Reader,
    Reader,
    ReaderError,
    SerialLineReader,
    SimulatedReader,
    open_reader,
    uid_from_line,
)
from varco import protocol

CARD_A = b"\x0262E3086CED08\x03"
CARD_B = b"\x020F00A1B2C3DF\x03"
UID_A, UID_B = "62E3086CED", "0F00A1B2C3"


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pty:
    """The reader's end of a serial line: bytes written here reach the reader's port."""

    path: str
    master: int

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        os.close(self.master)
        self.master = -1


@pytest.fixture
def pty() -> Iterator[Pty]:
    master, slave = os.openpty()
    line = Pty(os.ttyname(slave), master)
    yield line
    if line.master >= 0:
        os.close(line.master)
    os.close(slave)


async def tap(reader: Reader) -> str:
    return await asyncio.wait_for(reader.read(), timeout=2)


# The hold-off


@pytest.mark.parametrize(
    ("seconds", "sightings", "taps"),
    [
        pytest.param(2.0, [(0.0, "A")], [True], id="first sighting"),
        pytest.param(0.2, [(0.0, "A"), (0.1, "A"), (0.15, "A")], [True, False, False], id="held"),
        pytest.param(
            0.2,
            [(0.0, "A"), (0.15, "A"), (0.3, "A"), (0.45, "A")],
            [True, False, False, False],
            id="held longer than the hold-off",
        ),
        pytest.param(0.2, [(0.0, "A"), (0.19, "A")], [True, False], id="away too briefly"),
        pytest.param(0.2, [(0.0, "A"), (0.2, "A")], [True, True], id="away for the hold-off"),
        pytest.param(2.0, [(0.0, "A"), (0.01, "B")], [True, True], id="another card"),
        pytest.param(
            2.0, [(0.0, "A"), (0.01, "B"), (0.02, "A")], [True, True, True], id="back and forth"
        ),
        pytest.param(0.0, [(0.0, "A"), (0.0, "A")], [True, True], id="no hold-off"),
    ],
)
def test_the_hold_off_makes_a_held_card_one_tap(
    seconds: float, sightings: list[tuple[float, str]], taps: list[bool]
) -> None:
    clock = FakeClock()
    hold_off = HoldOff(seconds, clock)
    admitted = []
    for at, uid in sightings:
        clock.now = at
        admitted.append(hold_off.admit(uid))
    assert admitted == taps


# The simulated reader


async def test_the_simulated_reader_holds_off_a_repeated_card() -> None:
    clock = FakeClock()
    reader = SimulatedReader(hold_off_seconds=2.0, clock=clock)

    reader.present("ab")
    reader.present("AB")
    reader.present("cd")
    clock.now = 2.0
    reader.present("cd")

    assert [await tap(reader) for _ in range(3)] == ["AB", "CD", "CD"]


# The RDM6300 over a real serial port


async def test_the_rdm6300_reports_each_frame_of_a_write(pty: Pty) -> None:
    with Rdm6300Reader(pty.path, hold_off_seconds=0) as reader:
        pty.write(CARD_A + CARD_B)

        assert [await tap(reader), await tap(reader)] == [UID_A, UID_B]
        assert reader.bad_reads == 0


async def test_the_rdm6300_skips_and_counts_garbage_and_bad_frames(pty: Pty) -> None:
    with Rdm6300Reader(pty.path, hold_off_seconds=0) as reader:
        pty.write(b"\xff\x00noise" + b"\x0262E3086CED09\x03" + CARD_A + b"zz\r\n" + CARD_B)

        assert [await tap(reader), await tap(reader)] == [UID_A, UID_B]
        assert reader.bad_reads == 3  # the noise, the bad checksum, the bytes between


async def test_the_rdm6300_joins_a_frame_split_over_several_writes(pty: Pty) -> None:
    with Rdm6300Reader(pty.path, hold_off_seconds=0) as reader:
        for piece in (CARD_A[:4], CARD_A[4:11], CARD_A[11:]):
            pty.write(piece)
            await asyncio.sleep(0.02)  # let the reader see each piece on its own

        assert await tap(reader) == UID_A
        assert reader.bad_reads == 0


async def test_a_card_held_on_the_reader_is_one_tap_and_another_card_is_at_once(
    pty: Pty,
) -> None:
    with Rdm6300Reader(pty.path, hold_off_seconds=5.0) as reader:
        pty.write(CARD_A)
        assert await tap(reader) == UID_A

        pty.write(CARD_A + CARD_A)  # the RDM6300 repeats a card that stays in the field
        pty.write(CARD_B)
        assert await tap(reader) == UID_B
        pty.write(CARD_A)
        assert await tap(reader) == UID_A


async def test_a_card_taps_again_once_it_was_away_for_the_hold_off(pty: Pty) -> None:
    with Rdm6300Reader(pty.path, hold_off_seconds=0.2) as reader:
        pty.write(CARD_A)
        assert await tap(reader) == UID_A

        await asyncio.sleep(0.25)
        pty.write(CARD_A)
        assert await tap(reader) == UID_A


async def test_a_reader_that_goes_away_raises_on_read(pty: Pty) -> None:
    with Rdm6300Reader(pty.path, hold_off_seconds=0) as reader:
        pty.unplug()

        with pytest.raises(ReaderError, match=pty.path):
            await tap(reader)
        with pytest.raises(ReaderError):  # and keeps saying so
            await tap(reader)


@pytest.mark.parametrize("kind", [Rdm6300Reader, SerialLineReader])
async def test_a_port_that_cannot_be_opened_raises_naming_it(
    kind: type[Rdm6300Reader | SerialLineReader],
) -> None:
    with pytest.raises(ReaderError, match="/dev/no-such-reader: cannot open") as raised:
        kind("/dev/no-such-reader")

    assert isinstance(raised.value, EdgeError)
    assert isinstance(raised.value, OSError)
    assert "No such file or directory" in str(raised.value)


# Readers that type one UID per line


@pytest.mark.parametrize(
    ("line", "uid"),
    [
        pytest.param("04A22B1A", "04A22B1A", id="hex"),
        pytest.param("04a22b1a", "04A22B1A", id="lowercase hex"),
        pytest.param("04:A2:2B:1A", "04A22B1A", id="colons"),
        pytest.param("04 a2 2b 1a", "04A22B1A", id="spaces"),
        pytest.param("  04A22B1A\t", "04A22B1A", id="surrounding blanks"),
        pytest.param("04A22B1A5C8000", "04A22B1A5C8000", id="7-byte UID"),
        pytest.param("ABCD", "ABCD", id="4 digits"),
        pytest.param("0" * 32, "0" * 32, id="32 digits"),
        pytest.param("0012345678", "00BC614E", id="10-digit decimal"),
        pytest.param("4294967295", "FFFFFFFF", id="largest 32-bit decimal"),
        pytest.param("0000000000", "00000000", id="zero"),
        pytest.param("4294967296", "4294967296", id="10 digits above 32 bits: hex"),
        pytest.param("12345678", "12345678", id="8 digits: hex"),
    ],
)
def test_a_typed_line_gives_the_uid(line: str, uid: str) -> None:
    assert uid_from_line(line) == uid


@pytest.mark.parametrize(
    "line",
    ["", "hello", "0x04A22B1A", "04-A2-2B-1A", "ABC", "04A22B1", "0" * 34, "12345", "١٢٣٤٥٦٧٨"],
)
def test_a_line_that_is_no_uid_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        uid_from_line(line)


@pytest.mark.parametrize(
    ("chunks", "uids", "bad_reads"),
    [
        pytest.param([b"04A22B1A\r\n"], ["04A22B1A"], 0, id="CRLF"),
        pytest.param([b"04A22B1A\n"], ["04A22B1A"], 0, id="LF"),
        pytest.param([b"04A22B1A\r"], ["04A22B1A"], 0, id="CR"),
        pytest.param([b"04A2", b"2B1A", b"\r\n"], ["04A22B1A"], 0, id="split over reads"),
        pytest.param([b"0012345678\r\n04:a2:2b:1a\n"], ["00BC614E", "04A22B1A"], 0, id="two lines"),
        pytest.param([b"04A22B1A"], [], 0, id="no line end yet"),
        pytest.param([b"\r\n\r\n\n"], [], 0, id="blank lines"),
        pytest.param([b"not a card\r\n04A22B1A\r\n"], ["04A22B1A"], 1, id="garbage"),
        pytest.param([b"\xff\xfe\r\n04A22B1A\n"], ["04A22B1A"], 1, id="not ASCII"),
        pytest.param([b"A" * 200 + b"\n04A22B1A\n"], ["04A22B1A"], 1, id="overlong"),
        pytest.param(
            [b"A" * 100, b"A" * 100, b"A" * 100, b"\r\n04A22B1A\r\n"],
            ["04A22B1A"],
            1,
            id="overlong over several reads",
        ),
    ],
)
def test_the_line_decoder_reports_uids_and_counts_bad_lines(
    chunks: list[bytes], uids: list[str], bad_reads: int
) -> None:
    decoder = LineDecoder()

    assert [uid for chunk in chunks for uid in decoder.feed(chunk)] == uids
    assert decoder.bad_reads == bad_reads


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"A" * 129 + b"\n", "line longer than 128 bytes"),
        (b"hello\n", "neither 10 decimal digits nor 4-32 hex digits"),
        (b"04A22B1\n", "an odd number of hex digits"),
    ],
)
def test_a_bad_line_is_logged_with_its_reason(
    data: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        LineDecoder("serial_line /dev/ttyACM0").feed(data)

    [record] = caplog.records
    assert record.getMessage().startswith(f"serial_line /dev/ttyACM0: bad line ({reason})")


async def test_the_line_reader_reads_hex_and_decimal_and_skips_the_rest(pty: Pty) -> None:
    with SerialLineReader(pty.path, hold_off_seconds=0) as reader:
        pty.write(b"04a22b1a\r\n0012345678\r\nnot a card\r\n")
        pty.write(b"F" * 200 + b"\r\n04:A2:2B:1A:5C:80:00\n")

        assert [await tap(reader) for _ in range(3)] == ["04A22B1A", "00BC614E", "04A22B1A5C8000"]
        assert reader.bad_reads == 2


# The factory


async def test_the_factory_opens_a_simulated_reader_with_its_hold_off() -> None:
    reader = open_reader(SimulatedReaderConfig(hold_off_seconds=60))

    assert isinstance(reader, SimulatedReader)
    reader.present("AB")
    reader.present("AB")
    reader.present("CD")
    assert [await tap(reader), await tap(reader)] == ["AB", "CD"]


async def test_the_factory_opens_an_rdm6300_on_its_port_with_its_hold_off(pty: Pty) -> None:
    config = Rdm6300ReaderConfig(port=pty.path)
    with contextlib.closing(open_reader(config)) as reader:
        assert isinstance(reader, Rdm6300Reader)
        pty.write(CARD_A + CARD_A + CARD_B)  # the configured 2 s hold-off drops the repeat

        assert [await tap(reader), await tap(reader)] == [UID_A, UID_B]


async def test_the_factory_opens_a_line_reader_on_its_port(pty: Pty) -> None:
    config = SerialLineReaderConfig(port=pty.path)
    with contextlib.closing(open_reader(config)) as reader:
        assert isinstance(reader, SerialLineReader)
        pty.write(b"0012345678\r\n")

        assert await tap(reader) == "00BC614E"


@pytest.mark.parametrize(
    ("line", "reading"),
    [
        ("varco-pass:3F9A12BC44D1", "varco-pass:3F9A12BC44D1"),
        ("VARCO-PASS:3F9A12BC44D1\r", "varco-pass:3F9A12BC44D1"),
    ],
)
def test_a_scanned_pass_qr_code_is_handed_on_as_a_pass(line: str, reading: str) -> None:
    assert uid_from_line(line) == reading
    assert protocol.credential_of(reading).kind is protocol.CredentialKind.PASS


def test_a_pass_qr_code_with_a_malformed_code_is_refused() -> None:
    with pytest.raises(ValueError, match="malformed code"):
        uid_from_line("varco-pass:no spaces allowed")
