"""The software security module gives what the in-process functions give.

Properties over random keys, data, PINs and KSNs: its MAC, KCV, PIN translation
and DUKPT results equal keys/mac.py, keys/crypto.py, keys/pin.py and the DUKPT
modules for the same input, and its refusals are ModuleErrors naming the
operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import trio
from forecourt.keys import dukpt_aes, dukpt_tdes
from forecourt.keys.crypto import Algorithm, generate_key, kcv
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, aes_cmac, retail_mac
from forecourt.keys.model import KeyType
from forecourt.keys.pin import decrypt_pin_block, encrypt_pin_block, translate_pin_block
from forecourt.keys.security_module import DukptKeyUsage, ModuleError, PinBlockFormat
from forecourt.keys.software_module import SoftwareModule
from hypothesis import given, settings
from hypothesis import strategies as st

T = TypeVar("T")
LMK = Lmk(bytes(range(32)))
pins = st.text("0123456789", min_size=4, max_size=12)
pans = st.text("0123456789", min_size=13, max_size=19)


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    return trio.run(main)


def module() -> SoftwareModule:
    return SoftwareModule(LMK)


@settings(max_examples=40, deadline=None)
@given(
    family=st.sampled_from([Algorithm.TDES2, Algorithm.AES128]),
    data=st.binary(max_size=300),
)
def test_mac_and_kcv_equal_the_functions(family: Algorithm, data: bytes) -> None:
    m = module()
    key = generate_key(family)
    ref = m.ref_of(key, KeyType.TAK, family)
    alg = MacAlgorithm.for_key(family)
    expected = retail_mac(key, data) if alg is MacAlgorithm.RETAIL else aes_cmac(key, data)
    assert run(lambda: m.generate_mac(ref, alg, data)) == expected
    assert run(lambda: m.verify_mac(ref, alg, data, expected))
    wrong = bytes([expected[0] ^ 1]) + expected[1:]
    assert not run(lambda: m.verify_mac(ref, alg, data, wrong))
    assert run(lambda: m.kcv(ref)) == kcv(key, family) == ref.kcv


@settings(max_examples=40, deadline=None)
@given(
    src=st.sampled_from([Algorithm.TDES2, Algorithm.AES128]),
    dst=st.sampled_from([Algorithm.TDES2, Algorithm.AES128]),
    pin=pins,
    pan=pans,
)
def test_pin_translation_equals_the_function(
    src: Algorithm, dst: Algorithm, pin: str, pan: str
) -> None:
    m = module()
    tpk, zpk = generate_key(src), generate_key(dst)
    block = encrypt_pin_block(tpk, src, pin, pan)
    fmt = {Algorithm.TDES2: PinBlockFormat.ISO0, Algorithm.AES128: PinBlockFormat.ISO4}
    out = run(
        lambda: m.translate_pin(
            m.ref_of(tpk, KeyType.TPK, src),
            m.ref_of(zpk, KeyType.ZPK, dst),
            block,
            pan,
            fmt[src],
            fmt[dst],
        )
    )
    assert decrypt_pin_block(zpk, dst, out, pan) == pin
    reference = translate_pin_block(tpk, src, zpk, dst, block, pan)
    if not dst.is_aes:  # format 0 is deterministic: the very same block
        assert out == reference
    assert decrypt_pin_block(zpk, dst, reference, pan) == pin


@settings(max_examples=25, deadline=None)
@given(
    bdk_alg=st.sampled_from([Algorithm.AES128, Algorithm.AES256]),
    ikid=st.binary(min_size=8, max_size=8),
    counter=st.integers(1, 0xFFFF),
    pin=pins,
    pan=pans,
    data=st.binary(max_size=200),
)
def test_aes_dukpt_equals_the_derivation(
    bdk_alg: Algorithm, ikid: bytes, counter: int, pin: str, pan: str, data: bytes
) -> None:
    m = module()
    bdk = generate_key(bdk_alg)
    bdk_ref = m.ref_of(bdk, KeyType.BDK, bdk_alg)
    ksn = dukpt_aes.ksn_of(ikid, counter)
    pek = dukpt_aes.aes_working_key(bdk, ksn, DukptKeyUsage.PIN_ENCRYPTION)
    zpk = generate_key(Algorithm.AES128)
    block = encrypt_pin_block(pek, Algorithm.AES128, pin, pan)
    out = run(
        lambda: m.translate_dukpt_pin(
            bdk_ref,
            ksn,
            m.ref_of(zpk, KeyType.ZPK, Algorithm.AES128),
            block,
            pan,
            PinBlockFormat.ISO4,
        )
    )
    assert decrypt_pin_block(zpk, Algorithm.AES128, out, pan) == pin
    for usage in (DukptKeyUsage.MAC_GENERATION, DukptKeyUsage.MAC_VERIFICATION):
        mac_key = dukpt_aes.aes_working_key(bdk, ksn, usage)
        mac = run(lambda u=usage: m.dukpt_mac(bdk_ref, ksn, u, data))  # type: ignore[misc]
        assert mac == aes_cmac(mac_key, data)
        assert run(lambda u=usage, v=mac: m.dukpt_verify_mac(bdk_ref, ksn, u, data, v))  # type: ignore[misc]


@settings(max_examples=25, deadline=None)
@given(
    head=st.integers(0, (1 << 59) - 1),
    counter=st.integers(1, 0x3FF),
    pin=pins,
    pan=pans,
    data=st.binary(max_size=200),
)
def test_tdes_dukpt_equals_the_derivation(
    head: int, counter: int, pin: str, pan: str, data: bytes
) -> None:
    m = module()
    bdk = generate_key(Algorithm.TDES2)
    bdk_ref = m.ref_of(bdk, KeyType.BDK, Algorithm.TDES2)
    ksn = ((head << 21) | counter).to_bytes(10, "big")
    pek = dukpt_tdes.tdes_session_key(bdk, ksn, dukpt_tdes.TdesVariant.PIN)
    zpk = generate_key(Algorithm.TDES2)
    block = encrypt_pin_block(pek, Algorithm.TDES2, pin, pan)
    out = run(
        lambda: m.translate_dukpt_pin(
            bdk_ref,
            ksn,
            m.ref_of(zpk, KeyType.ZPK, Algorithm.TDES2),
            block,
            pan,
            PinBlockFormat.ISO0,
        )
    )
    assert out == encrypt_pin_block(zpk, Algorithm.TDES2, pin, pan)
    request = dukpt_tdes.tdes_session_key(bdk, ksn, dukpt_tdes.TdesVariant.MAC_REQUEST)
    response = dukpt_tdes.tdes_session_key(bdk, ksn, dukpt_tdes.TdesVariant.MAC_RESPONSE)
    got = run(lambda: m.dukpt_mac(bdk_ref, ksn, DukptKeyUsage.MAC_GENERATION, data))
    assert got == retail_mac(request, data)
    got = run(lambda: m.dukpt_mac(bdk_ref, ksn, DukptKeyUsage.MAC_VERIFICATION, data))
    assert got == retail_mac(response, data)


def test_import_export_and_initial_key() -> None:
    m = module()
    zmk = run(lambda: m.generate_key(KeyType.ZMK, Algorithm.AES256))
    zpk = run(lambda: m.generate_key(KeyType.ZPK, Algorithm.AES128))
    exported = run(lambda: m.export_key(zmk, zpk))
    back = run(lambda: m.import_key(zmk, exported.cryptogram, KeyType.ZPK, Algorithm.AES128))
    assert back.kcv == zpk.kcv == exported.kcv
    bdk_clear = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
    bdk = m.ref_of(bdk_clear, KeyType.BDK, Algorithm.AES128)
    kek = run(lambda: m.generate_key(KeyType.KEK, Algorithm.AES256))
    ik = run(lambda: m.dukpt_initial_key(bdk, bytes.fromhex("1234567890123456"), kek))
    assert ik.kcv == kcv(bytes.fromhex("1273671EA26AC29AFA4D1084127652A1"), Algorithm.AES128)
    with pytest.raises(ModuleError, match="export_key"):
        run(lambda: m.export_key(zmk, bdk))
    status = run(m.diagnostics)
    assert status.lmk_kcv == LMK.kcv and status.backend == "software"
    assert run(lambda: m.echo(b"ping")) == b"ping"


def test_refusals_name_the_operation() -> None:
    m = module()
    tpk = m.ref_of(generate_key(Algorithm.TDES2), KeyType.TPK, Algorithm.TDES2)
    zpk = m.ref_of(generate_key(Algorithm.TDES2), KeyType.ZPK, Algorithm.TDES2)
    with pytest.raises(ModuleError, match=r"translate_pin.*format 4"):
        run(
            lambda: m.translate_pin(
                tpk, zpk, bytes(8), "4012345678909", PinBlockFormat.ISO4, PinBlockFormat.ISO0
            )
        )
    other = SoftwareModule(Lmk(bytes(32)))
    with pytest.raises(ModuleError, match="does not open"):
        run(lambda: other.kcv(tpk))
    bdk = m.ref_of(generate_key(Algorithm.AES128), KeyType.BDK, Algorithm.AES128)
    with pytest.raises(ModuleError, match="12 bytes"):
        run(lambda: m.dukpt_mac(bdk, bytes(10), DukptKeyUsage.MAC_GENERATION, b""))
    too_many_ones = dukpt_aes.ksn_of(bytes(8), 0x0001FFFF)
    with pytest.raises(ModuleError, match="16 one-bits"):
        run(lambda: m.dukpt_mac(bdk, too_many_ones, DukptKeyUsage.MAC_GENERATION, b""))


def test_initial_key_cache_is_bounded() -> None:
    m = SoftwareModule(LMK, initial_key_cache_size=2)
    bdk = m.ref_of(generate_key(Algorithm.AES128), KeyType.BDK, Algorithm.AES128)
    for ident in (b"A" * 8, b"B" * 8, b"C" * 8, b"C" * 8):
        ksn = dukpt_aes.ksn_of(ident, 1)
        run(lambda k=ksn: m.dukpt_mac(bdk, k, DukptKeyUsage.MAC_GENERATION, b"x"))  # type: ignore[misc]
    assert len(m.initial_keys) == 2
    assert (m.initial_keys.hits, m.initial_keys.misses) == (1, 3)
