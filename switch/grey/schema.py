"""The grey records' table (journal migration 11): one row per card transaction.

A row is keyed by the card reference (the ledger's keyed hash of the PAN, never
the PAN) and the card's transaction counter, so a repeated notification finds
the row it wrote and a second node sees the first node's rows at once.
"""

from __future__ import annotations

__all__ = ["GREY_SCHEMA", "GREY_STATES"]

GREY_STATES = ("open", "completed", "cleared", "flagged")

GREY_SCHEMA = """
        CREATE TABLE grey_records (
            card_ref         TEXT NOT NULL,
            atc              INTEGER NOT NULL CHECK (atc >= 0 AND atc <= 65535),
            masked_pan       TEXT NOT NULL,
            account_id       TEXT NOT NULL,
            amount           {money} NOT NULL CHECK (amount >= 0),
            currency         TEXT NOT NULL,
            terminal_id      TEXT NOT NULL,
            pump             TEXT NOT NULL,
            nozzle           TEXT NOT NULL,
            local_time       TEXT NOT NULL,
            tac              TEXT NOT NULL,
            node             TEXT NOT NULL,
            recorded_at      {real} NOT NULL,
            state            TEXT NOT NULL
                             CHECK (state IN ('open', 'completed', 'cleared', 'flagged')),
            closed_by        TEXT CHECK (closed_by IN ('result', 'unlock')),
            final_amount     {money} CHECK (final_amount >= 0),
            debited          {money} NOT NULL DEFAULT 0 CHECK (debited >= 0),
            closed_at        {real},
            closing_terminal TEXT,
            closing_node     TEXT,
            closing_tac      TEXT,
            flagged_at       {real},
            flags            TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (card_ref, atc)
        );
        CREATE INDEX grey_records_state ON grey_records (state, recorded_at)
        """
