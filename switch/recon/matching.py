"""Matching one party's business day against the journal, in SQL.

Three statements do the work, whatever the day's size, so memory stays flat: the
journal's side of the day is copied into `recon_switch` (one row per reference,
through the `received_at` index), each line of the day is classified with a join
on the reference, and the journal rows no line names are added. (`x || ''` and
`x + 0` keep SQLite's planner off an index that would make a lookup a scan of the
day: measured quadratic, 8 s for 2,000 lines, before.) Results replace
the day's previous ones (a run is repeatable); items are only ever added, once per
(party, day, class, subject) (docs/reconciliation.md).
"""

from __future__ import annotations

import hashlib
import json

from .model import MatchClass, RunResult
from .ops import MatchDay
from .store import Sql

__all__ = ["match_day"]

# the party's reference, as the journal holds it
# (a completion the host answered without field 38 goes by its pre-authorisation's)
_SWITCH_KEY = {
    "rrn": "t.rrn",
    "auth_code": "COALESCE(t.auth_code, (SELECT o.auth_code FROM transactions o"
    " WHERE o.txn_id = t.original_txn_id))",
    "order_no": "(CASE WHEN t.processing_code LIKE '20%' THEN 'FR' ELSE 'FC' END || t.txn_id)",
}

_SNAPSHOT = """
    INSERT INTO recon_switch (party, day, reference, txn_id, amount, state)
    SELECT ?, ?, {key}, t.txn_id, COALESCE(t.approved_amount, t.amount, 0), t.state
    FROM transactions t
    WHERE t.received_at >= ? AND t.received_at < ? AND t.route = ? AND t.mti_class = '2'
      AND t.state || '' IN ('approved', 'reversed', 'reversal_pending') AND {key} IS NOT NULL
    ORDER BY t.received_at, t.txn_id
    ON CONFLICT (party, day, reference) DO NOTHING"""

# a reversal line for the reference, that day, at the party
_REVERSED_AT_PARTY = """EXISTS (SELECT 1 FROM recon_lines r WHERE r.party = ?
    AND r.reference = l.reference AND r.type = 'reversal' AND r.at + 0 >= ? AND r.at + 0 < ?)"""
_SOLD_AT_PARTY = """EXISTS (SELECT 1 FROM recon_lines r WHERE r.party = ?
    AND r.reference = l.reference AND r.type <> 'reversal' AND r.at + 0 >= ? AND r.at + 0 < ?)"""

_CLASSIFY = f"""
    INSERT INTO recon_results
        (party, day, class, line_id, txn_id, reference, party_amount, switch_amount)
    SELECT ?, ?, CASE
        WHEN l.n > 1 THEN 'duplicate'
        WHEN l.type = 'reversal' AND {_SOLD_AT_PARTY} THEN 'matched'
        WHEN s.txn_id IS NULL THEN 'party_only'
        WHEN l.type = 'reversal' THEN
            CASE WHEN s.state = 'approved' THEN 'amount_differs' ELSE 'matched' END
        WHEN s.state <> 'approved' THEN
            CASE WHEN {_REVERSED_AT_PARTY} THEN 'matched' ELSE 'reversed_settled' END
        WHEN {_REVERSED_AT_PARTY} THEN 'amount_differs'
        WHEN s.amount <> l.amount THEN 'amount_differs'
        ELSE 'matched' END,
        l.line_id, s.txn_id, l.reference, l.amount, s.amount
    FROM (SELECT line_id, reference, amount, type, ROW_NUMBER() OVER (
              PARTITION BY reference, CASE WHEN type = 'reversal' THEN 1 ELSE 0 END
              ORDER BY at, file_sha, line_no) AS n
          FROM recon_lines WHERE party = ? AND at >= ? AND at < ?) l
    LEFT JOIN recon_switch s ON s.party = ? AND s.day = ? AND s.reference = l.reference"""

