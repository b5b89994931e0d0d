"""Split tender: the rules a leg of a sale paid with several cards must keep.

A sale's legs are paid in tender order, fleet card, then consumer account, then
bank card, each taking part of what is still due. The switch refuses, before any
authoriser hears of it, a leg of an earlier tender after a later one was approved
(902 / 12) and a leg for more than the sale still owes (110 / 13). What a leg
takes is claimed in the journal's ``split_groups`` row before it leaves, by one
conditional write, so two nodes cannot both take the last of a sale.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.amounts import AMOUNT_DUE, AdditionalAmount, decode_field54, encode_field54
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.message import Message
from forecourt.codecs.split import SplitGroup
from forecourt.switch.journal import JournalRow, SettleSplitLeg, SplitGroupState
from forecourt.switch.routing import TENDERS

_MAX_AMOUNT_SETS = 6  # field 54 holds at most six


def tender_rank(tender: str) -> int:
    """Fleet 0, consumer 1, bank 2: a leg may not go below the rank already approved."""
    return TENDERS.index(tender)


@attrs.frozen
class LegRefusal:
    """Why a leg is refused locally: the answer's outcome and the journal's flag."""

    outcome: Outcome
    flag: str


OUT_OF_ORDER = LegRefusal(Outcome.INVALID_TRANSACTION, "split_out_of_order")
OVER_PAY = LegRefusal(Outcome.INVALID_AMOUNT, "split_overpay")
TOTAL_MISMATCH = LegRefusal(Outcome.INVALID_TRANSACTION, "split_total_mismatch")
SALE_REVERSED = LegRefusal(Outcome.INVALID_TRANSACTION, "split_sale_reversed")


def refusal(
    group: SplitGroup, state: SplitGroupState | None, amount: int, rank: int
) -> LegRefusal | None:
    """What refuses this leg against the group as the journal holds it, if anything."""
    if state is None:
        return OVER_PAY if amount > group.total else None
    if state.total != group.total:
        return TOTAL_MISMATCH
    if state.reversed:
        return SALE_REVERSED
    if rank < state.tender_rank:
        return OUT_OF_ORDER
    if state.claimed + amount > state.total:
        return OVER_PAY
    return None


def with_amount_due(answer: Message, due: int, currency: str | None) -> Message:
    """The answer with field 54 stating the amount still due (amount type 04).

    A balance the authoriser sent in 54 is kept beside it; a 54 that does not decode
    is replaced, since the terminal must hear what it still owes."""
    due_set = AdditionalAmount("00", AMOUNT_DUE, _currency(currency), due)
    sets: list[AdditionalAmount] = []
    existing = answer.fields.get("54")
    if existing:
        try:
            sets = [a for a in decode_field54(existing) if a.amount_type != AMOUNT_DUE]
        except DecodeError:
            sets = []
    sets = [*sets[: _MAX_AMOUNT_SETS - 1], due_set]
    return answer.with_fields({54: encode_field54(sets)})


def release_in_flight(rows: Iterable[JournalRow]) -> list[SettleSplitLeg]:
    """Legs left `forwarded` by a node that stopped (recovery, takeover) are reversed:
    each frees the claim it still holds on its sale (its whole amount: no answer
    settled it)."""
    return [
        SettleSplitLeg(row.terminal_id, row.split_group, -row.amount, 0)
        for row in rows
        if row.split_group is not None and row.amount and row.mti_class == "2"
    ]


def _currency(currency: str | None) -> str:
    return currency if currency and len(currency) == 3 and currency.isdigit() else "000"
