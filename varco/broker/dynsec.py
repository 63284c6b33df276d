"""The dynamic-security plugin's file, written before the broker's first start.

The same document ``mosquitto_ctrl dynsec init`` writes, with the gateway's role and account
added: passwords as the plugin keeps them (PBKDF2-SHA512, 101 iterations, a 12-byte salt), so
the broker needs no admin session to be set up and no password crosses the network.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from varco.protocol.topics import DYNSEC_CONTROL, DYNSEC_RESPONSE, subscription

GATEWAY_ROLE = "varco-gateway"
ADMIN_ROLE = "admin"
_ITERATIONS = 101
_SALT_BYTES = 12


def new_password() -> str:
    """Make a broker password: 192 random bits."""
    return secrets.token_urlsafe(24)


def _client(username: str, password: str, role: str, text_name: str) -> dict[str, Any]:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return {
        "username": username,
        "textName": text_name,
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": _ITERATIONS,
        "roles": [{"rolename": role}],
    }


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": True}


def gateway_acls() -> list[dict[str, Any]]:
    """The varco-gateway role: ingest every device channel, answer on the gateway's channels,
    and administer device accounts (deploy/mosquitto/README.md lists why each is there)."""
    every = subscription("+")
    acls = [
        _acl("publishClientSend", DYNSEC_CONTROL),
        _acl("subscribePattern", DYNSEC_RESPONSE),
        _acl("publishClientReceive", DYNSEC_RESPONSE),
        _acl("subscribePattern", every),
        # mosquitto 2.0 checks a shared subscription's whole filter, $share/<group>/ included.
        _acl("subscribePattern", f"$share/+/{every}"),
        _acl("publishClientReceive", every),
    ]
    acls += [
        _acl("publishClientSend", subscription(channel))
        for channel in ("decision", "allowlist", "config", "command")
    ]
    return acls


def _admin_acls() -> list[dict[str, Any]]:
    # As mosquitto_ctrl dynsec init grants: the plugin, $SYS, and reading every topic.
    control = "$CONTROL/dynamic-security/#"
    return [
        _acl("publishClientSend", control),
        _acl("publishClientReceive", control),
        _acl("subscribePattern", control),
        _acl("publishClientReceive", "$SYS/#"),
        _acl("subscribePattern", "$SYS/#"),
        _acl("publishClientReceive", "#"),
        _acl("subscribePattern", "#"),
        _acl("unsubscribePattern", "#"),
    ]


def dynsec_document(*, admin: tuple[str, str], gateway: tuple[str, str]) -> dict[str, Any]:
    """Build the plugin's file with the admin and the gateway accounts, ``(username, password)``.

    What no role allows is denied: a device reaches only what its own role grants.
    """
    return {
        "clients": [
            _client(*admin, ADMIN_ROLE, "Broker admin (mosquitto_ctrl)"),
            _client(*gateway, GATEWAY_ROLE, "Varco gateway"),
        ],
        "roles": [
            {"rolename": ADMIN_ROLE, "acls": _admin_acls()},
            {"rolename": GATEWAY_ROLE, "acls": gateway_acls()},
        ],
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
    }
