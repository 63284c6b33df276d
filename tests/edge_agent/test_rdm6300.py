"""The RDM6300 decoder, fed byte strings: golden frames in, UIDs and bad-read counts out."""

from __future__ import annotations

import logging

import pytest

from edge_agent.rdm6300 import Rdm6300Decoder

# Golden frames: STX, 10 hex digits, XOR checksum of the five bytes, ETX.
CARD_A = b"\x0262E3086CED08\x03"  # 62^E3^08^6C^ED = 08
CARD_B = b"\x020F00A1B2C3DF\x03"  # 0F^00^A1^B2^C3 = DF
UID_A, UID_B = "62E3086CED", "0F00A1B2C3"


def _decode(chunks: list[bytes]) -> tuple[list[str], int]:
    decoder = Rdm6300Decoder()
    uids = [uid for chunk in chunks for uid in decoder.feed(chunk)]
    return uids, decoder.bad_reads


@pytest.mark.parametrize(
    ("chunks", "uids", "bad_reads"),
    [
        pytest.param([CARD_A], [UID_A], 0, id="one frame"),
        pytest.param([b"\x0262e3086ced08\x03"], [UID_A], 0, id="lowercase digits"),
        pytest.param([CARD_A + CARD_B], [UID_A, UID_B], 0, id="two frames in one read"),
        pytest.param([bytes([b]) for b in CARD_A], [UID_A], 0, id="one byte per read"),
        pytest.param(
            [CARD_A[:3], CARD_A[3:9], CARD_A[9:] + CARD_B[:5], CARD_B[5:]],
            [UID_A, UID_B],
            0,
            id="frames split across reads",
        ),
        pytest.param([b"\xff\x00noise" + CARD_A], [UID_A], 1, id="garbage before"),
        pytest.param([CARD_A + b"zz\r\n" + CARD_B], [UID_A, UID_B], 1, id="garbage between"),
        pytest.param([b"no", b"is", b"e", CARD_A], [UID_A], 1, id="garbage over several reads"),
        pytest.param([b"\x0262E3086CED09\x03" + CARD_A], [UID_A], 1, id="bad checksum"),
        pytest.param([b"\x0262E3086CEZ08\x03" + CARD_A], [UID_A], 1, id="not hex"),
        pytest.param([b"\x0262E3086CED0\x03" + CARD_A], [UID_A], 1, id="11 digits"),
        pytest.param([b"\x0262E3086CED080\x03" + CARD_A], [UID_A], 1, id="13 digits"),
        pytest.param([b"\x02\x03" + CARD_A], [UID_A], 1, id="empty frame"),
        pytest.param([b"\x03" + CARD_A], [UID_A], 1, id="a lone ETX"),
        pytest.param([CARD_A[:6] + CARD_B], [UID_B], 1, id="frame cut short by the next STX"),
        pytest.param([b"\x02" + b"1" * 40 + CARD_A], [UID_A], 1, id="no ETX, then a frame"),
        pytest.param(
            [b"\x02" + b"1" * 9, b"1" * 9, b"1" * 9, CARD_A],
            [UID_A],
            1,
            id="no ETX over several reads",
        ),
    ],
)
def test_the_decoder_reports_good_frames_and_counts_bad_ones(
    chunks: list[bytes], uids: list[str], bad_reads: int
) -> None:
    assert _decode(chunks) == (uids, bad_reads)


def test_a_frame_waits_for_its_last_byte() -> None:
    decoder = Rdm6300Decoder()

    assert decoder.feed(CARD_A[:-1]) == []
    assert decoder.feed(CARD_A[-1:]) == [UID_A]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x0262E3086CED09\x03", "bad checksum"),
        (b"\x0262E3086CEZ08\x03", "not hex"),
        (b"\x0262E3086CED0\x03", "wrong length: 11 digits"),
        (b"garbage", "bytes outside a frame"),
    ],
)
def test_a_bad_frame_is_logged_with_its_reason(
    frame: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    decoder = Rdm6300Decoder("rdm6300 /dev/serial0")

    with caplog.at_level(logging.WARNING):
        decoder.feed(frame)

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"rdm6300 /dev/serial0: bad frame ({reason}")
