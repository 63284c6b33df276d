"""A real ``varco gateway`` process for a benchmark: the environment of the README's table,
its log in the benchmark's folder, stopped when the block ends."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from bench.broker import Broker

GATEWAY_ID = "gateway-bench"
HEALTHY_TIMEOUT = 300.0  # today's code needs over a minute at 10,000 members


def environment(
    broker: Broker, workdir: Path, api_port: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return a gateway's environment: the SQLite store in ``workdir``, ``broker``, ``extra``."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("VARCO_")}
    variables.update(
        VARCO_DATABASE_URL=f"sqlite:///{workdir / 'varco.db'}",
        VARCO_MQTT_HOST=broker.host,
        VARCO_MQTT_PORT=str(broker.port),
        VARCO_GATEWAY_ID=GATEWAY_ID,
        VARCO_API_HOST="127.0.0.1",
        VARCO_API_PORT=str(api_port),
        VARCO_RECORDER_OUTBOX=str(workdir / "recorder-outbox.db"),
    )
    variables.update(extra or {})
    return variables


@contextlib.contextmanager
def gateway_process(
    broker: Broker, workdir: Path, api_port: int, extra: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Run ``varco gateway`` on the store in ``workdir`` until the block ends."""
    log = workdir / "gateway.log"
    command = [sys.executable, "-m", "varco", "--log-level", "WARNING", "gateway"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment(broker, workdir, api_port, extra),
        )
        try:
            yield process, log
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(
    api: str, process: subprocess.Popen[bytes], log: Path, started: float
) -> float | None:
    """Poll ``GET /healthz`` until it answers 200 ``ok``; return seconds since ``started``."""
    with httpx.Client(base_url=api, timeout=1.0) as client:
        while time.perf_counter() - started < HEALTHY_TIMEOUT:
            if process.poll() is not None:
                raise RuntimeError(f"varco gateway exited; its log:\n{log.read_text()}")
            try:
                response = client.get("/healthz")
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            if response.status_code == 200 and response.json().get("status") == "ok":
                return time.perf_counter() - started
            time.sleep(0.05)
    return None
