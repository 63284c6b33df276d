"""The gateway's lifetimes, nested in one place: store, policy, writer, ingest."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import uuid
from collections.abc import Coroutine
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from gateway.access import Policy
from gateway.allowlists import AllowlistPublisher
from gateway.errors import GatewayError
from gateway.ingest import Ingest, IngestOptions
from gateway.live import LiveHub
from gateway.occupancy import Occupancy
from gateway.recorder import InfluxTarget, Recorder, RecorderOptions
from gateway.remote_config import DeviceConfigs
from gateway.settings import Settings
from gateway.store import Store, changes
from gateway.store.changes import EVERYTHING
from gateway.store.leader import Leadership
from gateway.store.policy import load_changes, load_policy
from gateway.store.records import forget_access_before, recent_passages
from gateway.store.writer import EventWriter
from varco import protocol, transport
from varco.protocol import (
    Channel,
    Command,
    CommandAction,
    DeviceState,
    Payload,
    Status,
    Topic,
)

log = logging.getLogger(__name__)

COMMAND_LIFETIME = timedelta(seconds=30)
RETENTION_CHECK_SECONDS = 3600.0
STOP_TASK_SECONDS = 10.0
# How far back a restarted gateway looks for who went into an anti-passback zone.
PASSAGE_MEMORY = timedelta(hours=24)
# The change feed: how many numbers back each read looks again, how many changes at once are
# read as a reload of the whole, and how long changes are kept for replicas to read.
FEED_LOOKBACK = 100
FEED_WHOLE = 5000
FEED_MEMORY = timedelta(days=1)


class Gateway:
    """One gateway replica. ``async with Gateway(settings) as gateway:`` runs it."""

    def __init__(self, settings: Settings, *, ingest: bool = True) -> None:
        self.settings = settings
        self.store = Store(settings.database_url)
        self.occupancy = Occupancy()
        self.writer = EventWriter(self.store)
        self._policy = Policy()
        self._policy_lock = threading.Lock()
        # The change feed: the newest change applied, and those applied lately (on PostgreSQL
        # a change numbered lower may commit later, so the last few numbers are read again).
        self._seq = 0
        self._applied: set[int] = set()
        self.ingest: Ingest | None = None
        if ingest:
            self.ingest = Ingest(
                settings.broker(),
                self.writer,
                self.policy,
                self.occupancy,
                IngestOptions(
                    client_id=settings.gateway_id,
                    share_group=settings.share_group,
                    tap_rate=settings.device_tap_rate,
                ),
            )
        self.allowlists: AllowlistPublisher | None = None
        if self.ingest is not None:
            self.leadership = Leadership(self.store)
            self.allowlists = AllowlistPublisher(
                self._publish_allowlist,
                ttl=timedelta(seconds=settings.allowlist_ttl_seconds),
                leads=self.leadership.holds,
            )
            self.ingest.on_connect.append(self.allowlists.reconnected)
            self.ingest.observers.append(self._on_device_message)
        self.configs = DeviceConfigs(self.store, self._publish_retained)
        if self.ingest is not None:
            self.ingest.on_connect.append(self.configs.reconnected)
        self.live = LiveHub(self.store, self.occupancy, self.policy)
        if self.ingest is not None:
            self.ingest.observers.append(self.live.on_message)
            self.ingest.access_observers.append(self.live.on_access)
        self.recorder: Recorder | None = None
        if settings.influx_url and self.ingest is not None:
            self.recorder = _recorder(settings)
            self.ingest.observers.append(self.recorder.on_message)
            # A tap's point comes from what SQL committed (one per tap, its final outcome).
            self.writer.on_access_committed = self.recorder.on_access_committed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # The background tasks that died, with why: /healthz reports the gateway degraded.
        self.failed: dict[str, str] = {}

    def policy(self) -> Policy:
        """Return the current policy snapshot."""
        return self._policy

    def reload_policy(self) -> Policy:
        """Read the whole model again: at start, and after bulk changes the feed cannot see."""
        with self._policy_lock:
            with self.store.session() as session:
                seq = changes.newest(session)
                policy = load_policy(session, version=self._policy.version + 1)
            self._seq = seq
            self._applied.clear()
            self._use(policy, EVERYTHING)
        return policy

    def policy_changed(self) -> Policy:
        """Apply the model's changes since the last read; call after every change made.

        Reads only the changed rows: a change to one member costs that member, not the space.
        """
        with self._policy_lock:
            with self.store.session() as session:
                fresh = [
                    row
                    for row in changes.since(session, max(0, self._seq - FEED_LOOKBACK))
                    if row[0] not in self._applied
                ]
                if not fresh:
                    return self._policy
                found = changes.Changes.of((kind, key) for _, kind, key in fresh)
                if len(fresh) >= FEED_WHOLE:
                    found = EVERYTHING  # a bulk import: one read of the whole is cheaper
                policy = load_changes(session, self._policy, found, self._policy.version + 1)
            self._seq = max(self._seq, max(seq for seq, _, _ in fresh))
            self._applied = {s for s in self._applied if s > self._seq - FEED_LOOKBACK}
            self._applied.update(seq for seq, _, _ in fresh)
            self._use(policy, found)
        return policy

    def _use(self, policy: Policy, found: changes.Changes) -> None:
        self._policy = policy  # one reference swap: readers see old or new, never half
        if self.recorder is not None:
            self.recorder.desk_areas = policy.desk_areas
        if self._loop is not None:
            # Called from API worker threads too: hand the news to the event loop.
            self._loop.call_soon_threadsafe(self._changed, policy, found)

    def _changed(self, policy: Policy, found: changes.Changes) -> None:
        if self.allowlists is not None:
            self.allowlists.changed(policy, found)
        # Desks, doors and profiles change through the API too: the live page follows.
        self.live.changed()

    def _on_device_message(self, topic: Topic, payload: Payload) -> None:
        # A door reports the allow-list version it holds: one that missed an update gets the
        # list whole.
        if not isinstance(payload, Status) or payload.state is not DeviceState.ONLINE:
            return
        self.configs.reported(topic.device, payload)
        if self.allowlists is not None:
            self.allowlists.reported(topic.device, payload.allowlist_version)

    async def send_command(
        self,
        device_id: str,
        action: CommandAction,
        *,
        door: str | None = None,
        seconds: float | None = None,
    ) -> str:
        """Send a command to a device; return its id. Raise ``GatewayError`` if it cannot go."""
        device = self._policy.devices.get(device_id)
        if device is None or self.ingest is None:
            raise GatewayError(f"device {device_id!r} cannot be reached")
        now = protocol.utcnow()
        command = Command(
            command_id=uuid.uuid4().hex,
            action=action,
            door=door,
            seconds=seconds,
            issued_at=now,
            # A command not delivered within this is dropped by the device, not run late.
            expires_at=now + COMMAND_LIFETIME,
        )
        try:
            await self.ingest.publish(
                protocol.topic(device.site, device_id, Channel.COMMAND), protocol.encode(command)
            )
        except transport.BrokerUnavailableError as exc:
            raise GatewayError(f"the broker is unreachable: {exc}") from None
        log.info("command %s sent to %s: %s %s", command.command_id, device_id, action, door)
        return command.command_id

    def send_command_from_thread(
        self,
        device_id: str,
        action: CommandAction,
        *,
        door: str | None = None,
        seconds: float | None = None,
    ) -> str:
        """``send_command`` for the API's worker threads: wait for the broker's answer."""
        if self._loop is None:
            raise GatewayError("the gateway is not running")
        future = asyncio.run_coroutine_threadsafe(
            self.send_command(device_id, action, door=door, seconds=seconds), self._loop
        )
        try:
            return future.result(timeout=COMMAND_LIFETIME.total_seconds())
        except TimeoutError:
            future.cancel()
            raise GatewayError("the broker did not acknowledge the command in time") from None

    def run_from_thread(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``work`` on the gateway's loop from an API worker thread; wait for it.

        Raise ``GatewayError`` if the gateway is not running or the broker is unreachable.
        """
        if self._loop is None:
            work.close()
            raise GatewayError("the gateway is not running")
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            future.result(timeout=COMMAND_LIFETIME.total_seconds())
        except TimeoutError:
            future.cancel()
            raise GatewayError(f"the broker did not acknowledge {what} in time") from None
        except transport.BrokerUnavailableError as exc:
            raise GatewayError(f"the broker is unreachable: {exc}") from None

    async def _publish_retained(self, topic: str, data: bytes) -> None:
        if self.ingest is None:
            raise transport.BrokerUnavailableError("this gateway does not connect to the broker")
        await self.ingest.publish(topic, data, retain=True)

    async def _publish_allowlist(self, topic: str, data: bytes, whole: bool) -> None:
        # A whole list is retained, for doors that connect later; updates are not.
        assert self.ingest is not None
        await self.ingest.publish(topic, data, retain=whole)

    async def __aenter__(self) -> Gateway:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.store.upgrade)
        await asyncio.to_thread(self.reload_policy)
        if self.ingest is not None:
            # Who is inside an anti-passback zone survives a restart: from the access log.
            for member_id, door_id, at in await asyncio.to_thread(self._recent_passages):
                self.ingest.passed(door_id, member_id, at)
        if self.recorder is not None:
            self.recorder.start()
        self._start(self.writer.run(), "event-writer")
        self._start(self._follow_changes(), "policy-feed")
        self._start(self._enforce_retention(), "retention")
        if self.ingest is not None:
            self._start(self.ingest.run(), "ingest")
        if self.allowlists is not None:
            self._start(self.allowlists.run(), "allowlists")
        await self.live.prime()  # the live page has something to show from its first request
        # The model grows with the space (a rule a member, a badge...) and lives as long as the
        # process: left to the cyclic collector, each full collection walks all of it while a
        # tap waits (tens of ms at 10,000 members). It is freed by reference counting as it
        # is replaced; the collector need not look at it.
        gc.freeze()
        self._start(self.live.run(), "live")
        return self

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._watch)
        self._tasks.append(task)

    def _watch(self, task: asyncio.Task[None]) -> None:
        # Each of these runs until the gateway stops; one that ends with an error must be
        # said at once and seen by whoever watches /healthz, not found at shutdown.
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        self.failed[task.get_name()] = f"{type(error).__name__}: {error}"
        log.critical("gateway task %s stopped", task.get_name(), exc_info=error)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Stop taking messages first, then let the writer commit what it holds.
        for task in reversed(self._tasks):
            if task.get_name() == "ingest":
                await _cancel(task)
        try:
            await asyncio.wait_for(self.writer.join(), timeout=10)
        except TimeoutError:
            log.error("%d event records not committed at shutdown", self.writer.depth)
        if self.recorder is not None:
            await self.recorder.stop()  # flushes for a bounded time; the rest waits on disk
        for task in self._tasks:
            await _cancel(task)
        self._tasks.clear()
        if self.allowlists is not None:
            self.leadership.close()
        self.store.close()

    async def _enforce_retention(self) -> None:
        # Identities in the access log are kept only as long as the site's policy says.
        days = self.settings.access_log_retention_days
        if days <= 0:
            return
        while True:
            before = protocol.utcnow() - timedelta(days=days)
            try:
                gone = await asyncio.to_thread(self._forget_access_before, before)
            except Exception:
                log.exception("access log retention not enforced; retrying in an hour")
            else:
                if gone:
                    log.info("access log: %d taps older than %s forgotten", gone, before)
            await asyncio.sleep(RETENTION_CHECK_SECONDS)

    def _recent_passages(self) -> list[tuple[int, str, datetime]]:
        since = protocol.utcnow() - PASSAGE_MEMORY
        with self.store.session() as session:
            return recent_passages(session, since)

    def _forget_access_before(self, before: datetime) -> int:
        with self.store.session() as session:
            return forget_access_before(session, before)

    async def _follow_changes(self) -> None:
        # Other replicas change the model too: their changes are read as they come, a few
        # rows at a time; the feed forgets what every replica has long read.
        forgotten_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.policy_refresh_seconds)
            try:
                await asyncio.to_thread(self.policy_changed)
                if loop.time() - forgotten_at > RETENTION_CHECK_SECONDS:
                    await asyncio.to_thread(self._forget_changes)
                    forgotten_at = loop.time()
            except Exception:
                log.exception("policy changes not read; keeping version %d", self._policy.version)

    def _forget_changes(self) -> None:
        with self.store.session() as session:
            changes.forget_before(session, protocol.utcnow() - FEED_MEMORY)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    # An error it died of was reported then (Gateway._watch); a task that will not stop must
    # not hold the gateway's stop forever.
    _, pending = await asyncio.wait([task], timeout=STOP_TASK_SECONDS)
    if pending:
        log.error("task %s did not stop within %gs; leaving it", task.get_name(), STOP_TASK_SECONDS)


def _recorder(settings: Settings) -> Recorder:
    assert settings.influx_url is not None
    token = settings.influx_token.get_secret_value() if settings.influx_token else ""
    return Recorder(
        InfluxTarget(settings.influx_url, settings.influx_org, settings.influx_bucket, token),
        settings.recorder_outbox,
        RecorderOptions(max_points=settings.recorder_max_points),
    )
