"""Key rows: the `key_entries` table, every key a block under the vault's LMK.

The column list, the row type and the state updates live together, so no other
module writes SQL against `key_entries`; what a `key_block` holds (a TR-31 block
under the software LMK, or a payment HSM's block under its own LMK) is the
vault's business (`keys/vault.py`, `keys/payshield_vault.py`). A retired key's block
is erased (set to '') when it retires: its id, KCV, version and times stay for
the audit, but no backup made afterwards can give the key back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from forecourt.keys.backend import Row, Tx
from forecourt.keys.crypto import Algorithm
from forecourt.keys.errors import KeyErased, UnknownKey
from forecourt.keys.model import MASTER_TYPE, KeyInfo, KeyState, KeyType, OwnerKind
from forecourt.keys.security_module import KeyRef as ModuleKeyRef

COLUMNS = (
    "id, owner, key_type, algorithm, version, kcv, state, created_at, activated_at,"
    " expires_at, retiring_until, uses, grace_seconds, key_block"
)
_SELECT = f"SELECT {COLUMNS} FROM key_entries"

KeyRef = tuple[int, str]  # (version, KCV): how the audit and the logs name a key
ERASED = ""  # the key_block of a retired key


def _time(value: Any) -> float | None:
    return None if value is None else float(value)


@attrs.frozen
class KeyRow(KeyInfo):
    """A stored key: what the operator sees (`KeyInfo`), its grace window and its block."""

    grace_seconds: float
    key_block: str = attrs.field(repr=False)

    @classmethod
    def of(cls, r: Row) -> KeyRow:
        return cls(
            id=str(r[0]),
            owner=str(r[1]),
            key_type=KeyType(r[2]),
            algorithm=Algorithm(r[3]),
            version=int(r[4]),
            kcv=str(r[5]),
            state=KeyState(r[6]),
            created_at=float(r[7]),
            activated_at=_time(r[8]),
            expires_at=_time(r[9]),
            retiring_until=_time(r[10]),
            uses=int(r[11]),
            grace_seconds=float(r[12]),
            key_block=str(r[13]),
        )

    @property
    def ref(self) -> KeyRef:
        return (self.version, self.kcv)

    def key_ref(self, backend: str = "software") -> ModuleKeyRef:
        """The row as a security-module reference: its block is the handle (a
        TR-31 block under the software LMK, or a device's block under its LMK)."""
        if self.erased:
            raise KeyErased(f"{self.id} (KCV {self.kcv}) is retired: its key block was erased")
        return ModuleKeyRef(self.key_type, self.algorithm, self.kcv, self.key_block, backend)

    @property
    def erased(self) -> bool:
        return self.key_block == ERASED

    def info(self) -> KeyInfo:
        """The row without its block, for the operator."""
        return KeyInfo(**{f.name: getattr(self, f.name) for f in attrs.fields(KeyInfo)})


# -- reading -------------------------------------------------------------------


def select(tx: Tx, owner: str, key_type: KeyType, states: Sequence[KeyState] = ()) -> list[KeyRow]:
    """The owner's keys of one type (in `states`, if given), oldest version first."""
    sql = f"{_SELECT} WHERE owner = ? AND key_type = ?"
    params: list[object] = [owner, key_type.value]
    if states:
        sql += " AND state IN (" + ", ".join("?" for _ in states) + ")"
        params += [s.value for s in states]
    return [KeyRow.of(r) for r in tx.query(sql + " ORDER BY version", params)]


def active(tx: Tx, owner: str, key_type: KeyType) -> KeyRow | None:
    rows = select(tx, owner, key_type, (KeyState.ACTIVE,))
    return rows[0] if rows else None


_INFO_SELECT = (
    "SELECT id, owner, key_type, algorithm, version, kcv, state, created_at, activated_at,"
    " expires_at, retiring_until, uses FROM key_entries ORDER BY owner, key_type, version"
)


def infos(tx: Tx) -> list[KeyInfo]:
    """Every key as the operator sees it, without reading its block: for readers
    that hold no LMK (the web console)."""
    return [
        KeyInfo(
            id=str(r[0]),
            owner=str(r[1]),
            key_type=KeyType(r[2]),
            algorithm=Algorithm(r[3]),
            version=int(r[4]),
            kcv=str(r[5]),
            state=KeyState(r[6]),
            created_at=float(r[7]),
            activated_at=_time(r[8]),
            expires_at=_time(r[9]),
            retiring_until=_time(r[10]),
            uses=int(r[11]),
        )
        for r in tx.query(_INFO_SELECT)
    ]


def select_all(tx: Tx, owner: str | None = None) -> list[KeyRow]:
    """Every key (of one owner), in the order the operator lists them."""
    sql, params = _SELECT, []
    if owner is not None:
        sql, params = f"{_SELECT} WHERE owner = ?", [owner]
    return [KeyRow.of(r) for r in tx.query(sql + " ORDER BY owner, key_type, version", params)]


def grace_over(tx: Tx, now: float, owner: str | None = None) -> list[KeyRow]:
    """Retiring keys whose grace window has ended by `now`."""
    sql = f"{_SELECT} WHERE state = ? AND retiring_until <= ?"
    params: list[object] = [KeyState.RETIRING.value, now]
    if owner is not None:
        sql += " AND owner = ?"
        params.append(owner)
    return [KeyRow.of(r) for r in tx.query(sql, params)]


def next_version(tx: Tx, owner: str, key_type: KeyType) -> int:
    rows = tx.query(
        "SELECT MAX(version) FROM key_entries WHERE owner = ? AND key_type = ?",
        (owner, key_type.value),
    )
    return (int(rows[0][0]) if rows and rows[0][0] is not None else 0) + 1


# -- state changes -------------------------------------------------------------


def set_retired(tx: Tx, row: KeyRow, now: float) -> None:
    """`row` is retired and its block erased: it is never used again."""
    tx.execute(
        "UPDATE key_entries SET state = ?, retired_at = ?, key_block = ? WHERE id = ?",
        (KeyState.RETIRED.value, now, ERASED, row.id),
    )
    tx.erased = True


def retired_with_block(tx: Tx) -> list[KeyRow]:
    """Retired keys that still hold a block (retired before blocks were erased)."""
    sql = f"{_SELECT} WHERE state = ? AND key_block <> ? ORDER BY owner, key_type, version"
    return [KeyRow.of(r) for r in tx.query(sql, (KeyState.RETIRED.value, ERASED))]


def erase(tx: Tx, row: KeyRow) -> None:
    tx.execute("UPDATE key_entries SET key_block = ? WHERE id = ?", (ERASED, row.id))
    tx.erased = True


def set_retiring(tx: Tx, row: KeyRow, until: float) -> None:
    tx.execute(
        "UPDATE key_entries SET state = ?, retiring_until = ? WHERE id = ?",
        (KeyState.RETIRING.value, until, row.id),
    )


def set_active(tx: Tx, row: KeyRow, now: float, expires_at: float) -> None:
    tx.execute(
        "UPDATE key_entries SET state = ?, activated_at = ?, expires_at = ? WHERE id = ?",
        (KeyState.ACTIVE.value, now, expires_at, row.id),
    )


def add_uses(tx: Tx, owner: str, key_type: KeyType, version: int, count: int) -> None:
    tx.execute(
        "UPDATE key_entries SET uses = uses + ? WHERE owner = ? AND key_type = ? AND version = ?",
        (count, owner, key_type.value, version),
    )


def insert_row(
    tx: Tx,
    owner: str,
    key_type: KeyType,
    algorithm: Algorithm,
    version: int,
    block: str,
    check: str,
    state: KeyState,
    now: float,
    grace: float,
    expires_at: float | None = None,
) -> None:
    """A new row holding `block` (a vault's: under the software LMK or a device's)."""
    tx.execute(
        "INSERT INTO key_entries (id, owner, key_type, algorithm, version, kcv, state,"
        " created_at, activated_at, expires_at, grace_seconds, key_block)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            f"{owner}/{key_type.value}/{version}",
            owner,
            key_type.value,
            algorithm.value,
            version,
            check,
            state.value,
            now,
            now if state is KeyState.ACTIVE else None,
            expires_at,
            grace,
            block,
        ),
    )


def master_row(tx: Tx, owner: str, kind: OwnerKind) -> KeyRow:
    """The owner's active KEK/ZMK row: what its working keys travel under."""
    row = active(tx, owner, MASTER_TYPE[kind])
    if row is None:
        raise UnknownKey(f"{owner} has no active {MASTER_TYPE[kind].value}")
    return row
