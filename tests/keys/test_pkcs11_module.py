"""The pkcs11 backend on a real SoftHSM2 token: known answers computed in the token
(AES-CMAC, the retail MAC, KCVs, the X9.24-3-2017 AES DUKPT keys), keys that never
leave it, and the operations it refuses."""

from __future__ import annotations

import os

import pkcs11
import pytest
import trio
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap
from forecourt.keys.crypto import Algorithm, adjust_parity, generate_key, kcv, tdes_ecb_encrypt
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, aes_cmac, retail_mac
from forecourt.keys.model import KeyType
from forecourt.keys.pin import decrypt_pin_block, encrypt_pin_block
from forecourt.keys.pkcs11_module import Pkcs11Module
from forecourt.keys.pkcs11_token import TokenSession, new_label
from forecourt.keys.security_module import (
    DukptKeyUsage,
    KeyRef,
    ModuleError,
    ModuleUnavailable,
    NotSupportedByModule,
    PinBlockFormat,
)
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.tr31 import wrap as tr31_wrap
from pkcs11 import Attribute

from tests.keys.pkcs11_rig import Token, open_module, put_clear, user_session
from tests.keys.test_dukpt_aes import BDK128, BDK256, IKID
from tests.keys.test_mac import NIST_KEY, NIST_MSG, NIST_TAGS

RETAIL_KEY = bytes.fromhex("7962D9ECE03D1ACD4C76089DCE131543")  # ICAO 9303 D.3
RETAIL_DATA = bytes.fromhex(
    "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F28000000000000000"
)
PAN = "4761739001010119"


async def test_aes_cmac_nist_vectors_in_the_token(pkcs11_token: Token) -> None:
    async with await open_module(pkcs11_token) as m:
        ref = await put_clear(pkcs11_token, NIST_KEY, KeyType.TAK, Algorithm.AES128)
        for length, tag in NIST_TAGS.items():  # RFC 4493 / SP 800-38B D.1
            mac = await m.generate_mac(ref, MacAlgorithm.CMAC, NIST_MSG[:length])
            assert mac.hex() == tag[:16]
            assert await m.verify_mac(ref, MacAlgorithm.CMAC, NIST_MSG[:length], mac)
        assert await m.kcv(ref) == kcv(NIST_KEY, Algorithm.AES128)


async def test_retail_mac_vectors_in_the_token(pkcs11_token: Token) -> None:
    async with await open_module(pkcs11_token) as m:
        ref = await put_clear(pkcs11_token, RETAIL_KEY, KeyType.ZAK, Algorithm.TDES2)
        mac = await m.generate_mac(ref, MacAlgorithm.RETAIL, RETAIL_DATA)
        assert mac.hex().upper() == "5F1448EEA8AD90A7"
        assert not await m.verify_mac(ref, MacAlgorithm.RETAIL, RETAIL_DATA, bytes(8))
        for data in (b"", b"1234567", RETAIL_DATA[:8], RETAIL_DATA[:9]):  # one block, padding
            assert await m.generate_mac(ref, MacAlgorithm.RETAIL, data) == retail_mac(
                RETAIL_KEY, data
            )
        classic = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
        classic_ref = await put_clear(pkcs11_token, classic, KeyType.ZPK, Algorithm.TDES2)
        assert await m.kcv(classic_ref) == "08D7B4"


def test_tdes_mac_keys_made_in_the_token_are_k1_k2_k1(pkcs11_token: Token) -> None:
    """The derivation generate_key uses, from a base key the test knows: the two
    objects hold K1‖K2‖K1 and K1‖K1‖K1 of K1 = E_B(a), K2 = E_B(b)."""
    base_clear, a, b = generate_key(Algorithm.TDES3), os.urandom(8), os.urandom(8)
    halves = adjust_parity(tdes_ecb_encrypt(base_clear, a + b))
    session = user_session(pkcs11_token)
    try:
        base = session.create_object(
            {
                Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: pkcs11.KeyType.DES3,
                Attribute.VALUE: base_clear,
                Attribute.DERIVE: True,
                Attribute.TOKEN: False,
            }
        )
        token = TokenSession(session)
        label = new_label(KeyType.TAK)
        token.derive_tdes2(base, a, b, KeyType.TAK, label)
        data = os.urandom(50)
        assert token.retail_mac(label, data) == retail_mac(halves, data)
        assert token.kcv(label, Algorithm.TDES2) == kcv(halves, Algorithm.TDES2)
        base.destroy()
    finally:
        session.close()