_SWITCH_ONLY = """
    INSERT INTO recon_results
        (party, day, class, line_id, txn_id, reference, party_amount, switch_amount)
    SELECT ?, ?, 'switch_only', NULL, s.txn_id, s.reference, NULL, s.amount
    FROM recon_switch s
    WHERE s.party = ? AND s.day = ? AND s.state = 'approved' AND NOT EXISTS (
        SELECT 1 FROM recon_lines l WHERE l.party = ? AND l.reference = s.reference
        AND l.at + 0 >= ? AND l.at + 0 < ?)"""

_ITEMS = """
    INSERT INTO recon_items
        (party, day, class, subject, reference, line_id, txn_id, party_amount,
         switch_amount, state, created_at)
    SELECT party, day, class, COALESCE(line_id, txn_id), reference, line_id, txn_id,
        party_amount, switch_amount, 'open', ?
    FROM recon_results WHERE party = ? AND day = ? AND class <> 'matched'
    ON CONFLICT (party, day, class, subject) DO NOTHING"""

# the ledger's books as the party's lines: what it captured, by the approval code
# its authoriser answered in field 38 (from the ledger's reference; a completion's
# is its pre-authorisation's)
_LEDGER_TXNS = """
    SELECT t.reference, t.captured, t.created_at, c.masked_pan,
        CASE WHEN t.kind = 'completion' THEN t.original END FROM ledger_txns t
    LEFT JOIN ledger_cards c ON c.card_ref = t.card_ref
    WHERE t.kind IN ('purchase', 'completion') AND t.state = 'captured' AND t.captured > 0
      AND t.created_at >= ? AND t.created_at < ?"""


def match_day(sql: Sql, op: MatchDay) -> RunResult:
    party, day, start, end = op.party.name, op.day, op.start, op.end
    if op.party.kind == "ledger":
        _ledger_lines(sql, op)
    sql("DELETE FROM recon_switch WHERE party = ? AND day = ?", (party, day))
    sql("DELETE FROM recon_results WHERE party = ? AND day = ?", (party, day))
    key = _SWITCH_KEY[op.party.match_on]
    sql(_SNAPSHOT.format(key=key), (party, day, start, end, op.party.settles))
    bounds = (party, start, end)
    sql(_CLASSIFY, (party, day, *bounds, *bounds, *bounds, *bounds, party, day))
    sql(_SWITCH_ONLY, (party, day, party, day, *bounds))
    new = sql(_ITEMS, (op.at, party, day)).rowcount
    # settled: the sealed request kept for an advice ([recon] keep_sealed_days) goes
    sql(
        "DELETE FROM recon_sealed WHERE txn_id IN (SELECT txn_id FROM recon_results"
        " WHERE party = ? AND day = ? AND class = 'matched' AND txn_id IS NOT NULL)",
        (party, day),
    )
    rows = sql(
        "SELECT class, count(*) FROM recon_results WHERE party = ? AND day = ? GROUP BY class",
        (party, day),
    ).fetchall()
    counts = {c.value: 0 for c in MatchClass} | {str(r[0]): int(r[1]) for r in rows}
    sql(
        "INSERT INTO recon_runs (party, day, at, counts, new_items) VALUES (?, ?, ?, ?, ?)",
        (party, day, op.at, json.dumps(counts, sort_keys=True), new),
    )
    return RunResult(party, day, counts, max(new, 0))


def ledger_approval_code(reference: str) -> str:
    """Field 38 as the ledger's authoriser answers it (switch/authorisers/ledger)."""
    return hashlib.sha256(reference.encode()).hexdigest()[:6].upper()


def _ledger_lines(sql: Sql, op: MatchDay) -> None:
    party = op.party.name
    sql(
        "DELETE FROM recon_lines WHERE party = ? AND file_sha = 'ledger' AND at >= ? AND at < ?",
        (party, op.start, op.end),
    )
    for reference, captured, at, pan, original in sql(_LEDGER_TXNS, (op.start, op.end)).fetchall():
        sql(
            "INSERT INTO recon_lines (party, line_id, file_sha, line_no, reference, amount,"
            " currency, at, type, masked_pan) VALUES (?, ?, 'ledger', 0, ?, ?, ?, ?, 'sale', ?)",
            (
                party, f"ledger:{reference}", ledger_approval_code(str(original or reference)),
                int(captured), op.party.currency, float(at), pan,
            ),
        )  # fmt: skip
