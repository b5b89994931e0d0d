"""The switch's key operations all go through its security module (issue 22 part 1).

The switch runs with a `RecordingModule`: the software module itself, each call
counted (the real module, observed, not a stand-in). The terminal simulator runs
a certification script against it (sign-on, echo, purchases with and without a
PIN, a pre-authorisation and its completion advice, a reversal) and the acquirer
simulator verifies every MAC it receives under its ZAK and every PIN under its
ZPK. Every case passes as it does on the plain software backend, and every kind
of MAC and PIN operation was the module's: the terminal's TAK both ways, the
sign-on proof, field 52, and the link's ZAK on requests, answers, the SAF
sender's advice and reversal and the link's own echo tests.
"""

from __future__ import annotations

import collections
import functools
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from forecourt.keys.crypto import adjust_parity, xor
from forecourt.keys.exchange import install_key_change
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.keys.model import KeyType
from forecourt.keys.pin import PinKey
from forecourt.keys.security_module import KeyRef, PinBlockFormat
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.store import KeyStore
from forecourt.simulators.acquirer import AcquirerSimulator
from forecourt.simulators.acquirer_config import load_acquirer_config
from forecourt.simulators.script import parse_script
from forecourt.simulators.terminal import run_script
from forecourt.switch.config import parse_config
from forecourt.switch.server import RunningSwitch, run_switch

CONF = Path(__file__).resolve().parents[2] / "conf"
KEK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # the certification scripts' test KEK
COMPONENT_1 = bytes.fromhex("1F1F1F1F1F1F1F1F2E2E2E2E2E2E2E2E")
ZMK_1 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
ZMK_2 = bytes.fromhex("1F1F1F1F1F1F1F1F2E2E2E2E2E2E2E2E")
LINK = "bank"
TERMINAL = "T0000001"
PIN_PAN = "4761739001010036"  # conf/sim/acquirer.toml checks its PIN (1234) under the ZPK


class RecordingModule(SoftwareModule):
    """The software module, each call counted by (operation, key type); the KCVs
    of the keys it verified under. Nothing else changes."""

    def __init__(self, lmk: Lmk) -> None:
        super().__init__(lmk)
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.verified_under: set[str] = set()

    async def generate_mac(self, key: KeyRef, algorithm: MacAlgorithm, data: bytes) -> bytes:
        self.calls["generate_mac", key.key_type.value] += 1
        return await super().generate_mac(key, algorithm, data)

    async def verify_mac(
        self, key: KeyRef, algorithm: MacAlgorithm, data: bytes, mac: bytes
    ) -> bool:
        self.calls["verify_mac", key.key_type.value] += 1
        self.verified_under.add(key.kcv)
        return await super().verify_mac(key, algorithm, data, mac)

    async def translate_pin(
        self,
        source: KeyRef,
        destination: KeyRef,
        pin_block: bytes,
        pan: str,
        source_format: PinBlockFormat,
        destination_format: PinBlockFormat,
    ) -> bytes:
        self.calls["translate_pin", f"{source.key_type.value}>{destination.key_type.value}"] += 1
        return await super().translate_pin(
            source, destination, pin_block, pan, source_format, destination_format
        )


SCRIPT: dict[str, Any] = {
    "name": "switch-on-module",
    "terminal": {
        "terminal_id": TERMINAL,
        "merchant_id": "FORECOURT000001",
        "dialect": "ifsf",
        "framing": "2b",
        "profile": "outdoor",
        "kek": KEK.hex().upper(),
        "pan": "4761739001010010",
        "acquirer_id": "12345678",
        "timeout_s": 10.0,
    },
    "cases": [
        {
            "name": "sign-on",
            "steps": [
                {
                    "send": "sign_on",
                    "expect": {"action_code": "network_accepted", "present": ["96"]},
                }
            ],
        },
        {
            "name": "echo",
            "steps": [{"send": "echo", "expect": {"action_code": "network_accepted"}}],
        },
        {
            "name": "purchase",
            "steps": [
                {"send": "purchase", "expect": {"action_code": "approved", "mac": "required"}}
            ],
        },
        {
            "name": "PIN purchase, PIN verified at the acquirer under its ZPK",
            "pan": PIN_PAN,
            "steps": [
                {
                    "send": "purchase",
                    "pin": "1234",
                    "expect": {"action_code": "approved", "absent": ["52"], "mac": "required"},
                }
            ],
        },
        {
            "name": "wrong PIN: declined by the acquirer",
            "pan": PIN_PAN,
            "steps": [
                {
                    "send": "purchase",
                    "pin": "9999",
                    "expect": {"action_code": "incorrect_pin", "mac": "required"},
                }
            ],
        },
        {
            "name": "pre-authorisation and its completion advice (SAF)",
            "steps": [
                {"send": "preauth", "expect": {"action_code": "approved", "mac": "required"}},
                {
                    "send": "completion",
                    "fields": {"4": "000000004321"},
                    "expect": {"action_code": "approved", "mti": "1230", "mac": "required"},
                },
            ],
        },
        {
            "name": "purchase reversed (SAF)",
            "steps": [
                {"send": "purchase", "expect": {"action_code": "approved"}},
                {
                    "send": "reversal",
                    "fields": {"25": "4000"},
                    "expect": {"action_code": "reversal_accepted", "mti": "1430"},
                },
            ],
        },
    ],
}


