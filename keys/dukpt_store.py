"""DUKPT in the key store: BDKs, the terminals derived from them, and each
terminal's KSN high-water mark.

A BDK is an owner of its own kind (`bdk`) with one key row (`BDK`, version 1,
TR-31 B0 under the LMK, non-exportable): the row's block is exactly the handle
of a software `KeyRef`, so the security module opens it and nothing else does.
A DUKPT terminal is a terminal owner without a KEK or working keys, and one row
of `key_dukpt_terminals`: its BDK, scheme (aes / tdes), initial key ID (AES: 8
bytes; TDES: the 10-byte KSN with its counter cleared) and the highest counter
the switch accepted. `advance` moves that mark in one write transaction under
the owner lock, so a replayed or older KSN is refused at every node and after
every restart, and counts the refusal.
"""

from __future__ import annotations

import enum
import math

import attrs
from forecourt.keys import audit, dukpt_aes, dukpt_tdes, owners
from forecourt.keys.backend import Backend, Tx
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.errors import InvalidKey, UnknownKey, UnknownOwner
from forecourt.keys.key_rows import active, insert_row
from forecourt.keys.model import KeyState, KeyType, OwnerKind
from forecourt.keys.payshield_vault import PayShieldVault
from forecourt.keys.security_module import KeyRef
from forecourt.keys.vault import Vault

