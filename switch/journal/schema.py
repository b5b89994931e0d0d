"""The journal's schema migrations, written once and rendered for each backend.

Versions are the same on SQLite and PostgreSQL; only column types, identity
columns and a few indexes differ, and those are the parameters of ``render``.
Statements are separated by ";" (no literal may contain one). Never change what a
released migration renders to; add the next version.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
from forecourt.switch.journal.kept_sealed import V_RECON_SEALED
from forecourt.switch.journal.model import JournalError, SafState, TxnState
from forecourt.switch.journal.schema_advices import V_RECON_ADVICE
from forecourt.switch.journal.schema_stations import V9, V10, V11, V12, V13, V14, V16

_TXN_STATES = ", ".join(f"'{s.value}'" for s in TxnState)
_SAF_STATES = ", ".join(f"'{s.value}'" for s in SafState)

_V1 = """
        CREATE TABLE transactions (
            txn_id          TEXT PRIMARY KEY,
            node            TEXT NOT NULL,
            terminal_id     TEXT NOT NULL,
            stan            TEXT NOT NULL,
            mti_class       TEXT NOT NULL,
            request_mti     TEXT NOT NULL,
            response_mti    TEXT,
            state           TEXT NOT NULL CHECK (state IN ({txn_states})),
            action_code     TEXT,
            amount          {money},
            approved_amount {money},
            currency        TEXT,
            masked_pan      TEXT,
            processing_code TEXT,
            route           TEXT,
            acquirer_stan   TEXT,
            rrn             TEXT,
            auth_code       TEXT,
            original_txn_id TEXT,
            shift_id        TEXT,
            received_at     {real} NOT NULL,
            forwarded_at    {real},
            answered_at     {real},
            host_ms         {real},
            switch_ms       {real},
            response_raw    {blob},
            flags           TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX transactions_terminal_key
            ON transactions (terminal_id, stan, mti_class, received_at);
        CREATE INDEX transactions_state ON transactions (state);
        CREATE INDEX transactions_shift ON transactions (terminal_id, shift_id);
        CREATE INDEX transactions_original ON transactions (original_txn_id);{v1_received}
        CREATE TABLE events (
            id      {event_id},
            txn_id  TEXT NOT NULL,
            at      {real} NOT NULL,
            kind    TEXT NOT NULL,
            detail  TEXT
        );
        CREATE INDEX events_txn ON events (txn_id, id);
        CREATE TABLE saf (
            id              {saf_id},
            txn_id          TEXT NOT NULL,
            link            TEXT NOT NULL,
            mti             TEXT NOT NULL,
            payload         {blob} NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {real} NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ({saf_states})),
            claimed_by      TEXT,
            lease_until     {real},
            created_at      {real} NOT NULL,
            last_error      TEXT
        );
        CREATE INDEX saf_due ON saf (state, next_attempt_at);{v1_saf_txn}
        CREATE TABLE shifts (
            terminal_id TEXT NOT NULL,
            shift_id    TEXT NOT NULL,
            opened_at   {real} NOT NULL,
            closed_at   {real},
            totals      TEXT,
            in_balance  {bool},
            PRIMARY KEY (terminal_id, shift_id)
        )
        """

# recovery warms the duplicate window from the latest rows; on a journal of
# millions of rows that needs an index (measured: 9.5 s start on 10 M rows)
_V2 = """
        CREATE INDEX IF NOT EXISTS transactions_received_at ON transactions (received_at);
        {v2_saf_txn}"""

# SAF housekeeping picks parked reversals and delivered items by age; without
# this it scanned every parked row (0.28 s a minute at 480,000 rows, 600/s)
_V3 = """
        CREATE INDEX IF NOT EXISTS saf_age ON saf (state, created_at);
        """

# A shift older than another open shift of its terminal (two nodes each opened one
# before the journal owned open shifts) is closed when the newer one opened, with
# no totals, so that the unique index of open shifts can be made.
_NEWER_OPEN = (
    "FROM shifts n WHERE n.terminal_id = shifts.terminal_id AND n.closed_at IS NULL"
    " AND (n.opened_at > shifts.opened_at"
    " OR (n.opened_at = shifts.opened_at AND n.shift_id > shifts.shift_id))"
)
_V4 = f"""
        ALTER TABLE transactions ADD COLUMN acquirer_id TEXT;
        UPDATE shifts SET closed_at = (SELECT min(n.opened_at) {_NEWER_OPEN})
            WHERE closed_at IS NULL AND EXISTS (SELECT 1 {_NEWER_OPEN});
        CREATE UNIQUE INDEX shifts_open ON shifts (terminal_id) WHERE closed_at IS NULL;
        CREATE TABLE terminal_guards (
            terminal_id  TEXT PRIMARY KEY,
            mac_failures INTEGER NOT NULL DEFAULT 0,
            locked       {{bool}} NOT NULL DEFAULT FALSE,
            signed_off   {{bool}} NOT NULL DEFAULT FALSE,
            updated_at   {{real}} NOT NULL
        );
        CREATE INDEX terminal_guards_updated ON terminal_guards (updated_at)
        """

# Split tender: each leg names its sale's group and its tender; the group's row is
# where two nodes settle a race for what is left of the sale (one conditional upsert).
_V5 = """
        ALTER TABLE transactions ADD COLUMN split_group TEXT;
        ALTER TABLE transactions ADD COLUMN tender TEXT;
        CREATE INDEX transactions_split ON transactions (terminal_id, split_group)
            WHERE split_group IS NOT NULL;
        CREATE TABLE split_groups (
            terminal_id TEXT NOT NULL,
            group_id    TEXT NOT NULL,
            total       {money} NOT NULL,
            claimed     {money} NOT NULL DEFAULT 0,
            approved    {money} NOT NULL DEFAULT 0,
            tender_rank INTEGER NOT NULL DEFAULT 0,
            reversed    {bool} NOT NULL DEFAULT FALSE,
            created_at  {real} NOT NULL,
            PRIMARY KEY (terminal_id, group_id)
        )
        """

# The fleet and consumer ledger (switch/ledger, docs/accounts.md): accounts with their
# books kept with the postings, cards by keyed hash of the PAN, per-level limits, the
# ledger's own record of each request it decided, and the operators' audit.
_V6 = """
        CREATE TABLE ledger_accounts (
            account_id TEXT PRIMARY KEY,
            kind       TEXT NOT NULL CHECK (kind IN ('fleet', 'consumer')),
            name       TEXT NOT NULL DEFAULT '',
            currency   TEXT NOT NULL,
            available  {money} NOT NULL DEFAULT 0 CHECK (available >= 0),
            held       {money} NOT NULL DEFAULT 0 CHECK (held >= 0),
            settled    {money} NOT NULL DEFAULT 0,
            created_at {real} NOT NULL
        );
        CREATE TABLE ledger_cards (
            card_ref      TEXT PRIMARY KEY,
            account_id    TEXT NOT NULL REFERENCES ledger_accounts (account_id),
            masked_pan    TEXT NOT NULL,
            binding       TEXT NOT NULL CHECK (binding IN ('vehicle', 'driver', 'none')),
            bound_to      TEXT NOT NULL DEFAULT '',
            status        TEXT NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'blocked', 'lost')),
            products      TEXT NOT NULL DEFAULT '',
            last_odometer {money},
            created_at    {real} NOT NULL
        );
        CREATE INDEX ledger_cards_account ON ledger_cards (account_id);
        CREATE TABLE ledger_limits (
            card_ref       TEXT NOT NULL REFERENCES ledger_cards (card_ref),
            level          TEXT NOT NULL CHECK (level IN ('pin', 'signature', 'offline')),
            per_txn_amount {money},
            daily_amount   {money},
            monthly_amount {money},
            per_txn_volume {money},
            daily_volume   {money},
            monthly_volume {money},
            PRIMARY KEY (card_ref, level)
        );
        CREATE TABLE ledger_txns (
            reference  TEXT PRIMARY KEY,
            kind       TEXT NOT NULL
                       CHECK (kind IN ('purchase', 'preauth', 'completion', 'tombstone')),
            account_id TEXT,
            card_ref   TEXT,
            requested  {money} NOT NULL DEFAULT 0,
            approved   {money} NOT NULL DEFAULT 0,
            held       {money} NOT NULL DEFAULT 0 CHECK (held >= 0),
            captured   {money} NOT NULL DEFAULT 0 CHECK (captured >= 0),
            volume_ml  {money} NOT NULL DEFAULT 0,
            state      TEXT NOT NULL
                       CHECK (state IN ('open', 'captured', 'released', 'reversed', 'declined')),
            code       TEXT NOT NULL,
            original   TEXT,
            driver     TEXT,
            vehicle    TEXT,
            odometer   {money},
            flags      TEXT NOT NULL DEFAULT '',
            created_at {real} NOT NULL,
            expires_at {real}
        );
        CREATE INDEX ledger_txns_card ON ledger_txns (card_ref, created_at);
        CREATE INDEX ledger_txns_open ON ledger_txns (state, expires_at);
        CREATE INDEX ledger_txns_original ON ledger_txns (original);
        CREATE TABLE ledger_postings (
            id         {event_id},
            at         {real} NOT NULL,
            account_id TEXT NOT NULL,
            reference  TEXT,
            kind       TEXT NOT NULL CHECK (kind IN
                       ('hold', 'capture', 'release', 'reversal', 'topup', 'adjustment')),
            debit      TEXT NOT NULL,
            credit     TEXT NOT NULL,
            amount     {money} NOT NULL CHECK (amount > 0),
            operator   TEXT,
            note       TEXT
        );
        CREATE INDEX ledger_postings_account ON ledger_postings (account_id, at);
        CREATE INDEX ledger_postings_reference ON ledger_postings (reference);
        CREATE TABLE ledger_audit (
            id       {event_id},
            at       {real} NOT NULL,
            operator TEXT NOT NULL,
            action   TEXT NOT NULL,
            subject  TEXT NOT NULL,
            detail   TEXT NOT NULL DEFAULT ''
        )
        """


# The web console's operators (argon2 hashes, never a password) and its audit trail:
# who did what, when (docs/console.md).
_V7 = """
        CREATE TABLE console_operators (
            name          TEXT PRIMARY KEY,
            role          TEXT NOT NULL
                          CHECK (role IN ('viewer', 'operator', 'security_officer')),
            password_hash TEXT NOT NULL,
            created_at    {real} NOT NULL
        );
        CREATE TABLE console_audit (
            id       {event_id},
            at       {real} NOT NULL,
            operator TEXT NOT NULL,
            action   TEXT NOT NULL,
            target   TEXT NOT NULL DEFAULT '',
            detail   TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX console_audit_at ON console_audit (at)
        """


# The cashier signed on at the terminal when a transaction arrived (field 48 operator
# sub-element, docs/terminal-interfaces.md): recorded on every row, totalled per operator.
_V8 = """
        ALTER TABLE transactions ADD COLUMN operator_id TEXT
        """


@attrs.frozen
class ColumnTypes:
    """How one backend spells the columns that differ. ``v1_indexes``: PostgreSQL's
    first version already had the ``received_at`` and ``saf (txn_id)`` indexes that
    SQLite got in version 2."""

    money: str
    real: str
    blob: str
    boolean: str
    identity: str
    saf_identity: str
    v1_indexes: bool


SQLITE_TYPES = ColumnTypes(
    "INTEGER", "REAL", "BLOB", "INTEGER", "INTEGER PRIMARY KEY",
    "INTEGER PRIMARY KEY AUTOINCREMENT", v1_indexes=False,
)  # fmt: skip
_PG_IDENTITY = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
POSTGRES_TYPES = ColumnTypes(
    "BIGINT", "DOUBLE PRECISION", "BYTEA", "BOOLEAN", _PG_IDENTITY, _PG_IDENTITY, v1_indexes=True
)


def render(types: ColumnTypes) -> list[tuple[int, str]]:
    """The migrations in one backend's types."""
    v1 = types.v1_indexes
    parts = {
        "txn_states": _TXN_STATES,
        "saf_states": _SAF_STATES,
        "money": types.money,
        "real": types.real,
        "blob": types.blob,
        "bool": types.boolean,
        "event_id": types.identity,
        "saf_id": types.saf_identity,
        "v1_received": (
            "\n        CREATE INDEX transactions_received ON transactions (received_at);"
            if v1
            else ""
        ),
        "v1_saf_txn": "\n        CREATE INDEX saf_txn ON saf (txn_id);" if v1 else "",
        "v2_saf_txn": "" if v1 else "CREATE INDEX IF NOT EXISTS saf_txn ON saf (txn_id);\n        ",
    }
    texts: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, V9, V10, V11, V12, V13, V14)
    texts += (V_RECON_ADVICE, V16)
    texts += (V_RECON_SEALED,)
    return [(n, text.format(**parts)) for n, text in enumerate(texts, start=1)]


def run_migration(
    version: int, sql: str, execute: Callable[..., object], record_version: str
) -> None:
    """One migration's statements, then its row in the version table (``record_version``
    takes the version and the time), in the caller's transaction."""
    for stmt in sql.split(";"):
        if stmt.strip():
            execute(stmt)
    execute(record_version, (version, time.time()))


def known_version(version: int, latest: int) -> int:
    """A database newer than this code is refused (its schema is not understood)."""
    if version > latest:
        raise JournalError(
            f"journal schema version {version} is newer than this forecourt ({latest})"
        )
    return version
