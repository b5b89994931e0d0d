"""Journal migrations 9 to 15: the station's interfaces and reconciliation.

Kept apart from schema.py, which renders and applies them, so that each module
stays one concept: schema.py the first phase's tables and the machinery, this one
the tables of the terminal and head-office interfaces (docs/terminal-interfaces.md)
and of the business day and reconciliation (docs/reconciliation.md). Released
migrations never change; the next one is appended in schema.py's tuple.
"""

from __future__ import annotations

from forecourt.switch.grey.schema import GREY_SCHEMA

__all__ = ["V9", "V10", "V11", "V12", "V13", "V14", "V16"]


# A terminal's cashier, its online registration and its devices' last report
# (switch/terminals/, docs/terminal-interfaces.md): one row per terminal each, and
# ``updated_at`` indexed so every node follows the changes made at the others.
V9 = """
        CREATE TABLE terminal_operators (
            terminal_id  TEXT PRIMARY KEY,
            operator_id  TEXT,
            signed_on_at {real},
            updated_at   {real} NOT NULL
        );
        CREATE INDEX terminal_operators_updated ON terminal_operators (updated_at);
        CREATE TABLE terminal_registrations (
            terminal_id     TEXT PRIMARY KEY,
            state           TEXT NOT NULL CHECK (state IN ('pending', 'registered', 'locked')),
            code_hash       TEXT NOT NULL,
            expected_serial TEXT,
            serial          TEXT,
            max_attempts    INTEGER NOT NULL,
            failures        INTEGER NOT NULL DEFAULT 0,
            last_failure_at {real},
            created_at      {real} NOT NULL,
            created_by      TEXT NOT NULL,
            expires_at      {real} NOT NULL,
            registered_at   {real},
            updated_at      {real} NOT NULL
        );
        CREATE INDEX terminal_registrations_updated ON terminal_registrations (updated_at);
        CREATE TABLE terminal_devices (
            terminal_id TEXT PRIMARY KEY,
            status      TEXT NOT NULL,
            reported_at {real} NOT NULL
        );
        CREATE INDEX terminal_devices_reported ON terminal_devices (reported_at)
        """


# Parameter sets (switch/params/, docs/terminal-interfaces.md): each version's changed
# records, the versions, and one row naming the latest (locked by a publication).
V10 = """
        CREATE TABLE params_head (
            id     INTEGER PRIMARY KEY,
            latest INTEGER NOT NULL
        );
        INSERT INTO params_head (id, latest) VALUES (1, 0);
        CREATE TABLE params_versions (
            version      INTEGER PRIMARY KEY,
            published_at {real} NOT NULL,
            operator     TEXT NOT NULL,
            note         TEXT NOT NULL,
            records      INTEGER NOT NULL,
            changed      INTEGER NOT NULL
        );
        CREATE TABLE params_changes (
            version       INTEGER NOT NULL,
            kind          TEXT NOT NULL,
            record_key    TEXT NOT NULL,
            record_values TEXT,
            PRIMARY KEY (version, kind, record_key)
        )
        """


# IC fuel cards' grey records (switch/grey, docs/terminal-interfaces.md)
V11 = GREY_SCHEMA


# Batch upload of offline advices and status queries (docs/terminal-interfaces.md):
# each advice of a batch once (its transaction row and SAF item are written with it),
# the last trailer's result per batch, and every status query asked and what it was told.
V12 = """
        CREATE TABLE batch_advices (
            terminal_id TEXT NOT NULL,
            batch       TEXT NOT NULL,
            stan        TEXT NOT NULL,
            txn_id      TEXT NOT NULL,
            amount      {money} NOT NULL,
            at          {real} NOT NULL,
            PRIMARY KEY (terminal_id, batch, stan)
        );
        CREATE TABLE batches (
            terminal_id     TEXT NOT NULL,
            batch           TEXT NOT NULL,
            trailers        INTEGER NOT NULL,
            terminal_count  INTEGER NOT NULL,
            terminal_amount {money} NOT NULL,
            switch_count    INTEGER NOT NULL,
            switch_amount   {money} NOT NULL,
            in_balance      {bool} NOT NULL,
            first_at        {real} NOT NULL,
            last_at         {real} NOT NULL,
            PRIMARY KEY (terminal_id, batch)
        );
        CREATE TABLE status_queries (
            id              {event_id},
            terminal_id     TEXT NOT NULL,
            stan            TEXT NOT NULL,
            asked_at        {real} NOT NULL,
            asked_by        TEXT NOT NULL,
            reference       TEXT NOT NULL,
            answered        TEXT NOT NULL,
            original_txn_id TEXT
        );
        CREATE INDEX status_queries_terminal ON status_queries (terminal_id, asked_at)
        """


