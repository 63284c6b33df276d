"""The edge agent's memory and per-event cost: ``python -m bench.edge_footprint [--events N]``.

The target is a Pi Zero 2 W (512 MB): the agent must stay under 40 MB resident.

1. Resident memory: ``varco edge`` in a fresh interpreter (a door controller with one door
   and three pressure-mat desks on the mock pin factory), read from ``/proc/<pid>/status`` once
   its retained ``online`` status is on the broker; also with the environment that
   ``firmware_config/varco-edge.service`` sets, the row the target applies to; baseline: a
   fresh interpreter that imports paho and connects one client. Every interpreter loads
   byte-compiled modules, as a Pi does (pip compiles what it installs).
2. Import cost: what ``import edge_agent.agent`` alone makes resident, and whether gateway
   packages (SQLAlchemy, FastAPI, influxdb-client) came in with it. They must not.
3. Per-event cost, in this process: ``Desk.report`` -> outbox put -> forwarder publishes at
   QoS 1 -> removed on PUBACK, CPU time and wall time per event; baseline: a bare paho client
   publishing the same number of QoS 1 messages, each waited for (``wait_for_publish``).
4. A large allow-list: ``varco edge`` (as a Pi runs it) holding a 50,000-credential list, built
   by the gateway's own ``gateway.allowlists.build`` and published retained before the agent
   starts; measured once the agent's status reports that list's version. And the CPU an
   ``AllowlistCache.update`` costs per list applied, in this process; baseline: ``json.loads``
   of a plain JSON object of 50,000 digest keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import yaml

from bench import space as layout
from bench.bare_client import TIMEOUT_SECONDS, BareClient
from bench.broker import Broker, private_mosquitto
from bench.figures import ratio
from edge_agent.agent import Agent
from edge_agent.cache import AllowlistCache
from edge_agent.config import parse_config
from edge_agent.outbox import Outbox
from gateway import allowlists
from varco import protocol
from varco.protocol import Allowlist, AllowlistDelta, Channel, DeviceState, PayloadError, Status

TARGET_MB = 40.0
SITE = "bench-site"
DEVICE = "door-ctl-bench"
DESKS = ("desk-1", "desk-2", "desk-3")
WARMUP = 50
SETTLE_SECONDS = 1.0  # let a started process finish what it does after connecting
GATEWAY_PACKAGES = ("sqlalchemy", "fastapi", "uvicorn", "influxdb_client", "pydantic", "gateway")
UNIT = Path(__file__).resolve().parents[1] / "firmware_config" / "varco-edge.service"
LIST_CREDENTIALS = 50_000
LIST_UPDATES = 5  # full lists applied, each a newer version

# Runs in a fresh interpreter: what a bare paho client makes resident.
BARE_PAHO = """
import sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
connected = threading.Event()
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare-paho")
client.on_connect = lambda *args: connected.set()
client.connect(sys.argv[1], int(sys.argv[2]))
client.loop_start()
if not connected.wait(10):
    sys.exit("no CONNACK")
print("ready", flush=True)
sys.stdin.read()
"""

# Run in a fresh interpreter; each prints its own pid's /proc status and loaded modules.
REPORT = """
import json, sys
print(json.dumps({"status": open("/proc/self/status").read(), "modules": sorted(sys.modules)}))
"""
INTERPRETER_ONLY = REPORT
# ``varco edge`` as ``python -m varco`` runs it, with ``import dns`` failing as if not installed.
WITHOUT_DNSPYTHON = (
    "import sys; sys.modules['dns'] = None; from varco.cli import main; sys.exit(main())"
)
IMPORT_ONLY = "import edge_agent.agent\n" + REPORT


@dataclass(frozen=True, slots=True)
class Memory:
    """A process's resident memory in MB (10^6 bytes), from ``/proc/<pid>/status``.

    ``anon_mb`` is the process's own heap and stacks; ``file_mb`` is pages of mapped files
    (the interpreter, shared libraries), which the kernel may share and drop under pressure.
    """

    rss_mb: float
    anon_mb: float
    file_mb: float
    peak_mb: float


def memory_of(pid: int) -> Memory:
    """Read a live process's resident memory."""
    return parse_status(Path(f"/proc/{pid}/status").read_text())


