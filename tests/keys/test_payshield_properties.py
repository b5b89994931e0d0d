"""Hypothesis: the payshield backend (over the simulator) and keys/'s software
functions give the same MAC and KCV for the same key and message."""

from __future__ import annotations

import trio
from forecourt.keys.crypto import Algorithm, adjust_parity, kcv
from forecourt.keys.mac import MacAlgorithm, aes_cmac, retail_mac
from forecourt.keys.model import KeyType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.keys.payshield_rig import console_zmk, import_clear, module_for, running_sim

tdes_keys = st.binary(min_size=16, max_size=16).map(adjust_parity).filter(lambda k: k[:8] != k[8:])
aes_keys = st.binary(min_size=16, max_size=16)
messages = st.binary(max_size=600)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tdes_keys, aes_keys, st.lists(messages, min_size=1, max_size=4))
async def test_backend_and_software_agree(zak: bytes, tak: bytes, datas: list[bytes]) -> None:
    async with (
        trio.open_nursery() as nursery,
        running_sim(nursery) as rig,
        module_for(rig.port) as hsm,
    ):
        zak_ref = await import_clear(hsm, console_zmk(rig.lmk), zak, KeyType.ZAK, Algorithm.TDES2)
        tak_ref = await import_clear(
            hsm, console_zmk(rig.lmk, Algorithm.AES256), tak, KeyType.TAK, Algorithm.AES128
        )
        assert await hsm.kcv(zak_ref) == kcv(zak, Algorithm.TDES2) == zak_ref.kcv
        assert await hsm.kcv(tak_ref) == kcv(tak, Algorithm.AES128) == tak_ref.kcv
        for data in datas:
            assert await hsm.generate_mac(zak_ref, MacAlgorithm.RETAIL, data) == retail_mac(
                zak, data
            )
            assert await hsm.generate_mac(tak_ref, MacAlgorithm.CMAC, data) == aes_cmac(tak, data)
            assert await hsm.verify_mac(tak_ref, MacAlgorithm.CMAC, data, aes_cmac(tak, data))