# The business day (switch/day, docs/reconciliation.md): one row per closed day (its
# primary key is the claim: one node closes a day), the day's frozen totals (late
# lines added beside them, never over them) and each host-totals exchange (1520/0500).
V13 = """
        CREATE TABLE business_days (
            day           TEXT PRIMARY KEY,
            start_at      {real} NOT NULL,
            end_at        {real} NOT NULL,
            closed_at     {real} NOT NULL,
            closed_by     TEXT NOT NULL,
            reason        TEXT NOT NULL CHECK (reason IN ('cutover', 'operator')),
            open_shifts   TEXT NOT NULL CHECK (open_shifts IN ('close', 'roll')),
            shifts_closed INTEGER NOT NULL DEFAULT 0,
            shifts_rolled INTEGER NOT NULL DEFAULT 0,
            late_at       {real}
        );
        CREATE TABLE business_day_totals (
            day       TEXT NOT NULL,
            late      {bool} NOT NULL,
            dimension TEXT NOT NULL
                      CHECK (dimension IN ('tender', 'acquirer', 'terminal', 'operator')),
            key       TEXT NOT NULL,
            currency  TEXT NOT NULL,
            category  TEXT NOT NULL CHECK (category IN
                      ('sale', 'refund', 'sale_reversal', 'refund_reversal')),
            count     {money} NOT NULL,
            amount    {money} NOT NULL,
            PRIMARY KEY (day, late, dimension, key, currency, category)
        );
        CREATE TABLE host_totals (
            id           {event_id},
            day          TEXT NOT NULL,
            acquirer     TEXT NOT NULL,
            state        TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'in_flight', 'answered', 'failed')),
            requested_at {real} NOT NULL,
            requested_by TEXT NOT NULL,
            claimed_by   TEXT,
            lease_until  {real},
            sent_at      {real},
            answered_at  {real},
            request_mti  TEXT,
            stan         TEXT,
            action_code  TEXT,
            in_balance   {bool},
            ours         TEXT,
            theirs       TEXT,
            error        TEXT
        );
        CREATE INDEX host_totals_state ON host_totals (state, requested_at);
        CREATE INDEX host_totals_day ON host_totals (day, acquirer)
        """


# Reconciliation (switch/recon, docs/reconciliation.md): the parties' files and their
# lines (no raw text, PAN masked), the journal's side of a matched day, each line's
# class, the error items and the one action that closes each (unique: never twice).
V14 = """
        CREATE TABLE recon_files (
            party       TEXT NOT NULL,
            sha256      TEXT NOT NULL,
            name        TEXT NOT NULL,
            lines       INTEGER NOT NULL,
            new_lines   INTEGER NOT NULL,
            imported_at {real} NOT NULL,
            PRIMARY KEY (party, sha256)
        );
        CREATE TABLE recon_lines (
            party      TEXT NOT NULL,
            line_id    TEXT NOT NULL,
            file_sha   TEXT NOT NULL,
            line_no    INTEGER NOT NULL,
            reference  TEXT NOT NULL,
            amount     {money} NOT NULL,
            currency   TEXT NOT NULL,
            at         {real} NOT NULL,
            type       TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'reversal')),
            masked_pan TEXT,
            PRIMARY KEY (party, line_id)
        );
        CREATE INDEX recon_lines_day ON recon_lines (party, at);
        CREATE INDEX recon_lines_reference ON recon_lines (party, reference, type);
        CREATE TABLE recon_switch (
            party     TEXT NOT NULL,
            day       TEXT NOT NULL,
            reference TEXT NOT NULL,
            txn_id    TEXT NOT NULL,
            amount    {money} NOT NULL,
            state     TEXT NOT NULL
        );
        CREATE UNIQUE INDEX recon_switch_reference ON recon_switch (party, day, reference);
        CREATE TABLE recon_results (
            party         TEXT NOT NULL,
            day           TEXT NOT NULL,
            class         TEXT NOT NULL CHECK (class IN ('matched', 'party_only',
                          'switch_only', 'amount_differs', 'duplicate', 'reversed_settled')),
            line_id       TEXT,
            txn_id        TEXT,
            reference     TEXT NOT NULL,
            party_amount  {money},
            switch_amount {money}
        );
        CREATE INDEX recon_results_day ON recon_results (party, day, class);
        CREATE TABLE recon_items (
            id            {event_id},
            party         TEXT NOT NULL,
            day           TEXT NOT NULL,
            class         TEXT NOT NULL,
            subject       TEXT NOT NULL,
            reference     TEXT NOT NULL,
            line_id       TEXT,
            txn_id        TEXT,
            party_amount  {money},
            switch_amount {money},
            state         TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
            created_at    {real} NOT NULL
        );
        CREATE UNIQUE INDEX recon_items_subject ON recon_items (party, day, class, subject);
        CREATE TABLE recon_actions (
            id       {event_id},
            item_id  BIGINT NOT NULL UNIQUE REFERENCES recon_items (id),
            action   TEXT NOT NULL
                     CHECK (action IN ('reverse', 'adjust', 'write_off', 'resolve')),
            operator TEXT NOT NULL,
            at       {real} NOT NULL,
            reason   TEXT NOT NULL DEFAULT '',
            detail   TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE recon_runs (
            id        {event_id},
            party     TEXT NOT NULL,
            day       TEXT NOT NULL,
            at        {real} NOT NULL,
            counts    TEXT NOT NULL,
            new_items INTEGER NOT NULL
        )
        """


# A status query by RRN (switch/status_records.py) finds the terminal's latest row with
# that RRN through this index instead of reading every row of the terminal: 143 ms at
# 100,000 rows before (bench/status_query_lookup.py), for one more index on the answer.
V16 = """
        CREATE INDEX transactions_terminal_rrn ON transactions (terminal_id, rrn, received_at)
        """
