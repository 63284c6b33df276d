"""The access decision: a pure function over an in-memory snapshot of the coworking model.

Nothing here touches a disk or a socket (DESIGN invariant 1): the snapshot is rebuilt from the
store when the model changes, and ``decide`` only looks things up in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from varco.protocol import Credential, CredentialKind, Reason


@dataclass(frozen=True, slots=True)
class MemberRule:
    id: int
    name: str
    active: bool
    zones: frozenset[str]


@dataclass(frozen=True, slots=True)
class BadgeRule:
    uid: str
    member_id: int
    active: bool


@dataclass(frozen=True, slots=True)
class DeviceRule:
    id: str
    site: str
    allowlist_key: bytes


@dataclass(frozen=True, slots=True)
class DoorRule:
    id: str
    zone: str
    device: str | None
    unlock_seconds: float


K = TypeVar("K")
V = TypeVar("V")


def _frozen(items: Mapping[K, V] | None = None) -> Mapping[K, V]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything ``decide`` needs, indexed for lookups, never mutated once built."""

    members: Mapping[int, MemberRule] = field(default_factory=_frozen)
    badges: Mapping[str, BadgeRule] = field(default_factory=_frozen)
    doors: Mapping[str, DoorRule] = field(default_factory=_frozen)
    devices: Mapping[str, DeviceRule] = field(default_factory=_frozen)
    version: int = 0

    @classmethod
    def build(
        cls,
        members: list[MemberRule],
        badges: list[BadgeRule],
        doors: list[DoorRule],
        devices: list[DeviceRule] | None = None,
        version: int = 0,
    ) -> Policy:
        """Index rule lists into a snapshot."""
        return cls(
            members=_frozen({m.id: m for m in members}),
            badges=_frozen({b.uid: b for b in badges}),
            doors=_frozen({d.id: d for d in doors}),
            devices=_frozen({d.id: d for d in devices or []}),
            version=version,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``decide`` concluded, and for whom."""

    granted: bool
    reason: Reason
    unlock_seconds: float = 0.0
    member_id: int | None = None
    display_name: str | None = None


def decide(policy: Policy, *, device: str, door: str, credential: Credential) -> Verdict:
    """Decide whether ``credential`` opens ``door``, as reported by ``device``."""
    door_rule = policy.doors.get(door)
    # A device may only ask for its own doors: a reader cannot open someone else's door.
    if door_rule is None or door_rule.device != device:
        return Verdict(False, Reason.UNKNOWN_DOOR)
    if credential.kind is not CredentialKind.BADGE:
        return Verdict(False, Reason.UNKNOWN_BADGE)
    badge = policy.badges.get(credential.value)
    if badge is None:
        return Verdict(False, Reason.UNKNOWN_BADGE)
    member = policy.members.get(badge.member_id)
    if member is None:
        return Verdict(False, Reason.UNKNOWN_BADGE)
    if not badge.active:
        return Verdict(False, Reason.BADGE_REVOKED, member_id=member.id)
    if not member.active:
        return Verdict(False, Reason.MEMBER_SUSPENDED, member_id=member.id)
    if door_rule.zone not in member.zones:
        return Verdict(False, Reason.WRONG_ZONE, member_id=member.id)
    return Verdict(
        True,
        Reason.GRANTED,
        unlock_seconds=door_rule.unlock_seconds,
        member_id=member.id,
        display_name=member.name,
    )
