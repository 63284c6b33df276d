"""Device identities at the broker, through Mosquitto's dynamic-security plugin.

A device's broker identity is its device id: a dynsec client of that name, pinned to that client
id, holding one role, ``varco-device-<id>``, whose ACLs allow exactly the device's own topics
(``varco.protocol.topics.device_grants``); the broker denies everything else by default. One
role per device because mosquitto 2.0's dynsec has no ``%u``/``%c`` substitution in ACLs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

from gateway.errors import GatewayError
from gateway.settings import Settings
from varco import transport
from varco.protocol.topics import DYNSEC_CONTROL, DYNSEC_RESPONSE, device_grants

log = logging.getLogger(__name__)

ROLE_PREFIX = "varco-device-"

# scrypt at n=2**14, r=8: ~16 MiB and ~50 ms per hash, once per device created.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class ProvisioningError(GatewayError, RuntimeError):
    """The broker refused a dynamic-security command; the message is the broker's reason."""


class BrokerUnavailableError(ProvisioningError, ConnectionError):
    """The broker could not be reached, or did not answer in time."""


class BrokerConflictError(ProvisioningError):
    """The broker already has a client or role by that name."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A device's broker username and password, as shown once to the admin."""

    username: str
    password: str = field(repr=False)
    site: str = field(kw_only=True)  # the one site the device may speak for


@dataclass(frozen=True, slots=True)
class Answer:
    """The broker's answer to one dynamic-security command."""

    command: str
    error: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def new_credentials(device: str, site: str) -> Credentials:
    """Make broker credentials for ``device`` at ``site``: its id and 192 random bits."""
    return Credentials(username=device, password=secrets.token_urlsafe(24), site=site)


def hash_password(password: str) -> str:
    """Hash ``password`` with scrypt and a random salt, for our record of it."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    """Tell whether ``password`` is the one ``stored`` was made from."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(candidate, _unb64(digest))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def role_name(device: str) -> str:
    """Name the dynsec role that holds ``device``'s ACLs."""
    return f"{ROLE_PREFIX}{device}"


def device_acls(device: str, site: str) -> list[dict[str, Any]]:
    """Build the dynsec ACLs of ``device``: publish and subscribe on its own topics only,
    under its own ``site``."""
    grants = device_grants(device, site)
    send = [("publishClientSend", topic) for topic in grants.publish]
    receive = [("subscribePattern", topic) for topic in grants.subscribe]
    return [{"acltype": kind, "topic": topic, "allow": True} for kind, topic in send + receive]


