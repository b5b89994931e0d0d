"""A retired key's TR-31 block is erased; its id, KCV, version, times and audit stay.

On SQLite (the bytes are gone from keys.db and its WAL too) and on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import forecourt.switch.cli as switch_cli
import psycopg
import pytest
from forecourt.keys import KeyErased, KeyState, KeyStore, KeyType, key_rows
from forecourt.keys.vault import KeyVault

from .conftest import Clock


def _raw(store_where: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows straight from the database, past the store's own code."""
    if isinstance(store_where, Path):
        with sqlite3.connect(store_where) as conn:
            return list(conn.execute(sql, params).fetchall())
    with psycopg.connect(store_where) as conn:
        return list(conn.execute(sql.replace("?", "%s"), params).fetchall())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str | None, Path]]:
    """(DSN or None, data directory) of an empty store's location."""
    if request.param == "sqlite":
        yield None, tmp_path / "data"
    else:
        yield request.getfixturevalue("postgres_db"), tmp_path / "data"


def _db(dsn: str | None, data: Path) -> str | Path:
    return dsn if dsn else data / "keys.db"


def test_a_key_past_its_grace_keeps_its_kcv_but_not_its_block(
    where: tuple[str | None, Path], tmp_path: Path, clock: Clock
) -> None:
    dsn, data = where
    lmk_file = tmp_path / "lmk.key"
    with KeyStore.init(data, dsn=dsn, lmk_file=lmk_file, clock=clock) as store:
        store.add_terminal("T1")
        v1 = {
            k.key_type: k
            for k in store.list_keys("T1")
            if k.version == 1 and k.key_type is not KeyType.KEK
        }
        blocks = dict(_raw(_db(dsn, data), "SELECT id, key_block FROM key_entries"))
        store.mark_delivered(store.rotate("T1", grace=60))
        clock.advance(30)
        assert store.retire_expired() == 0  # in grace: still there
        retiring = "SELECT key_block FROM key_entries WHERE state = 'retiring'"
        assert all(r[0] for r in _raw(_db(dsn, data), retiring))
        clock.advance(31)
        assert store.retire_expired() == 3
        erased = _raw(
            _db(dsn, data),
            "SELECT id, kcv, version, activated_at, retired_at, key_block FROM key_entries"
            " WHERE state = ? ORDER BY id",
            (KeyState.RETIRED.value,),
        )
        assert [r[0] for r in erased] == ["T1/TAK/1", "T1/TDK/1", "T1/TPK/1"]
        assert all(r[5] == "" and r[3] is not None and r[4] is not None for r in erased)
        assert {r[0]: r[1] for r in erased} == {k.id: k.kcv for k in v1.values()}
        # what the operator lists: the retired versions with their KCVs
        listed = {(k.key_type, k.version): k for k in store.list_keys("T1")}
        for kt in (KeyType.TAK, KeyType.TPK, KeyType.TDK):
            assert listed[(kt, 1)].state is KeyState.RETIRED
            assert listed[(kt, 1)].kcv == v1[kt].kcv
        # the audit says so, once per key, naming version and KCV
        erases = [e for e in store.audit(owner="T1") if e.action == "erase"]
        assert sorted((str(e.key_type), e.old_version, e.old_kcv) for e in erases) == sorted(
            (str(kt), 1, v1[kt].kcv) for kt in v1
        )
        # reading the block is impossible, with a typed error
        with store._db.read() as tx:  # the row as the store reads it
            row = key_rows.select(tx, "T1", KeyType.TPK, (KeyState.RETIRED,))[0]
        with pytest.raises(KeyErased, match="T1/TPK/1"):
            KeyVault(store.lmk).unwrap(row)
        # the keys in use are untouched
        assert store.mac_keyring("T1").current is not None
    if dsn is None:  # nothing of the old blocks left in the files (free pages, WAL)
        files = b"".join(p.read_bytes() for p in data.iterdir() if p.name.startswith("keys.db"))
        for key_id, block in blocks.items():
            if key_id.endswith("/1") and "KEK" not in key_id:
                assert block.encode() not in files, key_id


def test_superseded_and_replaced_twice_are_erased_too(store: KeyStore) -> None:
    store.add_terminal("T1")
    store.rotate("T1")  # v2 pending ...
    store.rotate("T1", activate=True)  # ... superseded by v3, active; v1 retiring
    store.rotate("T1", activate=True)  # v4: v3 retiring, v1 replaced twice
    with store._db.read() as tx:
        rows = key_rows.select(tx, "T1", KeyType.TAK)
    assert [(r.version, r.state, r.erased) for r in rows] == [
        (1, KeyState.RETIRED, True),
        (2, KeyState.RETIRED, True),
        (3, KeyState.RETIRING, False),
        (4, KeyState.ACTIVE, False),
    ]
    actions = [
        (e.action, e.old_version) for e in store.audit(owner="T1") if e.key_type is KeyType.TAK
    ]
    assert ("supersede", 2) in actions and ("erase", 2) in actions and ("erase", 1) in actions


def test_blocks_of_keys_retired_before_erasing_existed_go_at_the_next_sweep(
    store: KeyStore, clock: Clock
) -> None:
    store.add_terminal("T1")
    store.rotate("T1", activate=True, grace=0)
    with store._db.write() as tx:  # a row as an older version left it: retired, block kept
        tx.execute("UPDATE key_entries SET state = 'retired' WHERE state = 'retiring'")
    with store._db.read() as tx:
        assert not key_rows.select(tx, "T1", KeyType.TAK)[0].erased
    store.retire_expired()
    with store._db.read() as tx:
        assert key_rows.select(tx, "T1", KeyType.TAK)[0].erased
    assert [e.old_version for e in store.audit(owner="T1") if e.action == "erase"] == [1, 1, 1]


def test_keys_list_shows_the_erased_keys_kcv(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: tuple[str | None, Path],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(switch_cli, "COMMAND_MODULES", ("forecourt.keys.cli",))
    monkeypatch.delenv("FORECOURT_LMK", raising=False)
    dsn, data = where
    loc = ["--data-dir", str(data), *(["--database", dsn] if dsn else [])]
    assert switch_cli.main(["keys", *loc, "init", "--lmk-file", str(tmp_path / "lmk.key")]) == 0
    (tmp_path / "components").mkdir()
    files = ["--component-files", str(tmp_path / "components")]
    assert switch_cli.main(["keys", *loc, "add-terminal", "T1", *files]) == 0
    assert switch_cli.main(["keys", *loc, "rotate", "T1", "--activate", "--grace", "0"]) == 0
    capsys.readouterr()
    assert switch_cli.main(["keys", *loc, "list", "--owner", "T1"]) == 0  # sweeps first
    out = capsys.readouterr().out
    kcv = _raw(_db(dsn, data), "SELECT kcv FROM key_entries WHERE id = 'T1/TAK/1'")[0][0]
    line = next(line for line in out.splitlines() if kcv in line)
    assert "retired" in line and "TAK" in line
    assert _raw(_db(dsn, data), "SELECT key_block FROM key_entries WHERE id = 'T1/TAK/1'") == [
        ("",)
    ]
    assert switch_cli.main(["keys", *loc, "audit", "--owner", "T1"]) == 0
    assert "erase" in capsys.readouterr().out
