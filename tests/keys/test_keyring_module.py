"""A keyring verified in the security module decides exactly as one verified here.

`MacKeyring.check` (clear keys, the simulators) and `check_in` (module references,
the switch) drive the same decision steps; these properties hold them equal for
random rotations, MACs and key versions, and show a store keyring works both ways.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from forecourt.keys.crypto import Algorithm, generate_key
from forecourt.keys.errors import NoActiveKey
from forecourt.keys.keyring import MacKey, MacKeyring
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.keys.model import KeyState, KeyType
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.store import KeyStore
from hypothesis import given, settings
from hypothesis import strategies as st

LMK = Lmk(bytes(range(32)))
NOW = 1_000_000.0


def _key(module: SoftwareModule, version: int, state: KeyState, algorithm: Algorithm) -> MacKey:
    clear = generate_key(algorithm)
    ref = module.ref_of(clear, KeyType.TAK, algorithm)
    return MacKey(
        version=version,
        kcv=ref.kcv,
        state=state,
        mac=prepare_mac(clear, MacAlgorithm.for_key(algorithm)),
        activated_at=NOW - 10,
        expires_at=NOW + 100,
        retiring_until=NOW + 50 if state is KeyState.RETIRING else None,
        ref=ref,
    )


states = st.sampled_from([KeyState.RETIRING, KeyState.PENDING, KeyState.RETIRED])


@settings(max_examples=40, deadline=None)
@given(
    algorithm=st.sampled_from([Algorithm.TDES2, Algorithm.AES128]),
    others=st.lists(states, max_size=3),
    signer=st.integers(min_value=-1, max_value=3),
    version=st.one_of(st.none(), st.integers(min_value=1, max_value=5)),
    data=st.binary(max_size=64),
)
def test_check_in_decides_as_check(
    algorithm: Algorithm,
    others: list[KeyState],
    signer: int,
    version: int | None,
    data: bytes,
) -> None:
    module = SoftwareModule(LMK)
    current = _key(module, len(others) + 1, KeyState.ACTIVE, algorithm)
    older = [_key(module, i + 1, s, algorithm) for i, s in enumerate(others)]
    grace = tuple(k for k in older if k.state is KeyState.RETIRING)
    stale = tuple(k for k in older if k.state is not KeyState.RETIRING)
    keys = [current, *older]
    mac = keys[signer].generate(data) if 0 <= signer < len(keys) else os.urandom(8)

    def ring() -> MacKeyring:
        return MacKeyring("T1", current, grace, stale, max_uses=None, clock=lambda: NOW)

    here = ring().check(data, mac, version=version)
    in_module = trio.run(lambda: ring().check_in(module, data, mac, version=version))
    assert in_module == here


def test_a_store_keyring_verifies_in_the_module(tmp_path: Path) -> None:
    store = KeyStore.init(tmp_path / "keys", lmk=LMK)
    try:
        store.add_terminal("T1", "tdes", actor="test")
        ring = store.mac_keyring("T1")
        module = SoftwareModule(LMK)
        data = b"0200 purchase"

        async def main() -> None:
            mac = await ring.generate_in(module, data)
            assert mac == ring.generate(data)
            assert (await ring.check_in(module, data, mac)).ok
            assert not (await ring.check_in(module, data + b"!", mac)).ok

        trio.run(main)
        tpk = store.pin_ref("T1")
        assert tpk is not None and tpk.key_type is KeyType.TPK
        assert repr(tpk).count(tpk.handle) == 0  # the block never shows in a repr
        sign_on = store.sign_on_ref("T1")
        proof = store.sign_on_mac("T1").generate(data)
        assert trio.run(module.verify_mac, sign_on, MacAlgorithm.RETAIL, data, proof)
    finally:
        store.close()


def test_a_key_held_only_in_the_module_refuses_a_clear_mac() -> None:
    module = SoftwareModule(LMK)
    ref = module.ref_of(generate_key(Algorithm.AES128), KeyType.TAK, Algorithm.AES128)
    key = MacKey(version=1, kcv=ref.kcv, state=KeyState.ACTIVE, ref=ref)
    assert key.algorithm is MacAlgorithm.CMAC
    with pytest.raises(NoActiveKey, match="held in the security module"):
        key.generate(b"x")
    assert trio.run(key.verify_in, module, b"x", trio.run(key.generate_in, module, b"x"))


def test_the_software_module_keeps_mac_and_pin_keys_apart() -> None:
    """A PIN key never MACs and a MAC key never translates PINs (key usage separation,
    as an HSM refuses it with error 28), whatever the block would open to."""
    from forecourt.keys.security_module import ModuleError, PinBlockFormat

    module = SoftwareModule(LMK)
    tpk = module.ref_of(generate_key(Algorithm.TDES2), KeyType.TPK, Algorithm.TDES2)
    tak = module.ref_of(generate_key(Algorithm.TDES2), KeyType.TAK, Algorithm.TDES2)
    with pytest.raises(ModuleError, match="TPK is not a MAC key"):
        trio.run(module.generate_mac, tpk, MacAlgorithm.RETAIL, b"data")
    with pytest.raises(ModuleError, match="TAK is not a PIN key"):
        trio.run(
            module.translate_pin,
            tak,
            tpk,
            bytes(8),
            "4761739001010010",
            PinBlockFormat.ISO0,
            PinBlockFormat.ISO0,
        )