def parse_status(text: str) -> Memory:
    """Read resident memory from the text of a ``/proc/<pid>/status`` file."""
    fields: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024 / 1e6  # the kernel's kB are KiB
    return Memory(fields["VmRSS"], fields["RssAnon"], fields["RssFile"], fields["VmHWM"])


def unit_environment(unit: Path = UNIT) -> dict[str, str]:
    """Return the variables the systemd unit's ``Environment=`` lines set (``K=V K=V``)."""
    variables: dict[str, str] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        key, equals, value = line.strip().partition("=")
        if equals and key.strip() == "Environment":
            for assignment in value.split():
                name, _, setting = assignment.partition("=")
                variables[name] = setting
    return variables


def compiled_environment(pycache: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return this process's environment for a measured interpreter that loads ``.pyc`` files.

    pip byte-compiles what it installs, so on a Pi the agent loads compiled modules. From a
    source tree with ``PYTHONDONTWRITEBYTECODE`` set (or a read-only one) Python compiles
    Varco's own modules again at every start, which leaves ~0.7 MB more resident. The cache
    goes to ``pycache`` (``PYTHONPYCACHEPREFIX``), out of the working tree; ``measure`` fills it
    with a warm-up run first.
    """
    environment = dict(os.environ)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    environment["PYTHONPYCACHEPREFIX"] = str(pycache)
    environment.update(extra or {})
    return environment


def edge_config(
    broker: Broker, state_dir: Path, *, device: str = DEVICE, door: str = "front-door"
) -> dict[str, Any]:
    """A door controller with one door and three pressure-mat desks, on mock pins."""
    return {
        "device_id": device,
        "site": SITE,
        "broker": {"host": broker.host, "port": broker.port},
        "pin_factory": "mock",
        "state_dir": str(state_dir),
        "doors": [{"id": door, "relay_pin": 17, "contact_pin": 27}],
        "desks": [
            {"id": desk, "sensor": "pressure_mat", "pin": pin}
            for desk, pin in zip(DESKS, (5, 6, 13), strict=True)
        ],
    }


class StatusWatch:
    """Subscribes to the device's retained status; ``online`` is set when it says online (and
    holds allow-list ``version``, if given)."""

    def __init__(self, client: BareClient, device: str, *, version: int | None = None) -> None:
        self.online = threading.Event()
        self._version = version
        client.paho.on_message = self._message
        client.subscribe(protocol.topic(SITE, device, Channel.STATUS))

    def _message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            status = protocol.decode(Channel.STATUS, bytes(message.payload))
        except PayloadError:
            return
        if not isinstance(status, Status) or status.state is not DeviceState.ONLINE:
            return
        if self._version is None or status.allowlist_version == self._version:
            self.online.set()


@dataclass(frozen=True, slots=True)
class HeldList:
    """An allow-list for ``device`` to hold: its key, its one door, its version and bytes."""

    device: str
    door: str
    key: bytes
    version: int
    raw: bytes


def full_allowlist(credentials: int = LIST_CREDENTIALS) -> HeldList:
    """Build one controller's list of ``credentials`` members with the gateway's own ``build``.

    One door in the lobby, which every plan opens, and no lapsed member: the list holds
    exactly ``credentials`` credentials. The one place this benchmark makes a list.
    """
    now = protocol.utcnow()
    space = layout.Space(credentials, doors=1, controllers=1, lapsed=False)
    device = layout.device_id(0)
    door, _, _ = space.door(0)
    key = bytes.fromhex("5a" * 32)
    policy = layout.policy(space, {device: key}, now)
    issued = allowlists.build(policy, issued_at=now, ttl=timedelta(days=1))[device]
    held = len(issued.allowlist.credentials) // protocol.RECORD.size
    if held != credentials:
        raise RuntimeError(f"the list holds {held} credentials, not {credentials}")
    return HeldList(device, door, key, issued.allowlist.version, protocol.encode(issued.allowlist))


def update_payloads(held: HeldList, count: int = LIST_UPDATES) -> dict[str, list[bytes]]:
    """Return, per kind of allow-list message, ``count`` messages a controller applies in turn.

    The list whole again (as at half its lifetime), and an update for one member whose
    validity changed (as the gateway sends for a change to one member), chained by version.
    """
    allowlist = protocol.decode_as(Allowlist, held.raw, limit=protocol.MAX_ALLOWLIST_BYTES)
    record = bytearray(allowlist.credentials[: protocol.RECORD.size])
    updates = []
    for n in range(count):
        # valid_until (the record's last 8 bytes), one microsecond later each time
        record[-8:] = (2**62 + n).to_bytes(8, "big")
        updates.append(
            protocol.encode(
                AllowlistDelta(
                    since=held.version + n,
                    version=held.version + n + 1,
                    issued_at=allowlist.issued_at,
                    expires_at=allowlist.expires_at,
                    credentials=bytes(record),
                )
            )
        )
    return {
        f"full list, {LIST_CREDENTIALS:,} credentials": [
            protocol.encode(msgspec.structs.replace(allowlist, version=held.version + n + 1))
            for n in range(count)
        ],
        "update for one member": updates,
    }


@dataclass(frozen=True, slots=True)
class UpdateCost:
    """CPU and wall seconds per update applied, and the size of one."""

    name: str
    cpu: float
    wall: float
    size: int


def update_costs(held: HeldList, folder: Path) -> tuple[UpdateCost, list[UpdateCost]]:
    """Time ``AllowlistCache.update`` per message of each kind; the baseline first.

    Each kind starts from a cache holding ``held`` (as an agent that took the full list), so
    an update applies on top of a list of 50,000 credentials. Baseline: ``json.loads`` of a
    JSON object of as many 32-character digest keys, the least a full list can cost to read.
    """
    plain = json.dumps({f"{n:032x}": "s0" for n in range(LIST_CREDENTIALS)}).encode()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(LIST_UPDATES):
        json.loads(plain)
    baseline = UpdateCost(
        f"json.loads, {LIST_CREDENTIALS:,} keys (baseline)",
        (time.process_time() - cpu) / LIST_UPDATES,
        (time.perf_counter() - wall) / LIST_UPDATES,
        len(plain),
    )
    costs = []
    for n, (name, messages) in enumerate(update_payloads(held).items()):
        cache = AllowlistCache(folder / f"updates-{n}" / "allowlist.json", held.key)
        cache.update(held.raw)
        cpu, wall = time.process_time(), time.perf_counter()
        for message in messages:
            if not cache.update(message):
                raise RuntimeError(f"{name}: an update was not taken")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        size = max(len(message) for message in messages)
        costs.append(UpdateCost(name, cpu / len(messages), wall / len(messages), size))
    return baseline, costs


def edge_process_memory(
    broker: Broker,
    workdir: Path,
    *,
    device: str,
    environment: Mapping[str, str],
    dnspython: bool = True,
    held: HeldList | None = None,
) -> Memory:
    """Start ``varco edge`` in a fresh interpreter and measure it once it is online.

    ``dnspython=False`` hides dnspython from the interpreter, as on a Pi installed with the
    ``[edge]`` extra only: paho imports it when it can, and here it comes with the gateway's
    email-validator. With ``held``, that list is published retained for the device first,
    and the agent is measured once its status reports holding it.
    """
    folder = workdir / device
    folder.mkdir()
    config = folder / "edge.yaml"
    settings = edge_config(broker, folder / "state", device=device)
    if held is not None:
        settings = edge_config(broker, folder / "state", device=device, door=held.door)
        # The status says which list the agent holds; sent every second, it says so soon.
        settings.update(allowlist_key=held.key.hex(), status_interval_seconds=1)
    config.write_text(yaml.safe_dump(settings))
    log = folder / "edge.log"
    launcher = ["-m", "varco"] if dnspython else ["-c", WITHOUT_DNSPYTHON]
    command = [sys.executable, *launcher, "--log-level", "WARNING", "edge", "--config", str(config)]
    with BareClient(broker, "bench-status-watch") as client, log.open("wb") as output:
        if held is not None:
            topic = protocol.topic(SITE, device, Channel.ALLOWLIST)
            client.paho.publish(topic, held.raw, qos=1, retain=True).wait_for_publish(
                TIMEOUT_SECONDS
            )
        watch = StatusWatch(client, device, version=held.version if held else None)
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=dict(environment)
        )
        try:
            if not watch.online.wait(TIMEOUT_SECONDS * 2):
                raise RuntimeError(f"varco edge never said online; its log:\n{log.read_text()}")
            time.sleep(SETTLE_SECONDS)
            if process.poll() is not None:
                raise RuntimeError(f"varco edge exited; its log:\n{log.read_text()}")
            return memory_of(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def bare_paho_memory(broker: Broker, environment: Mapping[str, str]) -> Memory:
    """Start a bare paho client in a fresh interpreter and measure it once connected."""
    process = subprocess.Popen(
        [sys.executable, "-c", BARE_PAHO, broker.host, str(broker.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(environment),
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the bare paho client did not connect")
        time.sleep(SETTLE_SECONDS)
        return memory_of(process.pid)
    finally:
        process.stdin.close()
        process.wait(timeout=10)


def snippet(code: str, environment: Mapping[str, str]) -> tuple[Memory, set[str]]:
    """Run ``code`` in a fresh interpreter; return its memory and its top-level packages."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=True,
        timeout=60,
        env=dict(environment),
    )
    report = json.loads(result.stdout)
    packages = {str(name).split(".")[0] for name in report["modules"]}
    return parse_status(str(report["status"])), packages


