"""Key store: LMK handling, provisioning, keyrings, rotation, audit, no clear keys at rest."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from forecourt.keys import (
    DuplicateOwner,
    Family,
    InvalidName,
    KcvMismatch,
    KeyPolicy,
    KeyState,
    KeyStore,
    KeyType,
    Lmk,
    LmkInvalid,
    LmkMismatch,
    LmkMissing,
    StaleKeyChange,
    StoreExists,
    StoreNotInitialised,
    UnknownOwner,
    VerifyResult,
    install_key_change,
    kcv,
)

from .conftest import Clock

DATA = b"1200" + bytes(range(200))


def test_init_creates_lmk_file_0600_and_refuses_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    d = tmp_path / "data"
    lmk_file = tmp_path / "etc" / "lmk.key"
    s = KeyStore.init(d, lmk_file=lmk_file)
    s.close()
    assert stat.S_IMODE(lmk_file.stat().st_mode) == 0o600
    assert (d / "keys.db").exists()
    with pytest.raises(StoreExists):
        KeyStore.init(d, lmk_file=lmk_file)
    KeyStore.open(d).close()  # the store remembers where init wrote the LMK


def test_lmk_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    d = tmp_path / "data"
    lmk_file = tmp_path / "etc" / "lmk.key"
    with pytest.raises(StoreNotInitialised):
        KeyStore.open(d, lmk=Lmk.generate())
    with pytest.raises(LmkMissing):  # neither: the LMK is named first
        KeyStore.open(d)
    KeyStore.init(d, lmk_file=lmk_file).close()
    with pytest.raises(LmkMissing):
        KeyStore.open(d, lmk_file=tmp_path / "elsewhere.key")
    # another LMK: refused by KCV
    other = Lmk.generate()
    with pytest.raises(LmkMismatch) as e:
        KeyStore.open(d, lmk=other)
    assert other.key.hex().upper() not in str(e.value).upper()
    monkeypatch.setenv("FORECOURT_LMK", other.key.hex())
    with pytest.raises(LmkMismatch):
        KeyStore.open(d)
    monkeypatch.setenv("FORECOURT_LMK", "not hex")
    with pytest.raises(LmkInvalid):
        KeyStore.open(d)
    monkeypatch.setenv("FORECOURT_LMK", "00" * 16)
    with pytest.raises(LmkInvalid):
        KeyStore.open(d)
    monkeypatch.delenv("FORECOURT_LMK")
    # the right LMK from the environment works
    lmk_hex = lmk_file.read_text().strip()
    monkeypatch.setenv("FORECOURT_LMK", lmk_hex.lower())
    KeyStore.open(d).close()
    monkeypatch.delenv("FORECOURT_LMK")
    # a group-readable LMK file is refused
    os.chmod(lmk_file, 0o644)
    with pytest.raises(LmkInvalid):
        KeyStore.open(d)


def test_add_terminal_ceremony_and_first_keys(store: KeyStore) -> None:
    c = store.add_terminal("T0000001")
    assert repr(c).count(c.clear_kek.hex()) == 0 and "kcv=" in repr(c)
    assert kcv(bytes(a ^ b for a, b in zip(*c.components, strict=True))) == c.kcv
    assert store.is_registered("T0000001") and not store.is_registered("T0000002")
    assert store.terminals() == ["T0000001"]
    infos = store.list_keys("T0000001")
    assert {(k.key_type, k.version, k.state) for k in infos} == {
        (KeyType.KEK, 1, KeyState.ACTIVE),
        (KeyType.TAK, 1, KeyState.ACTIVE),
        (KeyType.TPK, 1, KeyState.ACTIVE),
        (KeyType.TDK, 1, KeyState.ACTIVE),
    }
    # the terminal can install the first keys and MAC at once
    wk = install_key_change(c.clear_kek, c.payload)
    ring = store.mac_keyring("T0000001")
    assert ring.verify(DATA, wk.keyring().generate(DATA)) is VerifyResult.OK
    with pytest.raises(DuplicateOwner):
        store.add_terminal("T0000001")
    with pytest.raises(InvalidName):
        store.add_terminal("bad id!")


def test_add_terminal_aes(store: KeyStore) -> None:
    c = store.add_terminal("AES1", Family.AES)
    wk = install_key_change(c.clear_kek, c.payload)
    assert {k.algorithm.value for k in wk.keys} == {"aes128"}
    ring = store.mac_keyring("AES1")
    assert ring.current is not None and ring.current.algorithm.value == "cmac"
    assert ring.verify(DATA, wk.keyring().generate(DATA)) is VerifyResult.OK


def test_add_acquirer_from_components(store: KeyStore) -> None:
    c1, c2 = os.urandom(16), os.urandom(16)
    info = store.add_acquirer("acq-1", [c1, c2])
    with pytest.raises(KcvMismatch):
        store.add_acquirer("acq-2", [c1, c2], expected_kcv="000000")
    info2 = store.add_acquirer("acq-2", [c1, c2], expected_kcv=info.zmk_kcv[:4].lower())
    assert info2.zmk_kcv == info.zmk_kcv
    from forecourt.keys.crypto import adjust_parity

    zmk = adjust_parity(bytes(a ^ b for a, b in zip(c1, c2, strict=True)))
    wk = install_key_change(zmk, info.payload)
    assert {k.key_type for k in wk.keys} == {KeyType.ZAK, KeyType.ZPK}
    assert store.acquirers() == ["acq-1", "acq-2"]
    assert not store.is_registered("acq-1")  # not a terminal
    ring = store.mac_keyring("acq-1")
    assert ring.verify(DATA, wk.keyring().generate(DATA)) is VerifyResult.OK


def test_sign_on_rotation_grace_and_key_sync(store: KeyStore, clock: Clock) -> None:
    c = store.add_terminal("T1")
    old_terminal = install_key_change(c.clear_kek, c.payload).keyring("T1", now=clock())
    old_mac = old_terminal.generate(DATA)

    change = store.rotate("T1", actor="switch", reason="sign-on")
    assert change.version_of(KeyType.TAK) == 2 and not change.activated
    assert change.field96 == change.field48.encode()
    # before delivery, the switch still accepts the old key only
    assert store.mac_keyring("T1").verify(DATA, old_mac) is VerifyResult.OK

    new_terminal = install_key_change(c.clear_kek, change.field96).keyring(
        "T1", previous=old_terminal, now=clock()
    )
    new_mac = new_terminal.generate(DATA)
    # the predicted keyring already accepts both
    assert change.keyring.verify(DATA, new_mac, now=clock()) is VerifyResult.OK
    assert change.keyring.verify(DATA, old_mac, now=clock()) is VerifyResult.OK

    clock.advance(1)
    ring = store.mark_delivered(change)
    assert ring.current is not None and ring.current.version == 2
    assert [k.version for k in ring.grace] == [1]
    assert ring.check(DATA, new_mac, now=clock()).version == 2
    assert ring.check(DATA, old_mac, now=clock()).version == 1
    # idempotent
    store.mark_delivered(change)

    # after the grace window the old key is a key-sync error, a wrong MAC a mismatch
    clock.advance(301)
    assert ring.verify(DATA, old_mac, now=clock()) is VerifyResult.KEY_SYNC
    assert ring.verify(DATA, bytes(8), now=clock()) is VerifyResult.MAC_MISMATCH
    assert store.retire_expired() == 3
    # the keyring in hand still knows the old key and says key sync; one built
    # after the sweep cannot: the retired key's block is erased
    assert ring.verify(DATA, old_mac, now=clock()) is VerifyResult.KEY_SYNC
    ring2 = store.mac_keyring("T1")
    assert ring2.verify(DATA, old_mac) is VerifyResult.MAC_MISMATCH
    assert ring2.verify(DATA, new_mac) is VerifyResult.OK
    # a version hint that is not acceptable is a key-sync error
    assert ring2.verify(DATA, new_mac, version=1) is VerifyResult.KEY_SYNC

    # max age: the active key expires after 24 h -> 917 until the next sign-on
    clock.advance(24 * 3600)
    assert store.rotation_due("T1")
    assert store.mac_keyring("T1").verify(DATA, new_mac) is VerifyResult.KEY_SYNC

    actions = [(e.action, e.key_type) for e in store.audit(owner="T1")]
    assert ("rotate", KeyType.TAK) in actions and ("activate", KeyType.TAK) in actions
    assert ("retire", KeyType.TAK) in actions


def test_superseded_change_is_stale(store: KeyStore) -> None:
    store.add_terminal("T1")
    first = store.rotate("T1")
    second = store.rotate("T1")
    assert second.version_of(KeyType.TAK) == 3
    with pytest.raises(StaleKeyChange):
        store.mark_delivered(first)
    ring = store.mark_delivered(second)
    assert ring.current is not None and ring.current.version == 3
    again = store.rotate("T1", reuse_pending=False)
    reused = store.rotate("T1", reuse_pending=True)
    assert [k.version for k in reused.keys] == [k.version for k in again.keys]
    assert [k.kcv for k in reused.keys] == [k.kcv for k in again.keys]


def test_unknown_owner_and_grace_option(store: KeyStore, clock: Clock) -> None:
    with pytest.raises(UnknownOwner):
        store.rotate("nobody")
    with pytest.raises(UnknownOwner):
        store.mac_keyring("nobody")
    store.add_terminal("T1")
    c = store.rotate("T1", grace=10, activate=True)
    assert c.activated
    ring = store.mac_keyring("T1")
    assert ring.grace and ring.grace[0].retiring_until == pytest.approx(clock() + 10)


def test_max_uses_policy(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    with KeyStore.init(
        tmp_path, lmk=Lmk.generate(), policy=KeyPolicy(max_uses=3), clock=clock
    ) as s:
        c = s.add_terminal("T1")
        term = install_key_change(c.clear_kek, c.payload).keyring()
        mac = term.generate(DATA)
        ring = s.mac_keyring("T1")
        assert [ring.verify(DATA, mac, now=clock()) for _ in range(4)] == [
            VerifyResult.OK,
            VerifyResult.OK,
            VerifyResult.OK,
            VerifyResult.KEY_SYNC,
        ]
        assert ring.rotation_due(clock())
        s.record_uses("T1", 1, 3)
        assert s.rotation_due("T1")


def _needles(keys: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for k in keys:
        out += [k, k.hex().encode(), k.hex().upper().encode()]
        # halves too: a TDES key split into K1/K2 must not appear either
        for i in range(0, len(k), 8):
            part = k[i : i + 8]
            out += [part.hex().encode(), part.hex().upper().encode()]
    return out


def test_no_clear_key_in_store_files_or_logs(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    caplog.set_level(logging.DEBUG)
    d = tmp_path / "data"
    clear: list[bytes] = []
    lmk_file = tmp_path / "lmk.key"
    with KeyStore.init(d, lmk_file=lmk_file, clock=clock) as s:
        lmk_hex = lmk_file.read_text().strip()
        clear.append(bytes.fromhex(lmk_hex))
        for tid, fam in (("T1", Family.TDES), ("T2", Family.AES)):
            c = s.add_terminal(tid, fam)
            clear += [c.clear_kek, *c.components]
            clear += [k.key for k in install_key_change(c.clear_kek, c.payload).keys]
            for _ in range(2):
                ch = s.rotate(tid, reason="test")
                clear += [k.key for k in install_key_change(c.clear_kek, ch.payload).keys]
                s.mark_delivered(ch)
        comps = [os.urandom(16), os.urandom(16)]
        info = s.add_acquirer("acq", comps)
        clear += comps
        from forecourt.keys.crypto import adjust_parity

        zmk = adjust_parity(bytes(a ^ b for a, b in zip(*comps, strict=True)))
        clear.append(zmk)
        clear += [k.key for k in install_key_change(zmk, info.payload).keys]
        ch = s.rotate("acq", activate=True)
        clear += [k.key for k in install_key_change(zmk, ch.payload).keys]
        s.audit()
        repr(s), repr(s.mac_keyring("T1"))
    blobs = {p.name: p.read_bytes() for p in d.iterdir()}
    assert "keys.db" in blobs
    blobs["log"] = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert caplog.records  # the store does log its rotations
    for needle in _needles(clear):
        for name, blob in blobs.items():
            assert needle not in blob, f"clear key material found in {name}"


def test_only_the_previous_version_stays_in_grace(store: KeyStore, clock: Clock) -> None:
    c = store.add_terminal("T1")
    v1 = install_key_change(c.clear_kek, c.payload).keyring()
    store.rotate("T1", activate=True)
    clock.advance(10)
    store.rotate("T1", activate=True)
    ring = store.mac_keyring("T1")
    assert ring.current is not None and ring.current.version == 3
    assert [k.version for k in ring.grace] == [2]
    # v1 retired at once ("replaced twice"), so its block is erased: nothing left to MAC with
    assert ring.verify(DATA, v1.generate(DATA)) is VerifyResult.MAC_MISMATCH
    states = {(k.key_type, k.version): k.state for k in store.list_keys("T1")}
    assert states[(KeyType.TAK, 1)] is KeyState.RETIRED
