"""The key store: every key a TR-31 block under the LMK, in SQLite or PostgreSQL.

Methods are synchronous and thread-safe (the switch calls them through
`trio.to_thread`). Clear keys exist only in memory, inside prepared MAC objects
and for the moment of wrapping; rows, audit lines, logs and errors carry ids,
versions and KCVs.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
from forecourt.keys import tr31
from forecourt.keys.backend import Backend, PostgresBackend, Row, SqliteBackend, Tx
from forecourt.keys.crypto import (
    Algorithm,
    Family,
    adjust_parity,
    generate_key,
    kcv,
    kcv_matches,
    xor,
)
from forecourt.keys.errors import (
    DuplicateOwner,
    InvalidKey,
    InvalidName,
    KcvMismatch,
    KeysError,
    LmkMismatch,
    StaleKeyChange,
    StoreError,
    StoreExists,
    StoreNotInitialised,
    UnknownKey,
    UnknownOwner,
)
from forecourt.keys.exchange import build_payload
from forecourt.keys.keyring import MacKey, MacKeyring, _Uses
from forecourt.keys.lmk import LMK_ENV, Lmk, default_lmk_path, load_lmk
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.keys.model import (
    MAC_TYPE,
    MASTER_TYPE,
    WORKING_TYPES,
    AcquirerInfo,
    AuditEntry,
    KekCeremony,
    KeyInfo,
    KeyPolicy,
    KeyState,
    KeyType,
    OwnerInfo,
    OwnerKind,
)

log = logging.getLogger("forecourt.keys")

DATA_DIR_ENV = "FORECOURT_DATA_DIR"
STORE_FILE_NAME = "keys.db"
SCHEMA_VERSION = "1"
_TERMINAL_ID = re.compile(r"^[A-Za-z0-9]{1,8}$")
_ACQUIRER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_COLS = (
    "id, owner, key_type, algorithm, version, kcv, state, created_at, activated_at,"
    " expires_at, retiring_until, uses, grace_seconds, key_block"
)
_RECENT_RETIRED = 2  # retired MAC keys kept in a keyring to diagnose key sync


def default_data_dir() -> Path:
    """FORECOURT_DATA_DIR, else ./data (the journal's data directory too)."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


@attrs.frozen
class ChangedKey:
    key_type: KeyType
    version: int
    kcv: str


@attrs.frozen(eq=False)
class KeyChange:
    """New working keys of one owner, ready for the wire.

    `payload` is the field 48 string; `field96` the same bytes. `keyring` is the
    MAC keyring as it will be once the change is delivered (authoritative one:
    the return value of `KeyStore.mark_delivered`).
    """

    owner: str
    kind: OwnerKind
    keys: tuple[ChangedKey, ...]
    payload: str
    activated: bool
    keyring: MacKeyring

    @property
    def field48(self) -> str:
        return self.payload

    @property
    def field96(self) -> bytes:
        return self.payload.encode("ascii")

    def version_of(self, key_type: KeyType) -> int:
        for k in self.keys:
            if k.key_type is key_type:
                return k.version
        raise UnknownKey(f"key change carries no {key_type.value}")


@attrs.frozen
class _KeyRow:
    id: str
    owner: str
    key_type: KeyType
    algorithm: Algorithm
    version: int
    kcv: str
    state: KeyState
    created_at: float
    activated_at: float | None
    expires_at: float | None
    retiring_until: float | None
    uses: int
    grace_seconds: float
    key_block: str = attrs.field(repr=False)

    @classmethod
    def of(cls, r: Row) -> _KeyRow:
        return cls(
            id=str(r[0]),
            owner=str(r[1]),
            key_type=KeyType(r[2]),
            algorithm=Algorithm(r[3]),
            version=int(r[4]),
            kcv=str(r[5]),
            state=KeyState(r[6]),
            created_at=float(r[7]),
            activated_at=None if r[8] is None else float(r[8]),
            expires_at=None if r[9] is None else float(r[9]),
            retiring_until=None if r[10] is None else float(r[10]),
            uses=int(r[11]),
            grace_seconds=float(r[12]),
            key_block=str(r[13]),
        )

    def info(self) -> KeyInfo:
        return KeyInfo(
            id=self.id,
            owner=self.owner,
            key_type=self.key_type,
            algorithm=self.algorithm,
            version=self.version,
            kcv=self.kcv,
            state=self.state,
            created_at=self.created_at,
            activated_at=self.activated_at,
            expires_at=self.expires_at,
            retiring_until=self.retiring_until,
            uses=self.uses,
        )


class KeyStore:
    """Keys of terminals and acquirer links. Open with `KeyStore.open` / `init`."""

    def __init__(
        self,
        backend: Backend,
        lmk: Lmk,
        policy: KeyPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = backend
        self._lmk = lmk
        self.policy = policy or KeyPolicy()
        self._clock = clock

    def __repr__(self) -> str:
        return f"KeyStore(backend={self._db.name}, lmk_kcv={self._lmk.kcv})"

    # -- opening ------------------------------------------------------------

    @staticmethod
    def _backend(data_dir: Path, dsn: str | None, create: bool) -> Backend:
        if dsn:
            if not dsn.startswith(("postgresql://", "postgres://")) and "=" not in dsn:
                raise StoreError("database must be a PostgreSQL DSN (postgresql://...)")
            return PostgresBackend(dsn)
        return SqliteBackend(data_dir / STORE_FILE_NAME, create=create)

    @classmethod
    def open(
        cls,
        data_dir: Path | str | None = None,
        *,
        dsn: str | None = None,
        lmk: Lmk | None = None,
        lmk_file: Path | str | None = None,
        policy: KeyPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> KeyStore:
        """Open an initialised store; the LMK is `lmk`, else FORECOURT_LMK, else
        `lmk_file` (default data_dir/lmk.key). Raises LmkMissing, LmkInvalid,
        LmkMismatch, StoreNotInitialised."""
        ddir = Path(data_dir) if data_dir is not None else default_data_dir()
        if lmk is None:
            lmk = load_lmk(Path(lmk_file) if lmk_file else default_lmk_path(ddir))
        backend = cls._backend(ddir, dsn, create=False)
        try:
            stamp = cls._lmk_stamp(backend)
            if stamp is None:
                raise StoreNotInitialised("key store is not initialised: run 'forecourt keys init'")
            if stamp != lmk.kcv:
                raise LmkMismatch(
                    f"key store was created under LMK with KCV {stamp}, this LMK has KCV {lmk.kcv}"
                )
        except BaseException:
            backend.close()
            raise
        return cls(backend, lmk, policy, clock)

    @classmethod
    def init(
        cls,
        data_dir: Path | str | None = None,
        *,
        dsn: str | None = None,
        lmk: Lmk | None = None,
        lmk_file: Path | str | None = None,
        policy: KeyPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> KeyStore:
        """Create the store, and the LMK file unless an LMK is given or in the
        environment (an existing LMK file is reused). Raises StoreExists."""
        ddir = Path(data_dir) if data_dir is not None else default_data_dir()
        path = Path(lmk_file) if lmk_file else default_lmk_path(ddir)
        backend = cls._backend(ddir, dsn, create=True)
        try:
            backend.create_schema()
            stamp = cls._lmk_stamp(backend)
            if stamp is not None:
                raise StoreExists("key store already initialised")
            if lmk is None:
                try:
                    lmk = load_lmk(path)
                except KeysError:
                    if path.exists() or os.environ.get(LMK_ENV):
                        raise
                    lmk = Lmk.generate()
                    lmk.write(path)
            now = clock()
            with backend.write() as tx:
                if tx.query("SELECT value FROM key_meta WHERE name = 'lmk_kcv'"):
                    raise StoreExists("key store already initialised")
                for name, value in (
                    ("lmk_kcv", lmk.kcv),
                    ("schema_version", SCHEMA_VERSION),
                    ("created_at", repr(now)),
                ):
                    tx.execute("INSERT INTO key_meta (name, value) VALUES (?, ?)", (name, value))
        except BaseException:
            backend.close()
            raise
        log.info("key store initialised backend=%s lmk_kcv=%s", backend.name, lmk.kcv)
        return cls(backend, lmk, policy, clock)

    @staticmethod
    def _lmk_stamp(backend: Backend) -> str | None:
        try:
            with backend.read() as tx:
                rows = tx.query("SELECT value FROM key_meta WHERE name = 'lmk_kcv'")
        except StoreError:
            return None
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def lmk_kcv(self) -> str:
        return self._lmk.kcv

    # -- helpers inside a transaction ----------------------------------------

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    @staticmethod
    def _kind(tx: Tx, owner: str) -> OwnerKind:
        rows = tx.query("SELECT kind FROM key_owners WHERE owner = ?", (owner,))
        if not rows:
            raise UnknownOwner(f"no terminal or acquirer named {owner!r}")
        return OwnerKind(rows[0][0])

    @staticmethod
    def _rows(
        tx: Tx, owner: str, key_type: KeyType, states: Sequence[KeyState] = ()
    ) -> list[_KeyRow]:
        sql = f"SELECT {_COLS} FROM key_entries WHERE owner = ? AND key_type = ?"
        params: list[object] = [owner, key_type.value]
        if states:
            sql += " AND state IN (" + ", ".join("?" for _ in states) + ")"
            params += [s.value for s in states]
        return [_KeyRow.of(r) for r in tx.query(sql + " ORDER BY version", params)]

    @staticmethod
    def _max_version(tx: Tx, owner: str, key_type: KeyType) -> int:
        rows = tx.query(
            "SELECT MAX(version) FROM key_entries WHERE owner = ? AND key_type = ?",
            (owner, key_type.value),
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def _unwrap(self, row: _KeyRow) -> bytes:
        return tr31.unwrap(self._lmk.key, row.key_block, row.key_type, row.algorithm)

    def _master(self, tx: Tx, owner: str, kind: OwnerKind) -> tuple[Algorithm, bytes]:
        rows = self._rows(tx, owner, MASTER_TYPE[kind], (KeyState.ACTIVE,))
        if not rows:
            raise UnknownKey(f"{owner} has no active {MASTER_TYPE[kind].value}")
        return rows[0].algorithm, self._unwrap(rows[0])

    def _insert(
        self,
        tx: Tx,
        owner: str,
        key_type: KeyType,
        algorithm: Algorithm,
        version: int,
        key: bytes,
        state: KeyState,
        now: float,
        grace: float,
    ) -> str:
        active = state is KeyState.ACTIVE
        expires = None if key_type.is_master or not active else now + self.policy.max_age
        check = kcv(key, algorithm)
        block = tr31.wrap(
            self._lmk.key,
            Algorithm.AES256,
            key,
            key_type,
            algorithm,
            exportability="N" if key_type.is_master else "E",
        )
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
                now if active else None,
                expires,
                grace,
                block,
            ),
        )
        return check

    @staticmethod
    def _audit(
        tx: Tx,
        now: float,
        actor: str,
        action: str,
        owner: str,
        key_type: KeyType | None = None,
        old: tuple[int, str] | None = None,
        new: tuple[int, str] | None = None,
        reason: str = "",
    ) -> None:
        tx.execute(
            "INSERT INTO key_audit (at, actor, action, owner, key_type, old_version, old_kcv,"
            " new_version, new_kcv, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now,
                actor,
                action,
                owner,
                None if key_type is None else key_type.value,
                None if old is None else old[0],
                None if old is None else old[1],
                None if new is None else new[0],
                None if new is None else new[1],
                reason,
            ),
        )

    def _sweep(self, tx: Tx, now: float, owner: str | None = None) -> int:
        sql = f"SELECT {_COLS} FROM key_entries WHERE state = ? AND retiring_until <= ?"
        params: list[object] = [KeyState.RETIRING.value, now]
        if owner is not None:
            sql += " AND owner = ?"
            params.append(owner)
        rows = [_KeyRow.of(r) for r in tx.query(sql, params)]
        for r in rows:
            tx.execute(
                "UPDATE key_entries SET state = ?, retired_at = ? WHERE id = ?",
                (KeyState.RETIRED.value, now, r.id),
            )
            self._audit(
                tx,
                now,
                "system",
                "retire",
                r.owner,
                r.key_type,
                old=(r.version, r.kcv),
                reason="grace window over",
            )
        return len(rows)

    def _activate(self, tx: Tx, row: _KeyRow, now: float, actor: str, reason: str) -> None:
        olds = self._rows(tx, row.owner, row.key_type, (KeyState.ACTIVE,))
        retiring = self._rows(tx, row.owner, row.key_type, (KeyState.RETIRING,))
        keep = max(0, self.policy.grace_versions - len(olds))
        for r in retiring[: max(0, len(retiring) - keep)]:
            tx.execute(
                "UPDATE key_entries SET state = ?, retired_at = ? WHERE id = ?",
                (KeyState.RETIRED.value, now, r.id),
            )
            self._audit(
                tx,
                now,
                actor,
                "retire",
                r.owner,
                r.key_type,
                old=(r.version, r.kcv),
                reason="replaced twice",
            )
        for old in olds:
            tx.execute(
                "UPDATE key_entries SET state = ?, retiring_until = ? WHERE id = ?",
                (KeyState.RETIRING.value, now + row.grace_seconds, old.id),
            )
        tx.execute(
            "UPDATE key_entries SET state = ?, activated_at = ?, expires_at = ? WHERE id = ?",
            (KeyState.ACTIVE.value, now, now + self.policy.max_age, row.id),
        )
        old_ref = (olds[0].version, olds[0].kcv) if olds else None
        self._audit(
            tx,
            now,
            actor,
            "activate",
            row.owner,
            row.key_type,
            old=old_ref,
            new=(row.version, row.kcv),
            reason=reason,
        )
        log.info(
            "key activated owner=%s type=%s version=%d kcv=%s previous=%s",
            row.owner,
            row.key_type.value,
            row.version,
            row.kcv,
            "none" if old_ref is None else f"v{old_ref[0]}/{old_ref[1]}",
        )

    # -- provisioning ------------------------------------------------------

    def _add_owner(self, tx: Tx, name: str, kind: OwnerKind, now: float) -> None:
        if tx.query("SELECT 1 FROM key_owners WHERE owner = ?", (name,)):
            raise DuplicateOwner(f"{name!r} is already registered")
        tx.execute(
            "INSERT INTO key_owners (owner, kind, created_at) VALUES (?, ?, ?)",
            (name, kind.value, now),
        )

    def _first_working_keys(
        self,
        tx: Tx,
        owner: str,
        kind: OwnerKind,
        master: tuple[Algorithm, bytes],
        working: Algorithm,
        now: float,
        actor: str,
    ) -> str:
        wire: list[tuple[KeyType, int, Algorithm, bytes]] = []
        for key_type in WORKING_TYPES[kind]:
            key = generate_key(working)
            check = self._insert(
                tx, owner, key_type, working, 1, key, KeyState.ACTIVE, now, self.policy.grace
            )
            self._audit(tx, now, actor, "create", owner, key_type, new=(1, check))
            wire.append((key_type, 1, working, key))
        return build_payload(master[1], master[0], wire)

    def add_terminal(
        self,
        terminal_id: str,
        family: Family | str = Family.TDES,
        *,
        actor: str = "api",
        now: float | None = None,
        components: Sequence[bytes] | None = None,
    ) -> KekCeremony:
        """Register a terminal: a fresh KEK from two random components (the key
        ceremony) and first working keys TAK/TPK/TDK, version 1, active.

        `components` loads a KEK the terminal already holds (two clear components,
        e.g. a certification test key) instead of making a new one."""
        if not _TERMINAL_ID.match(terminal_id):
            raise InvalidName("terminal id must be 1 to 8 letters or digits")
        fam = Family(family)
        algorithm = fam.kek_algorithm
        t = self._now(now)
        if components is not None:
            if len(components) != 2 or any(len(c) != algorithm.key_length for c in components):
                raise InvalidKey(
                    f"a {algorithm.value} KEK is loaded from two"
                    f" {algorithm.key_length}-byte components"
                )
            c1, c2 = bytes(components[0]), bytes(components[1])
        else:
            c1, c2 = generate_key(algorithm), generate_key(algorithm)
        kek = xor(c1, c2)
        if not algorithm.is_aes:
            kek = adjust_parity(kek)
        check = kcv(kek, algorithm)
        with self._db.write() as tx:
            self._add_owner(tx, terminal_id, OwnerKind.TERMINAL, t)
            self._insert(tx, terminal_id, KeyType.KEK, algorithm, 1, kek, KeyState.ACTIVE, t, 0.0)
            self._audit(tx, t, actor, "add-terminal", terminal_id, KeyType.KEK, new=(1, check))
            payload = self._first_working_keys(
                tx,
                terminal_id,
                OwnerKind.TERMINAL,
                (algorithm, kek),
                fam.working_algorithm,
                t,
                actor,
            )
        log.info("terminal registered terminal_id=%s kek_kcv=%s", terminal_id, check)
        return KekCeremony(
            terminal_id=terminal_id,
            algorithm=algorithm,
            components=(c1, c2),
            component_kcvs=(kcv(c1, algorithm), kcv(c2, algorithm)),
            kcv=check,
            clear_kek=kek,
            payload=payload,
        )

    def add_acquirer(
        self,
        name: str,
        components: Sequence[bytes],
        *,
        expected_kcv: str | None = None,
        actor: str = "api",
        now: float | None = None,
    ) -> AcquirerInfo:
        """Register an acquirer link: ZMK = XOR of the clear components (16 bytes:
        TDES-2, 24: TDES-3, 32: AES-256); refuses a KCV mismatch; makes ZAK/ZPK v1."""
        if not _ACQUIRER_NAME.match(name):
            raise InvalidName("acquirer name must be 1 to 32 letters, digits, '.', '_' or '-'")
        if len(components) < 2:
            raise InvalidKey("a ZMK needs at least two components")
        algorithm = {16: Algorithm.TDES2, 24: Algorithm.TDES3, 32: Algorithm.AES256}.get(
            len(components[0])
        )
        if algorithm is None:
            raise InvalidKey("ZMK components must be 16, 24 or 32 bytes")
        zmk = components[0]
        for c in components[1:]:
            zmk = xor(zmk, c)
        if not algorithm.is_aes:
            zmk = adjust_parity(zmk)
            if len({zmk[i : i + 8] for i in range(0, len(zmk), 8)}) != len(zmk) // 8:
                raise InvalidKey("ZMK halves are equal (a degenerate TDES key)")
        check = kcv(zmk, algorithm)
        if expected_kcv is not None and not kcv_matches(expected_kcv, check):
            raise KcvMismatch(f"ZMK KCV is {check}, not {expected_kcv.strip().upper()}")
        working = Algorithm.AES128 if algorithm.is_aes else Algorithm.TDES2
        t = self._now(now)
        with self._db.write() as tx:
            self._add_owner(tx, name, OwnerKind.ACQUIRER, t)
            self._insert(tx, name, KeyType.ZMK, algorithm, 1, zmk, KeyState.ACTIVE, t, 0.0)
            self._audit(tx, t, actor, "add-acquirer", name, KeyType.ZMK, new=(1, check))
            payload = self._first_working_keys(
                tx, name, OwnerKind.ACQUIRER, (algorithm, zmk), working, t, actor
            )
        log.info("acquirer registered name=%s zmk_kcv=%s", name, check)
        return AcquirerInfo(name=name, algorithm=algorithm, zmk_kcv=check, payload=payload)

    # -- queries -----------------------------------------------------------

    def owners(self, kind: OwnerKind | None = None) -> list[OwnerInfo]:
        with self._db.read() as tx:
            rows = tx.query("SELECT owner, kind, created_at FROM key_owners ORDER BY owner")
        out = [OwnerInfo(str(r[0]), OwnerKind(r[1]), float(r[2])) for r in rows]
        return [o for o in out if kind is None or o.kind is kind]

    def terminals(self) -> list[str]:
        return [o.name for o in self.owners(OwnerKind.TERMINAL)]

    def acquirers(self) -> list[str]:
        return [o.name for o in self.owners(OwnerKind.ACQUIRER)]

    def is_registered(self, terminal_id: str) -> bool:
        with self._db.read() as tx:
            rows = tx.query(
                "SELECT 1 FROM key_owners WHERE owner = ? AND kind = ?",
                (terminal_id, OwnerKind.TERMINAL.value),
            )
        return bool(rows)

    def list_keys(self, owner: str | None = None) -> list[KeyInfo]:
        sql = f"SELECT {_COLS} FROM key_entries"
        params: tuple[object, ...] = ()
        if owner is not None:
            sql += " WHERE owner = ?"
            params = (owner,)
        with self._db.read() as tx:
            rows = tx.query(sql + " ORDER BY owner, key_type, version", params)
        return [_KeyRow.of(r).info() for r in rows]

    def audit_mark(self) -> int:
        """The newest key audit row's id: where `changed_since` starts."""
        with self._db.read() as tx:
            rows = tx.query("SELECT max(id) FROM key_audit")
        return int(rows[0][0] or 0) if rows else 0

    def changed_since(self, mark: int) -> tuple[int, set[str]]:
        """Owners with key audit rows after `mark` (a rotation, an activation, a
        new registration: made by any process sharing the store), and the new mark."""
        with self._db.read() as tx:
            rows = tx.query("SELECT id, owner FROM key_audit WHERE id > ? ORDER BY id", (mark,))
        if not rows:
            return mark, set()
        return int(rows[-1][0]), {str(r[1]) for r in rows}

    def audit(self, since: float | None = None, owner: str | None = None) -> list[AuditEntry]:
        sql = (
            "SELECT at, actor, action, owner, key_type, old_version, old_kcv, new_version,"
            " new_kcv, reason FROM key_audit WHERE at >= ?"
        )
        params: list[object] = [since if since is not None else 0.0]
        if owner is not None:
            sql += " AND owner = ?"
            params.append(owner)
        with self._db.read() as tx:
            rows = tx.query(sql + " ORDER BY id", params)
        return [
            AuditEntry(
                at=float(r[0]),
                actor=str(r[1]),
                action=str(r[2]),
                owner=str(r[3]),
                key_type=None if r[4] is None else KeyType(r[4]),
                old_version=r[5],
                old_kcv=r[6],
                new_version=r[7],
                new_kcv=r[8],
                reason=str(r[9]),
            )
            for r in rows
        ]

    # -- MAC keys ------------------------------------------------------------

    def _mac_key(self, row: _KeyRow) -> MacKey:
        return MacKey(
            version=row.version,
            kcv=row.kcv,
            state=row.state,
            mac=prepare_mac(self._unwrap(row), MacAlgorithm.for_key(row.algorithm)),
            activated_at=row.activated_at,
            expires_at=row.expires_at,
            retiring_until=row.retiring_until,
        )

    def mac_keyring(self, owner: str, now: float | None = None) -> MacKeyring:
        """The MAC keyring (TAK of a terminal, ZAK of an acquirer link) for caching.

        Acceptability is decided at each `verify(now=...)`, so a cached keyring
        stays right as time passes; replace it after a rotation.
        """
        with self._db.read() as tx:
            kind = self._kind(tx, owner)
            rows = self._rows(tx, owner, MAC_TYPE[kind])
        t = self._now(now)
        current: MacKey | None = None
        grace: list[MacKey] = []
        stale: list[MacKey] = []
        retired = [r for r in rows if r.state is KeyState.RETIRED][-_RECENT_RETIRED:]
        uses = 0
        for r in rows:
            if r.state is KeyState.ACTIVE:
                current = self._mac_key(r)
                uses = r.uses
            elif r.state is KeyState.RETIRING:
                k = self._mac_key(r)
                (grace if k.acceptable(t) else stale).append(k)
            elif r.state is KeyState.PENDING or r in retired:
                stale.append(self._mac_key(r))
        grace.sort(key=lambda k: -k.version)
        return MacKeyring(
            owner=owner,
            current=current,
            grace=tuple(grace),
            stale=tuple(stale),
            max_uses=self.policy.max_uses,
            uses=_Uses(uses),
            clock=self._clock,
        )

    def record_uses(self, owner: str, version: int, count: int) -> None:
        """Add `count` MACs to the use counter of the owner's MAC key `version`
        (the switch flushes keyring counts now and then; `max_uses` reads them)."""
        with self._db.write() as tx:
            kind = self._kind(tx, owner)
            tx.execute(
                "UPDATE key_entries SET uses = uses + ? WHERE owner = ? AND key_type = ?"
                " AND version = ?",
                (count, owner, MAC_TYPE[kind].value, version),
            )

    # -- rotation ----------------------------------------------------------

    def rotate(
        self,
        owner: str,
        *,
        actor: str = "api",
        reason: str = "",
        grace: float | None = None,
        activate: bool = False,
        reuse_pending: bool = False,
        now: float | None = None,
    ) -> KeyChange:
        """Make the next version of every working key of `owner`, pending.

        Returns the wire payload (under the KEK/ZMK). Any older pending version is
        superseded (retired). With `reuse_pending`, an existing complete pending
        set is re-sent instead. With `activate`, the new keys become active at
        once (out-of-band delivery); otherwise call `mark_delivered` once the
        payload has been sent. The previous active keys stay acceptable for
        `grace` seconds after activation (default: policy.grace).
        """
        t = self._now(now)
        g = self.policy.grace if grace is None else float(grace)
        if g < 0:
            raise InvalidKey("grace must not be negative")
        changed: list[ChangedKey] = []
        wire: list[tuple[KeyType, int, Algorithm, bytes]] = []
        new_mac: tuple[int, str, Algorithm, bytes] | None = None
        with self._db.write() as tx:
            if not tx.lock_owner(owner):
                raise UnknownOwner(f"no terminal or acquirer named {owner!r}")
            kind = self._kind(tx, owner)
            master = self._master(tx, owner, kind)
            self._sweep(tx, t, owner)
            types = WORKING_TYPES[kind]
            pending = {kt: self._rows(tx, owner, kt, (KeyState.PENDING,)) for kt in types}
            reuse = reuse_pending and all(pending[kt] for kt in types)
            for kt in types:
                if reuse:
                    row = pending[kt][0]
                    key, algorithm, version, check = (
                        self._unwrap(row),
                        row.algorithm,
                        row.version,
                        row.kcv,
                    )
                else:
                    for p in pending[kt]:
                        tx.execute(
                            "UPDATE key_entries SET state = ?, retired_at = ? WHERE id = ?",
                            (KeyState.RETIRED.value, t, p.id),
                        )
                        self._audit(
                            tx,
                            t,
                            actor,
                            "supersede",
                            owner,
                            kt,
                            old=(p.version, p.kcv),
                            reason="replaced before delivery",
                        )
                    active = self._rows(tx, owner, kt, (KeyState.ACTIVE,))
                    algorithm = (
                        active[0].algorithm
                        if active
                        else (Algorithm.AES128 if master[0].is_aes else Algorithm.TDES2)
                    )
                    version = self._max_version(tx, owner, kt) + 1
                    key = generate_key(algorithm)
                    check = self._insert(
                        tx, owner, kt, algorithm, version, key, KeyState.PENDING, t, g
                    )
                    self._audit(
                        tx,
                        t,
                        actor,
                        "rotate",
                        owner,
                        kt,
                        old=(active[0].version, active[0].kcv) if active else None,
                        new=(version, check),
                        reason=reason,
                    )
                changed.append(ChangedKey(kt, version, check))
                wire.append((kt, version, algorithm, key))
                if kt.is_mac:
                    new_mac = (version, check, algorithm, key)
            if activate:
                for c in changed:
                    row = self._rows(tx, owner, c.key_type, (KeyState.PENDING,))[0]
                    self._activate(tx, row, t, actor, reason or "activated at rotation")
            payload = build_payload(master[1], master[0], wire)
        log.info(
            "keys rotated owner=%s versions=%s activated=%s reason=%s",
            owner,
            ",".join(f"{c.key_type.value}v{c.version}/{c.kcv}" for c in changed),
            activate,
            reason or "-",
        )
        if activate:
            keyring = self.mac_keyring(owner, t)
        else:
            assert new_mac is not None
            keyring = self._predicted_keyring(owner, new_mac, t, g)
        return KeyChange(owner, kind, tuple(changed), payload, activate, keyring)

    def _predicted_keyring(
        self, owner: str, new: tuple[int, str, Algorithm, bytes], now: float, grace: float
    ) -> MacKeyring:
        old = self.mac_keyring(owner, now)
        version, check, algorithm, key = new
        current = MacKey(
            version=version,
            kcv=check,
            state=KeyState.ACTIVE,
            mac=prepare_mac(key, MacAlgorithm.for_key(algorithm)),
            activated_at=now,
            expires_at=now + self.policy.max_age,
        )
        graces = list(old.grace)
        if old.current is not None:
            graces.insert(
                0,
                attrs.evolve(old.current, state=KeyState.RETIRING, retiring_until=now + grace),
            )
        graces = graces[: self.policy.grace_versions]
        stale = tuple(k for k in old.stale if k.version != version)
        return MacKeyring(
            owner=owner,
            current=current,
            grace=tuple(graces),
            stale=stale,
            max_uses=self.policy.max_uses,
            clock=self._clock,
        )

    def mark_delivered(
        self,
        change: KeyChange,
        *,
        actor: str = "switch",
        now: float | None = None,
    ) -> MacKeyring:
        """The payload reached the terminal/host: its keys become active, the
        previous ones retiring (accepted for their grace window). Idempotent;
        raises StaleKeyChange if a newer rotation superseded this change."""
        t = self._now(now)
        with self._db.write() as tx:
            if not tx.lock_owner(change.owner):
                raise UnknownOwner(f"no terminal or acquirer named {change.owner!r}")
            todo: list[_KeyRow] = []
            for c in change.keys:
                rows = [
                    r for r in self._rows(tx, change.owner, c.key_type) if r.version == c.version
                ]
                if not rows:
                    raise UnknownKey(f"{change.owner} has no {c.key_type.value} v{c.version}")
                row = rows[0]
                if row.state is KeyState.PENDING:
                    todo.append(row)
                elif row.state is not KeyState.ACTIVE:
                    raise StaleKeyChange(
                        f"{change.owner} {c.key_type.value} v{c.version} is {row.state.value}:"
                        " a newer key change replaced it"
                    )
            for row in todo:
                self._activate(tx, row, t, actor, "delivered")
            self._sweep(tx, t, change.owner)
        return self.mac_keyring(change.owner, t)

    def retire_expired(self, now: float | None = None) -> int:
        """Move keys whose grace window is over from retiring to retired."""
        t = self._now(now)
        with self._db.write() as tx:
            return self._sweep(tx, t)

    def rotation_due(self, owner: str, now: float | None = None, margin: float = 0.0) -> bool:
        """True if the owner's active MAC key is missing, expiring within
        `margin` seconds, or has reached `max_uses`."""
        t = self._now(now)
        with self._db.read() as tx:
            kind = self._kind(tx, owner)
            rows = self._rows(tx, owner, MAC_TYPE[kind], (KeyState.ACTIVE,))
        if not rows:
            return True
        r = rows[0]
        if self.policy.max_uses is not None and r.uses >= self.policy.max_uses:
            return True
        return r.expires_at is not None and t + margin >= r.expires_at

    def translate_pin_block(self, terminal_id: str, acquirer: str, block: bytes, pan: str) -> bytes:
        """Field 52: re-encrypt a PIN block from the terminal's active TPK to the
        acquirer link's active ZPK; the clear keys never leave this call."""
        from forecourt.keys.pin import translate_pin_block

        with self._db.read() as tx:
            tpk = self._rows(tx, terminal_id, KeyType.TPK, (KeyState.ACTIVE,))
            zpk = self._rows(tx, acquirer, KeyType.ZPK, (KeyState.ACTIVE,))
        if not tpk or not zpk:
            raise UnknownKey(f"no active TPK for {terminal_id!r} or ZPK for {acquirer!r}")
        t, z = tpk[0], zpk[0]
        return translate_pin_block(
            self._unwrap(t), t.algorithm, self._unwrap(z), z.algorithm, block, pan
        )
