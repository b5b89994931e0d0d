"""The registry of key owners: terminals (by TID) and acquirer links (by name).

Every key belongs to an owner row in `key_owners`; writers lock that row, so
this is also where an unknown owner is found and reported as `UnknownOwner`
carrying the id alone.
"""

from __future__ import annotations

import re

from forecourt.keys.backend import Tx
from forecourt.keys.errors import DuplicateOwner, InvalidName, UnknownOwner
from forecourt.keys.model import OwnerInfo, OwnerKind

_TERMINAL_ID = re.compile(r"^[A-Za-z0-9]{1,8}$")
_ACQUIRER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


def check_terminal_id(terminal_id: str) -> None:
    if not _TERMINAL_ID.match(terminal_id):
        raise InvalidName("terminal id must be 1 to 8 letters or digits")


def check_acquirer_name(name: str) -> None:
    if not _ACQUIRER_NAME.match(name):
        raise InvalidName("acquirer name must be 1 to 32 letters, digits, '.', '_' or '-'")


def register(tx: Tx, name: str, kind: OwnerKind, now: float) -> None:
    if tx.query("SELECT 1 FROM key_owners WHERE owner = ?", (name,)):
        raise DuplicateOwner(f"{name!r} is already registered")
    tx.execute(
        "INSERT INTO key_owners (owner, kind, created_at) VALUES (?, ?, ?)",
        (name, kind.value, now),
    )


def kind_of(tx: Tx, owner: str) -> OwnerKind:
    rows = tx.query("SELECT kind FROM key_owners WHERE owner = ?", (owner,))
    if not rows:
        raise UnknownOwner(owner)
    return OwnerKind(rows[0][0])


def lock(tx: Tx, owner: str) -> OwnerKind:
    """Serialise this transaction with every other writer of `owner`."""
    if not tx.lock_owner(owner):
        raise UnknownOwner(owner)
    return kind_of(tx, owner)


def listed(tx: Tx, kind: OwnerKind | None = None) -> list[OwnerInfo]:
    rows = tx.query("SELECT owner, kind, created_at FROM key_owners ORDER BY owner")
    out = [OwnerInfo(str(r[0]), OwnerKind(r[1]), float(r[2])) for r in rows]
    return [o for o in out if kind is None or o.kind is kind]


def is_terminal(tx: Tx, terminal_id: str) -> bool:
    rows = tx.query(
        "SELECT 1 FROM key_owners WHERE owner = ? AND kind = ?",
        (terminal_id, OwnerKind.TERMINAL.value),
    )
    return bool(rows)