@pytest.mark.parametrize("counter", [1, 2, 8, 8675309])
async def test_x9_24_3_dukpt_keys_derived_in_the_token(pkcs11_token: Token, counter: int) -> None:
    """The supplement's working keys (tests/keys/test_dukpt_aes.py) derived in the
    token: the token's CMAC under each equals a CMAC under the published key."""
    expected = {
        1: {
            DukptKeyUsage.PIN_ENCRYPTION: "AF8CB133A78F8DC2D1359F18527593FB",
            DukptKeyUsage.MAC_GENERATION: "A2DC23DE6FDE0824A2BC321E08E4B8B7",
            DukptKeyUsage.MAC_VERIFICATION: "DBB463945B286C07CD3AD82EE96FD9C9",
            DukptKeyUsage.MAC_BOTH_WAYS: "85675439D18D7F1158BD8E3EAA3D502B",
        },
        2: {DukptKeyUsage.MAC_GENERATION: "484C3B06E8562704528CD5B46FB12FB6"},
        8: {DukptKeyUsage.MAC_GENERATION: "6FD572E5D59E618875F193484F9178FB"},
        8675309: {DukptKeyUsage.PIN_ENCRYPTION: "D1DDA386AA4A556AF0119FDCB5D132C6"},
    }[counter]
    data = os.urandom(40)
    ksn = IKID + counter.to_bytes(4, "big")
    async with await open_module(pkcs11_token) as m:
        bdk = await put_clear(pkcs11_token, BDK128, KeyType.BDK, Algorithm.AES128)
        for usage, key in expected.items():
            mac = await m.dukpt_mac(bdk, ksn, usage, data)
            assert mac == aes_cmac(bytes.fromhex(key), data)
            assert await m.dukpt_verify_mac(bdk, ksn, usage, data, mac)


async def test_initial_keys_under_a_kek(pkcs11_token: Token) -> None:
    kek_clear = os.urandom(32)
    async with await open_module(pkcs11_token) as m:
        kek = await put_clear(pkcs11_token, kek_clear, KeyType.KEK, Algorithm.AES256)
        for bdk_clear, algorithm, initial in (
            (BDK128, Algorithm.AES128, "1273671EA26AC29AFA4D1084127652A1"),
            (
                BDK256,
                Algorithm.AES256,
                "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F",
            ),
        ):
            bdk = await put_clear(pkcs11_token, bdk_clear, KeyType.BDK, algorithm)
            exported = await m.dukpt_initial_key(bdk, IKID, kek)
            clear = aes_key_unwrap(kek_clear, bytes.fromhex(exported.cryptogram))
            assert clear.hex().upper() == initial
            assert exported.kcv == kcv(clear, algorithm)


async def test_generated_and_imported_keys_never_leave_the_token(pkcs11_token: Token) -> None:
    zmk_clear = os.urandom(32)
    zpk_clear = os.urandom(16)
    async with await open_module(pkcs11_token) as m:
        made = [
            await m.generate_key(KeyType.TAK, Algorithm.TDES2),
            await m.generate_key(KeyType.TAK, Algorithm.AES128),
            await m.generate_key(KeyType.ZPK, Algorithm.TDES2),
            await m.generate_key(KeyType.BDK, Algorithm.AES256),
        ]
        zmk = await put_clear(pkcs11_token, zmk_clear, KeyType.ZMK, Algorithm.AES256)
        wrapped = aes_key_wrap(zmk_clear, zpk_clear).hex()
        zpk = await m.import_key(zmk, wrapped, KeyType.ZPK, Algorithm.AES128)
        assert zpk.kcv == kcv(zpk_clear, Algorithm.AES128) == await m.kcv(zpk)
        made.append(zpk)
        for ref in made:
            assert ref.backend == "pkcs11" and ref.kcv == await m.kcv(ref)
            assert len(ref.handle) < 60 and ref.handle.startswith("forecourt.")
        data = os.urandom(77)
        for mac_ref, alg in ((made[0], MacAlgorithm.RETAIL), (made[1], MacAlgorithm.CMAC)):
            mac = await m.generate_mac(mac_ref, alg, data)
            assert await m.verify_mac(mac_ref, alg, data, mac)
        await m.dukpt_mac(made[3], IKID + bytes([0, 0, 0, 5]), DukptKeyUsage.MAC_GENERATION, data)

        def every_value_read_fails() -> tuple[int, int]:
            session = user_session(pkcs11_token)
            try:
                checked = left = 0
                for key in session.get_objects({Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY}):
                    if not key[Attribute.TOKEN]:
                        left += 1  # a DUKPT walk's derived key not destroyed
                    if not str(key[Attribute.LABEL]).startswith("forecourt."):
                        continue
                    assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
                    with pytest.raises(pkcs11.AttributeSensitive):
                        key[Attribute.VALUE]
                    checked += 1
                return checked, left
            finally:
                session.close()

        checked, left = await trio.to_thread.run_sync(every_value_read_fails)
        assert checked >= len(made) + 1 and left == 0


