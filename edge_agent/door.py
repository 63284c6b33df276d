"""A door: reader, relay, reed switch, exit button, LEDs and buzzer, and its decisions.

On a tap the door asks the gateway; without an answer in time it decides from the cached
allow-list (or its fail mode) and records the tap as decided offline.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import msgspec

from edge_agent.cache import AllowlistCache, OfflineVerdict
from edge_agent.config import DoorConfig
from edge_agent.door_monitor import DoorMonitor
from edge_agent.hardware import Contact, DoorRelay, Indicator, PinFactory
from edge_agent.link import Link
from edge_agent.outbox import Outbox
from edge_agent.readers import Reader, open_reader
from varco import protocol
from varco.protocol import Channel, DoorEvent, DoorState, OfflineDecision, Tap

log = logging.getLogger(__name__)


def new_event_id() -> str:
    """Make an event id here, where the event happened (DESIGN invariant 2)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the door did about one tap, for logs, tests and the demo."""

    door: str
    uid: str
    event_id: str
    granted: bool
    reason: str
    answered: bool  # False when the door decided without the gateway


class Door:
    """One door's hardware and its tap-to-unlock logic; create it inside the running loop."""

    def __init__(
        self,
        config: DoorConfig,
        link: Link,
        outbox: Outbox,
        cache: AllowlistCache,
        pin_factory: PinFactory,
    ) -> None:
        self.config = config
        self._link = link
        self._outbox = outbox
        self._cache = cache
        self.outcomes: list[Callable[[Outcome], None]] = []
        self.office_hours_check_seconds = 5.0
        self._arrived_on: date | None = None  # the site's date of the day's first grant
        self.reader: Reader = open_reader(config.reader, pin_factory=pin_factory)
        self.relay = DoorRelay(
            config.relay_pin, active_high=config.relay_active_high, pin_factory=pin_factory
        )
        self.indicator = Indicator(
            config.green_led_pin, config.red_led_pin, config.buzzer_pin, pin_factory=pin_factory
        )
        self.contact: Contact | None = None
        self.monitor: DoorMonitor | None = None
        if config.contact_pin is not None:
            self.contact = Contact(
                config.contact_pin, on_change=self._on_contact, pin_factory=pin_factory
            )
            closed = self.contact.is_closed
            self.monitor = DoorMonitor(config.held_open_seconds, self._on_state, closed=closed)
            # The contact reports changes only: say where the door starts.
            self._on_state(DoorState.CLOSED if closed else DoorState.OPENED)
        self.exit_button: Contact | None = None
        if config.exit_button_pin is not None:
            self.exit_button = Contact(
                config.exit_button_pin, on_change=self._on_exit_button, pin_factory=pin_factory
            )

    async def serve(self) -> None:
        """Turn every card at the reader into a decision and, if granted, an unlock."""
        while True:
            uid = await self.reader.read()
            await self.tap(uid)

    async def tap(self, uid: str) -> Outcome:
        """Decide on a card presented at this door, and act on the decision."""
        tap = Tap(
            event_id=new_event_id(),
            door=self.config.id,
            credential=protocol.credential_of(uid),
            at=protocol.utcnow(),
        )
        answer = await self._link.ask(tap, self.config.decision_timeout_seconds)
        decision = answer.decision
        if decision is not None:
            granted, reason, seconds = decision.granted, decision.reason, decision.unlock_seconds
        else:
            verdict = self._cache.decide(
                self.config.id,
                tap.credential,
                fail_mode=self.config.fail_mode,
                unlock_seconds=self.config.unlock_seconds,
            )
            granted, reason, seconds = verdict.granted, verdict.reason, verdict.unlock_seconds
            self._record_offline(tap, answer.seq, verdict)
        if granted:
            self._unlock(seconds)
            self.indicator.granted(seconds)
            self._arrived_on = self._cache.clock().astimezone(self._cache.zone).date()
            self.apply_office_hours()
        else:
            self.indicator.denied()
        outcome = Outcome(
            self.config.id, uid, tap.event_id, granted, reason.value, decision is not None
        )
        log.info(
            "door %s: %s %s (%s)",
            self.config.id,
            tap.credential.masked(),
            "granted" if granted else "denied",
            reason.value,
        )
        for listener in self.outcomes:
            listener(outcome)
        return outcome

    def unlock(self, seconds: float | None = None) -> None:
        """Open the door now (an operator's remote unlock)."""
        if self.locked_down:
            log.warning("door %s: remote unlock refused: the door is locked down", self.config.id)
            return
        self._unlock(seconds or self.config.unlock_seconds)
        self.indicator.granted(seconds or self.config.unlock_seconds)

    def identify(self) -> None:
        """Blink and beep, so that someone at the wall can tell which door this is."""
        self.indicator.granted(3.0)

    @property
    def locked_down(self) -> bool:
        """Whether the newest allow-list says this door is locked down."""
        allowlist = self._cache.current
        entry = allowlist.doors.get(self.config.id) if allowlist else None
        return bool(entry and entry.locked_down)

    def apply_lockdown(self) -> None:
        """Relock at once if a new allow-list locked this door down."""
        if self.locked_down and self.relay.is_unlocked:
            self.relay.lock()
            log.warning("door %s: locked down; relocked", self.config.id)
        self.apply_office_hours()

    async def keep_office_hours(self) -> None:
        """Hold the door unlocked in its open windows, checking every few seconds."""
        while True:
            self.apply_office_hours()
            await asyncio.sleep(self.office_hours_check_seconds)

    def apply_office_hours(self) -> None:
        """Hold or release the door as its open windows say now (the allow-list carries them)."""
        allowlist = self._cache.valid()
        entry = allowlist.doors.get(self.config.id) if allowlist else None
        hold = False
        if entry is not None and entry.open_windows and not entry.locked_down:
            local = self._cache.clock().astimezone(self._cache.zone)
            if any(window.contains(local) for window in entry.open_windows):
                # "Only after the first authorised person arrives": a grant today, site time.
                hold = not entry.open_after_first_entry or self._arrived_on == local.date()
        if hold != self.relay.is_held:
            self.relay.hold(hold)
            log.info("door %s: office hours %s", self.config.id, "begin" if hold else "end")
        if hold and self.monitor is not None:
            # Opening a door held unlocked is not forcing it.
            self.monitor.authorise(self.office_hours_check_seconds + 1)

    def _unlock(self, seconds: float) -> None:
        self.relay.pulse(seconds)
        if self.monitor is not None:
            self.monitor.authorise(seconds)

    def _record_offline(self, tap: Tap, seq: int, verdict: OfflineVerdict) -> None:
        # The tap waits in the outbox; rewrite it with what the door decided, or, if it has
        # already left, send the decided version after it (the gateway keeps the door's word).
        offline = msgspec.structs.replace(
            tap,
            offline=OfflineDecision(
                granted=verdict.granted,
                reason=verdict.reason,
                allowlist_version=verdict.allowlist_version,
            ),
        )
        self._link.decided_offline(seq, offline)
        log.warning(
            "door %s: no decision in %.2fs; decided offline: %s (%s)",
            self.config.id,
            self.config.decision_timeout_seconds,
            "granted" if verdict.granted else "denied",
            verdict.reason.value,
        )

    def _on_contact(self, closed: bool) -> None:
        if self.monitor is not None:
            self.monitor.contact(closed)

    def _on_exit_button(self, pressed: bool) -> None:
        # Leaving needs no badge; the unlock window keeps the opening from being "forced".
        if pressed:
            self._unlock(self.config.unlock_seconds)

    def _on_state(self, state: DoorState) -> None:
        event = DoorEvent(
            event_id=new_event_id(), door=self.config.id, state=state, at=protocol.utcnow()
        )
        self._link.send(Channel.DOOR, event)
        if state in (DoorState.FORCED_OPEN, DoorState.HELD_OPEN):
            log.warning("door %s: %s", self.config.id, state.value)

    def close(self) -> None:
        self.reader.close()
        self.relay.close()
        self.indicator.close()
        for part in (self.monitor, self.contact, self.exit_button):
            if part is not None:
                part.close()
