"""Hardware below the drivers: an emulated RC522 behind ``spidev``, and ``RPi.GPIO``."""

from __future__ import annotations

import sys
import types

import pytest

from tests.edge_agent.emulated_rc522 import Gpio, SpiBus


@pytest.fixture
def spi_bus(monkeypatch: pytest.MonkeyPatch) -> SpiBus:
    """The Pi's SPI devices, as the ``spidev`` module every driver imports; none wired yet."""
    bus = SpiBus()
    monkeypatch.setitem(sys.modules, "spidev", bus.module())
    return bus


@pytest.fixture
def rpi_gpio(monkeypatch: pytest.MonkeyPatch) -> Gpio:
    """``RPi.GPIO`` as the ``mfrc522`` package imports it (the real one refuses off a Pi)."""
    gpio = Gpio()
    package = types.ModuleType("RPi")
    package.GPIO = gpio.module()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "RPi", package)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", package.GPIO)
    # A fresh import each test, so that the package binds this test's stand-ins.
    for name in ("mfrc522", "mfrc522.MFRC522", "mfrc522.SimpleMFRC522"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return gpio
