"""Balance inquiries (1100 / 0100, processing code 31): the host's answer, the scripts' check.

The host runs the rules of conf/sim/acquirer.toml (fleet cards 7077/7078 hold
150.00 each) over real sockets on 127.0.0.1, in the 1993 (ifsf) and 1987
(iso87ascii) families; the certification cases of conf/cert/ run against it
with the host standing in for the switch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import attrs
import pytest
import trio
from forecourt.codecs.amounts import AVAILABLE_BALANCE, AdditionalAmount, decode_field54
from forecourt.codecs.family import Family
from forecourt.codecs.fields import OriginalData, OriginalElements
from forecourt.codecs.message import Message
from forecourt.simulators.acquirer import AcquirerSimulator, load_acquirer_config
from forecourt.simulators.client import HostConnection
from forecourt.simulators.script import Script, load_script, parse_script
from forecourt.simulators.terminal import run_script
from forecourt.simulators.wire import WireFormat, wire_format

from .conftest import FLEET_PAN, KEK, TEST_PAN

ROOT = Path(__file__).resolve().parents[2]
HOST_RULES = ROOT / "conf" / "sim" / "acquirer.toml"
StartSim = Callable[..., Awaitable[AcquirerSimulator]]

# family -> (dialect, authorisation, purchase and reversal MTIs, approved, no account, declined)
FAMILIES = {
    Family.ISO1993: ("ifsf", "1100", "1200", "1420", "000", "114", "100"),
    Family.ISO1987: ("iso87ascii", "0100", "0200", "0400", "00", "52", "05"),
}


@pytest.fixture
async def start_sim(nursery: trio.Nursery) -> AsyncIterator[StartSim]:
    """The host with conf/sim/acquirer.toml's rules on any free port, in a dialect."""

    async def start(wire: WireFormat | str, kek: bytes | None = None) -> AcquirerSimulator:
        if isinstance(wire, str):
            wire = wire_format(wire)
        config = attrs.evolve(load_acquirer_config(HOST_RULES), port=0, wire=wire, kek=kek)
        sim = AcquirerSimulator(config)
        await nursery.start(sim.run)
        return sim

    yield start


def card_request(mti: str, stan: str, pan: str, amount: int, processing: str = "000000") -> Message:
    fields = {
        "2": pan,
        "3": processing,
        "4": f"{amount:012d}",
        "7": "1201101010",
        "11": stan,
        "41": "T0000001",
        "42": "FORECOURT000001",
        "49": "978",
    }
    fields["12"] = "261201101010" if mti[0] == "1" else "101010"
    return Message(mti, fields)


def inquiry(mti: str, stan: str, pan: str, processing: str = "310000") -> Message:
    return card_request(mti, stan, pan, 0, processing)


async def exchange(conn: HostConnection, message: Message) -> Message:
    await conn.send(message)
    with trio.fail_after(5):
        return await conn.receive()


def available(answer: Message) -> int:
    field54 = answer.get(54)
    assert field54 is not None
    [amount] = decode_field54(field54)
    assert amount.amount_type == AVAILABLE_BALANCE
    return amount.amount


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_inquiry_answers_the_fleet_balance_and_takes_nothing(
    start_sim: StartSim, family: Family
) -> None:
    dialect, auth, purchase, _, approved, _, _ = FAMILIES[family]
    sim = await start_sim(dialect)
    assert sim.port is not None
    conn = await HostConnection.open("127.0.0.1", sim.port, sim.wire)
    try:
        answer = await exchange(conn, inquiry(auth, "000001", FLEET_PAN))
        assert answer.mti == auth[:2] + "10"
        assert answer.get(39) == approved
        assert answer.get(54) == "0002978C000000015000"
        assert decode_field54(answer.get(54) or "") == (
            AdditionalAmount("00", AVAILABLE_BALANCE, "978", 15000),
        )
        assert answer.get(4) == "000000000000"  # nothing approved, nothing taken
        assert answer.get(38) is None
        assert sim.balance("fleet", FLEET_PAN) == 15000

        # A purchase draws the balance down; the next inquiry sees it, twice alike.
        paid = await exchange(conn, card_request(purchase, "000002", FLEET_PAN, 4000))
        assert paid.get(39) == approved
        for stan in ("000003", "000004"):
            assert available(await exchange(conn, inquiry(auth, stan, FLEET_PAN))) == 11000
        assert sim.balance("fleet", FLEET_PAN) == 11000
        assert sim.logic.balance_inquiries == 3
        records = [r for r in sim.received if r.processing_code == "310000"]
        assert [r.approved_amount for r in records] == [None, None, None]
    finally:
        await conn.aclose()


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_inquiry_changes_no_balance_and_no_totals(
    start_sim: StartSim, family: Family
) -> None:
    dialect, auth, _, reversal, approved, _, _ = FAMILIES[family]
    sim = await start_sim(dialect)
    assert sim.port is not None
    conn = await HostConnection.open("127.0.0.1", sim.port, sim.wire)
    try:
        before = sim.logic.ledger.balances()
        request = inquiry(auth, "000010", FLEET_PAN, processing="312000")
        answer = await exchange(conn, request)
        assert answer.get(39) == approved
        assert (answer.get(54) or "")[:4] == "2002"  # the account type asked for (20)
        # A reversal naming the inquiry finds no original: nothing goes back.
        if family == Family.ISO1993:
            reference = {56: OriginalData.of(request.mti, request.fields).encode()}
        else:
            reference = {90: OriginalElements.of(request.mti, request.fields).encode()}
        undo = card_request(reversal, "000011", FLEET_PAN, 0).with_fields(reference)
        assert (await exchange(conn, undo)).get(39) in ("400", "00")
        assert sim.logic.ledger.balances() == {**before, f"fleet/{FLEET_PAN}": 15000}
        assert (sim.logic.reversals_applied, sim.logic.completions_applied) == (0, 0)
        assert sim.balance("fleet", FLEET_PAN) == 15000
    finally:
        await conn.aclose()


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_inquiry_without_a_balance_rule_is_declined_no_account(
    start_sim: StartSim, family: Family
) -> None:
    dialect, auth, _, _, _, no_account, declined = FAMILIES[family]
    sim = await start_sim(dialect)
    assert sim.port is not None
    conn = await HostConnection.open("127.0.0.1", sim.port, sim.wire)
    try:
        answer = await exchange(conn, inquiry(auth, "000020", TEST_PAN))
        assert (answer.get(39), answer.get(54)) == (no_account, None)
        # A card a decline rule names is declined with that rule's code.
        answer = await exchange(conn, inquiry(auth, "000021", "4000000000000119"))
        assert (answer.get(39), answer.get(54)) == (declined, None)
        # An ordinary pre-authorisation of the fleet card is not an inquiry.
        answer = await exchange(conn, card_request(auth, "000022", FLEET_PAN, 1000))
        assert answer.get(54) is None
        assert sim.balance("fleet", FLEET_PAN) == 14000
    finally:
        await conn.aclose()


