"""`keys_bench.py --backend payshield`: MACs and a PIN translation through the
payshield backend against `forecourt sim hsm` in its own process (as an HSM is
its own box), over TCP on 127.0.0.1.

Reports µs per call one at a time (the round trip a transaction waits for) and
calls per second with many callers over the pool, and what the HSM costs one
transaction: verify the terminal's MAC, MAC the request to the acquirer, verify
the acquirer's answer, MAC the answer to the terminal (2 M8 + 2 M6), plus a CA
when a PIN is present. `switch_cpu_per_mac_verify_us` is this process's CPU per
M8 (the backend's own cost; the rest of the round trip is the socket and the HSM).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from forecourt.keys import tr31
from forecourt.keys.crypto import Algorithm, generate_key
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, retail_mac
from forecourt.keys.model import KeyType
from forecourt.keys.payshield_module import PayShieldModule, PayShieldSettings
from forecourt.keys.pin import encrypt_pin_block
from forecourt.keys.security_module import KeyRef, PinBlockFormat
from forecourt.simulators.hsm_keys import form_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _measure(port: int, lmk: Lmk, data: bytes, calls: int) -> dict[str, Any]:
    settings = PayShieldSettings(port=port, connections=8, in_flight=64, timeout_s=5.0)
    async with PayShieldModule(settings) as hsm:
        one, two = generate_key(Algorithm.TDES2), generate_key(Algorithm.TDES2)
        clear_zmk = bytes(a ^ b for a, b in zip(one, two, strict=True))
        zmk = KeyRef(
            KeyType.ZMK, Algorithm.TDES2, "", form_key(lmk, [one, two], "K0", Algorithm.TDES2)
        )
        keys = {}
        for key_type in (KeyType.ZAK, KeyType.TPK, KeyType.ZPK):
            clear = generate_key(Algorithm.TDES2)
            wrapped = tr31.wrap(clear_zmk, Algorithm.TDES2, clear, key_type, Algorithm.TDES2, "E")
            keys[key_type] = (clear, await hsm.import_key(zmk, wrapped, key_type, Algorithm.TDES2))
        zak_clear, zak = keys[KeyType.ZAK]
        mac = retail_mac(zak_clear, data)
        pan = "4761739001010119"
        block = encrypt_pin_block(keys[KeyType.TPK][0], Algorithm.TDES2, "1234", pan)
        iso0 = PinBlockFormat.ISO0

        async def generate() -> None:
            await hsm.generate_mac(zak, MacAlgorithm.RETAIL, data)

        async def verify() -> None:
            assert await hsm.verify_mac(zak, MacAlgorithm.RETAIL, data, mac)

        async def translate() -> None:
            await hsm.translate_pin(
                keys[KeyType.TPK][1], keys[KeyType.ZPK][1], block, pan, iso0, iso0
            )

        async def per_call(fn: Any) -> float:
            for _ in range(50):
                await fn()
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for _ in range(calls):
                    await fn()
                best = min(best, (time.perf_counter() - start) / calls)
            return round(best * 1e6, 1)

        async def per_second(fn: Any, callers: int) -> float:
            each = calls // callers
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(callers):

                    async def loop() -> None:
                        for _ in range(each):
                            await fn()

                    nursery.start_soon(loop)
            return round(each * callers / (time.perf_counter() - start))

        async def switch_cpu(fn: Any) -> float:
            start = time.process_time()
            for _ in range(calls):
                await fn()
            return round((time.process_time() - start) / calls * 1e6, 1)

        out: dict[str, Any] = {
            "switch_cpu_per_mac_verify_us": await switch_cpu(verify),
            "hsm_mac_generate_us": await per_call(generate),
            "hsm_mac_verify_us": await per_call(verify),
            "hsm_pin_translate_us": await per_call(translate),
            "hsm_echo_us": await per_call(lambda: hsm.echo(b"x")),
            "hsm_mac_verify_per_second_16_callers": await per_second(verify, 16),
        }
        out["hsm_per_transaction_us"] = round(
            2 * out["hsm_mac_generate_us"] + 2 * out["hsm_mac_verify_us"], 1
        )
        out["hsm_per_transaction_with_pin_us"] = round(
            out["hsm_per_transaction_us"] + out["hsm_pin_translate_us"], 1
        )
        out["hsm_connections"] = hsm.status()["connected"]
        return out


def payshield_figures(data: bytes, calls: int = 1000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        lmk = Lmk.generate()
        lmk_file = Path(tmp) / "lmk.key"
        lmk.write(lmk_file)
        port = _free_port()
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "forecourt.switch.cli",
                "sim",
                "hsm",
                "--data-dir",
                tmp,
                "--lmk-file",
                str(lmk_file),
                "--port",
                str(port),
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or sim.poll() is not None:
                        raise RuntimeError("the HSM simulator did not start") from None
                    time.sleep(0.1)
            out = trio.run(_measure, port, lmk, data, calls)
        finally:
            sim.terminate()
            sim.wait(timeout=10)
    return {"backend": "payshield", "message_bytes": len(data), **out}
