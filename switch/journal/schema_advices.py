"""Journal migration: reconciliation's "send an advice" action (docs/reconciliation.md).

`recon_actions` is rebuilt to admit the action `advice` (its CHECK names the
actions, and neither backend alters a CHECK the same way); its rows are copied in
their order. `recon_advices` holds one row per transaction an operator advised:
its primary key is what makes a second advice of the same transaction impossible,
from another item or another operator at the same moment.
"""

from __future__ import annotations

__all__ = ["V_RECON_ADVICE"]

V_RECON_ADVICE = """
        CREATE TABLE recon_actions_next (
            id       {event_id},
            item_id  BIGINT NOT NULL UNIQUE REFERENCES recon_items (id),
            action   TEXT NOT NULL
                     CHECK (action IN ('reverse', 'advice', 'adjust', 'write_off', 'resolve')),
            operator TEXT NOT NULL,
            at       {real} NOT NULL,
            reason   TEXT NOT NULL DEFAULT '',
            detail   TEXT NOT NULL DEFAULT ''
        );
        INSERT INTO recon_actions_next (item_id, action, operator, at, reason, detail)
            SELECT item_id, action, operator, at, reason, detail FROM recon_actions ORDER BY id;
        DROP TABLE recon_actions;
        ALTER TABLE recon_actions_next RENAME TO recon_actions;
        CREATE TABLE recon_advices (
            txn_id  TEXT PRIMARY KEY,
            item_id BIGINT NOT NULL UNIQUE REFERENCES recon_items (id),
            link    TEXT NOT NULL,
            mti     TEXT NOT NULL,
            how     TEXT NOT NULL CHECK (how IN ('built', 'resent')),
            at      {real} NOT NULL
        )
        """
