"""The coworking model and the event log, as SQL tables."""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC; SQLite forgets the offset, so restore it on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every time in Varco carries its offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def new_allowlist_key() -> str:
    """Make a device's allow-list key: 256 random bits, hex."""
    return secrets.token_hex(32)


class Base(DeclarativeBase):
    pass


class MemberStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class DeviceKind(enum.StrEnum):
    DOOR_CONTROLLER = "door_controller"
    DESK_NODE = "desk_node"


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


plan_zones = Table(
    "plan_zones",
    Base.metadata,
    Column("plan_id", ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True),
    Column("zone_id", ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
)


class Site(Base):
    """A coworking location: its time zone is the one opening hours are written in."""

    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locked_down: Mapped[bool] = mapped_column(Boolean, default=False)


class Zone(Base):
    """A part of the space behind one or more doors (lobby, open space, meeting rooms)."""

    __tablename__ = "zones"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # With anti-passback, a member who entered must leave (an "out" door) before entering again.
    anti_passback: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_down: Mapped[bool] = mapped_column(Boolean, default=False)


class Plan(Base):
    """What a member pays for, and so which zones they may enter, and when."""

    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # A 24/7 plan opens its doors on holidays and closures too.
    open_on_closures: Mapped[bool] = mapped_column(Boolean, default=False)
    zones: Mapped[list[Zone]] = relationship(secondary=plan_zones, lazy="selectin")
    windows: Mapped[list[AccessWindow]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="AccessWindow.id"
    )


class AccessWindow(Base):
    """A weekly time window in the site's local time during which a plan opens a zone.

    A plan with no window for a zone opens it at any hour. ``end_minute <= start_minute``
    means the window runs past midnight into the next day.
    """

    __tablename__ = "access_windows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    zone_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    days: Mapped[int] = mapped_column(Integer)  # bit 0 = Monday ... bit 6 = Sunday
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)


class Closure(Base):
    """A holiday or closure: the space is shut for members whose plan is not 24/7."""

    __tablename__ = "closures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


guest_pass_doors = Table(
    "guest_pass_doors",
    Base.metadata,
    Column("pass_id", ForeignKey("guest_passes.id", ondelete="CASCADE"), primary_key=True),
    Column("door_id", ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True),
)


class GuestPass(Base):
    """A time-boxed pass for a guest, issued by a member or for an event, for chosen doors."""

    __tablename__ = "guest_passes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # varco.protocol.pass_code_hash of the code, which is shown once, when the pass is made.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    guest_name: Mapped[str] = mapped_column(String(120))
    host_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    event: Mapped[str | None] = mapped_column(String(120))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    doors: Mapped[list[Door]] = relationship(secondary=guest_pass_doors, lazy="selectin")


class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[MemberStatus] = mapped_column(
        Enum(MemberStatus, native_enum=False, length=16), default=MemberStatus.ACTIVE
    )
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The "who's in" board: nothing of a member shows there unless they opted in.
    board_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    display_name: Mapped[str | None] = mapped_column(String(120))
    profession: Mapped[str | None] = mapped_column(String(120))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    ask_me_about: Mapped[str | None] = mapped_column(String(280))
    # When the member consented to appear on the board, and how ("profile link": themselves,
    # through the link an admin sent; "admin <name>": recorded by an admin). None: no consent.
    board_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    board_consent_via: Mapped[str | None] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class ProfileLink(Base):
    """A link an admin sends a member to set their own profile; only its token's SHA-256 is
    kept, and it expires soon (hours, not months)."""

    __tablename__ = "profile_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Badge(Base):
    __tablename__ = "badges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class Device(Base):
    """A Pi at a door or a row of desks; its id is its MQTT identity."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    kind: Mapped[DeviceKind] = mapped_column(Enum(DeviceKind, native_enum=False, length=32))
    name: Mapped[str] = mapped_column(String(120), default="")
    # Keys the digests of the device's allow-list; the device holds it in its configuration.
    allowlist_key: Mapped[str] = mapped_column(String(64), default=new_allowlist_key)
    state: Mapped[str | None] = mapped_column(String(16))
    software: Mapped[str | None] = mapped_column(String(40))
    last_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    allowlist_version: Mapped[int | None] = mapped_column(BigInteger)
    outbox_depth: Mapped[int | None] = mapped_column(Integer)
    # Our record of the broker password shown once at creation (scrypt); the broker keeps
    # its own hash. None when the gateway does not provision broker identities.
    mqtt_password_hash: Mapped[str | None] = mapped_column(String(160))
    # Set once: a revoked device is disabled at the broker and stays so.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class DeviceOverrides(Base):
    """What the API overrides of a device's own configuration file, and what the device says.

    ``overrides`` is a ``varco.protocol.DeviceConfig`` without its version and time: the log
    level and, per door, the settings that replace the file's. ``version`` only grows.
    """

    __tablename__ = "device_overrides"
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger)
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    # From the device's status: the version it runs, and why it refused a newer one.
    applied_version: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(300))
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Door(Base):
    __tablename__ = "doors"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    unlock_seconds: Mapped[float] = mapped_column(Float, default=5.0)
    # "in" doors lead into their zone; "out" doors (an exit reader) lead out of it.
    direction: Mapped[str] = mapped_column(String(8), default="in")
    locked_down: Mapped[bool] = mapped_column(Boolean, default=False)
    # Office hours: the door stays unlocked in these windows (site time), optionally only
    # once someone authorised has come in that day.
    open_after_first_entry: Mapped[bool] = mapped_column(Boolean, default=False)
    open_windows: Mapped[list[DoorOpenWindow]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="DoorOpenWindow.id"
    )
    state: Mapped[str | None] = mapped_column(String(16))
    # The kind of reader at the door (gateway.badge_ids.READER_KINDS), when the admin said:
    # a badge whose UID that reader never sends is warned about when it is registered.
    reader_kind: Mapped[str | None] = mapped_column(String(16))


class DoorOpenWindow(Base):
    """A weekly window in the site's local time during which a door is held unlocked."""

    __tablename__ = "door_open_windows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    door_id: Mapped[str] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"))
    days: Mapped[int] = mapped_column(Integer)  # bit 0 = Monday ... bit 6 = Sunday
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)