async def test_pin_translation_is_refused(pkcs11_token: Token) -> None:
    async with await open_module(pkcs11_token) as m:
        tpk = await m.generate_key(KeyType.TPK, Algorithm.TDES2)
        zpk = await m.generate_key(KeyType.ZPK, Algorithm.TDES2)
        iso0 = PinBlockFormat.ISO0
        with pytest.raises(NotSupportedByModule, match="no PIN-block translation"):
            await m.translate_pin(tpk, zpk, bytes(8), PAN, iso0, iso0)
        bdk = await m.generate_key(KeyType.BDK, Algorithm.AES128)
        with pytest.raises(NotSupportedByModule, match="no PIN-block translation"):
            await m.translate_dukpt_pin(bdk, IKID + bytes(4), zpk, bytes(16), PAN, iso0)


async def test_pin_translation_in_process_with_the_test_setting(
    pkcs11_token: Token, caplog: pytest.LogCaptureFixture
) -> None:
    tpk_clear, zpk_clear = generate_key(Algorithm.TDES2), generate_key(Algorithm.AES128)
    async with await open_module(pkcs11_token, software_pin_translation=True) as m:
        assert "NOT PCI PIN compliant" in caplog.text
        tpk = await put_clear(pkcs11_token, tpk_clear, KeyType.TPK, Algorithm.TDES2)
        zpk = await put_clear(pkcs11_token, zpk_clear, KeyType.ZPK, Algorithm.AES128)
        block = encrypt_pin_block(tpk_clear, Algorithm.TDES2, "4321", PAN)
        out = await m.translate_pin(tpk, zpk, block, PAN, PinBlockFormat.ISO0, PinBlockFormat.ISO4)
        assert decrypt_pin_block(zpk_clear, Algorithm.AES128, out, PAN) == "4321"
        bdk = await put_clear(pkcs11_token, BDK128, KeyType.BDK, Algorithm.AES128)
        pek = bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")  # counter 1's PIN key
        block = encrypt_pin_block(pek, Algorithm.AES128, "98765", PAN)
        out = await m.translate_dukpt_pin(
            bdk, IKID + bytes([0, 0, 0, 1]), zpk, block, PAN, PinBlockFormat.ISO4
        )
        assert decrypt_pin_block(zpk_clear, Algorithm.AES128, out, PAN) == "98765"


async def test_what_a_token_cannot_do_is_refused(pkcs11_token: Token) -> None:
    async with await open_module(pkcs11_token) as m:
        zmk = await m.generate_key(KeyType.ZMK, Algorithm.AES256)
        zpk = await m.generate_key(KeyType.ZPK, Algorithm.AES128)
        with pytest.raises(NotSupportedByModule, match="never extractable"):
            await m.export_key(zmk, zpk)
        block = tr31_wrap(
            os.urandom(32), Algorithm.AES256, os.urandom(16), KeyType.ZPK, Algorithm.AES128, "E"
        )
        with pytest.raises(NotSupportedByModule, match="TR-31"):
            await m.import_key(zmk, block, KeyType.ZPK, Algorithm.AES128)
        tdes_zmk = await m.generate_key(KeyType.ZMK, Algorithm.TDES2)
        with pytest.raises(NotSupportedByModule, match="TDES ZMK"):
            await m.import_key(tdes_zmk, "00" * 24, KeyType.ZPK, Algorithm.TDES2)
        with pytest.raises(NotSupportedByModule, match="retail MAC key"):
            await m.import_key(zmk, "00" * 24, KeyType.ZAK, Algorithm.TDES2)
        tdes_bdk = await m.generate_key(KeyType.BDK, Algorithm.TDES2)
        with pytest.raises(NotSupportedByModule, match="TDES DUKPT"):
            await m.dukpt_mac(tdes_bdk, bytes(10), DukptKeyUsage.MAC_GENERATION, b"x")


