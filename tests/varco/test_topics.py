"""The topic contract: ``varco/v1/<site>/<device>/<channel>``, built and parsed in one place."""

from __future__ import annotations

import pytest
from paho.mqtt.client import topic_matches_sub

from varco.protocol import (
    EDGE_TO_GATEWAY,
    GATEWAY_TO_EDGE,
    Channel,
    Topic,
    TopicError,
    UnknownChannelError,
    gateway_subscriptions,
    is_valid_id,
    parse,
    shared,
    subscription,
    topic,
)

SITE = "hq"
DEVICE = "door-ctl-1"

GOOD_IDS = ["a", "0", "hq", "front-door", "desk_12", "0-door", "a" * 64]

# Ids travel inside topics: a separator or a wildcard would change what the topic means.
BAD_IDS = [
    pytest.param("front/door", id="slash"),
    pytest.param("front+door", id="plus"),
    pytest.param("+", id="single-level-wildcard"),
    pytest.param("front#door", id="hash"),
    pytest.param("#", id="multi-level-wildcard"),
    pytest.param("Front-door", id="uppercase"),
    pytest.param("HQ", id="all-uppercase"),
    pytest.param("", id="empty"),
    pytest.param("a" * 65, id="65-chars"),
    pytest.param("-front", id="leading-dash"),
    pytest.param("_front", id="leading-underscore"),
    pytest.param("front door", id="space"),
    pytest.param("front.door", id="dot"),
    pytest.param("fr\u00f6nt", id="non-ascii"),
    pytest.param("front-door\n", id="trailing-newline"),
]


@pytest.mark.parametrize("channel", list(Channel))
def test_topic_round_trips_for_every_channel(channel: Channel) -> None:
    name = topic(SITE, DEVICE, channel)

    assert name == f"varco/v1/hq/door-ctl-1/{channel.value}"
    assert parse(name) == Topic(SITE, DEVICE, channel)
    assert str(parse(name)) == name


@pytest.mark.parametrize("good_id", GOOD_IDS)
def test_valid_ids_are_accepted_as_site_and_device(good_id: str) -> None:
    assert is_valid_id(good_id)
    assert parse(topic(good_id, good_id, Channel.TAP)) == Topic(good_id, good_id, Channel.TAP)


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_bad_ids_are_refused(bad_id: str) -> None:
    assert not is_valid_id(bad_id)
    with pytest.raises(TopicError, match="site id"):
        topic(bad_id, DEVICE, Channel.TAP)
    with pytest.raises(TopicError, match="device id"):
        topic(SITE, bad_id, Channel.TAP)


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_parse_refuses_bad_ids(bad_id: str) -> None:
    with pytest.raises(TopicError):
        parse(f"varco/v1/{bad_id}/{DEVICE}/tap")
    with pytest.raises(TopicError):
        parse(f"varco/v1/{SITE}/{bad_id}/tap")


@pytest.mark.parametrize(
    "name",
    [
        "vrco/v1/hq/door-ctl-1/tap",
        "VARCO/v1/hq/door-ctl-1/tap",
        "homeassistant/v1/hq/door-ctl-1/tap",
        "$share/gateway/varco/v1/hq",
    ],
)
def test_parse_refuses_a_foreign_prefix(name: str) -> None:
    with pytest.raises(TopicError, match="not a varco topic"):
        parse(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "varco",
        "varco/v1/hq/door-ctl-1",
        "varco/v1/hq/door-ctl-1/tap/extra",
        "varco/v1/hq/door-ctl-1/tap/",
        "/varco/v1/hq/door-ctl-1/tap",
        "varco/v1/hq/front/door/tap",
    ],
)
def test_parse_refuses_the_wrong_number_of_levels(name: str) -> None:
    with pytest.raises(TopicError, match="not a varco topic"):
        parse(name)


@pytest.mark.parametrize("version", ["v2", "v0", "V1", "1", ""])
def test_parse_refuses_another_wire_version(version: str) -> None:
    with pytest.raises(TopicError, match="unsupported wire version"):
        parse(f"varco/{version}/hq/door-ctl-1/tap")


@pytest.mark.parametrize("channel", ["bogus", "TAP", "taps", "", "+", "#"])
def test_parse_raises_unknown_channel_error_for_a_channel_outside_the_contract(
    channel: str,
) -> None:
    with pytest.raises(UnknownChannelError, match="unknown channel") as excinfo:
        parse(f"varco/v1/hq/door-ctl-1/{channel}")

    # Callers that only know about TopicError still catch it.
    assert isinstance(excinfo.value, TopicError)


@pytest.mark.parametrize(
    ("channel", "where", "expected"),
    [
        (Channel.TAP, {}, "varco/v1/+/+/tap"),
        ("status", {}, "varco/v1/+/+/status"),
        ("+", {}, "varco/v1/+/+/+"),
        (Channel.DOOR, {"site": "hq"}, "varco/v1/hq/+/door"),
        (Channel.DESK, {"device": "desk-node-3"}, "varco/v1/+/desk-node-3/desk"),
        (
            Channel.DECISION,
            {"site": "hq", "device": "door-ctl-1"},
            "varco/v1/hq/door-ctl-1/decision",
        ),
        ("+", {"site": "hq", "device": "door-ctl-1"}, "varco/v1/hq/door-ctl-1/+"),
    ],
)
def test_subscription_builds_the_expected_filter(
    channel: str | Channel, where: dict[str, str], expected: str
) -> None:
    assert subscription(channel, **where) == expected


@pytest.mark.parametrize("channel", list(Channel))
def test_subscription_matches_its_channel_and_no_other(channel: Channel) -> None:
    filter_ = subscription(channel, site=SITE)

    for other in Channel:
        assert topic_matches_sub(filter_, topic(SITE, DEVICE, other)) == (other is channel)
    assert not topic_matches_sub(filter_, topic("annex", DEVICE, channel))


@pytest.mark.parametrize("bad_id", ["#", "Hq", "a/b", ""])
def test_subscription_refuses_bad_site_and_device(bad_id: str) -> None:
    with pytest.raises(TopicError, match="site id"):
        subscription(Channel.TAP, site=bad_id)
    with pytest.raises(TopicError, match="device id"):
        subscription(Channel.TAP, device=bad_id)


@pytest.mark.parametrize("channel", ["bogus", "#"])
def test_subscription_refuses_a_channel_outside_the_contract(channel: str) -> None:
    with pytest.raises(UnknownChannelError, match="unknown channel"):
        subscription(channel)


def test_the_gateway_subscribes_to_what_devices_send_and_nothing_it_sends() -> None:
    filters = gateway_subscriptions()

    for channel in Channel:
        heard = any(topic_matches_sub(f, topic(SITE, DEVICE, channel)) for f in filters)
        assert heard == (channel in EDGE_TO_GATEWAY), channel


def test_shared_wraps_a_filter_as_a_shared_subscription() -> None:
    assert shared("gateway", subscription("+")) == "$share/gateway/varco/v1/+/+/+"
    assert shared("gw-2", subscription(Channel.TAP, site="hq")) == "$share/gw-2/varco/v1/hq/+/tap"


@pytest.mark.parametrize("group", ["", "a/b", "+", "#", "Gateway"])
def test_shared_refuses_a_bad_group(group: str) -> None:
    with pytest.raises(TopicError, match="group id"):
        shared(group, subscription("+"))


def test_every_channel_flows_in_exactly_one_direction() -> None:
    assert set(Channel) == EDGE_TO_GATEWAY | GATEWAY_TO_EDGE
    assert not EDGE_TO_GATEWAY & GATEWAY_TO_EDGE
