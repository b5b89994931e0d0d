"""The terminal simulator and its scripts, against the acquirer simulator as the peer.

With a clear KEK configured the host simulator stands in for the switch
towards terminals: it delivers a TAK under the KEK at sign-on and key change
and MACs its answers with it, so the whole key path of the terminal is tested.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
from forecourt.simulators.acquirer import AcquirerSimulator, simple_config
from forecourt.simulators.rules import Delay, Rule
from forecourt.simulators.script import load_script, parse_script
from forecourt.simulators.terminal import run_script, write_junit
from forecourt.switch.cli import main as forecourt_main

from .conftest import KEK

StartHost = Callable[..., Awaitable[AcquirerSimulator]]
ROOT = Path(__file__).resolve().parents[2]

HEADER = f"""
[terminal]
terminal_id = "T0000001"
merchant_id = "FORECOURT000001"
dialect = "ifsf"
kek = "{KEK.hex().upper()}"
pan = "4761739001010010"
timeout_s = 2.0
"""

SCRIPT = (
    HEADER
    + """
[[cases]]
name = "sign-on delivers a TAK"
[[cases.steps]]
send = "sign_on"
expect = { action_code = "network_accepted", present = ["96"], mac = "absent" }

[[cases]]
name = "indoor purchase, MAC'd both ways"
[[cases.steps]]
send = "purchase"
fields = { "4" = "000000002500" }
expect.action_code = "approved"
expect.mac = "required"
expect.present = ["38"]
expect.fields = { "4" = "000000002500" }

[[cases]]
name = "bad MAC is refused"
[[cases.steps]]
send = "purchase"
mac = "corrupt"
expect = { action_code = "mac_incorrect" }

[[cases]]
name = "outdoor: pre-authorisation, completion, reversal, shift close"
profile = "outdoor"
[[cases.steps]]
send = "preauth"
fields = { "4" = "000000010000" }
expect = { action_code = "approved" }
[[cases.steps]]
send = "completion"
fields = { "4" = "000000004321", "24" = "202" }
expect = { action_code = "approved", mti = "1230" }
[[cases.steps]]
send = "reversal"
expect = { action_code = "reversal_accepted" }
[[cases.steps]]
send = "reconciliation"
expect = { action_code = "reconciled" }

[[cases]]
name = "key change, then the old key is refused"
[[cases.steps]]
send = "key_change"
expect = { action_code = "800" }
[[cases.steps]]
send = "purchase"
mac = "previous"
expect = { action_code = "916" }
[[cases.steps]]
send = "purchase"
expect = { action_code = "000", mac = "required" }

[[cases]]
name = "retransmission answered again"
[[cases.steps]]
send = "purchase"
[[cases.steps]]
send = "purchase"
stan = "same"
[[cases.steps]]
expect = { action_code = "000" }
[[cases.steps]]
expect = { action_code = "000" }

[[cases]]
name = "host drops, nothing comes back"
[[cases.steps]]
send = "purchase"
fields = { "4" = "000000000300" }
[[cases.steps]]
expect_nothing = 0.2

[[cases]]
name = "oversize frame closes the connection"
[[cases.steps]]
oversize = 9000
[[cases.steps]]
expect_close = 2.0
[[cases.steps]]
reconnect = true
[[cases.steps]]
send = "echo"
expect = { action_code = "800" }

