"""What this host's mosquitto is: where its plugin is, whom it runs as, what that user can reach.

mosquitto started as root (as systemd starts it on Debian) drops to the user ``mosquitto``
unless its configuration names another; a file that user cannot read stops the broker with a
terse log line ("File is not readable") and every client then sees only "Not authorized". So
every path the broker will use is checked here as that user would meet it, and a refusal
names the directory or file at fault and why.
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

# Where the dynamic-security plugin is installed: Debian and Ubuntu (multiarch), the
# eclipse-mosquitto Docker image, builds from source.
PLUGIN_PATTERNS = (
    "/usr/lib/*-linux-gnu*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/*/mosquitto_dynamic_security.so",
)
# The user mosquitto drops to when started as root and its configuration names none.
DEFAULT_BROKER_USER = "mosquitto"
DEBIAN_MAIN_CONFIG = Path("/etc/mosquitto/mosquitto.conf")


def find_plugin() -> Path | None:
    """Return the dynamic-security plugin installed on this host, if any."""
    for pattern in PLUGIN_PATTERNS:
        for match in sorted(glob.glob(pattern)):
            if Path(match).is_file():
                return Path(match)
    return None


@dataclass(frozen=True, slots=True)
class Account:
    """A user as file permissions see it."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]

    @classmethod
    def named(cls, name: str) -> Account | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        groups = {g.gr_gid for g in grp.getgrall() if name in g.gr_mem} | {entry.pw_gid}
        return cls(name, entry.pw_uid, entry.pw_gid, frozenset(groups))

    @classmethod
    def current(cls) -> Account:
        entry = pwd.getpwuid(os.geteuid())
        return cls(entry.pw_name, entry.pw_uid, os.getegid(), frozenset(os.getgroups()))


def broker_account(configured: str | None) -> Account:
    """Return whom mosquitto will run as: the configured user, else the one it drops to.

    Not started as root, mosquitto stays whoever starts it; this command then writes files
    only its own user can own, so that is the broker's user too.
    """
    if os.geteuid() != 0:
        return Account.current()
    name = configured or DEFAULT_BROKER_USER
    account = Account.named(name)
    if account is None:
        raise LookupError(
            f"there is no user {name!r} for mosquitto to run as: install Debian's mosquitto "
            "package (it creates the user), or name an existing one with --user"
        )
    return account


def _allowed(info: os.stat_result, account: Account, want: int) -> bool:
    """Tell whether ``account`` has ``want`` (a mix of 4, 2, 1) on a file with ``info``."""
    if account.uid == 0:
        return True
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == account.uid:
        bits = (mode >> 6) & 7
    elif info.st_gid in account.groups:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return bits & want == want


def _describe(path: Path, info: os.stat_result) -> str:
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    return f"{path} (mode {stat.S_IMODE(info.st_mode):04o}, owner {owner})"


def cannot_use(path: Path, account: Account, *, write: bool = False) -> str | None:
    """Say why ``account`` cannot read (and with ``write``, write) ``path``; None if it can.

    Every directory above it must let the account pass; a missing ``path`` (and missing
    directories) will be made by this command, for the account.
    """
    path = path.absolute()
    for parent in reversed(path.parents):
        if not parent.exists():
            break  # made by this command, for the account
        info = os.stat(parent)
        if not _allowed(info, account, 1):
            return f"{account.name} cannot enter {_describe(parent, info)}"
    if not path.exists():
        return None
    info = os.stat(path)
    want = 4 | (2 if write else 0) | (1 if path.is_dir() else 0)
    if not _allowed(info, account, want):
        verb = "read and write" if write else "read"
        return f"{account.name} cannot {verb} {_describe(path, info)}"
    return None


@dataclass(frozen=True, slots=True)
class MainConfig:
    """A main mosquitto.conf that includes a conf.d folder, as Debian's does."""

    path: Path
    include_dir: Path
    # option -> (line number, line) for each option it sets, first occurrence.
    options: dict[str, tuple[int, str]]


def read_main_config(path: Path) -> MainConfig | None:
    """Read ``path``; return it if it includes a folder of snippets, else None."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    options: dict[str, tuple[int, str]] = {}
    include: Path | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        option, _, value = line.partition(" ")
        options.setdefault(option, (number, line))
        if option == "include_dir" and include is None:
            include = Path(value.strip())
    if include is None:
        return None
    return MainConfig(path, include, options)
