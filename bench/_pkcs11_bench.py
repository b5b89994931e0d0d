"""`keys_bench.py --backend pkcs11`: MACs through the pkcs11 backend on a SoftHSM2
token made for the run in a temporary folder (its own softhsm2.conf and
`softhsm2-util --init-token`), keys generated in the token.

Reports µs per call one at a time (what a transaction waits for: the worker-thread
hop plus the token's own work), calls per second with many callers over the
session pool, the same MACs through the software backend for comparison, what the
token costs one transaction (2 MAC verifies + 2 MAC generates), an AES DUKPT MAC
derived in the token (a counter with 7 one-bits: 9 derivations) and the load
average while it ran (the machine is shared: read the figures with it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pkcs11
import trio
from forecourt.keys.crypto import Algorithm
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm
from forecourt.keys.model import KeyType
from forecourt.keys.pkcs11_module import Pkcs11Module, Pkcs11Settings, library_lock
from forecourt.keys.pkcs11_token import TokenSession
from forecourt.keys.security_module import DukptKeyUsage, KeyRef, SecurityModule
from forecourt.keys.software_module import SoftwareModule

PIN = "24680"
KSN = bytes.fromhex("1234567890123456") + (0x00012345).to_bytes(4, "big")  # 7 one-bits


def _token(folder: Path) -> Pkcs11Settings:
    if shutil.which("softhsm2-util") is None:
        raise SystemExit("softhsm2 is not installed: apt-get install softhsm2")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        (
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--so-pin",
            "13579",
            "--pin",
            PIN,
        ),
        check=True,
        capture_output=True,
    )
    return Pkcs11Settings(token_label="bench", pin_env="FORECOURT_BENCH_PKCS11_PIN", sessions=4)


async def _per_call(fn: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(50):
        await fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            await fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return round(best * 1e6, 1)


async def _per_second(fn: Callable[[], Awaitable[object]], calls: int, callers: int) -> float:
    each = calls // callers
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(callers):

            async def loop() -> None:
                for _ in range(each):
                    await fn()

            nursery.start_soon(loop)
    return round(each * callers / (time.perf_counter() - start))


async def _macs(
    module: SecurityModule, refs: dict[str, KeyRef], data: bytes, calls: int, prefix: str
) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, alg in (("retail", MacAlgorithm.RETAIL), ("cmac", MacAlgorithm.CMAC)):
        ref = refs[name]
        mac = await module.generate_mac(ref, alg, data)

        async def generate(r: KeyRef = ref, a: MacAlgorithm = alg) -> bytes:
            return await module.generate_mac(r, a, data)

        async def verify(r: KeyRef = ref, a: MacAlgorithm = alg, m: bytes = mac) -> bool:
            return await module.verify_mac(r, a, data, m)

        out[f"{prefix}_{name}_generate_us"] = await _per_call(generate, calls)
        out[f"{prefix}_{name}_verify_us"] = await _per_call(verify, calls)
        if prefix == "pkcs11":
            out[f"{prefix}_{name}_verify_per_second_8_callers"] = await _per_second(
                verify, calls, 8
            )
    return out


def _in_token(
    settings: Pkcs11Settings, refs: dict[str, KeyRef], data: bytes, calls: int
) -> dict[str, float]:
    """The token's own cost: the same MACs on a session of this thread, no thread
    hop per call (what the backend adds on top is the hop to a worker thread)."""
    token = pkcs11.lib(settings.library).get_token(token_label=settings.token_label)
    session = TokenSession(token.open(rw=True))  # the module's login covers it
    out: dict[str, float] = {}
    try:
        with library_lock(settings.library):
            for name, retail in (("retail", True), ("cmac", False)):
                label = refs[name].handle
                session.mac(label, retail, data)
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    for _ in range(calls):
                        session.mac(label, retail, data)
                    best = min(best, (time.perf_counter() - start) / calls)
                out[f"token_only_{name}_generate_us"] = round(best * 1e6, 1)
    finally:
        session.close()
    return out


async def _measure(settings: Pkcs11Settings, data: bytes, calls: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    out: dict[str, Any] = {}
    async with await Pkcs11Module.open_module(settings, {settings.pin_env: PIN}) as token:
        refs = {
            "retail": await token.generate_key(KeyType.TAK, Algorithm.TDES2),
            "cmac": await token.generate_key(KeyType.TAK, Algorithm.AES128),
        }
        out |= await _macs(token, refs, data, calls, "pkcs11")
        out["pkcs11_echo_us"] = await _per_call(lambda: token.echo(b"x"), calls)
        bdk = await token.generate_key(KeyType.BDK, Algorithm.AES128)
        out["pkcs11_dukpt_mac_us"] = await _per_call(
            lambda: token.dukpt_mac(bdk, KSN, DukptKeyUsage.MAC_GENERATION, data), calls // 5
        )
        out |= await trio.to_thread.run_sync(_in_token, settings, refs, data, calls)
    software = SoftwareModule(Lmk.generate())
    soft_refs = {
        "retail": await software.generate_key(KeyType.TAK, Algorithm.TDES2),
        "cmac": await software.generate_key(KeyType.TAK, Algorithm.AES128),
    }
    out |= await _macs(software, soft_refs, data, calls * 5, "software")
    soft_bdk = await software.generate_key(KeyType.BDK, Algorithm.AES128)
    out["software_dukpt_mac_cached_us"] = await _per_call(
        lambda: software.dukpt_mac(soft_bdk, KSN, DukptKeyUsage.MAC_GENERATION, data), calls
    )
    for name in ("retail", "cmac"):
        out[f"pkcs11_{name}_per_transaction_us"] = round(
            2 * out[f"pkcs11_{name}_generate_us"] + 2 * out[f"pkcs11_{name}_verify_us"], 1
        )
    out["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    out["cpus"] = os.cpu_count()
    return out


def pkcs11_figures(data: bytes, calls: int = 1000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = _token(Path(tmp))
        out = trio.run(_measure, settings, data, calls)
    return {"backend": "pkcs11", "message_bytes": len(data), **out}
