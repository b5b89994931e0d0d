"""The same store on PostgreSQL (a throwaway cluster from tests/conftest.py)."""

from __future__ import annotations

import os

import psycopg
import pytest
from forecourt.keys import (
    KeyPolicy,
    KeyStore,
    KeyType,
    Lmk,
    LmkMismatch,
    StoreExists,
    StoreNotInitialised,
    VerifyResult,
    install_key_change,
)

from .conftest import Clock

pytestmark = pytest.mark.postgres
DATA = b"1804" + bytes(range(64))


def test_postgres_store_flow(postgres_db: str, clock: Clock) -> None:
    lmk = Lmk.generate()
    with pytest.raises(StoreNotInitialised):
        KeyStore.open(dsn=postgres_db, lmk=lmk)
    clear: list[bytes] = [lmk.key]
    with KeyStore.init(dsn=postgres_db, lmk=lmk, policy=KeyPolicy(), clock=clock) as store:
        with pytest.raises(StoreExists):
            KeyStore.init(dsn=postgres_db, lmk=lmk)
        c = store.add_terminal("T1")
        clear += [c.clear_kek, *c.components]
        old = install_key_change(c.clear_kek, c.payload)
        clear += [k.key for k in old.keys]
        change = store.rotate("T1", reason="sign-on")
        new = install_key_change(c.clear_kek, change.field96)
        clear += [k.key for k in new.keys]
        clock.advance(1)
        ring = store.mark_delivered(change)
        assert ring.verify(DATA, new.keyring().generate(DATA)) is VerifyResult.OK
        assert ring.verify(DATA, old.keyring().generate(DATA)) is VerifyResult.OK
        clock.advance(301)
        assert ring.verify(DATA, old.keyring().generate(DATA)) is VerifyResult.KEY_SYNC
        info = store.add_acquirer("acq", [os.urandom(16), os.urandom(16)])
        assert store.acquirers() == ["acq"] and store.terminals() == ["T1"]
        assert store.is_registered("T1")
        assert info.zmk_kcv in {k.kcv for k in store.list_keys("acq")}
        assert [e.action for e in store.audit(owner="T1")].count("activate") == 3
        assert store.retire_expired() == 3
    with pytest.raises(LmkMismatch):
        KeyStore.open(dsn=postgres_db, lmk=Lmk.generate())
    # nothing clear in any table
    with psycopg.connect(postgres_db) as conn:
        dump = ""
        for table in ("key_meta", "key_owners", "key_entries", "key_audit"):
            dump += repr(conn.execute(f"SELECT * FROM {table}").fetchall())
    assert "TAK" in dump
    for k in clear:
        assert k.hex() not in dump.lower()


def test_postgres_one_active_enforced_by_index(postgres_db: str) -> None:
    lmk = Lmk.generate()
    with KeyStore.init(dsn=postgres_db, lmk=lmk) as store:
        store.add_terminal("T1")
        store.rotate("T1", activate=True)
    with psycopg.connect(postgres_db) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "UPDATE key_entries SET state = 'active' WHERE owner = 'T1' AND key_type = %s",
            (KeyType.TAK.value,),
        )