class Dynsec:
    """One MQTT connection that sends dynamic-security commands and awaits their answers.

    ``async with Dynsec(broker, identifier=...) as dynsec: await dynsec.run(command, ...)``.
    """

    def __init__(
        self, broker: transport.BrokerAddress, *, identifier: str, timeout: float = 5.0
    ) -> None:
        self._broker = broker
        self._timeout = timeout
        self._client = transport.client(broker, identifier=identifier, timeout=timeout)
        # One batch in flight at a time, so the one reading the answers is the one waiting.
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Dynsec:
        where = f"{self._broker.host}:{self._broker.port}"
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.__aenter__()
        except MqttConnectError as exc:
            # The broker answered and said no: a wrong account, not an outage.
            raise ProvisioningError(
                f"the broker at {where} refused the gateway's account "
                f"{self._broker.username!r}: {exc}"
            ) from exc
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise BrokerUnavailableError(f"cannot reach the broker at {where}: {exc}") from exc
        try:
            granted = await self._client.subscribe(DYNSEC_RESPONSE, qos=1)
        except aiomqtt.MqttError as exc:
            await self._close()
            raise BrokerUnavailableError(f"broker at {where} dropped us: {exc}") from exc
        if any(_refused(code) for code in granted):
            await self._close()
            raise ProvisioningError(
                f"the broker at {where} does not let {self._broker.username!r} read "
                f"{DYNSEC_RESPONSE}: give that account the varco-gateway role"
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        try:
            await self._client.__aexit__(None, None, None)
        except aiomqtt.MqttError as exc:
            log.debug("dynsec connection closed uncleanly: %s", exc)

    async def run(self, *commands: Mapping[str, Any]) -> list[Answer]:
        """Send ``commands`` in one message; return the broker's answers in the same order.

        The broker runs them one by one: some may fail while the others succeed.
        """
        if not commands:
            return []
        # Answers come on one topic for every admin: each command carries a tag to match.
        tagged = {secrets.token_hex(8): dict(command) for command in commands}
        message = {"commands": [{**c, "correlationData": tag} for tag, c in tagged.items()]}
        answers: dict[str, Answer] = {}
        async with self._lock:
            try:
                await self._client.publish(DYNSEC_CONTROL, json.dumps(message), qos=1)
                async with asyncio.timeout(self._timeout):
                    async for reply in self._client.messages:
                        answers.update(_answers(reply.payload, tagged))
                        if len(answers) == len(tagged):
                            break
            except TimeoutError:
                raise BrokerUnavailableError(
                    f"the broker did not answer {DYNSEC_CONTROL} within {self._timeout:g}s: "
                    "is the dynamic-security plugin loaded, and may the gateway publish there?"
                ) from None
            except aiomqtt.MqttError as exc:
                raise BrokerUnavailableError(f"lost the broker: {exc}") from exc
        return [answers[tag] for tag in tagged]


def _refused(code: int | ReasonCode) -> bool:
    if isinstance(code, ReasonCode):
        return code.is_failure
    return code >= 0x80


def _answers(payload: object, tagged: Mapping[str, Mapping[str, Any]]) -> dict[str, Answer]:
    # Another admin's answers arrive here too; anything without one of our tags is theirs.
    if not isinstance(payload, bytes | bytearray):
        return {}
    try:
        responses = json.loads(payload)["responses"]
    except (ValueError, KeyError, TypeError):
        log.warning("ignored a malformed dynsec answer: %r", bytes(payload[:200]))
        return {}
    found: dict[str, Answer] = {}
    for response in responses if isinstance(responses, list) else []:
        if not isinstance(response, dict):
            continue
        tag = response.get("correlationData")
        if isinstance(tag, str) and tag in tagged:
            error = response.get("error")
            data = response.get("data")
            found[tag] = Answer(
                command=str(response.get("command", tagged[tag]["command"])),
                error=None if error is None else str(error),
                data=data if isinstance(data, dict) else {},
            )
    return found


class Provisioner:
    """Creates, removes and disables devices' identities at the broker."""

    def __init__(
        self, broker: transport.BrokerAddress, *, identifier: str, timeout: float = 5.0
    ) -> None:
        self._broker = broker
        self._identifier = identifier
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> Provisioner | None:
        """Return the provisioner ``settings`` ask for, or None when the broker is open."""
        if settings.provisioning != "dynsec":
            return None
        return cls(
            settings.broker(),
            identifier=settings.gateway_id,
            timeout=settings.provisioning_timeout_seconds,
        )

    def _connect(self) -> Dynsec:
        # A fresh client id per call: API threads and replicas must not take over each other.
        identifier = f"{self._identifier}-dynsec-{secrets.token_hex(4)}"
        return Dynsec(self._broker, identifier=identifier, timeout=self._timeout)

    async def provision(self, credentials: Credentials) -> None:
        """Create the device's role and client at the broker, or raise and leave nothing."""
        device = credentials.username
        role = role_name(device)
        async with self._connect() as dynsec:
            created_role, created_client = await dynsec.run(
                {
                    "command": "createRole",
                    "rolename": role,
                    "textname": f"Varco device {device}: its own topics only",
                    "acls": device_acls(device, credentials.site),
                },
                {
                    "command": "createClient",
                    "username": device,
                    "clientid": device,
                    "password": credentials.password,
                    "textname": f"Varco device {device}",
                    "roles": [{"rolename": role}],
                },
            )
            if created_role.ok and created_client.ok:
                log.info("device %s provisioned at the broker", device)
                return
            # Undo only what this call made: a name already taken belongs to someone else.
            undo = []
            if created_client.ok:
                undo.append({"command": "deleteClient", "username": device})
            if created_role.ok:
                undo.append({"command": "deleteRole", "rolename": role})
            if undo:
                await _best_effort(dynsec, undo, device)
        failed = created_client if created_client.error else created_role
        reason = f"the broker refused device {device!r}: {failed.command}: {failed.error}"
        if failed.error is not None and "already exists" in failed.error:
            raise BrokerConflictError(reason)
        raise ProvisioningError(reason)

    async def deprovision(self, device: str) -> None:
        """Delete the device's client and role at the broker; log, never raise, on failure."""
        undo = [
            {"command": "deleteClient", "username": device},
            {"command": "deleteRole", "rolename": role_name(device)},
        ]
        try:
            async with self._connect() as dynsec:
                await _best_effort(dynsec, undo, device)
        except ProvisioningError as exc:
            # Called while another error is being answered; that one is the one to report.
            for command in undo:
                log.error(
                    "device %s: %s at the broker failed (%s); run it with mosquitto_ctrl",
                    device,
                    command["command"],
                    exc,
                )

    async def revoke(self, device: str) -> None:
        """Disable the device's client: the broker disconnects it and refuses it from now on."""
        async with self._connect() as dynsec:
            [found] = await dynsec.run({"command": "getClient", "username": device})
            if found.error is not None and found.error != "Client not found":
                raise ProvisioningError(f"the broker refused to show {device!r}: {found.error}")
            if not _holds(found, role_name(device)):
                # Made while provisioning was off: the device has no account of its own, and
                # an account of that name (the admin's, say) is someone else's to keep.
                log.warning("device %s has no account at the broker; nothing to disable", device)
                return
            [answer] = await dynsec.run({"command": "disableClient", "username": device})
        if answer.error is not None:
            raise ProvisioningError(
                f"the broker refused to disable device {device!r}: {answer.error}"
            )
        log.info("device %s disabled at the broker", device)


def _holds(answer: Answer, role: str) -> bool:
    client = answer.data.get("client")
    roles = client.get("roles") if isinstance(client, dict) else None
    return isinstance(roles, list) and any(
        isinstance(r, dict) and r.get("rolename") == role for r in roles
    )


async def _best_effort(dynsec: Dynsec, undo: Sequence[Mapping[str, Any]], device: str) -> None:
    try:
        answers = await dynsec.run(*undo)
    except ProvisioningError as exc:
        answers = [Answer(command=str(c["command"]), error=str(exc)) for c in undo]
    for command, answer in zip(undo, answers, strict=True):
        if answer.error is not None and "not found" not in answer.error:
            log.error(
                "device %s: %s at the broker failed (%s); run it with mosquitto_ctrl",
                device,
                command["command"],
                answer.error,
            )
