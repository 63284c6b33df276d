"""How a msgspec validation error is told to a person: the field's path, then the reason.

Shared by the wire contract (``payloads``) and the edge's configuration file, so that a bad
payload in the gateway's log and a bad line in a Pi's ``edge.yaml`` read the same way:
``doors.0.relay_pin: Expected `int` <= 27``.
"""

from __future__ import annotations

import re

import msgspec

_AT = re.compile(r"\.([^.\[\]]+)|\[([^\]]*)\]")
_NAMED = re.compile(r"^Object (contains unknown|missing required) field `(.*)`$")


class FieldError(ValueError):
    """A check in a struct's ``__post_init__`` about one field; ``explain`` names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def whole(pattern: str) -> str:
    """Return ``pattern`` ending at the end of the text, as msgspec checks it.

    msgspec searches with Python's ``re``, where ``$`` also matches before a final newline:
    "door-1\\n" would pass ``^[a-z0-9-]+$``. ``\\Z`` does not let it.
    """
    return pattern.removesuffix("$") + r"\Z"


def explain(error: msgspec.ValidationError) -> tuple[str, str]:
    """Split msgspec's "reason - at `$.doors[0].relay_pin`" into ("doors.0.relay_pin", reason).

    The path is empty for the top level. A missing or unknown field, and a ``FieldError``, are
    named in the path, as a person would look for them.
    """
    reason, at, where = str(error).rpartition(" - at `$")
    if not at:
        reason, where = str(error), ""
    path = [name or index for name, index in _AT.findall(where.removesuffix("`"))]
    cause, named = error.__cause__, _NAMED.match(reason)
    if isinstance(cause, FieldError):
        path.append(cause.field)
        reason = cause.reason
    elif named is not None:
        path.append(named.group(2))
        reason = "unknown field" if named.group(1) == "contains unknown" else "missing"
    return ".".join(path), reason
