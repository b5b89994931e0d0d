"""A key store on a payment HSM (`backend="payshield"`) against `forecourt sim hsm`:
its rows hold the HSM's blocks (never one the software LMK opens), its keys are
made in the HSM and reach a terminal through the unchanged payload, master keys
come as console-formed blocks checked by the HSM, and nothing clear comes out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from forecourt.keys import KeyPolicy, KeyStore, tr31
from forecourt.keys.crypto import Algorithm, Family, generate_key, kcv, xor
from forecourt.keys.errors import (
    ClearKeyRefused,
    KcvMismatch,
    KeyBlockInvalid,
    KeysError,
    LmkMismatch,
    StoreBackendMismatch,
)
from forecourt.keys.exchange import decode_payload, install_key_change
from forecourt.keys.key_rows import select_all
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.keys.model import KeyState, KeyType
from forecourt.keys.sign_on import sign_on_key
from forecourt.simulators.hsm_keys import form_key, open_block

from tests.keys.conftest import Clock
from tests.keys.hsm_thread import ThreadedHsm, hsm_in_thread

TERMINAL, LINK = "T0000001", "bank"


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedHsm]:
    with hsm_in_thread(tmp_path_factory.mktemp("hsm")) as running:
        yield running


def console(lmk: Lmk, usage: str, algorithm: Algorithm) -> tuple[bytes, str, str]:
    """(the clear key, its 'S' block, its KCV) as two custodians form it at the console."""
    one, two = generate_key(algorithm), generate_key(algorithm)
    clear = xor(one, two)
    return clear, form_key(lmk, [one, two], usage, algorithm), kcv(clear, algorithm)


def open_store(data: Path, hsm: ThreadedHsm, clock: Clock, *, init: bool = False) -> KeyStore:
    make = KeyStore.init if init else KeyStore.open
    return make(
        data,
        lmk=Lmk(bytes(range(32))),
        policy=KeyPolicy(grace=0.0),
        clock=clock,
        module="payshield",
        payshield=hsm.settings,
    )


@pytest.fixture
def store(tmp_path: Path, hsm: ThreadedHsm, clock: Clock) -> Iterator[tuple[KeyStore, bytes]]:
    """A payshield store with one terminal; the clear KEK is the terminal's (the test's)."""
    with open_store(tmp_path, hsm, clock, init=True) as s:
        kek, kek_block, kek_kcv = console(hsm.lmk, "K0", Algorithm.TDES2)
        sign_on = sign_on_key(kek, TERMINAL, Algorithm.TDES2)
        one = generate_key(Algorithm.TDES2)
        sok_block = form_key(hsm.lmk, [one, xor(sign_on, one)], "M3", Algorithm.TDES2)
        added = s.add_terminal_blocks(
            TERMINAL, Family.TDES, kek_block, kek_kcv, sok_block, kcv(sign_on, Algorithm.TDES2)
        )
        assert {k.key_type for k in install_key_change(kek, added.payload).keys} == {
            KeyType.TAK,
            KeyType.TPK,
            KeyType.TDK,
        }
        yield s, kek


def rows(store: KeyStore) -> list:  # type: ignore[type-arg]
    with store._db.read() as tx:
        return select_all(tx)


def test_rows_hold_only_blocks_the_hsm_lmk_opens(
    store: tuple[KeyStore, bytes], hsm: ThreadedHsm, clock: Clock
) -> None:
    s, _ = store
    _, zmk_block, zmk_kcv = console(hsm.lmk, "K0", Algorithm.AES256)
    s.add_acquirer_blocks(LINK, Algorithm.AES256, zmk_block, zmk_kcv)
    clock.advance(10)
    s.rotate(TERMINAL, activate=True)
    found = [r for r in rows(s) if not r.erased]
    assert {r.key_type for r in found} >= {KeyType.KEK, KeyType.SOK, KeyType.TAK, KeyType.ZPK}
    for r in found:
        opened = open_block(hsm.lmk.key, r.key_block)  # the HSM's LMK opens every block
        assert kcv(opened.key, r.algorithm) == r.kcv
        with pytest.raises(KeysError):  # and the store's software LMK none
            tr31.unwrap_any(s.lmk.key, r.key_block.removeprefix("S"), r.key_type)


def test_a_rotation_in_the_hsm_installs_at_the_terminal(
    store: tuple[KeyStore, bytes], hsm: ThreadedHsm, clock: Clock
) -> None:
    s, kek = store
    clock.advance(10)
    change = s.rotate(TERMINAL, reason="daily")
    installed = install_key_change(kek, change.payload)  # what the terminal does
    tak = installed.get(KeyType.TAK)
    assert tak.version == 2 and tak.kcv == change.keys[0].kcv
    # the HSM's pending TAK is the key the terminal installed: its block opens to it
    pending = [r for r in rows(s) if r.key_type is KeyType.TAK and r.state is KeyState.PENDING]
    assert open_block(hsm.lmk.key, pending[0].key_block).key == tak.key
    # sent again (a lost answer): A8 under the KEK gives the same keys
    again = s.rotate(TERMINAL, reuse_pending=True)
    assert [e.kcv for e in decode_payload(again.payload)] == [k.kcv for k in change.keys]
    assert install_key_change(kek, again.payload).get(KeyType.TAK).key == tak.key
    ring = s.mark_delivered(change)
    assert ring.current is not None and ring.current.version == 2
    # the keyring carries references only: the switch MACs through the module
    assert ring.current.mac is None and ring.current.ref is not None
    assert ring.current.ref.backend == "payshield"
    with pytest.raises(KeysError):
        ring.generate(b"0200")
    # the terminal's MAC under its TAK is what the HSM's block holds
    block = ring.current.ref.handle
    mac = prepare_mac(tak.key, MacAlgorithm.RETAIL).generate(b"0200 data")
    held = prepare_mac(open_block(hsm.lmk.key, block).key, MacAlgorithm.RETAIL)
    assert held.generate(b"0200 data") == mac


def test_references_and_refusals(store: tuple[KeyStore, bytes], hsm: ThreadedHsm) -> None:
    s, kek = store
    sign_on = s.sign_on_ref(TERMINAL)
    assert sign_on.backend == "payshield"
    assert sign_on.kcv == kcv(sign_on_key(kek, TERMINAL, Algorithm.TDES2), Algorithm.TDES2)
    pin = s.pin_ref(TERMINAL)
    assert pin is not None and pin.backend == "payshield" and pin.key_type is KeyType.TPK
    _, zmk_block, zmk_kcv = console(hsm.lmk, "K0", Algorithm.TDES2)
    s.add_acquirer_blocks(LINK, Algorithm.TDES2, zmk_block, zmk_kcv)
    for refused in (
        lambda: s.export_zone_keys(LINK),
        lambda: s.translate_pin_block(TERMINAL, LINK, bytes(8), "5413330089010434"),
        lambda: s.pin_key(LINK),
        lambda: s.sign_on_mac(TERMINAL),
        lambda: s.add_terminal("T0000002", components=(bytes(16), bytes(16))),
    ):
        with pytest.raises(ClearKeyRefused, match="payment HSM"):
            refused()


def test_console_blocks_are_checked_before_anything_is_stored(
    store: tuple[KeyStore, bytes], hsm: ThreadedHsm
) -> None:
    s, _ = store
    _, block, check = console(hsm.lmk, "K0", Algorithm.TDES2)
    with pytest.raises(KcvMismatch, match="does not match KCV 000000"):
        s.add_acquirer_blocks(LINK, Algorithm.TDES2, block, "000000")
    _, other, other_kcv = console(Lmk.generate(), "K0", Algorithm.TDES2)
    with pytest.raises(KeyBlockInvalid, match="does not open under this HSM's LMK"):
        s.add_acquirer_blocks(LINK, Algorithm.TDES2, other, other_kcv)
    _, bdk, bdk_kcv = console(hsm.lmk, "B0", Algorithm.TDES2)
    with pytest.raises(KeyBlockInvalid, match="usage B0"):
        s.add_acquirer_blocks(LINK, Algorithm.TDES2, bdk, bdk_kcv)
    with pytest.raises(KeyBlockInvalid, match="aes256"):
        s.add_acquirer_blocks(LINK, Algorithm.AES256, block, check)
    assert LINK not in s.acquirers()


def test_a_store_is_opened_only_under_its_backend_and_hsm(
    store: tuple[KeyStore, bytes], tmp_path: Path, hsm: ThreadedHsm, clock: Clock
) -> None:
    s, _ = store
    s.close()
    wrong = r'made for the payshield backend.*= "payshield"'
    with pytest.raises(StoreBackendMismatch, match=wrong):
        KeyStore.open(tmp_path, lmk=Lmk(bytes(range(32))))
    software = tmp_path / "software"
    KeyStore.init(software, lmk=Lmk(bytes(range(32)))).close()
    with pytest.raises(StoreBackendMismatch, match="made for the software backend"):
        open_store(software, hsm, clock)
    other_hsm = hsm_in_thread(tmp_path / "other-hsm")  # another HSM, another LMK
    with other_hsm as other, pytest.raises(LmkMismatch, match="LMK check"):
        open_store(tmp_path, other, clock)
    open_store(tmp_path, hsm, clock).close()  # its own HSM: opens


def test_retiring_erases_the_hsm_block(store: tuple[KeyStore, bytes], clock: Clock) -> None:
    s, _ = store
    for _ in range(3):
        clock.advance(10)
        s.mark_delivered(s.rotate(TERMINAL))
    clock.advance(10)
    s.retire_expired()
    taks = {r.version: r for r in rows(s) if r.key_type is KeyType.TAK}
    assert taks[1].state is KeyState.RETIRED and taks[1].erased
    assert taks[4].state is KeyState.ACTIVE and taks[4].key_block.startswith("S")


def test_a_bdk_formed_at_the_console(store: tuple[KeyStore, bytes], hsm: ThreadedHsm) -> None:
    s, _ = store
    clear, block, check = console(hsm.lmk, "B0", Algorithm.TDES2)
    with pytest.raises(KeyBlockInvalid, match="usage K0"):
        _, kek_block, kek_kcv = console(hsm.lmk, "K0", Algorithm.TDES2)
        s.dukpt().add_bdk_block("bdk1", Algorithm.TDES2, kek_block, kek_kcv, 0.0, "test")
    assert s.dukpt().add_bdk_block("bdk1", Algorithm.TDES2, block, check, 0.0, "test") == check
    ref = s.dukpt().bdk_ref("bdk1")
    assert ref.backend == "payshield" and open_block(hsm.lmk.key, ref.handle).key == clear