[[cases]]
name = "garbage frame closes the connection"
[[cases.steps]]
frame = "00FF"
[[cases.steps]]
expect_close = 2.0
"""
)

RULES = [Rule("drop", "drop", amount_min=300, amount_max=300)]


async def test_script_passes_against_the_host(start_host: StartHost, tmp_path: Path) -> None:
    sim = await start_host(RULES, kek=KEK)
    path = tmp_path / "cert.toml"
    path.write_text(SCRIPT)
    assert sim.port is not None
    results = await run_script(path, ("127.0.0.1", sim.port))
    failed = [(r.name, r.reason) for r in results if not r.passed]
    assert failed == []
    assert len(results) == 9
    # What reached the host: MAC'd financial messages; sign-on and key change proven.
    assert sim.count(mti="1804") == 3
    network = {r.mac for r in sim.received if r.mti == "1804"}
    assert network == {"ok", None}  # sign-on and key change proven; echo without a MAC
    macs = {r.mac for r in sim.received if r.mti == "1200" and r.action_code == "000"}
    assert macs == {"ok"}
    completion = next(r for r in sim.received if r.mti == "1220")
    assert completion.amount == "000000004321"
    assert sim.received[0].masked_pan is None


PROOFS = (
    HEADER
    + """
[[cases]]
name = "unproven sign-on refused, no keys"
[[cases.steps]]
send = "sign_on"
mac = "none"
expect = { action_code = "mac_incorrect", absent = ["96"], mac = "any" }
[[cases.steps]]
send = "sign_on"
mac = "corrupt"
expect = { action_code = "mac_incorrect", absent = ["96"], mac = "any" }

[[cases]]
name = "proven sign-on delivers"
[[cases.steps]]
send = "sign_on"
expect = { action_code = "network_accepted", present = ["96"] }

