"""What an RC522 door costs while nobody taps: ``python -m bench.rc522_idle [--seconds S]``.

Both readers poll an empty field every 0.1 s (``poll_seconds``' default) on the emulated
MFRC522 behind ``spidev`` that the tests use (``tests/edge_agent/emulated_rc522.py``), whose
time advances by each transfer's time on a 1 MHz bus, as a Pi's does:

- **Baseline**: the ``mfrc522`` package, as the agent used it before: ``MFRC522_Request``
  every poll (its ``MFRC522_ToCard`` waits with ``~`` for ``not`` and ignores the chip's timer);
- **Varco**: ``edge_agent.readers.Mfrc522Reader`` on ``edge_agent.rc522.Rc522``: WUPA, then a
  sleep between looks at the interrupt register until the chip's 5 ms timer says no card.

Each runs in its own thread for ``--seconds`` (default 6) in 3 alternating blocks. Per idle
second: SPI transfers (each an ioctl on a Pi), the time the SPI bus spends clocking them at
1 MHz (on a Pi the reading thread is blocked in those ioctls at least that long), and the
polling thread's CPU time here (``pthread_getcpuclockid``: the emulated chip's Python is in
both; a transfer on a Pi costs a system call instead). Ratios are baseline / Varco.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import threading
import time
import types
from dataclasses import dataclass

from gpiozero.pins.mock import MockFactory

from edge_agent.config import Mfrc522ReaderConfig
from edge_agent.readers import Mfrc522Reader
from tests.edge_agent.emulated_rc522 import Gpio, Rc522Chip, SpiBus

POLL_SECONDS = 0.1
RESET_PIN = 25


@dataclass
class Usage:
    """What one reader spent over some idle seconds."""

    seconds: float = 0.0
    transfers: int = 0
    bus_seconds: float = 0.0
    cpu_seconds: float = 0.0
    polls: int = 0

    def add(self, other: Usage) -> None:
        self.seconds += other.seconds
        self.transfers += other.transfers
        self.bus_seconds += other.bus_seconds
        self.cpu_seconds += other.cpu_seconds
        self.polls += other.polls


def _thread_cpu(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _measure(chip: Rc522Chip, thread: threading.Thread, seconds: float) -> Usage:
    transfers, bus, cpu = chip.transfers, chip.bus_seconds, _thread_cpu(thread)
    polls = chip.frames.count([0x26]) + chip.frames.count([0x52])  # REQA or WUPA
    start = time.monotonic()
    time.sleep(seconds)
    return Usage(
        seconds=time.monotonic() - start,
        transfers=chip.transfers - transfers,
        bus_seconds=chip.bus_seconds - bus,
        cpu_seconds=_thread_cpu(thread) - cpu,
        polls=chip.frames.count([0x26]) + chip.frames.count([0x52]) - polls,
    )


class Baseline:
    """The ``mfrc522`` package on its own emulated chip, polled as the agent did."""

    def __init__(self) -> None:
        self.gpio, self.bus = Gpio(), SpiBus()
        self.chip = self.bus.wire(Rc522Chip(reset_line=lambda: self.gpio.level(RESET_PIN)))
        rpi = types.ModuleType("RPi")
        rpi.GPIO = self.gpio.module()  # type: ignore[attr-defined]
        sys.modules.update({"spidev": self.bus.module(), "RPi": rpi, "RPi.GPIO": rpi.GPIO})
        driver = importlib.import_module("mfrc522")
        self.device = driver.MFRC522(bus=0, device=0, pin_mode=Gpio.BCM, pin_rst=RESET_PIN)
        for name in ("spidev", "RPi", "RPi.GPIO", "mfrc522", "mfrc522.MFRC522"):
            sys.modules.pop(name, None)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="baseline", daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.is_set():
            self.device.MFRC522_Request(self.device.PICC_REQIDL)
            self.stop.wait(POLL_SECONDS)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


class Varco:
    """Varco's reader on its own emulated chip, in a loop of its own."""

    def __init__(self) -> None:
        self.factory = MockFactory()
        pin = self.factory.pin(RESET_PIN)
        self.bus = SpiBus()
        self.chip = self.bus.wire(Rc522Chip(reset_line=lambda: bool(pin.state)))
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.loop_thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.loop_thread.start()
        ready.wait()
        self.thread = next(t for t in threading.enumerate() if t.name.startswith("reader "))

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        sys.modules["spidev"] = self.bus.module()
        config = Mfrc522ReaderConfig(reset_pin=RESET_PIN, poll_seconds=POLL_SECONDS)
        self.reader = self.loop.run_until_complete(self._open(config))
        del sys.modules["spidev"]
        ready.set()
        self.loop.run_forever()

    async def _open(self, config: Mfrc522ReaderConfig) -> Mfrc522Reader:
        return Mfrc522Reader.open(config, pin_factory=self.factory)

    def close(self) -> None:
        self.reader.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.loop_thread.join()


def _row(name: str, usage: Usage, baseline: Usage | None) -> str:
    per = usage.seconds
    figures = (
        usage.transfers / per,
        usage.bus_seconds / per * 1000,
        usage.cpu_seconds / per * 1000,
        usage.polls / per,
    )
    text = f"{name:<26}{figures[0]:>12,.0f}{figures[1]:>14.1f}{figures[2]:>14.1f}{figures[3]:>8.1f}"
    if baseline is not None:
        base = (
            baseline.transfers / baseline.seconds,
            baseline.bus_seconds / baseline.seconds * 1000,
            baseline.cpu_seconds / baseline.seconds * 1000,
        )
        ratios = [b / max(v, 1e-9) for b, v in zip(base, figures[:3], strict=True)]
        text += "   " + "  ".join(f"x{r:,.0f}" for r in ratios)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="idle seconds for each")
    args = parser.parse_args(argv)
    readers: dict[str, Baseline | Varco] = {"mfrc522 0.0.7": Baseline(), "Varco": Varco()}
    usage = {name: Usage() for name in readers}
    time.sleep(0.5)  # both started and settled
    for _ in range(3):
        for name, reader in readers.items():
            usage[name].add(_measure(reader.chip, reader.thread, args.seconds / 3))
    for reader in readers.values():
        reader.close()
    print(f"An empty field, polled every {POLL_SECONDS} s; per idle second:")
    print(f"{'':<26}{'transfers':>12}{'bus ms':>14}{'thread CPU ms':>14}{'polls':>8}   ratios")
    baseline = usage["mfrc522 0.0.7"]
    print(_row("mfrc522 0.0.7 (baseline)", baseline, None))
    print(_row("Varco", usage["Varco"], baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
