"""Sealed card data kept past a parked reversal's end, for reconciliation's advice.

An approved sale's parked reversal is erased when its hold ends or its shift
closes; the settlement file that shows the sale missing arrives the next day, and
the "send an advice" action needs that sealed request (docs/reconciliation.md).
With `[recon] keep_sealed_days` > 0 the parked reversal still ends exactly as
before, but its sealed payload (AES-GCM under the SAF key, unchanged: it is never
opened here) is moved, in the same statement's transaction, to `recon_sealed`
until the end of the sale's business day plus N days. The advice takes it (and
deletes it) in its own write; a matched reconciliation run or the SAF sweep past
`erase_at` deletes it.
"""

from __future__ import annotations

import attrs
from forecourt.switch.business_day import Cutover

__all__ = ["SHIFT_PARKED_IDS", "V_RECON_SEALED", "KeepSealed", "keep_policy", "keep_sql"]

V_RECON_SEALED = """
        CREATE TABLE recon_sealed (
            txn_id   TEXT PRIMARY KEY,
            link     TEXT NOT NULL,
            mti      TEXT NOT NULL,
            payload  {blob} NOT NULL,
            kept_at  {real} NOT NULL,
            erase_at {real} NOT NULL
        );
        CREATE INDEX recon_sealed_erase ON recon_sealed (erase_at)
        """


@attrs.frozen
class KeepSealed:
    """How long a sealed payload is kept: `days` after the end of its sale's business
    day, whose cut-over is `shift_s` = the station's UTC offset minus the cut-over
    time of day, in seconds (a fixed offset: every day is 86,400 s)."""

    days: int
    shift_s: int


def keep_policy(days: int, cutover: Cutover) -> KeepSealed | None:
    """`[recon] keep_sealed_days` under `[business_day] cutover`; None: keep nothing."""
    if days <= 0:
        return None
    day_starts_s = (cutover.hour * 60 + cutover.minute) * 60
    return KeepSealed(days, cutover.utc_offset_minutes * 60 - day_starts_s)


def keep_sql(keep: KeepSealed, now: float, floor: str, mark: str) -> tuple[str, tuple[object, ...]]:
    """The INSERT that keeps the sealed payloads of approved sales among the SAF rows
    named by `{ids}` (a sub-select the caller formats in), and its parameters.
    `floor` is the backend's floor of `{}` (epoch seconds are positive), `mark` its
    placeholder."""
    day = floor.format(f"(t.received_at + {mark}) / 86400")
    sql = (
        "INSERT INTO recon_sealed (txn_id, link, mti, payload, kept_at, erase_at)"
        f" SELECT s.txn_id, s.link, s.mti, s.payload, {mark},"
        f" ({day} + 1 + {mark}) * 86400 - {mark}"
        " FROM saf s JOIN transactions t ON t.txn_id = s.txn_id"
        " WHERE s.id IN ({ids}) AND t.state = 'approved' AND t.mti_class = '2'"
        " AND length(s.payload) > 0"
        " ON CONFLICT (txn_id) DO NOTHING"
    )
    return sql, (now, keep.shift_s, keep.days, keep.shift_s)


# The parked reversals a shift's close ends (CancelShiftParked): its approved sales'.
SHIFT_PARKED_IDS = (
    "SELECT id FROM saf WHERE state = 'pending' AND substr(mti, 2, 1) = '4'"
    " AND txn_id IN (SELECT txn_id FROM transactions"
    " WHERE terminal_id = ? AND shift_id = ? AND state = 'approved')"
)