[[cases]]
name = "key change under a wrong TAK refused"
[[cases.steps]]
send = "key_change"
mac = "corrupt"
expect = { action_code = "mac_incorrect", absent = ["96"], mac = "any" }
[[cases.steps]]
send = "key_change"
expect = { action_code = "network_accepted", present = ["96"] }
"""
)


async def test_sign_on_and_key_change_proofs_as_the_switch_wants_them(
    start_host: StartHost, tmp_path: Path
) -> None:
    """The terminal MACs a sign-on under the KEK's sign-on key and a key change under
    its TAK; the host standing in for the switch refuses them otherwise."""
    sim = await start_host(kek=KEK)
    path = tmp_path / "proofs.toml"
    path.write_text(PROOFS)
    assert sim.port is not None
    results = await run_script(path, ("127.0.0.1", sim.port))
    assert [(r.name, r.reason) for r in results if not r.passed] == []
    assert [r.mac for r in sim.received if r.mti == "1804"] == ["bad", "bad", "ok", "bad", "ok"]


async def test_a_wrong_expectation_fails_with_a_reason(start_host: StartHost) -> None:
    sim = await start_host()
    script = parse_script(
        {
            "terminal": {"terminal_id": "T0000002", "dialect": "ifsf", "timeout_s": 1.0},
            "cases": [
                {
                    "name": "expects a decline",
                    "steps": [{"send": "purchase", "expect": {"action_code": "declined"}}],
                },
                {
                    "name": "expects a field",
                    "steps": [{"send": "purchase", "expect": {"fields": {"4": "000000000001"}}}],
                },
                {"name": "waits for nothing", "steps": [{"expect": {"within_s": 0.1}}]},
                {"name": "passes", "steps": [{"send": "echo", "expect": {"action_code": "800"}}]},
            ],
        }
    )
    assert sim.port is not None
    results = await run_script(script, f"127.0.0.1:{sim.port}")
    assert [r.passed for r in results] == [False, False, False, True]
    assert results[0].reason == "step 1 (send purchase): action code 000, expected 100"
    assert "field 4 is '000000001000', expected '000000000001'" in (results[1].reason or "")
    assert "no answer for STAN" in (results[2].reason or "")


async def test_no_answer_in_time_fails(start_host: StartHost) -> None:
    sim = await start_host([Rule("slow", "delay", delay=Delay(0.5, 0.5))])
    script = parse_script(
        {
            "terminal": {"terminal_id": "T0000003", "timeout_s": 0.2},
            "cases": [{"name": "too slow", "steps": [{"send": "purchase", "expect": {}}]}],
        }
    )
    assert sim.port is not None
    [result] = await run_script(script, ("127.0.0.1", sim.port))
    assert not result.passed
    assert "no answer for STAN 000001 within 0.2 s" in (result.reason or "")


async def test_1987_bcd_with_tpdu(start_host: StartHost) -> None:
    sim = await start_host(dialect="iso87bcd", tpdu=True, kek=KEK)
    script = parse_script(
        {
            "terminal": {
                "terminal_id": "T0000004",
                "dialect": "iso87bcd",
                "tpdu": "6000010000",
                "kek": KEK.hex(),
            },
            "cases": [
                {
                    "name": "sign-on and purchase",
                    "steps": [
                        {"send": "sign_on", "expect": {"action_code": "00", "present": ["48"]}},
                        {
                            "send": "purchase",
                            "expect": {"action_code": "approved", "mac": "required"},
                        },
                        {"send": "reversal", "expect": {"action_code": "00", "mti": "0410"}},
                    ],
                }
            ],
        }
    )
    assert sim.port is not None
    [result] = await run_script(script, ("127.0.0.1", sim.port))
    assert result.passed, result.reason
    assert [r.mti for r in sim.received] == ["0800", "0200", "0400"]


async def test_certification_suite_parses() -> None:
    scripts = sorted((ROOT / "conf" / "cert").glob("*.toml"))
    assert scripts
    names = [case.name for p in scripts for case in load_script(p).cases]
    assert len(names) == len(set(names)) >= 15


async def test_script_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"cases\[0\]\.steps\[0\]\.send: must be one of"):
        parse_script(
            {
                "terminal": {"terminal_id": "T1"},
                "cases": [{"name": "x", "steps": [{"send": "purchse"}]}],
            }
        )
    with pytest.raises(ValueError, match=r"cases\[0\]\.steps\[0\]: a step needs exactly one"):
        parse_script(
            {
                "terminal": {"terminal_id": "T1"},
                "cases": [{"name": "x", "steps": [{"wait": 1, "disconnect": True}]}],
            }
        )


async def test_junit_report(tmp_path: Path) -> None:
    from forecourt.simulators.terminal import CaseResult

    path = tmp_path / "junit.xml"
    write_junit(
        [CaseResult("ok", True, 0.1), CaseResult("bad", False, 0.2, "step 1: no")], path, "cert"
    )
    root = ET.parse(path).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    assert root.findall("testcase")[1].find("failure") is not None


def test_cli_exit_code_and_junit(tmp_path: Path) -> None:
    """`forecourt sim terminal` against a host running in another thread."""
    ready = threading.Event()
    stop = threading.Event()
    box: dict[str, int] = {}

    def serve() -> None:
        async def main() -> None:
            sim = AcquirerSimulator(simple_config(kek=KEK))
            async with trio.open_nursery() as nursery:
                box["port"] = await nursery.start(sim.run)
                ready.set()
                while not stop.is_set():
                    await trio.sleep(0.02)
                nursery.cancel_scope.cancel()

        trio.run(main)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(5)
        good = tmp_path / "good.toml"
        good.write_text(
            HEADER
            + """
[[cases]]
name = "sign-on"
[[cases.steps]]
send = "sign_on"
expect = { action_code = "800" }
"""
        )
        bad = tmp_path / "bad.toml"
        bad.write_text(
            HEADER
            + """
[[cases]]
name = "wrong"
[[cases.steps]]
send = "echo"
expect = { action_code = "000" }
"""
        )
        address = f"127.0.0.1:{box['port']}"
        junit = tmp_path / "out.xml"
        assert (
            forecourt_main(
                [
                    "sim",
                    "terminal",
                    "--script",
                    str(good),
                    "--switch",
                    address,
                    "--junit",
                    str(junit),
                ]
            )
            == 0
        )
        assert ET.parse(junit).getroot().get("failures") == "0"
        assert (
            forecourt_main(
                [
                    "sim",
                    "terminal",
                    "--script",
                    str(good),
                    "--script",
                    str(bad),
                    "--switch",
                    address,
                ]
            )
            == 1
        )
    finally:
        stop.set()
        thread.join()
