"""Each host command against `forecourt sim hsm` over real TCP, through the
payshield backend: the answers, the error codes, and MACs/KCVs/PIN blocks equal to
what keys/ computes in software from the clear keys the test loaded."""

from __future__ import annotations

import pytest
import trio
from forecourt.keys import tr31
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.dukpt_tdes import TdesVariant, tdes_session_key
from forecourt.keys.mac import MacAlgorithm, aes_cmac, retail_mac
from forecourt.keys.model import KeyType
from forecourt.keys.payshield import commands as cmd
from forecourt.keys.pin import decrypt_pin_block, encrypt_pin_block
from forecourt.keys.security_module import KeyRef, ModuleError, PinBlockFormat
from forecourt.simulators.hsm_keys import form_key

from tests.keys.payshield_rig import console_zmk, fresh, import_clear, module_for, running_sim

PAN = "4761739001010119"
DATA = bytes(range(256)) * 2


async def test_echo_and_diagnostics(nursery: trio.Nursery) -> None:
    async with running_sim(nursery) as rig, module_for(rig.port) as hsm:
        assert await hsm.echo(b"forecourt") == b"forecourt"
        status = await hsm.diagnostics()
        assert status.lmk_kcv.startswith(rig.lmk.kcv) and len(status.lmk_kcv) == 16
        assert status.firmware == "1500-FCSM"
        assert hsm.status()["last_diagnostics"]["lmk_check"] == status.lmk_kcv


async def test_imported_keys_mac_as_keys_mac_does(nursery: trio.Nursery) -> None:
    async with running_sim(nursery) as rig, module_for(rig.port) as hsm:
        zmk = console_zmk(rig.lmk)
        zak = fresh(Algorithm.TDES2)
        ref = await import_clear(hsm, zmk, zak, KeyType.ZAK, Algorithm.TDES2)
        assert ref.kcv == kcv(zak, Algorithm.TDES2) == await hsm.kcv(ref)
        mac = await hsm.generate_mac(ref, MacAlgorithm.RETAIL, DATA)
        assert mac == retail_mac(zak, DATA)
        assert await hsm.verify_mac(ref, MacAlgorithm.RETAIL, DATA, mac)
        assert not await hsm.verify_mac(ref, MacAlgorithm.RETAIL, DATA[:-1], mac)

        aes_zmk = console_zmk(rig.lmk, Algorithm.AES256)
        tak = fresh(Algorithm.AES128)
        aes_ref = await import_clear(hsm, aes_zmk, tak, KeyType.TAK, Algorithm.AES128)
        assert aes_ref.kcv == kcv(tak, Algorithm.AES128)
        cmac = await hsm.generate_mac(aes_ref, MacAlgorithm.CMAC, DATA)
        assert cmac == aes_cmac(tak, DATA)
        assert await hsm.verify_mac(aes_ref, MacAlgorithm.CMAC, DATA, cmac)
        assert rig.sim.counts[("M8", "01")] == 1


async def test_generate_and_export_under_a_zmk(nursery: trio.Nursery) -> None:
    async with running_sim(nursery) as rig, module_for(rig.port) as hsm:
        clear_zmk, zmk = console_zmk(rig.lmk)
        zpk, sent = await hsm.generate_key_under(KeyType.ZPK, Algorithm.TDES2, zmk)
        clear = tr31.unwrap(clear_zmk, sent.cryptogram, KeyType.ZPK, Algorithm.TDES2)
        assert kcv(clear) == zpk.kcv == sent.kcv
        tak = await hsm.generate_key(KeyType.TAK, Algorithm.TDES2)
        exported = await hsm.export_key(zmk, tak)
        tak_clear = tr31.unwrap(clear_zmk, exported.cryptogram, KeyType.TAK, Algorithm.TDES2)
        assert kcv(tak_clear) == tak.kcv
        assert await hsm.generate_mac(tak, MacAlgorithm.RETAIL, b"x") == retail_mac(tak_clear, b"x")


async def test_pin_translation_tpk_to_zpk_and_zpk_to_zpk(nursery: trio.Nursery) -> None:
    async with running_sim(nursery) as rig, module_for(rig.port) as hsm:
        zmk = console_zmk(rig.lmk)
        tpk, zpk, zpk2 = (fresh(Algorithm.TDES2) for _ in range(3))
        tpk_ref = await import_clear(hsm, zmk, tpk, KeyType.TPK, Algorithm.TDES2)
        zpk_ref = await import_clear(hsm, zmk, zpk, KeyType.ZPK, Algorithm.TDES2)
        zpk2_ref = await import_clear(hsm, zmk, zpk2, KeyType.ZPK, Algorithm.TDES2)
        block = encrypt_pin_block(tpk, Algorithm.TDES2, "4321", PAN)
        iso0 = PinBlockFormat.ISO0
        out = await hsm.translate_pin(tpk_ref, zpk_ref, block, PAN, iso0, iso0)
        assert decrypt_pin_block(zpk, Algorithm.TDES2, out, PAN) == "4321"
        again = await hsm.translate_pin(zpk_ref, zpk2_ref, out, PAN, iso0, iso0)
        assert decrypt_pin_block(zpk2, Algorithm.TDES2, again, PAN) == "4321"
        assert rig.sim.counts[("CA", "00")] == 1 and rig.sim.counts[("CC", "00")] == 1

        aes_zmk = console_zmk(rig.lmk, Algorithm.AES256)
        aes_zpk = fresh(Algorithm.AES128)
        aes_ref = await import_clear(hsm, aes_zmk, aes_zpk, KeyType.ZPK, Algorithm.AES128)
        iso4 = PinBlockFormat.ISO4
        four = await hsm.translate_pin(zpk_ref, aes_ref, out, PAN, iso0, iso4)
        assert decrypt_pin_block(aes_zpk, Algorithm.AES128, four, PAN) == "4321"


