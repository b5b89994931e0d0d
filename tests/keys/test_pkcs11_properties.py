"""Hypothesis: the pkcs11 (SoftHSM2), software and payshield (against `forecourt sim
hsm`) backends give the same MAC, KCV and DUKPT key for the same input.

Each backend is given the same clear key its own way: the software backend by
`ref_of`, the HSM simulator by an A6 import under a ZMK formed at its console,
the token by the test-only C_CreateObject of tests/keys/pkcs11_rig.py. The
payshield backend has no DUKPT MAC, so DUKPT is compared between the other two
(the working key under the token's CMAC against the software derivation).
"""

from __future__ import annotations

import os

import trio
from forecourt.keys import dukpt_aes
from forecourt.keys.crypto import Algorithm, adjust_parity, generate_key
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm
from forecourt.keys.model import KeyType
from forecourt.keys.security_module import DukptKeyUsage
from forecourt.keys.software_module import SoftwareModule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.keys.payshield_rig import console_zmk, import_clear, module_for, running_sim
from tests.keys.pkcs11_rig import Token, open_module, put_clear

tdes_keys = st.binary(min_size=16, max_size=16).map(adjust_parity).filter(lambda k: k[:8] != k[8:])
aes_keys = st.binary(min_size=16, max_size=16)
messages = st.binary(max_size=400)
usages = st.sampled_from(
    [
        DukptKeyUsage.PIN_ENCRYPTION,
        DukptKeyUsage.MAC_GENERATION,
        DukptKeyUsage.MAC_VERIFICATION,
        DukptKeyUsage.MAC_BOTH_WAYS,
    ]
)
counters = st.integers(1, (1 << 32) - 1).filter(dukpt_aes.is_valid_counter)
SOFTWARE = SoftwareModule(Lmk(bytes(range(32))))
SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=15, deadline=None, suppress_health_check=SLOW_OK)
@given(tdes_keys, aes_keys, st.lists(messages, min_size=1, max_size=3))
async def test_three_backends_give_the_same_mac_and_kcv(
    pkcs11_token: Token, zak: bytes, tak: bytes, datas: list[bytes]
) -> None:
    s_zak = SOFTWARE.ref_of(zak, KeyType.ZAK, Algorithm.TDES2)
    s_tak = SOFTWARE.ref_of(tak, KeyType.TAK, Algorithm.AES128)
    async with (
        trio.open_nursery() as nursery,
        running_sim(nursery) as rig,
        module_for(rig.port) as hsm,
        await open_module(pkcs11_token) as token,
    ):
        h_zak = await import_clear(hsm, console_zmk(rig.lmk), zak, KeyType.ZAK, Algorithm.TDES2)
        aes_zmk = console_zmk(rig.lmk, Algorithm.AES256)
        h_tak = await import_clear(hsm, aes_zmk, tak, KeyType.TAK, Algorithm.AES128)
        t_zak = await put_clear(pkcs11_token, zak, KeyType.ZAK, Algorithm.TDES2)
        t_tak = await put_clear(pkcs11_token, tak, KeyType.TAK, Algorithm.AES128)
        for refs in ((s_zak, h_zak, t_zak), (s_tak, h_tak, t_tak)):
            s, h, t = refs
            assert await SOFTWARE.kcv(s) == await hsm.kcv(h) == await token.kcv(t)
            for data in datas:
                alg = MacAlgorithm.for_key(s.algorithm)
                mac = await SOFTWARE.generate_mac(s, alg, data)
                assert await hsm.generate_mac(h, alg, data) == mac
                assert await token.generate_mac(t, alg, data) == mac
                assert await token.verify_mac(t, alg, data, mac)
                assert not await token.verify_mac(t, alg, data, bytes([mac[0] ^ 1]) + mac[1:])


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW_OK)
@given(
    bdk_alg=st.sampled_from([Algorithm.AES128, Algorithm.AES192, Algorithm.AES256]),
    ikid=st.binary(min_size=8, max_size=8),
    counter=counters,
    usage=usages,
    data=messages,
)
async def test_token_and_software_derive_the_same_dukpt_keys(
    pkcs11_token: Token,
    bdk_alg: Algorithm,
    ikid: bytes,
    counter: int,
    usage: DukptKeyUsage,
    data: bytes,
) -> None:
    bdk = generate_key(bdk_alg)
    ksn = dukpt_aes.ksn_of(ikid, counter)
    s_bdk = SOFTWARE.ref_of(bdk, KeyType.BDK, bdk_alg)
    kek = os.urandom(32)
    async with await open_module(pkcs11_token) as token:
        t_bdk = await put_clear(pkcs11_token, bdk, KeyType.BDK, bdk_alg)
        assert await token.kcv(t_bdk) == await SOFTWARE.kcv(s_bdk)
        assert await token.dukpt_mac(t_bdk, ksn, usage, data) == await SOFTWARE.dukpt_mac(
            s_bdk, ksn, usage, data
        )
        t_kek = await put_clear(pkcs11_token, kek, KeyType.KEK, Algorithm.AES256)
        s_kek = SOFTWARE.ref_of(kek, KeyType.KEK, Algorithm.AES256)
        t_initial = await token.dukpt_initial_key(t_bdk, ikid, t_kek)
        s_initial = await SOFTWARE.dukpt_initial_key(s_bdk, ikid, s_kek)
        assert t_initial.kcv == s_initial.kcv
