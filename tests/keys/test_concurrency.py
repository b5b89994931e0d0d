"""Two real processes rotating the same terminal: never two active versions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from forecourt.keys import KeyState, KeyStore, KeyType, Lmk

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 30


def _race(where: str, lmk: Lmk, tmp_path: Path) -> list[dict[str, int]]:
    start = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.keys.rotation_worker",
                where,
                lmk.key.hex(),
                "T1",
                str(ROUNDS),
                str(start),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    start.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _check(store: KeyStore, results: list[dict[str, int]]) -> None:
    assert all(r["violations"] == 0 for r in results)
    assert sum(r["done"] for r in results) >= ROUNDS  # half the rounds activate directly
    for key_type in (KeyType.TAK, KeyType.TPK, KeyType.TDK):
        keys = [k for k in store.list_keys("T1") if k.key_type is key_type]
        states = Counter(k.state for k in keys)
        assert states[KeyState.ACTIVE] == 1
        assert states[KeyState.PENDING] <= 1
        versions = sorted(k.version for k in keys)
        assert versions == list(range(1, len(versions) + 1))  # no gaps, no duplicates
        assert len(versions) == 1 + 2 * ROUNDS
    activations = [e for e in store.audit(owner="T1") if e.action == "activate"]
    new_versions = [(e.key_type, e.new_version) for e in activations]
    assert len(new_versions) == len(set(new_versions))


@pytest.mark.slow
def test_two_processes_sqlite(tmp_path: Path) -> None:
    lmk = Lmk.generate()
    data = tmp_path / "data"
    with KeyStore.init(data, lmk=lmk) as store:
        store.add_terminal("T1")
    results = _race(str(data), lmk, tmp_path)
    with KeyStore.open(data, lmk=lmk) as store:
        _check(store, results)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_postgres(tmp_path: Path, postgres_db: str) -> None:
    lmk = Lmk.generate()
    with KeyStore.init(dsn=postgres_db, lmk=lmk) as store:
        store.add_terminal("T1")
    results = _race(postgres_db, lmk, tmp_path)
    with KeyStore.open(dsn=postgres_db, lmk=lmk) as store:
        _check(store, results)
