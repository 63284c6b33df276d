"""A private mosquitto for one benchmark run: a free port, a temporary folder, no persistence,
the in-flight window and queue of the shipped configurations.

``set_tcp_nodelay true`` as in production; ``nodelay=False`` leaves Nagle's algorithm on the
broker's sockets, to show what that costs.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from varco.protocol import BROKER_MAX_PACKET_SIZE, BROKER_MESSAGE_SIZE_LIMIT

MOSQUITTO = "mosquitto"


class BrokerError(RuntimeError):
    """The benchmark's broker could not be started."""


@dataclass(frozen=True, slots=True)
class Broker:
    """A running private mosquitto."""

    host: str
    port: int
    nodelay: bool
    log: Path


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(directory: Path, port: int, *, nodelay: bool = True) -> Path:
    """Write a mosquitto configuration: private port and files, no persistence."""
    config = directory / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        f"message_size_limit {BROKER_MESSAGE_SIZE_LIMIT}",
        f"max_packet_size {BROKER_MAX_PACKET_SIZE}",
        # As deploy/mosquitto/*.conf: a window and a queue a flood cannot fill.
        "max_inflight_messages 1000",
        "max_queued_messages 100000",
        f"log_dest file {directory / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        # mosquitto drops root privileges to this user; keep the files ours.
        f"user {getpass.getuser()}",
    ]
    if nodelay:
        lines.append("set_tcp_nodelay true")
    config.write_text("\n".join(lines) + "\n")
    return config


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"mosquitto exited with status {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise BrokerError(f"mosquitto does not listen on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def private_mosquitto(*, nodelay: bool = True, timeout: float = 10.0) -> Iterator[Broker]:
    """Run a mosquitto of our own until the block ends."""
    binary = shutil.which(MOSQUITTO) or shutil.which(MOSQUITTO, path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        raise BrokerError("mosquitto is not installed (apt install mosquitto)")
    with tempfile.TemporaryDirectory(prefix="varco-bench-mosquitto-") as name:
        directory = Path(name)
        port = free_port()
        config = write_config(directory, port, nodelay=nodelay)
        process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_for_port(port, process, timeout)
            yield Broker("127.0.0.1", port, nodelay, directory / "mosquitto.log")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