async def _drained(outbox: Outbox, poll_seconds: float = 0.002) -> None:
    # Polling costs a few µs every 2 ms; the forwarder offers no "empty" signal to wait on.
    async with asyncio.timeout(TIMEOUT_SECONDS * 6):
        while outbox.depth:  # noqa: ASYNC110
            await asyncio.sleep(poll_seconds)


async def varco_events(broker: Broker, count: int, state_dir: Path) -> tuple[float, float, float]:
    """Send ``count`` desk events through a running agent; return CPU, wall and put seconds."""
    agent = Agent(parse_config(edge_config(broker, state_dir), source="bench"))
    ready = asyncio.Event()
    task = asyncio.create_task(agent.run(ready))
    try:
        await asyncio.wait_for(ready.wait(), TIMEOUT_SECONDS)
        await asyncio.wait_for(agent.link.connected.wait(), TIMEOUT_SECONDS)
        desks = [agent.desks[desk] for desk in DESKS]
        for i in range(WARMUP):
            desks[i % len(desks)].report(i % 2 == 0)
        await _drained(agent.outbox)  # the warm-up, the desks' first reports, the status
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(count):
            desks[i % len(desks)].report(i % 2 == 0)
        put = time.perf_counter() - wall
        await _drained(agent.outbox)
        return time.process_time() - cpu, time.perf_counter() - wall, put
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def paho_events(broker: Broker, count: int) -> tuple[float, float]:
    """Publish ``count`` QoS 1 messages from a bare paho client, each waited for."""
    topic = protocol.topic(SITE, "bench-bare-paho", Channel.DESK)
    payload = b'{"v":1,"event_id":"0123456789abcdef0123456789abcdef","desk":"desk-1",' + (
        b'"occupied":true,"at":"2025-01-01T00:00:00Z"}'
    )
    with BareClient(broker, "bench-bare-paho") as client:
        for _ in range(WARMUP):
            client.publish(topic, payload)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(count):
            client.publish(topic, payload)
        return time.process_time() - cpu, time.perf_counter() - wall


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything one run measured."""

    bare: Memory
    edge: Memory
    edge_only: Memory
    edge_unit: Memory
    unit_environment: dict[str, str]
    interpreter: Memory
    imported: Memory
    packages: set[str]
    events: int
    rounds: int
    paho_cpu: float
    paho_wall: float
    varco_cpu: float
    varco_wall: float
    varco_put: float
    edge_list: Memory
    list_bytes: int
    update_baseline: UpdateCost
    updates: list[UpdateCost]


def measure(events: int, rounds: int) -> Figures:
    """Take every figure, each against its baseline, on one private broker.

    The event costs are the median of ``rounds`` rounds, each timing the baseline and then
    Varco, so that a burst of load from elsewhere on the machine hits both alike.
    """
    with (
        tempfile.TemporaryDirectory(prefix="varco-bench-edge-") as name,
        private_mosquitto() as broker,
    ):
        workdir = Path(name)
        compiled = compiled_environment(workdir / "pycache")
        unit = unit_environment()
        # Not measured: compile every module the agent (dnspython too) and the snippets load.
        edge_process_memory(broker, workdir, device=f"{DEVICE}-warm-up", environment=compiled)
        snippet(INTERPRETER_ONLY, compiled)
        edge = edge_process_memory(broker, workdir, device=DEVICE, environment=compiled)
        edge_only = edge_process_memory(
            broker, workdir, device=f"{DEVICE}-edge-only", environment=compiled, dnspython=False
        )
        edge_unit = edge_process_memory(
            broker,
            workdir,
            device=f"{DEVICE}-unit",
            environment=compiled_environment(workdir / "pycache", unit),
            dnspython=False,
        )
        held = full_allowlist()
        edge_list = edge_process_memory(
            broker,
            workdir,
            device=held.device,
            environment=compiled_environment(workdir / "pycache", unit),
            dnspython=False,
            held=held,
        )
        update_baseline, updates = update_costs(held, workdir / "in-process")
        bare = bare_paho_memory(broker, compiled)
        interpreter, _ = snippet(INTERPRETER_ONLY, compiled)
        imported, packages = snippet(IMPORT_ONLY, compiled)
        paho: list[tuple[float, float]] = []
        varco: list[tuple[float, float, float]] = []
        for _ in range(rounds):
            paho.append(paho_events(broker, events))
            varco.append(asyncio.run(varco_events(broker, events, workdir / "in-process")))
    paho_cpu, paho_wall = (statistics.median(column) for column in zip(*paho, strict=True))
    varco_cpu, varco_wall, put = (statistics.median(column) for column in zip(*varco, strict=True))
    return Figures(
        bare=bare,
        edge=edge,
        edge_only=edge_only,
        edge_unit=edge_unit,
        unit_environment=unit,
        interpreter=interpreter,
        imported=imported,
        packages=packages,
        events=events,
        rounds=rounds,
        paho_cpu=paho_cpu,
        paho_wall=paho_wall,
        varco_cpu=varco_cpu,
        varco_wall=varco_wall,
        varco_put=put,
        edge_list=edge_list,
        list_bytes=len(held.raw),
        update_baseline=update_baseline,
        updates=updates,
    )


def memory_lines(figures: Figures) -> list[str]:
    """The resident-memory table and the import check."""
    base = figures.bare.rss_mb
    rows = [
        ("bare paho client, connected (baseline)", figures.bare),
        ("varco edge, 1 door + 3 desks, online", figures.edge),
        ("  the same, [edge] only (no dnspython)", figures.edge_only),
        ("  [edge] only, the unit's environment", figures.edge_unit),
        (f"  the same, holding {LIST_CREDENTIALS:,} credentials", figures.edge_list),
        ("python, nothing imported", figures.interpreter),
        ("import edge_agent.agent, nothing else", figures.imported),
    ]
    header = (
        f"{'':<40}  {'RSS MB':>7}  {'anon MB':>7}  {'file MB':>7}  {'peak MB':>7}  {'ratio':>6}"
    )
    lines = [
        f"edge agent resident memory (MB = 10^6 bytes; fresh interpreters loading .pyc files;"
        f" {platform.machine()})",
        header,
        "-" * len(header),
    ]
    for name, memory in rows:
        lines.append(
            f"{name:<40}  {memory.rss_mb:>7.1f}  {memory.anon_mb:>7.1f}  {memory.file_mb:>7.1f}"
            f"  {memory.peak_mb:>7.1f}  {ratio(memory.rss_mb, base):>6}"
        )
    unit = " ".join(f"{name}={value}" for name, value in figures.unit_environment.items())
    lines.append(f"the unit's environment (firmware_config/varco-edge.service): {unit or 'none'}")
    lines.append(
        f"the {LIST_CREDENTIALS:,}-credential list (gateway.allowlists.build, one door):"
        f" {figures.list_bytes / 1e6:.2f} MB, published retained before the agent started"
    )
    for name, memory in (
        ("this venv", figures.edge),
        ("[edge] only", figures.edge_only),
        ("[edge] only, the unit's environment (the target)", figures.edge_unit),
        (f"the same, holding {LIST_CREDENTIALS:,} credentials (the target)", figures.edge_list),
    ):
        verdict = "under" if memory.rss_mb < TARGET_MB else "OVER"
        lines.append(
            f"target: varco edge under {TARGET_MB:.0f} MB (Pi Zero 2 W), {name}: {verdict}"
            f" ({TARGET_MB - memory.rss_mb:+.1f} MB of headroom)"
        )
    for package in (*GATEWAY_PACKAGES, "dns"):
        loaded = package in figures.packages
        lines.append(f"'{package}' in sys.modules after import edge_agent.agent: {loaded}")
    return lines


def event_lines(figures: Figures) -> list[str]:
    """The per-event cost table."""
    n = figures.events
    rows = [
        ("bare paho publish + wait (baseline)", figures.paho_cpu, figures.paho_wall),
        ("varco Desk.report -> outbox -> PUBACK", figures.varco_cpu, figures.varco_wall),
    ]
    header = f"{'':<40}  {'CPU µs':>7}  {'wall µs':>7}  {'CPU ratio':>9}  {'wall ratio':>10}"
    lines = [
        f"per desk event: {n} events at QoS 1, one in flight; median of {figures.rounds} rounds,"
        f" each after {WARMUP} warm-up events",
        header,
        "-" * len(header),
    ]
    for name, cpu, wall in rows:
        lines.append(
            f"{name:<40}  {cpu / n * 1e6:>7.1f}  {wall / n * 1e6:>7.1f}"
            f"  {ratio(cpu, figures.paho_cpu):>9}  {ratio(wall, figures.paho_wall):>10}"
        )
    lines.append(
        f"  of which Desk.report (event built, outbox put; blocks the loop): "
        f"{figures.varco_put / n * 1e6:.1f} µs wall"
    )
    return lines


def update_lines(figures: Figures) -> list[str]:
    """The cost per allow-list update applied."""
    base = figures.update_baseline
    header = f"{'':<40}  {'MB':>5}  {'CPU ms':>7}  {'wall ms':>7}  {'CPU ratio':>9}"
    lines = [
        f"per allow-list update applied: AllowlistCache.update in this process (parse, check,"
        f" write to disk with fsync), over a list of {LIST_CREDENTIALS:,}; {LIST_UPDATES} each",
        header,
        "-" * len(header),
    ]
    for cost in (base, *figures.updates):
        lines.append(
            f"{cost.name:<40}  {cost.size / 1e6:>5.2f}  {cost.cpu * 1e3:>7.1f}"
            f"  {cost.wall * 1e3:>7.1f}  {ratio(cost.cpu, base.cpu):>9}"
        )
    return lines


def problems(figures: Figures) -> list[str]:
    """What misses the edge's targets.

    The memory target is held against the agent as a Pi runs it: ``[edge]`` only, with the
    unit's environment. The other rows are printed for comparison.
    """
    found: list[str] = []
    if figures.edge_unit.rss_mb >= TARGET_MB:
        found.append(
            f"varco edge ([edge] only, the unit's environment) is"
            f" {figures.edge_unit.rss_mb:.1f} MB resident; target {TARGET_MB:.0f}"
        )
    if figures.edge_list.rss_mb >= TARGET_MB:
        found.append(
            f"varco edge holding {LIST_CREDENTIALS:,} credentials is"
            f" {figures.edge_list.rss_mb:.1f} MB resident; target {TARGET_MB:.0f}"
        )
    leaked = sorted(figures.packages.intersection(GATEWAY_PACKAGES))
    if leaked:
        found.append(f"import edge_agent.agent loads {', '.join(leaked)}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.edge_footprint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events", type=int, default=2000, help="desk events per round (default 2000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if the agent misses its memory target or imports a gateway package",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.rounds < 1:
        parser.error("--events and --rounds must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = measure(args.events, args.rounds)
    found = problems(figures)
    print(
        "\n".join([*memory_lines(figures), "", *event_lines(figures), "", *update_lines(figures)])
    )
    for problem in found:
        print(f"MISSED: {problem}")
    return 1 if found and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