def _switch_doc(data_dir: Path, acquirer_port: int) -> dict[str, Any]:
    return {
        "node": "module-test",
        "data_dir": str(data_dir),
        "default_route": LINK,
        "logging": {"level": "warning", "format": "json"},
        "saf": {"backoff_initial_s": 0.2, "backoff_max_s": 1.0},
        "listeners": [
            {
                "name": "pos",
                "host": "127.0.0.1",
                "port": 0,
                "dialect": "ifsf",
                "terminal_group": "g",
            }
        ],
        "terminal_groups": [{"name": "g", "terminals": "registry", "mac_required": True}],
        "acquirers": [
            {
                "name": LINK,
                "host": "127.0.0.1",
                "port": acquirer_port,
                "dialect": "ifsf",
                "mac": True,
                "connections": 1,
                "request_timeout_s": 3.0,
                "echo_interval_s": 0.2,  # the link's own echo tests, MAC'd in the module
                "sign_on": True,
                "acquirer_id": "12345678",
            }
        ],
    }


def _keys(data_dir: Path, lmk: Lmk) -> tuple[bytes, PinKey, str]:
    """A store with the terminal (the scripts' KEK) and the link; the link's clear
    ZAK and ZPK as the acquirer takes them under the ZMK; the sign-on key's KCV."""
    component_2 = xor(KEK, COMPONENT_1)
    with KeyStore.init(data_dir, lmk=lmk) as store:
        store.add_terminal(TERMINAL, actor="test", components=(COMPONENT_1, component_2))
        payload = store.add_acquirer(LINK, (ZMK_1, ZMK_2), actor="test").payload
        sign_on_kcv = store.sign_on_ref(TERMINAL).kcv
    delivered = install_key_change(adjust_parity(xor(ZMK_1, ZMK_2)), payload)
    zpk = delivered.get(KeyType.ZPK)
    return delivered.get(KeyType.ZAK).key, PinKey(zpk.key, zpk.algorithm), sign_on_kcv


@pytest.mark.slow
async def test_every_mac_and_pin_operation_goes_through_the_module(tmp_path: Path) -> None:
    lmk = Lmk.generate()
    zak, zpk, sign_on_kcv = _keys(tmp_path, lmk)
    acquirer = AcquirerSimulator(
        attrs.evolve(
            load_acquirer_config(CONF / "sim" / "acquirer.toml"),
            port=0,
            zak=prepare_mac(zak, MacAlgorithm.RETAIL),
            zpk=zpk,
        )
    )
    module = RecordingModule(lmk)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        acquirer_port = await nursery.start(acquirer.run)
        config = parse_config(_switch_doc(tmp_path, acquirer_port), source="test")
        running: RunningSwitch = await nursery.start(
            functools.partial(run_switch, config, stop=stop, lmk=lmk, module=module)
        )
        with trio.fail_after(5):  # the link signs on (MAC'd in the module) before terminals
            while not acquirer.received:
                await trio.sleep(0.02)
        results = await run_script(parse_script(SCRIPT), ("127.0.0.1", running.ports["pos"]))
        await acquirer.wait_received(1, mti="1220", timeout=10.0)  # the SAF sender's
        await acquirer.wait_received(1, mti="1420", timeout=10.0)
        await trio.sleep(0.5)  # an echo test of the link after the traffic
        stop.set()
        with trio.fail_after(10):
            while any("run_switch" in t.name for t in nursery.child_tasks):
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()

    assert [(r.name, r.passed, r.reason) for r in results] == [
        (r.name, True, None) for r in results
    ]
    received = acquirer.received
    mtis = {r.mti for r in received}
    assert {"1804", "1200", "1100", "1220", "1420"} <= mtis
    # the acquirer verified each message's MAC under its ZAK: the module made them
    assert [r.mti for r in received if r.mac != "ok"] == []
    calls = module.calls
    assert calls["generate_mac", "ZAK"] >= len(received)  # each message to the host
    assert calls["verify_mac", "ZAK"] >= len(received) - 1  # each answer (the last in time)
    assert calls["verify_mac", "TAK"] > 0 and calls["generate_mac", "TAK"] > 0
    assert sign_on_kcv in module.verified_under  # the sign-on proof
    assert calls["translate_pin", "TPK>ZPK"] == 2  # both PIN purchases, nothing else
    assert {op for op, _ in calls} == {"generate_mac", "verify_mac", "translate_pin"}
