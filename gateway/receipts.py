"""Receipts: each device is told, in batches, which of its events are stored or refused for good.

The edge keeps every event in its outbox until a receipt names it: a broker's PUBACK is no
proof that anything was stored (mosquitto saves to disk every ``autosave_interval``; a broker
restarted without the gateway's session delivers to no one). A receipt goes out only after
the SQL commit (and after the event's points are in the recorder's outbox), so a gateway and
a broker that die together lose nothing the edge has forgotten.

Runs on the event loop: ids gather per device for ``LINGER_SECONDS`` (or until a receipt is
full), then go out at QoS 1 without waiting for the broker (a lost receipt only means the
edge sends the event again, and a redelivery is recorded once and receipted again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from varco import protocol
from varco.protocol import MAX_RECEIPT_IDS, Channel, Receipt, Topic

# How long ids wait for others of the same device before their receipt goes.
LINGER_SECONDS = 0.02

Send = Callable[[str, bytes], bool]


@dataclass(slots=True)
class _Pending:
    committed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.committed) + len(self.refused)


class Receipts:
    """Gathers event ids per device and sends each device its receipts."""

    def __init__(self, send: Send, *, linger: float = LINGER_SECONDS) -> None:
        self._send = send
        self._linger = linger
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._flush: asyncio.TimerHandle | None = None
        self.sent = 0

    def committed(self, topic: Topic, event_id: str) -> None:
        """Note that ``event_id`` of ``topic``'s device is stored."""
        self._add(topic, event_id, refused=False)

    def refused(self, topic: Topic, event_id: str) -> None:
        """Note that ``event_id`` of ``topic``'s device will never be stored."""
        self._add(topic, event_id, refused=True)

    def _add(self, topic: Topic, event_id: str, *, refused: bool) -> None:
        key = (topic.site, topic.device)
        pending = self._pending.setdefault(key, _Pending())
        (pending.refused if refused else pending.committed).append(event_id)
        if len(pending) >= MAX_RECEIPT_IDS:
            self._send_one(key, self._pending.pop(key))
        elif self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self._linger, self.flush)

    def flush(self) -> None:
        """Send every receipt gathered so far."""
        self._flush = None
        pending, self._pending = self._pending, {}
        for key, ids in pending.items():
            self._send_one(key, ids)

    def _send_one(self, key: tuple[str, str], ids: _Pending) -> None:
        site, device = key
        receipt = Receipt(committed=tuple(ids.committed), refused=tuple(ids.refused))
        if self._send(protocol.topic(site, device, Channel.RECEIPT), protocol.encode(receipt)):
            self.sent += 1
