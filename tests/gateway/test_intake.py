"""Request bodies, against `varco gateway` itself: no token, no reading; never more than the limit.

The gateway runs in its own process, so that its memory is measured alone, and the requests go
over a bare socket, so that a body is sent as a hostile client would: all of it, as fast as the
server takes it, whatever the server has answered.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.store import Store
from tests.conftest import free_port, wait_for_port
from tests.factories import Space, make_space

LIMIT = 64 * 1024
HUGE = 100 * 1024 * 1024
CHUNK = b"x" * 65536


@dataclass
class Served:
    """`varco gateway` serving its API on ``port`` in process ``process``."""

    port: int
    process: subprocess.Popen[bytes]
    space: Space

    def peak_memory_kib(self) -> int:
        """The process's resident memory at its peak so far."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc")  # pragma: no cover - Linux has it


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    database = tmp_path / "varco.db"
    with Store(f"sqlite:///{database}") as store:
        space = make_space(store)
    port = free_port()
    environment = {
        **os.environ,
        "VARCO_DATABASE_URL": f"sqlite:///{database}",
        "VARCO_MQTT_PORT": str(free_port()),  # no broker: the API is what is tried here
        "VARCO_RECORDER_OUTBOX": str(tmp_path / "outbox.db"),
        "VARCO_API_MAX_BODY_BYTES": str(LIMIT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "varco", "gateway", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "gateway.log").open("wb"),
    )
    try:
        wait_for_port(port, timeout=30)
        yield Served(port, process, space)
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(port: int, size: int, *, token: str | None, chunked: bool) -> tuple[int, Any]:
    """POST a ``size``-byte body to /zones, all of it unless the server hangs up first;
    return the answer's status and JSON body."""
    head = [
        "POST /zones HTTP/1.1",
        "Host: gateway",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}",
    ]
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
                sent += len(CHUNK)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and hung up: what it should do
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head_text, _, body = answer.partition(b"\r\n\r\n")
    return int(head_text.split()[1]), json.loads(body)


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            return len(body) >= int(value)
    return False


def test_a_huge_body_is_answered_without_being_read(served: Served) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}") as client:
        assert client.get("/healthz").status_code in (200, 503)  # warm: routes, database
    before = served.peak_memory_kib()
    admin, nobody = served.space.admin_token, None

    answers = [
        post(served.port, HUGE, token=nobody, chunked=False),
        post(served.port, HUGE, token=nobody, chunked=True),
        post(served.port, HUGE, token="vk_not-a-real-token", chunked=False),
        post(served.port, HUGE, token=admin, chunked=False),
        post(served.port, HUGE, token=admin, chunked=True),
    ]

    assert answers == [
        (401, {"detail": "missing bearer token: send 'Authorization: Bearer <token>'"}),
        (401, {"detail": "missing bearer token: send 'Authorization: Bearer <token>'"}),
        (401, {"detail": "invalid, expired or revoked token"}),
        (
            413,
            {
                "detail": f"the request body is {HUGE} bytes; the limit is {LIMIT} bytes "
                "(VARCO_API_MAX_BODY_BYTES)"
            },
        ),
        (
            413,
            {
                "detail": f"the request body passed {LIMIT} bytes; the limit is {LIMIT} bytes "
                "(VARCO_API_MAX_BODY_BYTES)"
            },
        ),
    ]
    # Five 100 MB bodies later, the gateway holds what it held (reading one took 340 MB).
    assert served.peak_memory_kib() - before < 20 * 1024


def test_a_body_within_the_limit_is_read_as_before(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.space.admin_token}"}
    name = "A" * 100
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}", headers=headers) as client:
        created = client.post("/zones", json={"id": "attic", "name": name})
        chunked = client.post(
            "/zones",
            content=iter([b'{"id": "cellar", ', b'"name": "Cellar"}']),
            headers={"Content-Type": "application/json"},
        )
        padded = client.post(
            "/zones",
            content=b'{"id": "roof", "name": "Roof"}' + b" " * (LIMIT - 40),
            headers={"Content-Type": "application/json"},
        )

    assert (created.status_code, created.json()["name"]) == (201, name)
    assert (chunked.status_code, chunked.json()["id"]) == (201, "cellar")
    assert (padded.status_code, padded.json()["id"]) == (201, "roof")
