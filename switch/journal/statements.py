"""Every statement of the journal, written once for both backends.

They are written in SQLite's spelling (``?`` placeholders, ``x''`` for an empty
blob) and converted for PostgreSQL by ``pyformat``. What really differs between the
two is passed in when a backend builds its ``Statements``: the index hint that pins
``saf (txn_id)`` and the lock clause of a SAF claim. The few statements that are a
different algorithm on each (takeover, housekeeping) stay in the backend files.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import attrs
from forecourt.switch.journal.model import COLUMNS, PARKED_REVERSAL_SQL

# The terminal's open shift (at most one: the `shifts_open` unique index); a row
# inserted without a shift id takes it in the same statement, so a terminal that
# signed on at another node still gets its shift.
OPEN_SHIFT_OF = "SELECT shift_id FROM shifts WHERE terminal_id = ? AND closed_at IS NULL LIMIT 1"
_SHIFT_AT = COLUMNS.index("shift_id")
INSERT_TXN = (
    f"INSERT INTO transactions ({', '.join(COLUMNS)}) VALUES ("
    + ", ".join(f"coalesce(?, ({OPEN_SHIFT_OF}))" if n == "shift_id" else "?" for n in COLUMNS)
    + ")"
)
INSERT_EVENT = "INSERT INTO events (txn_id, at, kind, detail) VALUES (?, ?, ?, ?)"
INSERT_SAF = (
    "INSERT INTO saf (txn_id, link, mti, payload, next_attempt_at, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
DONE_SAF = (
    "UPDATE saf SET state = 'done', payload = x'', claimed_by = NULL, lease_until = NULL "
    "WHERE id = ?"
)
RETRY_SAF = (
    "UPDATE saf SET state = 'pending', last_error = ?, next_attempt_at = ?, "
    "claimed_by = NULL, lease_until = NULL WHERE id = ?"
)
FLAG_SAF = (
    "UPDATE saf SET state = 'flagged', last_error = coalesce(?, last_error), "
    "claimed_by = NULL, lease_until = NULL WHERE id = ?"
)
# One transaction's items go in the order they were queued: none is claimed while an
# earlier one of the same transaction is due, in flight or flagged (a stand-in
# approval's advice waits for the reversal of the request that timed out, and the
# reversal of the stand-in approval for its advice). A parked item blocks nothing.
_CLAIM_SAF = (
    "UPDATE saf SET state = 'in_flight', claimed_by = ?, lease_until = ?, "
    "attempts = attempts + 1 WHERE id IN (SELECT s.id FROM saf s WHERE "
    "((s.state = 'pending' AND s.next_attempt_at <= ?) OR "
    "(s.state = 'in_flight' AND s.lease_until <= ?)) {link} "
    "AND NOT EXISTS (SELECT 1 FROM saf e WHERE e.txn_id = s.txn_id AND e.id < s.id "
    "AND (e.state IN ('in_flight', 'flagged') "
    "OR (e.state = 'pending' AND e.next_attempt_at <= ?))) "
    "ORDER BY s.id LIMIT ?{lock}) "
    "RETURNING id, txn_id, link, mti, payload, attempts, created_at, last_error"
)
_CANCEL_PARKED = (
    "UPDATE {saf} SET state = 'done', payload = x'', last_error = ? WHERE txn_id = ? AND {parked}"
)
_CANCEL_SHIFT_PARKED = (
    "UPDATE {saf} SET state = 'done', payload = x'', last_error = 'cancelled: shift closed' "
    "WHERE {parked} AND txn_id IN (SELECT txn_id FROM transactions "
    "WHERE terminal_id = ? AND shift_id = ? AND state = 'approved')"
)
# Opens only when the terminal has no open shift. One writer makes this exact on
# SQLite; on PostgreSQL two nodes can both see none, and the `shifts_open` unique
# index makes the second wait for the first and then insert nothing.
OPEN_SHIFT = (
    "INSERT INTO shifts (terminal_id, shift_id, opened_at) SELECT ?, ?, ? "
    "WHERE NOT EXISTS (SELECT 1 FROM shifts WHERE terminal_id = ? AND closed_at IS NULL) "
    "ON CONFLICT DO NOTHING"
)
CLOSE_SHIFT = (
    "INSERT INTO shifts (terminal_id, shift_id, opened_at, closed_at, totals, "
    "in_balance) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (terminal_id, shift_id) DO UPDATE SET "
    "closed_at = excluded.closed_at, totals = excluded.totals, "
    "in_balance = excluded.in_balance"
)

# -- split tender (ClaimSplitLeg ...): the group row decides under its own lock. A new
# group is inserted with the leg's claim; an existing one takes it only when the
# total agrees, the group was not reversed, no later tender was approved and the
# claim stays within the total. No row back: refused.
CLAIM_SPLIT_LEG = (
    "INSERT INTO split_groups (terminal_id, group_id, total, claimed, created_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (terminal_id, group_id) DO UPDATE SET "
    "claimed = split_groups.claimed + excluded.claimed "
    "WHERE split_groups.total = excluded.total AND NOT split_groups.reversed "
    "AND split_groups.tender_rank <= ? "
    "AND split_groups.claimed + excluded.claimed <= split_groups.total "
    "RETURNING claimed, approved"
)
SETTLE_SPLIT_LEG = (
    "UPDATE split_groups SET claimed = claimed + ?, approved = approved + ?, "
    "tender_rank = CASE WHEN ? >= 0 AND tender_rank < ? THEN ? ELSE tender_rank END "
    "WHERE terminal_id = ? AND group_id = ?"
)
REVERSE_SPLIT_GROUP = (
    "UPDATE split_groups SET reversed = TRUE, claimed = 0, approved = 0 "
    "WHERE terminal_id = ? AND group_id = ?"
)
_DUE_PARKED = "UPDATE {saf} SET next_attempt_at = ?, last_error = ? WHERE txn_id = ? AND {parked}"
SPLIT_GROUP = "SELECT * FROM split_groups WHERE terminal_id = ? AND group_id = ?"
SPLIT_LEGS = (
    "SELECT * FROM transactions WHERE terminal_id = ? AND split_group = ? "
    "AND mti_class = '2' ORDER BY received_at"
)

# -- the terminal guard: each write one upsert, its RETURNING the state after it
GUARD_COLUMNS = "terminal_id, mac_failures, locked, signed_off, updated_at"
_UPSERT_GUARD = (
    f"INSERT INTO terminal_guards ({GUARD_COLUMNS}) VALUES (?, {{new}}) "
    "ON CONFLICT (terminal_id) DO UPDATE SET {change}, updated_at = excluded.updated_at "
    f"RETURNING {GUARD_COLUMNS}"
)
# The increment happens on the row under its lock: two nodes counting at once wait
# for each other and neither count is lost (no read-modify-write in Python).
RECORD_MAC_FAILURE = _UPSERT_GUARD.format(
    new="1, 1 >= ?, FALSE, ?",
    change="mac_failures = terminal_guards.mac_failures + 1, "
    "locked = terminal_guards.locked OR terminal_guards.mac_failures + 1 >= ?",
)
CLEAR_MAC_FAILURES = _UPSERT_GUARD.format(new="0, FALSE, FALSE, ?", change="mac_failures = 0")
UNLOCK_TERMINAL = _UPSERT_GUARD.format(
    new="0, FALSE, FALSE, ?", change="mac_failures = 0, locked = FALSE"
)
SET_SIGNED_OFF = _UPSERT_GUARD.format(
    new="0, FALSE, ?, ?", change="signed_off = excluded.signed_off"
)

# -- reads
GET_TXN = "SELECT * FROM transactions WHERE txn_id = ?"
FIND_BY_TERMINAL_KEY = (
    "SELECT * FROM transactions WHERE terminal_id = ? AND stan = ? AND mti_class = ? "
    "ORDER BY received_at DESC LIMIT 1"
)
RECOVER = "SELECT * FROM transactions WHERE state IN ('received', 'forwarded')"
EVENTS = "SELECT txn_id, at, kind, detail FROM events WHERE txn_id = ? ORDER BY id"
SAF_COUNTS = (
    "SELECT CASE WHEN state = 'pending' AND next_attempt_at > ? THEN 'parked'"
    " ELSE state END AS s, count(*) AS n FROM saf GROUP BY 1"
)
_LIVE_SAF = "state IN ('pending', 'in_flight') AND NOT (state = 'pending' AND next_attempt_at > ?)"
SAF_OLDEST = f"SELECT min(created_at) AS m FROM saf WHERE {_LIVE_SAF}"
SAF_BY_LINK = f"SELECT link, count(*) AS n FROM saf WHERE {_LIVE_SAF} GROUP BY link"
SAF_COLUMNS = (
    "id, txn_id, link, mti, attempts, next_attempt_at, state, claimed_by, lease_until, "
    "created_at, last_error"
)
OPEN_SHIFTS = "SELECT terminal_id, shift_id FROM shifts WHERE closed_at IS NULL ORDER BY opened_at"
SHIFT = "SELECT * FROM shifts WHERE terminal_id = ? AND shift_id = ?"
# Categories: debit, credit, reversed, authorised, declined; and stand_in, the
# approved purchases among the debits that the switch approved itself.
TOTALS = """
    SELECT currency, tender, category, count(*) AS n,
        CAST(coalesce(sum(amt), 0) AS BIGINT) AS total
    FROM (
        SELECT coalesce(currency, '') AS currency, coalesce(tender, '') AS tender,
            CASE
                WHEN mti_class = '2' AND state = 'approved'
                     AND substr(coalesce(processing_code, '00'), 1, 2) = '20'
                     THEN 'credit'
                WHEN mti_class = '2' AND state = 'approved' THEN 'debit'
                WHEN mti_class = '2' AND state = 'reversed' THEN 'reversed'
                WHEN mti_class = '1' AND state = 'approved' THEN 'authorised'
                WHEN mti_class IN ('1', '2') AND state = 'declined' THEN 'declined'
            END AS category,
            coalesce(approved_amount, amount, 0) AS amt
        FROM transactions
        WHERE terminal_id = ? AND shift_id = ?
        UNION ALL
        SELECT coalesce(currency, ''), coalesce(tender, ''), 'stand_in',
            coalesce(approved_amount, amount, 0)
        FROM transactions
        WHERE terminal_id = ? AND shift_id = ? AND state = 'approved'
            AND (',' || flags || ',') LIKE '%,stand_in,%'
    ) t
    WHERE category IS NOT NULL
    GROUP BY 1, 2, 3
    ORDER BY 2, 3, 1
    """
GUARD = f"SELECT {GUARD_COLUMNS} FROM terminal_guards WHERE terminal_id = ?"
GUARDS_SINCE = (
    f"SELECT {GUARD_COLUMNS} FROM terminal_guards WHERE updated_at >= ? "
    "ORDER BY updated_at, terminal_id"
)


@functools.cache
def pyformat(sql: str) -> str:
    """SQLite's spelling to psycopg's: ``%s`` placeholders, ``''::bytea``."""
    return sql.replace("%", "%%").replace("?", "%s").replace("x''", "''::bytea")


def _same(sql: str) -> str:
    return sql


@attrs.frozen
class Statements:
    """One backend's statements (its placeholder ``mark`` and its spelling)."""

    mark: str
    convert: Callable[[str], str]
    insert_txn: str
    insert_event: str
    insert_saf: str
    done_saf: str
    retry_saf: str
    flag_saf: str
    claim_saf: str
    claim_saf_of_link: str
    cancel_parked: str
    cancel_shift_parked: str
    open_shift: str
    close_shift: str
    record_mac_failure: str
    clear_mac_failures: str
    unlock_terminal: str
    set_signed_off: str
    claim_split_leg: str
    settle_split_leg: str
    reverse_split_group: str
    due_parked: str

    @classmethod
    def build(
        cls,
        convert: Callable[[str], str] = _same,
        *,
        saf_by_txn: str = "saf",
        parked_by_txn: str = PARKED_REVERSAL_SQL,
        claim_lock: str = "",
    ) -> Statements:
        """``saf_by_txn``/``parked_by_txn``: how the cancels reach ``saf (txn_id)``;
        ``claim_lock``: what keeps two claimers off the same rows."""
        c = convert
        return cls(
            mark=c("?"),
            convert=convert,
            insert_txn=c(INSERT_TXN),
            insert_event=c(INSERT_EVENT),
            insert_saf=c(INSERT_SAF),
            done_saf=c(DONE_SAF),
            retry_saf=c(RETRY_SAF),
            flag_saf=c(FLAG_SAF),
            claim_saf=c(_CLAIM_SAF.format(link="", lock=claim_lock)),
            claim_saf_of_link=c(_CLAIM_SAF.format(link="AND s.link = ?", lock=claim_lock)),
            cancel_parked=c(_CANCEL_PARKED.format(saf=saf_by_txn, parked=parked_by_txn)),
            cancel_shift_parked=c(
                _CANCEL_SHIFT_PARKED.format(saf=saf_by_txn, parked=parked_by_txn)
            ),
            open_shift=c(OPEN_SHIFT),
            close_shift=c(CLOSE_SHIFT),
            record_mac_failure=c(RECORD_MAC_FAILURE),
            clear_mac_failures=c(CLEAR_MAC_FAILURES),
            unlock_terminal=c(UNLOCK_TERMINAL),
            set_signed_off=c(SET_SIGNED_OFF),
            claim_split_leg=c(CLAIM_SPLIT_LEG),
            settle_split_leg=c(SETTLE_SPLIT_LEG),
            reverse_split_group=c(REVERSE_SPLIT_GROUP),
            due_parked=c(_DUE_PARKED.format(saf=saf_by_txn, parked=parked_by_txn)),
        )

    def update_txn(self, names: Iterable[str]) -> str:
        sets = ", ".join(f"{n} = {self.mark}" for n in names)
        return f"UPDATE transactions SET {sets} WHERE txn_id = {self.mark}"

    def marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)
