"""The real processes of a fault run, each one the test can kill (SIGKILL) and start again.

- ``Broker``: mosquitto with the *shipped* configuration (``deploy/mosquitto/mosquitto.conf``:
  persistence, ``autosave_interval 30``, the in-flight window), only the listener, the data
  folder and the log moved to the test's own.
- ``GatewayProcess``: ``varco gateway`` on PostgreSQL, recording to InfluxDB.
- ``EdgeProcess``: ``varco edge`` through ``tests.faults.edge_process``; its doors read badges
  from ptys the test types into, its desks' mats are mock pins the test drives.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import signal
import subprocess
import sys
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).parents[2]
SHIPPED_BROKER_CONFIG = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
# Lines of the shipped file that name the host's places; everything else is kept as shipped.
_PLACES = ("listener", "persistence_location", "log_dest", "log_type")


def _log(path: Path) -> IO[bytes]:
    return path.open("ab")


def _kill(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGKILL)
    if process is not None:
        process.wait(timeout=10)


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)


def tail(path: Path, lines: int = 30) -> str:
    """Return the end of a log, for a failure's message."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Broker:
    """mosquitto as shipped, on a private port, with its persistence file in ``directory``."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "mosquitto.log"

    @property
    def saved(self) -> bool:
        """Whether mosquitto has written its persistence file (its first autosave) yet."""
        return (self.directory / "mosquitto.db").exists()

    def config(self) -> Path:
        shipped = SHIPPED_BROKER_CONFIG.read_text().splitlines()
        kept = [line for line in shipped if not line.strip().startswith(_PLACES)]
        path = self.directory / "mosquitto.conf"
        path.write_text(
            "\n".join(
                [
                    *kept,
                    f"listener {self.port} 127.0.0.1",
                    f"persistence_location {self.directory}/",
                    f"log_dest file {self.log}",
                    *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
                    # mosquitto drops root privileges to this user; keep the files ours.
                    f"user {getpass.getuser()}",
                ]
            )
            + "\n"
        )
        return path

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        """SIGKILL: nothing saved beyond the last autosave."""
        _kill(self.process)
        self.process = None

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


@dataclass
class GatewayProcess:
    """``varco gateway`` as a process; ``health()`` reads its ``/healthz``."""

    environment: dict[str, str]
    log: Path
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "varco", "gateway"],
            env={**os.environ, **self.environment, "VARCO_API_PORT": str(self.api_port)},
            stdout=subprocess.DEVNULL,
            stderr=_log(self.log),
            cwd=ROOT,
        )
        self.starts += 1

    async def health(self) -> dict[str, Any] | None:
        """Return ``/healthz``'s answer, or ``None`` while the gateway does not answer."""
        if self.process is None or self.process.poll() is not None:
            return None
        with contextlib.suppress(httpx.HTTPError, ValueError):
            async with httpx.AsyncClient(timeout=2) as client:
                answer = await client.get(f"http://127.0.0.1:{self.api_port}/healthz")
                return dict(answer.json())
        return None

    async def ready(self, within: float = 60) -> None:
        """Wait until the gateway answers and is subscribed on the broker."""
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            health = await self.health()
            if health is not None and health.get("mqtt_connected"):
                return
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"varco gateway exited:\n{tail(self.log)}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"varco gateway not ready after {within}s:\n{tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye, as a crash or an OOM kill."""
        _kill(self.process)
        self.process = None

    def stop(self) -> None:
        _stop(self.process, timeout=20)
        self.process = None


@dataclass
class Pty:
    """A serial line the test types into; the edge's reader opens ``path``."""

    master: int
    slave: int  # held open by the test, so the line outlives an edge that is killed
    path: str

    @classmethod
    def open(cls) -> Pty:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo piling up on the test's side while no edge listens
        return cls(master, slave, os.ttyname(slave))

    def type_line(self, text: str) -> None:
        os.write(self.master, f"{text}\r\n".encode())

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@dataclass
class EdgeProcess:
    """One ``varco edge`` (door controller or desk node) and what the test holds of it."""

    device: str
    directory: Path
    config: dict[str, Any]
    readers: dict[str, Pty]  # door -> its reader's line
    pins: dict[str, int]  # desk -> its mat's pin
    process: subprocess.Popen[bytes] | None = None
    occupied: dict[str, bool] = field(default_factory=dict)
    starts: int = 0

    @property
    def ledger(self) -> Path:
        return self.directory / "ledger.jsonl"

    @property
    def log(self) -> Path:
        return self.directory / "edge.log"

    def start(self) -> None:
        path = self.directory / "edge.yaml"
        path.write_text(yaml.safe_dump(self.config))
        status = self.directory / "status.json"
        status.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.faults.edge_process"),
                *(str(self.ledger), str(status), "edge", "--config", str(path)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=_log(self.log),
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        # A mat is released when the Pi boots (mock pins start high): the desk starts free.
        self.occupied = dict.fromkeys(self.pins, False)
        self.starts += 1

    def status(self) -> dict[str, Any]:
        """Return what the process last said of itself (outbox depth, link up, allow-list)."""
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads((self.directory / "status.json").read_text()))
        return {}

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def ready(self, within: float = 30) -> None:
        """Wait until the edge is connected and holds an allow-list (doors decide offline)."""
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            status = self.status()
            if status.get("connected") and (not self.readers or status.get("allowlist")):
                return
            if not self.alive:
                raise AssertionError(f"{self.device} exited:\n{tail(self.log)}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.device} not ready after {within}s:\n{tail(self.log)}")

    def tap(self, door: str, uid: str) -> None:
        """Present a badge at ``door``'s reader."""
        self.readers[door].type_line(uid)

    def set_desk(self, desk: str, occupied: bool) -> bool:
        """Sit at or leave ``desk`` (press or release its mat); return whether it changed."""
        if self.occupied[desk] == occupied or self.process is None or self.process.stdin is None:
            return False
        self.process.stdin.write(f"{self.pins[desk]} {'low' if occupied else 'high'}\n".encode())
        self.process.stdin.flush()
        self.occupied[desk] = occupied
        return True

    def kill(self) -> None:
        _kill(self.process)
        self.process = None

    def stop(self) -> None:
        _stop(self.process)
        self.process = None
