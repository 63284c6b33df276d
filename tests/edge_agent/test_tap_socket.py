"""``varco edge tap``: cards handed to a running agent's simulated reader through its socket.

The agent here has no broker (nothing listens on its port), so its doors decide offline at
once, by their fail mode; tests/integration/test_edge_process.py taps through a real gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import stat
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.config import (
    BrokerConfig,
    DoorConfig,
    EdgeConfig,
    PressureMatDeskConfig,
    SimulatedReaderConfig,
)
from edge_agent.tap_socket import SOCKET_NAME, send_tap
from tests.conftest import free_port
from varco.cli import main


def config(tmp_path: Path, doors: Sequence[DoorConfig], **fields: object) -> EdgeConfig:
    return EdgeConfig(
        device_id="door-ctl-1",
        site="milano",
        broker=BrokerConfig(port=free_port()),  # nobody there: decisions are offline
        pin_factory="mock",
        state_dir=tmp_path / "state",
        doors=list(doors),
        **fields,  # type: ignore[arg-type]
    )


FRONT = DoorConfig(id="front", relay_pin=17, fail_mode="safe", unlock_seconds=0.5)
BACK = DoorConfig(id="back", relay_pin=18)


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    ready = asyncio.Event()
    task = asyncio.create_task(agent.run(ready))
    await asyncio.wait_for(ready.wait(), timeout=5)
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def tap(agent: Agent, card: str, door: str | None = None) -> str:
    path = agent.config.state_dir / SOCKET_NAME
    return await asyncio.to_thread(send_tap, path, card, door=door, timeout=5)


async def test_a_tap_reaches_the_door_and_the_answer_says_what_it_did(tmp_path: Path) -> None:
    async with running(Agent(config(tmp_path, [FRONT, BACK]))) as agent:
        pins = agent.pin_factory

        assert await tap(agent, "04a22b1a", "front") == (
            "front: 04A22B1A granted (fail_safe), decided offline"
        )
        assert pins.pin(17).state  # the relay: unlocked
        assert await tap(agent, "0012345678", "back") == (
            "back: 00BC614E denied (no_allowlist), decided offline"
        )
        assert not pins.pin(18).state


async def test_with_one_simulated_door_the_door_may_go_unnamed(tmp_path: Path) -> None:
    async with running(Agent(config(tmp_path, [FRONT]))) as agent:
        assert (await tap(agent, "04:A2:2B:1A")).startswith("front: 04A22B1A granted")


async def test_the_socket_is_for_the_agents_user_and_group_and_goes_with_it(
    tmp_path: Path,
) -> None:
    async with running(Agent(config(tmp_path, [FRONT]))) as agent:
        path = agent.config.state_dir / SOCKET_NAME
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660

    assert not path.exists()


async def test_a_socket_left_by_a_killed_agent_is_replaced(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(state / SOCKET_NAME))  # bound, nobody accepting: as after a SIGKILL

    async with running(Agent(config(tmp_path, [FRONT]))) as agent:
        assert (await tap(agent, "04A22B1A")).startswith("front: 04A22B1A granted")


async def test_no_socket_without_a_simulated_reader(tmp_path: Path) -> None:
    desks = [PressureMatDeskConfig(id="desk-1", pin=5)]
    async with running(Agent(config(tmp_path, [], desks=desks))) as agent:
        assert agent.tap_socket is None
        assert not (agent.config.state_dir / SOCKET_NAME).exists()


@pytest.mark.parametrize(
    ("request_line", "reason"),
    [
        (
            b"side 04A22B1A\n",
            "no door 'side' with a simulated reader here; name one of: back, front",
        ),
        (b"- 04A22B1A\n", "no door '-' with a simulated reader here; name one of: back, front"),
        (b"front hello\n", "not a card: neither 10 decimal digits nor 4-32 hex digits"),
        (b"front\n", "expected one line: <door> <card>"),
        (b"front \xff\xfe\n", "not ASCII"),
        (b"front " + b"A" * 300 + b"\n", "a request longer than 256 bytes"),
    ],
)
async def test_a_bad_request_is_refused_with_the_reason_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, request_line: bytes, reason: str
) -> None:
    async with running(Agent(config(tmp_path, [FRONT, BACK]))) as agent:
        path = agent.config.state_dir / SOCKET_NAME
        reader, writer = await asyncio.open_unix_connection(path)
        with caplog.at_level(logging.WARNING):
            writer.write(request_line)
            answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()

        assert answer.decode() == f"refused: {reason}\n"
        assert agent.tap_socket is not None
        assert agent.tap_socket.refused == 1
        assert f"tap socket: refused a request ({reason})" in caplog.messages


async def test_a_card_again_within_the_hold_off_is_refused(tmp_path: Path) -> None:
    door = DoorConfig(id="front", relay_pin=17, reader=SimulatedReaderConfig(hold_off_seconds=30))
    async with running(Agent(config(tmp_path, [door]))) as agent:
        assert (await tap(agent, "04A22B1A")).startswith("front: 04A22B1A denied")

        assert await tap(agent, "04A22B1A") == (
            "refused: the same card again within the reader's hold-off (30 s)"
        )


async def test_the_command_prints_the_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edge = config(tmp_path, [FRONT])
    file = tmp_path / "edge.yaml"
    file.write_text(
        f"device_id: door-ctl-1\nsite: milano\nbroker: {{port: {edge.broker.port}}}\n"
        f"state_dir: {edge.state_dir}\npin_factory: mock\n"
        "doors: [{id: front, relay_pin: 17, fail_mode: safe}]\n"
    )
    async with running(Agent(edge)):
        status = await asyncio.to_thread(main, ["edge", "--config", str(file), "tap", "04A22B1A"])
        refused = await asyncio.to_thread(
            main, ["edge", "tap", "nonsense", "--door", "front", "--config", str(file)]
        )
    stopped = main(["edge", "tap", "04A22B1A", "--config", str(file)])

    out, err = capsys.readouterr()
    assert (status, refused, stopped) == (0, 1, 1)
    assert out.splitlines() == [
        "front: 04A22B1A granted (fail_safe), decided offline",
        "refused: not a card: neither 10 decimal digits nor 4-32 hex digits",
    ]
    assert err == (
        f"varco edge tap: no agent listens on {edge.state_dir / SOCKET_NAME}: start the agent "
        f"with `varco edge --config {file}` (it listens only when a door has a simulated reader)\n"
    )