def _one_case(path: Path, name: str) -> Script:
    script = load_script(path)
    [case] = [c for c in script.cases if c.name.startswith(name)]
    sign_on = next(c for c in script.cases if "sign-on" in c.name)
    return attrs.evolve(script, cases=(sign_on, case))


@pytest.mark.parametrize(
    ("dialect", "path", "name"),
    [
        ("ifsf", "01-ifsf-indoor.toml", "balance inquiry"),
        ("iso87ascii", "04-iso87.toml", "0100 balance inquiry"),
    ],
)
async def test_certification_case_passes_against_the_host(
    start_sim: StartSim, dialect: str, path: str, name: str
) -> None:
    """The conf/cert case itself, the host standing in for the switch (which must
    relay field 54 for the case to pass in the demo)."""
    script = _one_case(ROOT / "conf" / "cert" / path, name)
    assert script.terminal.wire.dialect.name == dialect
    sim = await start_sim(attrs.evolve(script.terminal.wire, tpdu=None), kek=KEK)
    [inquiry_case] = [c for c in script.cases if c.name.startswith(name)]
    expectations = [getattr(s, "expect", None) for s in inquiry_case.steps]
    assert any(e is not None and e.available_balance is not None for e in expectations)
    assert sim.port is not None
    results = await run_script(script, ("127.0.0.1", sim.port))
    assert [(r.name, r.reason) for r in results if not r.passed] == []
    assert sim.logic.balance_inquiries == 1


async def test_a_wrong_available_balance_fails_with_the_balance_shown(
    start_sim: StartSim,
) -> None:
    sim = await start_sim("ifsf")

    def steps(balance: int) -> list[dict[str, object]]:
        return [{"send": "balance_inquiry", "expect": {"available_balance": balance}}]

    script = parse_script(
        {
            "terminal": {"terminal_id": "T0000002", "dialect": "ifsf", "timeout_s": 2.0},
            "cases": [
                {"name": "right", "pan": FLEET_PAN, "steps": steps(15000)},
                {"name": "wrong", "pan": FLEET_PAN, "steps": steps(1)},
                {"name": "no field 54", "pan": TEST_PAN, "steps": steps(0)},
            ],
        }
    )
    assert sim.port is not None
    right, wrong, absent = await run_script(script, ("127.0.0.1", sim.port))
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
    start_sim: StartSim,
) -> None:
    """The terminal does not take an inquiry for the pre-authorisation a completion names."""
    sim = await start_sim("ifsf")
    script = parse_script(
        {
            "terminal": {"terminal_id": "T0000003", "dialect": "ifsf", "timeout_s": 2.0},
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
                        {"send": "balance_inquiry", "expect": {"available_balance": 12000}},
                    ],
                }
            ],
        }
    )
    assert sim.port is not None
    [result] = await run_script(script, ("127.0.0.1", sim.port))
    assert result.passed, result.reason
    assert sim.logic.completions_applied == 1
