"""The payload contract: one golden payload per channel, compared byte for byte."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from varco import protocol
from varco.protocol import (
    MODELS,
    Access,
    Allowlist,
    AllowlistDelta,
    Channel,
    Command,
    CommandAction,
    Credential,
    CredentialKind,
    Decision,
    DeskEvent,
    DeviceConfig,
    DeviceState,
    DoorEvent,
    DoorOverrides,
    DoorSettings,
    DoorState,
    OfflineDecision,
    Payload,
    PayloadError,
    PayloadTooLargeError,
    Reason,
    Receipt,
    Status,
    Tap,
    Window,
    credential_digest,
    decode,
    encode,
    max_bytes,
    pass_code_hash,
)
from varco.protocol.allowlist import NO_END, NO_START, digest_of

TAPPED_AT = datetime(2024, 5, 1, 9, 30, 15, tzinfo=UTC)
DECIDED_AT = datetime(2024, 5, 1, 9, 30, 15, 120000, tzinfo=UTC)
STARTED_AT = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
# BLAKE2b of b"badge:04A1B2C3D4" keyed with b"k" * 32, 12 bytes long.
DIGEST = hashlib.blake2b(b"badge:04A1B2C3D4", key=b"k" * 32, digest_size=12).digest()
# A credential's record, spelled out: digest, profile (uint16), valid from and valid until
# (int64 microseconds since the epoch; the smallest and the largest mean "no bound").
RECORD = DIGEST + b"\x00\x00" + b"\x80" + b"\x00" * 7 + b"\x7f" + b"\xff" * 7

GOLDEN: dict[Channel, tuple[Payload, bytes]] = {
    Channel.TAP: (
        Tap(
            event_id="3f1c9a0e5b7d4c2a",
            door="front-door",
            credential=Credential(kind=CredentialKind.BADGE, value="04A1B2C3D4"),
            reader="main",
            at=TAPPED_AT,
        ),
        b'{"v":1,"event_id":"3f1c9a0e5b7d4c2a","door":"front-door",'
        b'"credential":{"kind":"badge","value":"04A1B2C3D4"},'
        b'"reader":"main","at":"2024-05-01T09:30:15Z"}',
    ),
    Channel.DECISION: (
        Decision(
            event_id="3f1c9a0e5b7d4c2a",
            door="front-door",
            granted=True,
            reason=Reason.GRANTED,
            unlock_seconds=4.0,
            display_name="Ada Lovelace",
            decided_at=DECIDED_AT,
        ),
        b'{"v":1,"event_id":"3f1c9a0e5b7d4c2a","door":"front-door",'
        b'"granted":true,"reason":"granted","unlock_seconds":4.0,'
        b'"display_name":"Ada Lovelace","decided_at":"2024-05-01T09:30:15.120000Z"}',
    ),
    Channel.DOOR: (
        DoorEvent(
            event_id="7d2e4b9c1a3f5e60",
            door="front-door",
            state=DoorState.HELD_OPEN,
            at=TAPPED_AT,
        ),
        b'{"v":1,"event_id":"7d2e4b9c1a3f5e60","door":"front-door",'
        b'"state":"held_open","at":"2024-05-01T09:30:15Z"}',
    ),
    Channel.DESK: (
        DeskEvent(event_id="desk-evt-0001", desk="desk-12", occupied=True, at=TAPPED_AT),
        b'{"v":1,"event_id":"desk-evt-0001","desk":"desk-12","occupied":true,'
        b'"at":"2024-05-01T09:30:15Z"}',
    ),
    Channel.STATUS: (
        Status(
            state=DeviceState.ONLINE,
            software="varco-edge 0.1.0",
            started_at=STARTED_AT,
            at=TAPPED_AT,
            uptime_seconds=12615.0,
            allowlist_version=1714546800000,
            allowlist_issued_at=STARTED_AT,
            outbox_depth=3,
            outbox_dropped=0,
        ),
        b'{"v":1,"state":"online","software":"varco-edge 0.1.0",'
        b'"started_at":"2024-05-01T06:00:00Z","at":"2024-05-01T09:30:15Z",'
        b'"uptime_seconds":12615.0,"allowlist_version":1714546800000,'
        b'"allowlist_issued_at":"2024-05-01T06:00:00Z","outbox_depth":3,"outbox_dropped":0}',
    ),
    Channel.COMMAND: (
        Command(
            command_id="cmd-0000000001",
            action=CommandAction.UNLOCK,
            door="front-door",
            seconds=5.0,
            issued_at=TAPPED_AT,
            expires_at=TAPPED_AT + timedelta(seconds=30),
        ),
        b'{"v":1,"command_id":"cmd-0000000001","action":"unlock","door":"front-door",'
        b'"seconds":5.0,"issued_at":"2024-05-01T09:30:15Z","expires_at":"2024-05-01T09:30:45Z"}',
    ),
    Channel.CONFIG: (
        DeviceConfig(
            version=3,
            issued_at=STARTED_AT,
            log_level="DEBUG",
            doors={"front-door": DoorOverrides(unlock_seconds=7.0, fail_mode="safe")},
        ),
        b'{"v":1,"version":3,"issued_at":"2024-05-01T06:00:00Z","log_level":"DEBUG",'
        b'"doors":{"front-door":{"unlock_seconds":7.0,"fail_mode":"safe"}}}',
    ),
    Channel.RECEIPT: (
        Receipt(committed=("3f1c9a0e5b7d4c2a",), refused=("9b8a7c6d5e4f3a21",)),
        b'{"v":1,"committed":["3f1c9a0e5b7d4c2a"],"refused":["9b8a7c6d5e4f3a21"]}',
    ),
    Channel.ALLOWLIST: (
        Allowlist(
            version=1714546800000,
            issued_at=STARTED_AT,
            expires_at=STARTED_AT + timedelta(days=1),
            timezone="Europe/Rome",
            doors={"front-door": DoorSettings(unlock_seconds=5.0)},
            profiles={
                "0": {
                    "front-door": Access(
                        windows=[Window(days=[0, 1, 2, 3, 4], start="08:00", end="18:00")]
                    )
                }
            },
            credentials=RECORD,
        ),
        b'{"kind":"full","v":2,"version":1714546800000,"issued_at":"2024-05-01T06:00:00Z",'
        b'"expires_at":"2024-05-02T06:00:00Z","timezone":"Europe/Rome","closures":[],'
        b'"doors":{"front-door":{"unlock_seconds":5.0,"locked_down":false,"open_windows":[],'
        b'"open_after_first_entry":false}},"profiles":{"0":{"front-door":{"windows":'
        b'[{"days":[0,1,2,3,4],"start":"08:00","end":"18:00"}],"closed_on_closures":true}}},'
        b'"credentials":"' + base64.b64encode(RECORD) + b'"}',
    ),
}

# An update to the list above: one credential replaced, one removed, the doors unchanged.
GOLDEN_DELTA = (
    AllowlistDelta(
        since=1714546800000,
        version=1714546800001,
        issued_at=STARTED_AT,
        expires_at=STARTED_AT + timedelta(days=1),
        credentials=RECORD,
        removed=b"\x01" * 12,
    ),
    b'{"kind":"delta","v":2,"since":1714546800000,"version":1714546800001,'
    b'"issued_at":"2024-05-01T06:00:00Z","expires_at":"2024-05-02T06:00:00Z","profiles":{},'
    b'"removed_profiles":[],"credentials":"' + base64.b64encode(RECORD) + b'",'
    b'"removed":"' + base64.b64encode(b"\x01" * 12) + b'"}',
)


def test_an_allowlist_update_has_its_golden_bytes() -> None:
    delta, golden = GOLDEN_DELTA

    assert encode(delta) == golden
    assert decode(Channel.ALLOWLIST, golden) == delta


def test_a_record_is_what_the_protocol_packs() -> None:
    assert protocol.RECORD.pack(DIGEST, 0, NO_START, NO_END) == RECORD


EVENT_CHANNELS = [Channel.TAP, Channel.DECISION, Channel.DOOR, Channel.DESK]


def _wire(channel: Channel, **changes: object) -> bytes:
    """Return the golden payload of ``channel`` with top-level ``changes`` applied."""
    data = json.loads(GOLDEN[channel][1])
    data.update(changes)
    return json.dumps(data).encode()


def _tap_with(credential: dict[str, str]) -> Tap:
    """Decode the golden tap with ``credential`` presented instead."""
    tap = decode(Channel.TAP, _wire(Channel.TAP, credential=credential))
    assert isinstance(tap, Tap)
    return tap


def test_an_offline_tap_carries_what_the_door_decided() -> None:
    tap = Tap(
        event_id="3f1c9a0e5b7d4c2a",
        door="front-door",
        credential=Credential(value="04A1B2C3D4"),
        at=TAPPED_AT,
        offline=OfflineDecision(
            granted=False, reason=Reason.NOT_IN_ALLOWLIST, allowlist_version=1714546800000
        ),
    )
    golden = (
        b'{"v":1,"event_id":"3f1c9a0e5b7d4c2a","door":"front-door",'
        b'"credential":{"kind":"badge","value":"04A1B2C3D4"},"reader":"main",'
        b'"at":"2024-05-01T09:30:15Z","offline":{"granted":false,'
        b'"reason":"not_in_allowlist","allowlist_version":1714546800000}}'
    )

    assert encode(tap) == golden
    assert decode(Channel.TAP, golden) == tap


def test_digests_are_keyed() -> None:
    badge = Credential(value="04A1B2C3D4")

    assert credential_digest(b"k" * 32, badge) == DIGEST
    assert len(DIGEST) == 12  # 96 bits: a 50,000-credential list fits a message
    assert credential_digest(b"j" * 32, badge) != DIGEST
    assert (
        credential_digest(b"k" * 32, Credential(kind=CredentialKind.PASS, value="04A1B2C3D4"))
        != DIGEST
    )


def test_a_pass_digest_is_keyed_over_the_hash_of_its_code() -> None:
    # The gateway keeps only the hash; the door hashes the code it reads, then keys that.
    code = "3F9A0C1B2D4E5F607182"
    code_hash = hashlib.sha256(code.encode()).hexdigest()
    golden = hashlib.blake2b(f"pass:{code_hash}".encode(), key=b"k" * 32, digest_size=12).digest()

    assert pass_code_hash(code) == code_hash
    assert credential_digest(b"k" * 32, Credential(kind=CredentialKind.PASS, value=code)) == golden
    assert digest_of(b"k" * 32, CredentialKind.PASS, code_hash) == golden


def test_a_credential_is_masked_for_a_log_line() -> None:
    code = "3F9A0C1B2D4E5F607182"

    assert Credential(value="04a1b2c3d4").masked() == "badge ******C3D4"
    assert Credential(kind=CredentialKind.PASS, value=code).masked() == "a pass"


def test_every_channel_with_a_model_has_a_golden_payload() -> None:
    assert set(GOLDEN) == set(MODELS)


@pytest.mark.parametrize("channel", list(GOLDEN))
def test_encode_produces_the_golden_bytes(channel: Channel) -> None:
    model, golden = GOLDEN[channel]

    assert encode(model) == golden


@pytest.mark.parametrize("channel", list(GOLDEN))
def test_decode_of_the_golden_bytes_gives_back_the_model(channel: Channel) -> None:
    model, golden = GOLDEN[channel]

    assert decode(channel, golden) == model


def test_absent_optional_fields_are_left_off_the_wire() -> None:
    denial = Decision(
        event_id="3f1c9a0e5b7d4c2a",
        door="front-door",
        granted=False,
        reason=Reason.BADGE_REVOKED,
        decided_at=DECIDED_AT,
    )

    assert encode(denial) == (
        b'{"v":1,"event_id":"3f1c9a0e5b7d4c2a","door":"front-door",'
        b'"granted":false,"reason":"badge_revoked","unlock_seconds":0.0,'
        b'"decided_at":"2024-05-01T09:30:15.120000Z"}'
    )
    assert decode(Channel.DECISION, encode(denial)) == denial


@pytest.mark.parametrize("channel", list(GOLDEN))
def test_unknown_top_level_field_is_refused_by_name(channel: Channel) -> None:
    with pytest.raises(PayloadError, match=r"^colour: unknown field"):
        decode(channel, _wire(channel, colour="red"))


def test_unknown_credential_field_is_refused_by_its_path() -> None:
    raw = _wire(Channel.TAP, credential={"kind": "badge", "value": "04A1B2C3D4", "pin": "1234"})

    with pytest.raises(PayloadError, match=r"^credential\.pin: unknown field"):
        decode(Channel.TAP, raw)


@pytest.mark.parametrize("channel", list(GOLDEN))
def test_oversize_payload_is_refused_before_it_is_parsed(channel: Channel) -> None:
    limit = max_bytes(channel)

    # Not JSON at all: only the size check can have refused it.
    with pytest.raises(PayloadTooLargeError, match=f"{limit + 1} bytes exceeds the {limit}-byte"):
        decode(channel, b"x" * (limit + 1))


@pytest.mark.parametrize("channel", list(GOLDEN))
def test_payload_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not(
    channel: Channel,
) -> None:
    model, golden = GOLDEN[channel]
    padded = golden + b" " * (max_bytes(channel) - len(golden))

    assert decode(channel, padded) == model
    with pytest.raises(PayloadTooLargeError):
        decode(channel, padded + b" ")


def test_status_may_be_larger_than_an_event() -> None:
    size = 3000
    status = GOLDEN[Channel.STATUS][1]
    tap = GOLDEN[Channel.TAP][1]

    assert decode(Channel.STATUS, status + b" " * (size - len(status)))
    with pytest.raises(PayloadTooLargeError):
        decode(Channel.TAP, tap + b" " * (size - len(tap)))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="text"),
        pytest.param(b'{"v":1,', id="truncated"),
        pytest.param(b"\x80\x81\x82", id="invalid-utf8"),
        pytest.param(b'{"door":"caf\xe9"}', id="latin-1"),
    ],
)
def test_bytes_that_are_not_utf8_json_are_refused(raw: bytes) -> None:
    with pytest.raises(PayloadError, match="not JSON"):
        decode(Channel.TAP, raw)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_json_in_another_unicode_encoding_is_refused(encoding: str) -> None:
    raw = GOLDEN[Channel.DESK][1].decode().encode(encoding)

    with pytest.raises(PayloadError):
        decode(Channel.DESK, raw)


@pytest.mark.parametrize("raw", [b"[]", b"null", b'"tap"', b"42"])
def test_json_that_is_not_an_object_is_refused(raw: bytes) -> None:
    with pytest.raises(PayloadError, match=r"^payload: "):
        decode(Channel.TAP, raw)


@pytest.mark.parametrize(
    ("channel", "field"),
    [
        (Channel.TAP, "at"),
        (Channel.DECISION, "decided_at"),
        (Channel.DOOR, "at"),
        (Channel.DESK, "at"),
        (Channel.STATUS, "started_at"),
        (Channel.STATUS, "at"),
    ],
)
def test_naive_datetime_on_the_wire_is_refused(channel: Channel, field: str) -> None:
    raw = _wire(channel, **{field: "2024-05-01T09:30:15"})

    with pytest.raises(PayloadError, match=f"^{field}: .*timezone"):
        decode(channel, raw)


def test_a_payload_with_a_naive_datetime_is_not_sent() -> None:
    naive = DeskEvent(
        event_id="desk-evt-0001",
        desk="desk-12",
        occupied=True,
        at=datetime(2024, 5, 1, 9, 30, 15),  # naive on purpose
    )

    with pytest.raises(PayloadError, match=r"^not sent: at: .*timezone"):
        encode(naive)


def test_a_payload_out_of_its_bounds_is_not_sent() -> None:
    golden = GOLDEN[Channel.DECISION][0]
    assert isinstance(golden, Decision)
    long_name = msgspec.structs.replace(golden, display_name="x" * 121)

    with pytest.raises(PayloadError, match=r"^not sent: display_name: .*length <= 120"):
        encode(long_name)


def test_a_credential_that_no_reader_can_read_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="hexadecimal"):
        Credential(value="04A1-ZZ")
    with pytest.raises(ValueError, match="4 to 64"):
        Credential(kind=CredentialKind.PASS, value="a b")


@pytest.mark.parametrize("offset", [1, -1])
@pytest.mark.parametrize("channel", list(GOLDEN))
def test_another_schema_version_is_refused(channel: Channel, offset: int) -> None:
    version = json.loads(GOLDEN[channel][1])["v"] + offset

    with pytest.raises(PayloadError, match=r"^v: "):
        decode(channel, _wire(channel, v=version))


@pytest.mark.parametrize("version", ["1", None])
@pytest.mark.parametrize("channel", list(GOLDEN))
def test_a_schema_version_is_a_number(channel: Channel, version: object) -> None:
    with pytest.raises(PayloadError, match=r"^v: "):
        decode(channel, _wire(channel, v=version))


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param({"kind": "badge", "value": "04a1b2c3d4"}, id="lowercase"),
        pytest.param({"kind": "badge", "value": "04a1B2c3D4"}, id="mixed-case"),
        pytest.param({"value": "04a1b2c3d4"}, id="kind-defaults-to-badge"),
    ],
)
def test_badge_uid_is_uppercased(credential: dict[str, str]) -> None:
    tap = _tap_with(credential)

    assert tap.credential == Credential(kind=CredentialKind.BADGE, value="04A1B2C3D4")
    assert b'"value":"04A1B2C3D4"' in encode(tap)


def test_badge_uid_is_uppercased_when_a_payload_is_built() -> None:
    assert Credential(value="04a1b2c3d4").value == "04A1B2C3D4"


@pytest.mark.parametrize("value", ["04G1B2C3", "zzzz", "04-A1-B2", "04_A1_B2", "Guest-AbC9"])
def test_badge_uid_that_is_not_hexadecimal_is_refused(value: str) -> None:
    with pytest.raises(PayloadError, match=r"^credential\.value: .*hexadecimal"):
        _tap_with({"kind": "badge", "value": value})


@pytest.mark.parametrize("value", ["Guest-AbC9", "gUeSt_pass", "abcd", "04a1b2c3d4"])
def test_pass_code_keeps_its_case(value: str) -> None:
    tap = _tap_with({"kind": "pass", "value": value})

    assert tap.credential == Credential(kind=CredentialKind.PASS, value=value)
    assert f'"value":"{value}"'.encode() in encode(tap)


@pytest.mark.parametrize("kind", ["badge", "pass"])
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("04A", id="too-short"),
        pytest.param("0" * 65, id="too-long"),
        pytest.param("04 A1 B2", id="space"),
        pytest.param("04:A1:B2", id="colon"),
    ],
)
def test_credential_value_outside_the_pattern_is_refused(kind: str, value: str) -> None:
    with pytest.raises(PayloadError, match=r"^credential\.value: "):
        _tap_with({"kind": kind, "value": value})


def test_unknown_credential_kind_is_refused() -> None:
    with pytest.raises(PayloadError, match=r"^credential\.kind: "):
        _tap_with({"kind": "pin", "value": "1234"})


@pytest.mark.parametrize("event_id", ["abcdefgh", "A" * 64, "3F1C-9a0e_5b7d"])
def test_event_id_within_the_pattern_is_accepted(event_id: str) -> None:
    expected = msgspec.structs.replace(GOLDEN[Channel.TAP][0], event_id=event_id)

    assert decode(Channel.TAP, _wire(Channel.TAP, event_id=event_id)) == expected


@pytest.mark.parametrize(
    "event_id",
    [
        pytest.param("abcdefg", id="7-chars"),
        pytest.param("a" * 65, id="65-chars"),
        pytest.param("3f1c 9a0e", id="space"),
        pytest.param("3f1c/9a0e", id="slash"),
        pytest.param("3f1c.9a0e", id="dot"),
        pytest.param("3f1c9a0e\n", id="trailing-newline"),
        pytest.param("", id="empty"),
    ],
)
@pytest.mark.parametrize("channel", EVENT_CHANNELS)
def test_event_id_outside_the_pattern_is_refused(channel: Channel, event_id: str) -> None:
    with pytest.raises(PayloadError, match=r"^event_id: "):
        decode(channel, _wire(channel, event_id=event_id))


def test_every_channel_has_a_payload_model() -> None:
    assert set(MODELS) == set(Channel)


def test_a_status_says_which_config_the_device_runs_and_why_it_refused_one() -> None:
    data = _wire(Channel.STATUS, config_version=7, config_error="doors.back-door: not here")
    status = decode(Channel.STATUS, data)

    assert isinstance(status, Status)
    assert (status.config_version, status.config_error) == (7, "doors.back-door: not here")
