"""Security-module and DUKPT figures for bench/keys_bench.py (µs per call).

Through the software backend's async protocol (awaited in one trio run, so the
figure includes the await, not a trio start-up): MAC generate / verify, DUKPT
MAC with the initial-key cache warm and with every call a cache miss, and the
bare derivations (AES from the BDK, AES from a cached initial key, TDES).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

import trio
from forecourt.keys import dukpt_aes, dukpt_tdes
from forecourt.keys.crypto import Algorithm, generate_key
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm
from forecourt.keys.model import KeyType
from forecourt.keys.security_module import DukptKeyUsage
from forecourt.keys.software_module import SoftwareModule


async def _best_us(fn: Callable[[], Awaitable[object]], number: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(number):
            await fn()
        best = min(best, time.perf_counter() - start)
    return round(best / number * 1e6, 3)


def _sync_us(fn: Callable[[], object], number: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, time.perf_counter() - start)
    return round(best / number * 1e6, 3)


async def _figures(data: bytes) -> dict[str, object]:
    m = SoftwareModule(Lmk.generate(), initial_key_cache_size=1)
    tak = await m.generate_key(KeyType.TAK, Algorithm.TDES2)
    cmac = await m.generate_key(KeyType.TAK, Algorithm.AES128)
    r_mac = await m.generate_mac(tak, MacAlgorithm.RETAIL, data)
    c_mac = await m.generate_mac(cmac, MacAlgorithm.CMAC, data)
    bdk_key = generate_key(Algorithm.AES128)
    bdk = m.ref_of(bdk_key, KeyType.BDK, Algorithm.AES128)
    ikid = os.urandom(8)
    ksn = dukpt_aes.ksn_of(ikid, 0x00012345)  # 7 one-bits: a typical walk
    other = dukpt_aes.ksn_of(os.urandom(8), 0x00012345)
    flip = [ksn, other]

    async def dukpt_miss() -> bytes:  # cache of one, two terminals alternating
        flip.reverse()
        return await m.dukpt_mac(bdk, flip[0], DukptKeyUsage.MAC_GENERATION, data)

    n = 5_000
    out: dict[str, object] = {
        "module_retail_generate_us": await _best_us(
            lambda: m.generate_mac(tak, MacAlgorithm.RETAIL, data), n
        ),
        "module_retail_verify_us": await _best_us(
            lambda: m.verify_mac(tak, MacAlgorithm.RETAIL, data, r_mac), n
        ),
        "module_cmac_generate_us": await _best_us(
            lambda: m.generate_mac(cmac, MacAlgorithm.CMAC, data), n
        ),
        "module_cmac_verify_us": await _best_us(
            lambda: m.verify_mac(cmac, MacAlgorithm.CMAC, data, c_mac), n
        ),
        "dukpt_ksn_one_bits": bin(0x00012345).count("1"),
        "module_dukpt_mac_cached_us": await _best_us(
            lambda: m.dukpt_mac(bdk, ksn, DukptKeyUsage.MAC_GENERATION, data), 2_000
        ),
        "module_dukpt_mac_uncached_us": await _best_us(dukpt_miss, 2_000),
    }
    initial = dukpt_aes.aes_initial_key(bdk_key, ikid)
    tdes_bdk = generate_key(Algorithm.TDES2)
    tdes_ksn = bytes.fromhex("FFFF9876543210E12345")
    out |= {
        "aes_working_key_from_bdk_us": _sync_us(
            lambda: dukpt_aes.aes_working_key(bdk_key, ksn, DukptKeyUsage.PIN_ENCRYPTION), 2_000
        ),
        "aes_working_key_from_initial_us": _sync_us(
            lambda: dukpt_aes.aes_working_key_from_initial(
                initial, ksn, DukptKeyUsage.PIN_ENCRYPTION, Algorithm.AES128
            ),
            2_000,
        ),
        "tdes_session_key_us": _sync_us(
            lambda: dukpt_tdes.tdes_session_key(tdes_bdk, tdes_ksn, dukpt_tdes.TdesVariant.PIN),
            2_000,
        ),
    }
    return out


def figures(data: bytes) -> dict[str, object]:
    async def main() -> dict[str, object]:
        return await _figures(data)

    return trio.run(main)