async def test_token_errors_carry_the_ckr_name_and_no_data(pkcs11_token: Token) -> None:
    async with await open_module(pkcs11_token) as m:
        zmk = await m.generate_key(KeyType.ZMK, Algorithm.AES256)
        secret = os.urandom(24)
        with pytest.raises(ModuleError) as caught:  # fails RFC 3394's integrity check
            await m.import_key(zmk, secret.hex(), KeyType.ZPK, Algorithm.AES128)
        assert caught.value.code.startswith("CKR_")
        assert secret.hex() not in str(caught.value).lower()
        gone = KeyRef(KeyType.TAK, Algorithm.AES128, "000000", "forecourt.tak.none", "pkcs11")
        with pytest.raises(ModuleError) as caught:
            await m.generate_mac(gone, MacAlgorithm.CMAC, b"data")
        assert caught.value.code == "CKR_KEY_HANDLE_INVALID"
        with pytest.raises(ModuleError, match="16 one-bits"):
            bdk = await m.generate_key(KeyType.BDK, Algorithm.AES128)
            await m.dukpt_mac(
                bdk, IKID + bytes.fromhex("0001FFFF"), DukptKeyUsage.MAC_GENERATION, b""
            )


async def test_a_reference_from_another_backend_is_refused(pkcs11_token: Token) -> None:
    software = SoftwareModule(Lmk(bytes(range(32))))
    soft_ref = await software.generate_key(KeyType.TAK, Algorithm.AES128)
    async with await open_module(pkcs11_token) as m:
        with pytest.raises(ModuleError, match="belongs to the software backend"):
            await m.generate_mac(soft_ref, MacAlgorithm.CMAC, b"data")
        hsm_ref = KeyRef(KeyType.TAK, Algorithm.AES128, "000000", "S1234", "payshield")
        with pytest.raises(ModuleError, match="belongs to the payshield backend"):
            await m.kcv(hsm_ref)
        token_ref = await m.generate_key(KeyType.TAK, Algorithm.AES128)
    with pytest.raises(ModuleError, match="belongs to the pkcs11 backend"):
        await software.generate_mac(token_ref, MacAlgorithm.CMAC, b"data")


async def test_diagnostics_echo_and_the_pin_from_the_environment(pkcs11_token: Token) -> None:
    async with await open_module(pkcs11_token) as m:
        status = await m.diagnostics()
        assert status.backend == "pkcs11"
        assert "SoftHSM" in status.firmware and pkcs11_token.label in status.firmware
        assert await m.echo(b"ping") == b"ping"
    with pytest.raises(ModuleUnavailable, match="sessions are closed"):
        await m.echo(b"ping")
    with pytest.raises(ModuleError, match=f"set \\${pkcs11_token.settings.pin_env}"):
        await Pkcs11Module.open_module(pkcs11_token.settings, {})


async def test_calls_run_off_the_event_loop(pkcs11_token: Token) -> None:
    """Many concurrent MACs (retail and CMAC, keys looked up afresh on each session)
    on a pool of 4 sessions: every one right, and a task that needs the loop keeps
    running while they do."""
    async with await open_module(pkcs11_token, sessions=4) as m:
        tdes, aes = os.urandom(8) + os.urandom(8), os.urandom(16)
        retail_ref = await put_clear(pkcs11_token, tdes, KeyType.TAK, Algorithm.TDES2)
        cmac_ref = await put_clear(pkcs11_token, aes, KeyType.TAK, Algorithm.AES128)
        ticks = 0
        done = trio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await trio.sleep(0)

        wrong: list[int] = []

        async def mac(i: int) -> None:
            data = bytes([i % 256]) * (200 + i % 64)
            if i % 2:
                got = await m.generate_mac(retail_ref, MacAlgorithm.RETAIL, data)
                expected = retail_mac(tdes, data)
            else:
                got = await m.generate_mac(cmac_ref, MacAlgorithm.CMAC, data)
                expected = aes_cmac(aes, data)
            if got != expected:
                wrong.append(i)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(tick)
            async with trio.open_nursery() as callers:
                for i in range(400):
                    callers.start_soon(mac, i)
            done.set()
        assert wrong == [] and ticks > 400
