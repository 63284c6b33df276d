"""The coworking model and the event log, as SQL tables."""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime

from sqlalchemy import (
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


class Zone(Base):
    """A part of the space behind one or more doors (lobby, open space, meeting rooms)."""

    __tablename__ = "zones"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))


class Plan(Base):
    """What a member pays for, and so which zones they may enter."""

    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    zones: Mapped[list[Zone]] = relationship(secondary=plan_zones, lazy="selectin")


class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[MemberStatus] = mapped_column(
        Enum(MemberStatus, native_enum=False, length=16), default=MemberStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class Door(Base):
    __tablename__ = "doors"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    unlock_seconds: Mapped[float] = mapped_column(Float, default=5.0)
    state: Mapped[str | None] = mapped_column(String(16))


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


class ApiToken(Base):
    """A bearer token for the admin API; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