__all__ = [
    "DukptRegistry",
    "DukptScheme",
    "DukptTerminal",
    "KsnCheck",
    "KsnVerdict",
    "remaining_counters",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_dukpt_terminals (
    terminal_id TEXT PRIMARY KEY REFERENCES key_owners (owner),
    bdk TEXT NOT NULL REFERENCES key_owners (owner),
    scheme TEXT NOT NULL,
    initial_key_id TEXT NOT NULL,
    counter BIGINT NOT NULL DEFAULT 0,
    replays BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)
"""


class DukptScheme(enum.Enum):
    AES = "aes"  # ANSI X9.24-3-2017, 12-byte KSN
    TDES = "tdes"  # ANSI X9.24-1-2009, 10-byte KSN

    @property
    def ksn_length(self) -> int:
        return dukpt_aes.KSN_LENGTH if self is DukptScheme.AES else dukpt_tdes.KSN_LENGTH

    @property
    def bdk_algorithms(self) -> tuple[Algorithm, ...]:
        if self is DukptScheme.AES:
            return (Algorithm.AES128, Algorithm.AES192, Algorithm.AES256)
        return (Algorithm.TDES2,)


class KsnVerdict(enum.Enum):
    OK = "ok"
    REPLAY = "replay"  # the counter did not move forward
    INVALID = "invalid"  # wrong length, or a counter a terminal never uses
    WRONG_DEVICE = "wrong_device"  # another initial key ID than the terminal's


@attrs.frozen
class KsnCheck:
    verdict: KsnVerdict
    counter: int
    remaining: int  # usable counters left after this one

    @property
    def ok(self) -> bool:
        return self.verdict is KsnVerdict.OK


@attrs.frozen
class DukptTerminal:
    terminal_id: str
    bdk: str
    scheme: DukptScheme
    initial_key_id: bytes
    counter: int
    replays: int


def usable_up_to(value: int, bits: int, max_ones: int) -> int:
    """How many counters in 1..value have at most `max_ones` one-bits (counted by
    prefixes: no need to walk two billion AES counters)."""
    total, ones = 0, 0
    for bit in range(bits - 1, -1, -1):
        if value >> bit & 1:
            # this bit 0 under the same higher bits: the lower `bit` bits are free
            total += sum(math.comb(bit, k) for k in range(max_ones - ones + 1))
            ones += 1
            if ones > max_ones:
                return total - 1
    return total  # `value` itself counted, the zero counter not


def remaining_counters(scheme: DukptScheme, counter: int) -> int:
    """Usable counters after `counter` until the terminal is exhausted."""
    bits, ones = (32, 16) if scheme is DukptScheme.AES else (21, 10)
    last = (1 << bits) - 1
    return usable_up_to(last, bits, ones) - usable_up_to(counter, bits, ones)


class DukptRegistry:
    """BDKs and DUKPT terminals in one key store (`KeyStore.dukpt()`)."""

    def __init__(self, backend: Backend, vault: Vault) -> None:
        self._db = backend
        self._vault = vault

    def _ensure(self, tx: Tx) -> None:
        tx.execute(_SCHEMA)

    # -- BDKs ------------------------------------------------------------------

    def add_bdk(self, name: str, algorithm: Algorithm, key: bytes, now: float, actor: str) -> str:
        """Store a BDK under the LMK; returns its KCV. The DUKPT table is made here,
        with the first BDK, so a store without one never has it written."""
        owners.check_acquirer_name(name)
        if algorithm not in (*DukptScheme.AES.bdk_algorithms, Algorithm.TDES2):
            raise InvalidKey("a BDK is 2-key TDES (TDES DUKPT) or AES-128/192/256 (AES DUKPT)")
        with self._db.write() as tx:
            self._ensure(tx)
            owners.register(tx, name, OwnerKind.BDK, now)
            check = self._vault.insert(
                tx, name, KeyType.BDK, algorithm, 1, key, KeyState.ACTIVE, now, 0.0
            )
            audit.record(tx, now, actor, "add-bdk", name, KeyType.BDK, new=(1, check))
        return check

    def add_bdk_block(
        self, name: str, algorithm: Algorithm, block: str, expected_kcv: str, now: float, actor: str
    ) -> str:
        """A BDK formed at a payment HSM's console, as its block (payshield store):
        checked by the HSM (usage B0, its LMK, BU's KCV) before it is stored."""
        if not isinstance(self._vault, PayShieldVault):
            raise InvalidKey(
                "--bdk-block: a key block from an HSM console goes into a payshield store;"
                " this store is software: give the components instead"
            )
        owners.check_acquirer_name(name)
        if algorithm not in (*DukptScheme.AES.bdk_algorithms, Algorithm.TDES2):
            raise InvalidKey("a BDK is 2-key TDES (TDES DUKPT) or AES-128/192/256 (AES DUKPT)")
        check = self._vault.admit(block, KeyType.BDK, algorithm, expected_kcv)
        with self._db.write() as tx:
            self._ensure(tx)
            owners.register(tx, name, OwnerKind.BDK, now)
            insert_row(
                tx, name, KeyType.BDK, algorithm, 1, block.strip(), check, KeyState.ACTIVE, now, 0.0
            )
            audit.record(tx, now, actor, "add-bdk", name, KeyType.BDK, new=(1, check))
        return check

    def bdk_ref(self, name: str) -> KeyRef:
        """The BDK as a software-module reference (its block under the LMK)."""
        with self._db.read() as tx:
            row = active(tx, name, KeyType.BDK)
        if row is None:
            raise UnknownKey(f"no BDK named {name!r}: add it with 'forecourt keys add-bdk'")
        return KeyRef(KeyType.BDK, row.algorithm, row.kcv, row.key_block, self._vault.backend)

    def working_ref(self, owner: str, key_type: KeyType) -> KeyRef | None:
        """An owner's active key (e.g. a link's ZPK) as a software-module reference."""
        with self._db.read() as tx:
            row = active(tx, owner, key_type)
        if row is None or row.erased:
            return None
        return KeyRef(key_type, row.algorithm, row.kcv, row.key_block, self._vault.backend)

    # -- terminals -------------------------------------------------------------

    def add_terminal(
        self,
        terminal_id: str,
        bdk: str,
        initial_key_id: bytes,
        initial_key_kcv: str,
        now: float,
        actor: str,
    ) -> DukptTerminal:
        """Register a DUKPT terminal under `bdk` with its initial key ID."""
        owners.check_terminal_id(terminal_id)
        ref = self.bdk_ref(bdk)
        scheme = DukptScheme.AES if ref.algorithm.is_aes else DukptScheme.TDES
        ident = _initial_key_id(scheme, initial_key_id)
        with self._db.write() as tx:
            self._ensure(tx)
            owners.register(tx, terminal_id, OwnerKind.TERMINAL, now)
            tx.execute(
                "INSERT INTO key_dukpt_terminals (terminal_id, bdk, scheme, initial_key_id,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (terminal_id, bdk, scheme.value, ident.hex().upper(), now, now),
            )
            audit.record(
                tx,
                now,
                actor,
                "add-dukpt-terminal",
                terminal_id,
                KeyType.IK,
                new=(1, initial_key_kcv),
                reason=f"BDK {bdk} KCV {ref.kcv}, initial key ID {ident.hex().upper()}",
            )
        return DukptTerminal(terminal_id, bdk, scheme, ident, 0, 0)

    def terminals(self) -> list[DukptTerminal]:
        """Every DUKPT terminal; none (and nothing written) in a store that never
        had one, so the switch's start and key watch only ever read."""
        with self._db.read() as tx:
            if not tx.query("SELECT 1 FROM key_owners WHERE kind = ?", (OwnerKind.BDK.value,)):
                return []
            rows = tx.query(
                "SELECT terminal_id, bdk, scheme, initial_key_id, counter, replays"
                " FROM key_dukpt_terminals ORDER BY terminal_id"
            )
        return [_terminal(r) for r in rows]

    def terminal(self, terminal_id: str) -> DukptTerminal | None:
        return next((t for t in self.terminals() if t.terminal_id == terminal_id), None)

    def advance(self, terminal_id: str, ksn: bytes, now: float) -> KsnCheck:
        """Accept `ksn` only if its counter is above the terminal's high-water mark
        (then the mark moves to it), a counter a terminal uses, and of the
        terminal's initial key ID; a refused KSN is counted as a replay."""
        with self._db.write() as tx:
            self._ensure(tx)
            if not tx.lock_owner(terminal_id):
                raise UnknownOwner(terminal_id)
            rows = tx.query(
                "SELECT terminal_id, bdk, scheme, initial_key_id, counter, replays"
                " FROM key_dukpt_terminals WHERE terminal_id = ?",
                (terminal_id,),
            )
            if not rows:
                raise UnknownOwner(terminal_id)
            term = _terminal(rows[0])
            verdict, counter = _judge(term, ksn)
            if verdict is KsnVerdict.OK:
                tx.execute(
                    "UPDATE key_dukpt_terminals SET counter = ?, updated_at = ?"
                    " WHERE terminal_id = ?",
                    (counter, now, terminal_id),
                )
                high = counter
            else:
                tx.execute(
                    "UPDATE key_dukpt_terminals SET replays = replays + 1, updated_at = ?"
                    " WHERE terminal_id = ?",
                    (now, terminal_id),
                )
                high = term.counter
        return KsnCheck(verdict, counter, remaining_counters(term.scheme, high))


def _initial_key_id(scheme: DukptScheme, ident: bytes) -> bytes:
    if scheme is DukptScheme.AES:
        if len(ident) != dukpt_aes.INITIAL_KEY_ID_LENGTH:
            raise InvalidKey("an AES DUKPT initial key ID is 8 bytes (16 hex digits)")
        return ident
    if len(ident) != dukpt_tdes.KSN_LENGTH:
        raise InvalidKey("a TDES DUKPT initial KSN is 10 bytes (20 hex digits)")
    return dukpt_tdes.initial_ksn(ident)


def _terminal(r: tuple[object, ...]) -> DukptTerminal:
    return DukptTerminal(
        str(r[0]),
        str(r[1]),
        DukptScheme(r[2]),
        bytes.fromhex(str(r[3])),
        int(str(r[4])),
        int(str(r[5])),
    )


def _judge(term: DukptTerminal, ksn: bytes) -> tuple[KsnVerdict, int]:
    if len(ksn) != term.scheme.ksn_length:
        return KsnVerdict.INVALID, 0
    if term.scheme is DukptScheme.AES:
        ident, counter = dukpt_aes.initial_key_id_of(ksn), dukpt_aes.counter_of(ksn)
        valid = dukpt_aes.is_valid_counter(counter)
    else:
        ident, counter = dukpt_tdes.initial_ksn(ksn), dukpt_tdes.counter_of(ksn)
        valid = dukpt_tdes.is_valid_counter(counter)
    if ident != term.initial_key_id:
        return KsnVerdict.WRONG_DEVICE, counter
    if not valid:
        return KsnVerdict.INVALID, counter
    if counter <= term.counter:
        return KsnVerdict.REPLAY, counter
    return KsnVerdict.OK, counter


def initial_key_kcv(key: bytes, scheme: DukptScheme, algorithm: Algorithm) -> str:
    """The KCV of a terminal's initial key (AES keys by CMAC, the IPEK by TDES)."""
    return kcv(key, algorithm if scheme is DukptScheme.AES else Algorithm.TDES2)
