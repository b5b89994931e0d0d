"""Balance inquiries (1100 / 0100, processing code 31): the host's answer, the scripts' check.

The acquirer simulator keeps no balances (fleet and consumer accounts are the
switch's ledger): it answers an inquiry 114 / 52, no account. The certification
runner's `available_balance` check runs against a switch whose ledger holds the
card, over real sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import attrs
import pytest
import trio
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.simulators.acquirer import AcquirerSimulator, load_acquirer_config
from forecourt.simulators.client import HostConnection
from forecourt.simulators.script import parse_script
from forecourt.simulators.terminal import run_script
from forecourt.simulators.wire import WireFormat, wire_format
from forecourt.switch.demo_ledger import SeedAccount, SeedCard

from tests.switch.ledger_switch import ledger_switch

from .conftest import FLEET_PAN, TEST_PAN

ROOT = Path(__file__).resolve().parents[2]
HOST_RULES = ROOT / "conf" / "sim" / "acquirer.toml"
StartSim = Callable[..., Awaitable[AcquirerSimulator]]
FLEET = (SeedAccount("F1", "fleet", 15000, (SeedCard(FLEET_PAN, "vehicle", "AB12CDE"),)),)

# family -> (dialect, authorisation MTI, no account, declined)
FAMILIES = {
    Family.ISO1993: ("ifsf", "1100", "114", "100"),
    Family.ISO1987: ("iso87ascii", "0100", "52", "05"),
}


@pytest.fixture
async def start_sim(nursery: trio.Nursery) -> AsyncIterator[StartSim]:
    """The host with conf/sim/acquirer.toml's rules on any free port, in a dialect."""

    async def start(wire: WireFormat | str) -> AcquirerSimulator:
        if isinstance(wire, str):
            wire = wire_format(wire)
        config = attrs.evolve(load_acquirer_config(HOST_RULES), port=0, wire=wire)
        sim = AcquirerSimulator(config)
        await nursery.start(sim.run)
        return sim

    yield start


def inquiry(mti: str, stan: str, pan: str) -> Message:
    fields = {"2": pan, "3": "310000", "4": f"{0:012d}", "7": "1201101010", "11": stan,
              "41": "T0000001", "42": "FORECOURT000001", "49": "978"}  # fmt: skip
    fields["12"] = "261201101010" if mti[0] == "1" else "101010"
    return Message(mti, fields)


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_the_host_has_no_account_to_tell(start_sim: StartSim, family: Family) -> None:
    dialect, auth, no_account, declined = FAMILIES[family]
    sim = await start_sim(dialect)
    assert sim.port is not None
    conn = await HostConnection.open("127.0.0.1", sim.port, sim.wire)
    try:
        for stan, pan, code in (("000020", TEST_PAN, no_account), ("000021", FLEET_PAN, no_account),
                                ("000022", "4000000000000119", declined)):  # fmt: skip
            await conn.send(inquiry(auth, stan, pan))
            with trio.fail_after(5):
                answer = await conn.receive()
            assert (answer.get(39), answer.get(54)) == (code, None)
        assert sim.logic.balance_inquiries == 3
    finally:
        await conn.aclose()


async def test_a_wrong_available_balance_fails_with_the_balance_shown(tmp_path: Path) -> None:
    def steps(balance: int) -> list[dict[str, object]]:
        return [{"send": "balance_inquiry", "expect": {"available_balance": balance}}]

    script = parse_script(
        {
            "terminal": {"terminal_id": "T0000002", "dialect": "ifsf", "timeout_s": 2.0},
            "cases": [
                {"name": "right", "pan": FLEET_PAN, "steps": steps(15000)},
                {"name": "wrong", "pan": FLEET_PAN, "steps": steps(1)},
                {"name": "no field 54", "pan": "7077009999999999", "steps": steps(0)},
            ],
        }
    )
    async with ledger_switch(tmp_path, FLEET) as sw:
        port = next(iter(sw.running.ports.values()))
        right, wrong, absent = await run_script(script, ("127.0.0.1", port))
    assert right.passed, right.reason
    assert wrong.reason == ("step 1 (send balance_inquiry): available balance 15000, expected 1")
    assert "field 54 is absent" in (absent.reason or "")
    assert FLEET_PAN not in (wrong.reason or "") + (absent.reason or "")


def test_available_balance_must_be_an_integer() -> None:
    with pytest.raises(ValueError, match="available_balance"):
        parse_script(
            {
                "terminal": {"terminal_id": "T0000002"},
                "cases": [
                    {
                        "name": "typo",
                        "steps": [
                            {"send": "balance_inquiry", "expect": {"available_balance": "15000"}}
                        ],
                    }
                ],
            }
        )


async def test_a_completion_after_an_inquiry_settles_the_pre_authorisation(
    tmp_path: Path,
) -> None:
    """The terminal does not take an inquiry for the pre-authorisation a completion names."""
    script = parse_script(
        {
            "terminal": {"terminal_id": "T0000001", "dialect": "ifsf", "timeout_s": 2.0},
            "cases": [
                {
                    "name": "pre-authorise, ask, complete for less, ask again",
                    "pan": FLEET_PAN,
                    "profile": "outdoor",
                    "steps": [
                        {
                            "send": "preauth",
                            "fields": {"4": "000000010000"},
                            "expect": {"action_code": "approved"},
                        },
                        {"send": "balance_inquiry", "expect": {"available_balance": 5000}},
                        {
                            "send": "completion",
                            "fields": {"4": "000000003000", "24": "202"},
                            "expect": {"action_code": "approved", "mti": "1230"},
                        },
                        {"expect_nothing": 0.5},
                        {"send": "balance_inquiry", "expect": {"available_balance": 12000}},
                    ],
                }
            ],
        }
    )
    async with ledger_switch(tmp_path, FLEET) as sw:
        port = next(iter(sw.running.ports.values()))
        [result] = await run_script(script, ("127.0.0.1", port))
    assert result.passed, result.reason
