"""No clear key and no clear PIN block is ever in a running switch on a payment HSM.

`forecourt serve` (a real process) on a payshield key store, against the HSM
simulator, serves a terminal's sign-on (its key exchange made in the HSM), an
echo, a purchase with a PIN (translated TPK -> ZPK in the HSM and verified at the
acquirer simulator under its ZPK), a pre-authorisation and its completion advice
(sent on by the SAF sender, MAC'd by the HSM) and a reversal. While it still runs,
the test reads every readable mapping of the switch process (/proc/PID/maps and
/proc/PID/mem: the test runs as root, or as the switch's user with ptrace
allowed) plus its keys.db and journal files, and searches them for every clear key
the HSM holds (each row's block opened under the simulator's LMK, which the test
has: it plays the HSM), the clear PIN block and the PIN field, raw and in hex.

The same run on the software backend finds them: the search is not blind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import trio
from forecourt.keys.crypto import Algorithm, Family, adjust_parity, generate_key, kcv, xor
from forecourt.keys.exchange import install_key_change
from forecourt.keys.key_rows import select_all
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.keys.model import KeyType
from forecourt.keys.pin import PinKey, pan_field_0
from forecourt.keys.sign_on import sign_on_key
from forecourt.keys.store import KeyStore
from forecourt.keys.tr31 import unwrap_any
from forecourt.simulators.acquirer import AcquirerSimulator
from forecourt.simulators.acquirer_config import load_acquirer_config
from forecourt.simulators.hsm_keys import open_block
from forecourt.simulators.script import parse_script
from forecourt.simulators.terminal import run_script

from tests.keys.hsm_thread import ThreadedHsm, hsm_in_thread
from tests.switch.harness import _unused_port
from tests.switch.payshield_store import console_formed
from tests.switch.test_switch_on_module import CONF, LINK, PIN_PAN, SCRIPT, TERMINAL

FORECOURT = [sys.executable, "-m", "forecourt.switch.cli"]
PIN = "1234"  # SCRIPT's PIN purchase, which conf/sim/acquirer.toml approves
# fresh keys, not the well-known test keys: those are in the switch's code as text
# (CLI examples, the demo's constants), where a search would rightly find them
KEK = generate_key(Algorithm.TDES2)
ZMK_1, ZMK_2 = generate_key(Algorithm.TDES2), generate_key(Algorithm.TDES2)


@attrs.frozen
class Made:
    lmk_file: Path
    zak: bytes
    zpk: PinKey


def make_store(data_dir: Path, lmk_file: Path, hsm: ThreadedHsm | None) -> Made:
    """The terminal (SCRIPT's KEK) and the link in a store of either backend; the
    link's ZAK and ZPK as the acquirer takes them under the ZMK."""
    lmk = Lmk.generate()
    lmk.write(lmk_file)
    zmk = adjust_parity(xor(ZMK_1, ZMK_2))
    if hsm is None:
        with KeyStore.init(data_dir, lmk=lmk) as store:
            store.add_terminal(TERMINAL, components=(ZMK_2, adjust_parity(xor(KEK, ZMK_2))))
            payload = store.add_acquirer(LINK, (ZMK_1, ZMK_2)).payload
    else:
        t2 = Algorithm.TDES2
        sign_on = sign_on_key(KEK, TERMINAL, t2)
        with KeyStore.init(data_dir, lmk=lmk, module="payshield", payshield=hsm.settings) as store:
            store.add_terminal_blocks(
                TERMINAL, Family.TDES, console_formed(hsm.lmk, KEK, "K0", t2), kcv(KEK, t2),
                console_formed(hsm.lmk, sign_on, "M3", t2), kcv(sign_on, t2),
            )  # fmt: skip
            block = console_formed(hsm.lmk, zmk, "K0", t2)
            payload = store.add_acquirer_blocks(LINK, t2, block, kcv(zmk, t2)).payload
    delivered = install_key_change(zmk, payload)
    zpk = delivered.get(KeyType.ZPK)
    return Made(lmk_file, delivered.get(KeyType.ZAK).key, PinKey(zpk.key, zpk.algorithm))


def config_text(data_dir: Path, lmk_file: Path, port: int, acquirer: int, hsm: int | None) -> str:
    keys = f'lmk_file = "{lmk_file}"\n'
    if hsm is not None:
        keys += f'backend = "payshield"\n[keys.payshield]\nhost = "127.0.0.1"\nport = {hsm}\n'
    return f"""
node = "no-clear"
data_dir = "{data_dir}"
default_route = "{LINK}"
[logging]
level = "warning"
format = "json"
[saf]
backoff_initial_s = 0.2
backoff_max_s = 1.0
[[listeners]]
name = "pos"
host = "127.0.0.1"
port = {port}
dialect = "ifsf"
terminal_group = "g"
[[terminal_groups]]
name = "g"
terminals = "registry"
mac_required = true
[[acquirers]]
name = "{LINK}"
host = "127.0.0.1"
port = {acquirer}
dialect = "ifsf"
mac = true
connections = 1
request_timeout_s = 3.0
echo_interval_s = 0.5
sign_on = true
acquirer_id = "12345678"
[keys]
{keys}"""


def readable_memory(pid: int) -> bytes:
    """Every readable mapping of process `pid`, concatenated."""
    out = bytearray()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            if "r" not in parts[1] or (len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            try:
                mem.seek(start)
                out += mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue  # a mapping that went away, or a guard page
    return bytes(out)


def forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().upper().encode(), secret.hex().encode()]


def found_in(dump: bytes, secrets: dict[str, bytes]) -> list[str]:
    return sorted(name for name, s in secrets.items() if any(f in dump for f in forms(s)))


def clear_keys(data_dir: Path, lmk_file: Path, hsm: ThreadedHsm | None) -> dict[str, bytes]:
    """Every key the store holds, opened by whoever holds its LMK (the HSM, or the
    software LMK file): KEK, sign-on key, every TAK/TPK/TDK version, ZMK, ZAK, ZPK."""
    lmk = Lmk(bytes.fromhex(lmk_file.read_text().strip()))
    module = "payshield" if hsm else "software"
    settings = hsm.settings if hsm else None
    with (
        KeyStore.open(data_dir, lmk=lmk, module=module, payshield=settings) as store,
        store._db.read() as tx,
    ):
        rows = [r for r in select_all(tx) if not r.erased]
    out: dict[str, bytes] = {}
    for r in rows:
        if hsm is not None:
            key = open_block(hsm.lmk.key, r.key_block).key
        else:
            key = unwrap_any(lmk.key, r.key_block, r.key_type)[1]
        out[r.id] = key
    return out


async def serve_and_dump(tmp_path: Path, payshield: bool) -> tuple[dict[str, bytes], bytes]:
    data_dir, lmk_file = tmp_path / "data", tmp_path / "lmk.key"
    with hsm_in_thread(tmp_path / "hsm") as hsm:
        device = hsm if payshield else None
        made = make_store(data_dir, lmk_file, device)
        acquirer = AcquirerSimulator(
            attrs.evolve(
                load_acquirer_config(CONF / "sim" / "acquirer.toml"),
                port=0,
                zak=prepare_mac(made.zak, MacAlgorithm.RETAIL),
                zpk=made.zpk,
            )
        )
        port = _unused_port()
        async with trio.open_nursery() as nursery:
            acquirer_port = await nursery.start(acquirer.run)
            config = tmp_path / "forecourt.toml"
            hsm_port = hsm.port if payshield else None
            config.write_text(config_text(data_dir, lmk_file, port, acquirer_port, hsm_port))
            process = await trio.lowlevel.open_process(
                [*FORECOURT, "serve", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                with trio.fail_after(30):  # the link signs on (MAC'd by the module) first
                    while not acquirer.received:
                        await trio.sleep(0.1)
                script = {**SCRIPT, "terminal": {**SCRIPT["terminal"], "kek": KEK.hex().upper()}}
                results = await run_script(parse_script(script), ("127.0.0.1", port))
                assert [(r.name, r.reason) for r in results if not r.passed] == []
                await acquirer.wait_received(1, mti="1220", timeout=10.0)  # the SAF sender's
                await acquirer.wait_received(1, mti="1420", timeout=10.0)
                await trio.sleep(1.0)  # an echo test of the link after the traffic
                dump = readable_memory(process.pid)
                for path in sorted(data_dir.iterdir()):
                    if path.is_file():
                        dump += path.read_bytes()
            finally:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(15):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            nursery.cancel_scope.cancel()
        assert [r.mti for r in acquirer.received if r.mac != "ok"] == []
        secrets = clear_keys(data_dir, lmk_file, device)
    pin_field = bytes.fromhex(f"{len(PIN):02X}{PIN}".ljust(16, "F"))
    secrets["clear PIN block"] = xor(pin_field, pan_field_0(PIN_PAN))
    secrets["PIN field"] = pin_field
    return secrets, dump


@pytest.mark.slow
async def test_a_switch_on_the_hsm_holds_no_clear_key_or_pin(tmp_path: Path) -> None:
    secrets, dump = await serve_and_dump(tmp_path, payshield=True)
    assert len(dump) > 10_000_000  # a whole process: its heap, stacks and libraries
    kinds = {name.split("/")[1] for name in secrets if "/" in name}
    assert kinds == {"KEK", "SOK", "TAK", "TPK", "TDK", "ZMK", "ZAK", "ZPK"}
    assert any(name.endswith("/2") for name in secrets)  # the sign-on's key change
    assert found_in(dump, secrets) == []


@pytest.mark.slow
async def test_the_search_finds_them_in_a_software_switch(tmp_path: Path) -> None:
    """The same traffic on the software backend: its PIN keys are in its memory as
    bytes (its MAC keys live inside OpenSSL's contexts, as key schedules)."""
    secrets, dump = await serve_and_dump(tmp_path, payshield=False)
    found = found_in(dump, secrets)
    assert {n.split("/")[1] for n in found if "/" in n} >= {"TPK", "ZPK"}, found