class Desk(Base):
    """A desk or a meeting room in an area (a zone), watched by a desk node's sensor."""

    __tablename__ = "desks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8), default="desk")  # "desk" or "room"
    # The desk node whose sensor reports it: the only device the gateway believes about it.
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))


class AccessEvent(Base):
    """One tap and the decision taken on it; the event id comes from the edge."""

    __tablename__ = "access_events"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    door_id: Mapped[str] = mapped_column(String(64))
    credential_kind: Mapped[str] = mapped_column(String(16))
    credential: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(Integer)
    granted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(32))
    # True when the door decided from its cached allow-list, without the gateway.
    decided_offline: Mapped[bool] = mapped_column(Boolean, default=False)
    allowlist_version: Mapped[int | None] = mapped_column(BigInteger)
    # What the gateway had answered, when the door gave up waiting and decided offline: the
    # door's decision is what happened; the gateway's is kept to be told apart, and so that
    # InfluxDB can forget the point it was first given (``gateway.measurements``).
    online_granted: Mapped[bool | None] = mapped_column(Boolean)
    online_reason: Mapped[str | None] = mapped_column(String(32))
    tapped_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)

    __table_args__ = (
        Index("ix_access_events_tapped_at", "tapped_at"),
        Index("ix_access_events_door", "door_id", "tapped_at"),
        Index("ix_access_events_member", "member_id", "tapped_at"),
    )


class DoorEventRecord(Base):
    __tablename__ = "door_events"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    door_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class DeskEventRecord(Base):
    __tablename__ = "desk_events"
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    desk_id: Mapped[str] = mapped_column(String(64))
    occupied: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class SetAsideRecord(Base):
    """An event record the store could not write, kept with why, so that the rest goes on.

    ``row`` is the record as JSON, credentials redacted (a badge UID or a pass code opens
    doors); an admin reads these through ``GET /set-aside-records``.
    """

    __tablename__ = "set_aside_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str | None] = mapped_column(String(64))
    row: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(1000))
    set_aside_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)


class ApiToken(Base):
    """A bearer token for the admin API; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    # Every token expires; past this instant it is refused like a revoked one.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditAction(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    COMMAND = "command"  # an act that changes no row, such as a remote unlock
    ERASE = "erase"  # a member erased: their identity gone from every log, counts kept


class AuditEntry(Base):
    """One change made through the API: who made it, when, to what, and each field's old and new.

    The actor is copied, not referenced: the log must outlive the token that wrote it.
    """

    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    actor: Mapped[str] = mapped_column(String(120))
    actor_role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    token_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[AuditAction] = mapped_column(Enum(AuditAction, native_enum=False, length=16))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(200))
    # {field: {"old": ..., "new": ...}}; secret fields never appear.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_entity", "entity", "entity_id", "at"),
        Index("ix_audit_entries_actor", "actor", "at"),
    )


class PolicyChange(Base):
    """One row of the model changed: what replicas read to update their policy in place.

    Written in the flush that makes the change (``gateway.store.changes``); ``seq`` orders
    them. ``kind`` is ``member`` or ``badge`` (``key``: its id or UID), ``pass`` or
    ``structure`` (sites, zones, plans, doors, devices, closures, desks: small, reread whole).
    """

    __tablename__ = "policy_changes"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)
