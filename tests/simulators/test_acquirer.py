"""The acquirer simulator over real sockets: each action, network management, MACs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio
from forecourt.codecs.dialect import encode, mac_input
from forecourt.codecs.framing import encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.simulators.acquirer import (
    AcquirerSimulator,
    load_acquirer_config,
    parse_acquirer_config,
    simple_config,
)
from forecourt.simulators.client import ConnectionClosed, HostConnection
from forecourt.simulators.rules import Delay, Rule

from .conftest import FLEET_PAN, TEST_PAN, ZAK

StartHost = Callable[..., Awaitable[AcquirerSimulator]]
ROOT = Path(__file__).resolve().parents[2]


def purchase(amount: int, stan: str, pan: str = TEST_PAN, mti: str = "1200") -> Message:
    return Message(
        mti,
        {
            "2": pan,
            "3": "000000",
            "4": f"{amount:012d}",
            "7": "1122101010",
            "11": stan,
            "12": "261122101010",
            "41": "T0000001",
            "42": "FORECOURT000001",
            "49": "978",
        },
    )


_open: list[HostConnection] = []


async def connect(sim: AcquirerSimulator) -> HostConnection:
    assert sim.port is not None
    conn = await HostConnection.open("127.0.0.1", sim.port, sim.wire)
    _open.append(conn)
    return conn


@pytest.fixture(autouse=True)
async def _close_connections() -> AsyncIterator[None]:
    yield
    while _open:
        await _open.pop().aclose()


RULES = [
    Rule("decline", "decline", amount_min=100, amount_max=100, code="insufficient_funds"),
    Rule("delay", "delay", amount_min=200, amount_max=200, delay=Delay(0.2, 0.2)),
    Rule("drop", "drop", amount_min=300, amount_max=300),
    Rule("twice", "twice", amount_min=400, amount_max=400),
    Rule("late", "late", amount_min=500, amount_max=500, delay=Delay(0.3, 0.3)),
    Rule("close", "close", amount_min=600, amount_max=600),
]


async def test_approve_echoes_fields_and_sets_approval_code(start_host: StartHost) -> None:
    sim = await start_host(RULES)
    conn = await connect(sim)
    await conn.send(purchase(1000, "000001"))
    answer = await conn.receive()
    assert answer.mti == "1210"
    for n in ("3", "4", "7", "11", "12", "41", "42", "49"):
        assert answer.get(int(n)) == purchase(1000, "000001").get(int(n))
    assert answer.get(39) == "000"
    assert answer.get(38) is not None and len(answer.get(37) or "") == 12
    assert answer.get(2) is None
    record = sim.received[-1]
    assert (record.mti, record.stan, record.action_code) == ("1200", "000001", "000")
    assert record.masked_pan == "476173******0010"
    await conn.aclose()


async def test_decline_and_a_fleet_card_approved_in_full(start_host: StartHost) -> None:
    sim = await start_host(RULES)
    conn = await connect(sim)
    await conn.send(purchase(100, "000002"))
    assert (await conn.receive()).get(39) == "116"
    await conn.send(purchase(8000, "000003", pan=FLEET_PAN))
    answer = await conn.receive()  # no balances here: the switch's ledger has them
    assert (answer.get(39), answer.get(4), answer.get(54)) == ("000", "000000008000", None)
    assert sim.counts_by_action_code() == {"116": 1, "000": 1}
    await conn.aclose()


async def test_delay_drop_twice_late_close(start_host: StartHost) -> None:
    sim = await start_host(RULES)
    conn = await connect(sim)
    started = trio.current_time()
    await conn.send(purchase(200, "000010"))
    assert (await conn.receive()).get(11) == "000010"
    assert trio.current_time() - started >= 0.19

    await conn.send(purchase(300, "000011"))  # dropped
    await conn.send(purchase(400, "000012"))  # answered twice
    first, second = await conn.receive(), await conn.receive()
    assert first.get(11) == second.get(11) == "000012"

    await conn.send(purchase(500, "000013"))  # late: after 0.3 s
    with trio.move_on_after(0.15) as early:
        await conn.receive()
    assert early.cancelled_caught
    assert (await conn.receive()).get(11) == "000013"

    await conn.send(purchase(600, "000014"))  # close
    with pytest.raises(ConnectionClosed), trio.fail_after(2):
        await conn.receive()
    assert sim.count(delivery="drop") == 1 and sim.count(delivery="close") == 1
    assert sim.count(mti="1200") == 5
    await conn.aclose()


async def test_pipelined_requests_on_many_connections(start_host: StartHost) -> None:
    sim = await start_host()
    conns = [await connect(sim) for _ in range(5)]
    for c in conns:
        frames = b"".join(c.frame(purchase(1000, f"{n:06d}")) for n in range(1, 21))
        await c.send_raw(frames)
    for c in conns:
        stans = {(await c.receive()).get(11) for _ in range(20)}
        assert len(stans) == 20
        await c.aclose()
    assert sim.total == 100 and sim.connections_accepted == 5


@pytest.mark.parametrize(
    ("dialect", "mti", "function", "code"),
    [
        ("ifsf", "1804", {"24": "831"}, "800"),
        ("iso87ascii", "0800", {"70": "301"}, "00"),
        ("iso87bcd", "0800", {"70": "001"}, "00"),
    ],
)
async def test_echo_and_sign_on(
    start_host: StartHost, dialect: str, mti: str, function: dict[str, str], code: str
) -> None:
    sim = await start_host(dialect=dialect, header="4a", tpdu=dialect == "iso87bcd")
    conn = await connect(sim)
    await conn.send(Message(mti, {"7": "1122101010", "11": "000077", **function}))
    answer = await conn.receive()
    assert answer.mti == response_mti(mti)
    assert (answer.get(11), answer.get(39)) == ("000077", code)
    await conn.aclose()


@pytest.mark.parametrize("algorithm", ["retail", "cmac"])
async def test_mac_verified_and_generated_under_the_zak(
    start_host: StartHost, algorithm: str
) -> None:
    zak = prepare_mac(ZAK, MacAlgorithm(algorithm))
    sim = await start_host(zak=zak)
    conn = await connect(sim)
    await conn.send(purchase(1000, "000031"), zak.generate)
    raw = await conn.receive_payload()
    answer = await _decode(sim, raw)
    assert answer.get(39) == "000"
    assert zak.verify(mac_input(raw), bytes.fromhex(answer.get(64) or ""))

    await conn.send(purchase(1000, "000032"), lambda data: bytes(8))  # wrong MAC
    assert (await conn.receive()).get(39) == "916"
    await conn.send(purchase(1000, "000033"))  # no MAC at all
    assert (await conn.receive()).get(39) == "916"
    assert [r.mac for r in sim.received] == ["ok", "bad", "absent"]
    await conn.aclose()


async def _decode(sim: AcquirerSimulator, raw: bytes) -> Message:
    from forecourt.codecs.dialect import decode

    return decode(sim.wire.dialect, raw)


async def test_records_file_masks_the_pan(start_host: StartHost, tmp_path: Path) -> None:
    path = tmp_path / "received.jsonl"
    config = parse_acquirer_config({"record": {"file": str(path)}})
    sim = await start_host(config=config)
    conn = await connect(sim)
    await conn.send(purchase(1000, "000050"))
    await conn.receive()
    await conn.aclose()
    sim.log.flush()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["masked_pan"] == "476173******0010"
    assert TEST_PAN not in path.read_text()


async def test_undecodable_request_gets_format_error_or_close(start_host: StartHost) -> None:
    sim = await start_host()
    conn = await connect(sim)
    payload = encode(sim.wire.dialect, purchase(1000, "000060")) + b"XYZ"  # trailing bytes
    await conn.send_raw(encode_frame(sim.wire.framing, payload))
    answer = await conn.receive()
    assert (answer.get(39), answer.get(11)) == ("904", "000060")
    await conn.send_raw(b"\x00\x04ABCD")
    with pytest.raises(ConnectionClosed), trio.fail_after(2):
        await conn.receive()
    await conn.aclose()


async def test_example_config_parses() -> None:
    config = load_acquirer_config(ROOT / "conf" / "sim" / "acquirer.toml")
    actions = {r.action for r in config.rules}
    assert {"approve", "decline", "drop", "late"} <= actions
    assert not any(r.pan_prefixes and r.pan_prefixes[0].startswith("707") for r in config.rules)


async def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"rules\[0\]\.actoin: unknown key"):
        parse_acquirer_config({"rules": [{"action": "approve", "actoin": "x"}]})
    with pytest.raises(ValueError, match=r"rules\[0\]\.account: unknown key"):
        parse_acquirer_config({"rules": [{"action": "approve", "account": "fleet"}]})
    with pytest.raises(ValueError, match=r"accounts: unknown key"):
        parse_acquirer_config({"accounts": [{"name": "fleet", "balance": 1}]})
    with pytest.raises(ValueError, match=r"rules\[0\]\.code"):
        parse_acquirer_config(
            {"listen": {"dialect": "iso87ascii"}, "rules": [{"action": "decline", "code": "116"}]}
        )
    assert simple_config().wire.dialect.name == "ifsf"