async def test_tdes_dukpt_pin_to_zpk(nursery: trio.Nursery) -> None:
    # X9.24-1 annex A.4 BDK and KSN; the terminal side uses keys/dukpt_tdes.py
    bdk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    ksn = bytes.fromhex("FFFF9876543210E00001")
    async with running_sim(nursery) as rig, module_for(rig.port) as hsm:
        zmk = console_zmk(rig.lmk)
        zpk = fresh(Algorithm.TDES2)
        zpk_ref = await import_clear(hsm, zmk, zpk, KeyType.ZPK, Algorithm.TDES2)
        half = bytes(a ^ b for a, b in zip(bdk, bytes(range(16)), strict=True))
        bdk_ref = KeyRef(
            KeyType.ZMK,  # the BDK's own key type is helper G's; the handle is what counts
            Algorithm.TDES2,
            kcv(bdk),
            form_key(rig.lmk, [half, bytes(range(16))], "B0", Algorithm.TDES2),
            "payshield",
        )
        pin_key = tdes_session_key(bdk, ksn, TdesVariant.PIN)
        block = encrypt_pin_block(pin_key, Algorithm.TDES2, "1234", PAN)
        out = await hsm.translate_dukpt_pin(bdk_ref, ksn, zpk_ref, block, PAN, PinBlockFormat.ISO0)
        assert decrypt_pin_block(zpk, Algorithm.TDES2, out, PAN) == "1234"
        wrong_ksn = bytes.fromhex("FFFF9876543210E00002")
        with pytest.raises(ModuleError) as refused:
            await hsm.translate_dukpt_pin(
                bdk_ref, wrong_ksn, zpk_ref, block, PAN, PinBlockFormat.ISO0
            )
        assert refused.value.code == "20"


async def test_error_codes(nursery: trio.Nursery) -> None:
    async with (
        running_sim(nursery, disabled=frozenset({"B2"})) as rig,
        module_for(rig.port) as hsm,
    ):
        zmk = console_zmk(rig.lmk)
        zpk = fresh(Algorithm.TDES2)
        zpk_ref = await import_clear(hsm, zmk, zpk, KeyType.ZPK, Algorithm.TDES2)
        zak_ref = await import_clear(hsm, zmk, fresh(Algorithm.TDES2), KeyType.ZAK, Algorithm.TDES2)

        async def code_of(command: str, fields: bytes) -> str:
            return (await hsm.pool.call(command, fields)).error

        assert await code_of("B2", cmd.b2_request(b"x")) == "68"  # disabled
        assert await code_of("Q0", b"") == "68"  # a command this HSM does not have
        assert await code_of("BU", b"FFF" + b"S") == "15"  # a key block cut short
        other = form_key(
            type(rig.lmk).generate(), [b"\x01" * 16, b"\x03" * 16], "K0", Algorithm.TDES2
        )
        assert await code_of("BU", cmd.bu_request(other)) == "10"  # not under this LMK
        # a PIN key is no MAC key; a MAC key no PIN key
        assert await code_of("M6", cmd.m6_request("3", zpk_ref.handle, b"x")) == "28"
        block = encrypt_pin_block(zpk, Algorithm.TDES2, "1234", PAN)
        ca = cmd.ca_request(zak_ref.handle, zpk_ref.handle, block, "01", "01", PAN)
        assert await code_of("CA", ca) == "28"
        # a PIN block that does not decode, a format code that is not one
        bad = cmd.ca_request(zpk_ref.handle, zpk_ref.handle, bytes(8), "01", "01", PAN)
        assert await code_of("CC", bad) == "20"
        odd = cmd.ca_request(zpk_ref.handle, zpk_ref.handle, block, "01", "03", PAN)
        assert await code_of("CC", odd) == "23"
        # a message length that promises more than was sent
        short = cmd.m6_request("3", zak_ref.handle, b"abcd")[:-2]
        assert await code_of("M6", short) == "80"
        # a ZMK-formed key the console made non-exportable is not exported
        bdk = form_key(rig.lmk, [b"\x01" * 16, b"\x07" * 16], "B0", Algorithm.TDES2)
        assert await code_of("A8", cmd.a8_request(zmk[1].handle, bdk)) == "29"

        with pytest.raises(ModuleError) as refused:
            await hsm.generate_mac(zpk_ref, MacAlgorithm.RETAIL, b"x")
        assert refused.value.code == "28"
        assert "28" in str(refused.value) and zpk_ref.handle not in str(refused.value)
        assert hsm.status()["errors"]["68"] == 2
        assert rig.sim.counts[("CC", "20")] == 1


async def test_a_malformed_frame_does_not_stop_the_hsm(nursery: trio.Nursery) -> None:
    async with running_sim(nursery) as rig, module_for(rig.port) as hsm:
        garbage = await trio.open_tcp_stream("127.0.0.1", rig.port)
        await garbage.send_all(b"\x00\x03\xff\xfe\xfd" + b"\x00\x05\x00\x00\x00\x00\x00")
        await trio.sleep(0.05)
        assert rig.sim.malformed == 2
        assert await hsm.echo(b"still here") == b"still here"
        # and the same connection still answers a good frame after the bad ones
        await garbage.send_all(b"\x00\x0c" + b"0001B20002ok")
        assert await garbage.receive_some(100) == b"\x00\x0a0001B300ok"
        await garbage.aclose()
