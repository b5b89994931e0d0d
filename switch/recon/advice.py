"""The "send an advice" action on an error item at the switch only: the switch
approved a sale its acquirer never settled, so the acquirer is sent an advice of it.

The journal keeps no clear PAN. What it does keep, sealed in the SAF queue, is the
reversal parked for every approved transaction ([reversal] hold_approved_s, until
its shift closes): the request as the host saw it, in the host's dialect. The
advice is built from that (1220 in ISO 8583:1993 / IFSF, 0220 in the 1987
dialects), sealed again under the same SAF key, and queued for the same link in
ONE journal write with the item's closing and its audit row; the SAF sender
delivers it like a stand-in approval's advice (MAC'd under the link's ZAK,
retried, repeats as 1221 / 0221). An advice queued for the transaction before
(a stand-in approval's, a completion's) that the SAF sender gave up on is sent
again instead, as a repeat: the host may have seen it.

Never twice: an advice queued, in flight or delivered refuses the action, and
`recon_advices` (primary key: the transaction) refuses a second one in the
writer's transaction, whichever item or operator asks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import attrs
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.codecs.mti import repeat_mti
from forecourt.codecs.network import transmission_time
from forecourt.switch.config_acquirers import AcquirerConfig
from forecourt.switch.journal import (
    PARKED_HORIZON_S,
    AddEvent,
    Event,
    Journal,
    JournalError,
    JournalRow,
    SafEntry,
    SafSealer,
    WriteOp,
)
from forecourt.switch.journal.writes import RetryFlaggedSaf
from forecourt.switch.reversal import saf_message, saf_payload

from .model import ItemRefused
from .ops import AdviceSent
from .reads import Item, view

__all__ = ["RECON_ADVICE_REASON", "AdviceQueued", "advice_from_reversal", "advice_ops"]

# Field 25 of a 1993 advice sent after reconciliation. ISO 8583:1993's advice
# reasons (1000-1007: stand-in, issuer unavailable, under floor limit, ...) say why
# a transaction was approved without its issuer; none says "approved online, not
# settled", so this is the switch's own code, to agree with the acquirer.
RECON_ADVICE_REASON = "1500"

# What the advice carries over from the sealed reversal: the request as the host saw
# it (the same fields a stand-in approval's advice carries), and 56 / 90, which name
# that request (MTI, STAN, date and time, acquirer) so the host can tell the advice
# of a transaction it holds already from a new one.
_ADVISED = ("2", "3", "4", "12", "13", "14", "22", "26", "32", "41", "42", "43", "49")
_ORIGINAL = {Family.ISO1993: "56", Family.ISO1987: "90"}


@attrs.frozen
class AdviceQueued:
    """What the action writes and what it tells the operator."""

    ops: list[WriteOp]
    advice: AdviceSent
    detail: str


def advice_from_reversal(
    reversal: Message, family: Family, rrn: str | None, auth_code: str | None, amount: int | None
) -> Message:
    """The advice of an approved transaction, from its reversal as queued for the host.

    `amount`: the amount approved now (a partial reversal lowered it), else the
    reversal's field 4. No PIN, track or chip data: the reversal holds none."""
    fields = {k: v for k, v in reversal.fields.items() if k in _ADVISED}
    original = reversal.fields.get(_ORIGINAL[family])
    if original is not None:
        fields[_ORIGINAL[family]] = original
    if amount is not None:
        fields["4"] = f"{amount:012d}"
    fields["7"] = transmission_time()
    fields["11"] = reversal.fields.get("11", "000000")  # the link's own STAN when sent
    if rrn:
        fields["37"] = rrn
    if auth_code:
        fields["38"] = auth_code
    if family is Family.ISO1993:
        fields["24"] = "200"  # original financial advice, as a stand-in approval's
        fields["25"] = RECON_ADVICE_REASON
        fields["39"] = "000"
        return Message(mti="1220", fields=fields)
    fields["39"] = "00"
    return Message(mti="0220", fields=fields)


async def advice_ops(
    journal: Journal,
    item: Item,
    operator: str,
    acquirers: Sequence[AcquirerConfig],
    saf_key: bytes | None,
) -> AdviceQueued:
    """The write that sends the item's transaction an advice; ItemRefused (one line
    naming the item and what to do instead) when it must not be sent."""
    if item.txn_id is None:
        raise ItemRefused(
            f"item {item.id} names no journal transaction (the party settled what the switch"
            " never approved): nothing to advise; write it off or resolve it"
        )
    txn_id = item.txn_id
    row = await journal.get(txn_id)
    if row is None:
        raise ItemRefused(f"item {item.id}: no transaction {txn_id} in the journal")
    _refuse_state(item, row)
    link = _iso8583_link(item, row, acquirers)
    entries = await journal.saf_entries_of([txn_id])
    advices = [e for e in entries if e.mti[1:3] == "22"]  # x220, x221: financial advices
    flagged = [e for e in advices if e.state == "flagged"]
    abandoned = [e for e in advices if e.state == "done" and _abandoned(e)]
    held = [e for e in advices if e not in flagged and e not in abandoned]
    if held or await _delivered(journal, txn_id):
        what = f"SAF item {held[-1].id}, {held[-1].state}" if held else "delivered"
        raise ItemRefused(
            f"item {item.id}: an advice of {txn_id} was sent already ({what}): the party"
            " has it; close the item with resolve once the party's next file shows it"
        )
    now = time.time()
    note = json.dumps({"actor": operator, "item": item.id}, sort_keys=True)
    if flagged:  # given up on by the SAF sender: the same advice again, as a repeat
        again = flagged[-1]
        return AdviceQueued(
            [
                RetryFlaggedSaf(again.id, operator, now),
                AddEvent(Event(txn_id, now, "recon_advice_resent", note)),
            ],
            AdviceSent(txn_id, again.link, again.mti, "resent"),
            f"advice {again.mti} of {txn_id} sent again to {again.link} (SAF item"
            f" {again.id}, as a repeat)",
        )
    if saf_key is None:
        raise ItemRefused(f"item {item.id}: the advice needs the SAF key: open the key store")
    reversal = await _sealed_reversal(journal, item, row, entries, saf_key)
    family = get_dialect(link.iso8583.dialect, link.iso8583.bitmap).family
    advice = advice_from_reversal(reversal, family, row.rrn, row.auth_code, row.approved_amount)
    detail = f"advice {advice.mti} of {txn_id} queued for {link.name}"
    if abandoned:  # abandoned in the console, its payload erased: the host may have it
        advice = advice.with_fields({}, mti=repeat_mti(advice.mti))
        detail = (
            f"advice {advice.mti} of {txn_id} queued for {link.name} (a repeat: SAF item"
            f" {abandoned[-1].id} was {abandoned[-1].last_error})"
        )
    return AdviceQueued(
        [
            journal.saf_enqueue_op(txn_id, link.name, advice.mti, saf_payload(advice), now=now),
            AddEvent(Event(txn_id, now, "recon_advice_queued", note)),
        ],
        AdviceSent(txn_id, link.name, advice.mti, "built"),
        detail,
    )


def _abandoned(entry: SafEntry) -> bool:
    """Given up on by an operator in the console (`AbandonSaf`): never delivered."""
    return (entry.last_error or "").startswith("abandoned by ")


def _refuse_state(item: Item, row: JournalRow) -> None:
    txn = row.txn_id
    if row.state in ("reversed", "reversal_pending"):
        raise ItemRefused(
            f"item {item.id}: {txn} was reversed at the switch ({row.state}): an advice would"
            " charge a sale the customer got back; resolve or write off the item"
        )
    if row.state != "approved":
        raise ItemRefused(
            f"item {item.id}: {txn} is {row.state}, not approved: nothing to advise;"
            " resolve or write off the item"
        )
    if row.mti_class != "2":
        raise ItemRefused(
            f"item {item.id}: {txn} is a class {row.mti_class} message, not a financial one:"
            " it settles through its completion; resolve the item"
        )


def _iso8583_link(
    item: Item, row: JournalRow, acquirers: Sequence[AcquirerConfig]
) -> AcquirerConfig:
    route = row.route
    link = next((a for a in acquirers if a.name == route), None)
    if link is None:
        raise ItemRefused(
            f"item {item.id}: {row.txn_id} went to {route!r}, which is not in [[acquirers]]:"
            " send the advice at that acquirer, then resolve the item"
        )
    if link.kind == "wallet":
        raise ItemRefused(
            f"item {item.id}: {row.txn_id} went to the wallet provider {route!r}, which takes"
            " no ISO 8583 advice: have the provider capture the order, then resolve the item"
        )
    if link.kind != "iso8583":
        raise ItemRefused(
            f"item {item.id}: {row.txn_id} went to the {link.kind} {route!r}, the switch's own"
            " books, not an ISO 8583 acquirer: use --action adjust instead"
        )
    return link


async def _delivered(journal: Journal, txn_id: str) -> bool:
    """An advice acknowledged by the host (its SAF row may be gone: delivered rows are
    deleted after a day; the event stays)."""
    rows = await view(
        journal,
        "SELECT 1 FROM events WHERE txn_id = ? AND kind = 'advice_delivered' LIMIT 1",
        (txn_id,),
    )
    return bool(rows)


async def _sealed_reversal(
    journal: Journal, item: Item, row: JournalRow, entries: Sequence[SafEntry], saf_key: bytes
) -> Message:
    """The transaction's parked reversal, opened, else the sealed request kept from it
    for reconciliation (deleted in the advice's write): the only places its card data is."""
    horizon = time.time() + PARKED_HORIZON_S
    parked = [
        e
        for e in entries
        if e.state == "pending" and e.mti[1:2] == "4" and e.next_attempt_at > horizon
    ]
    if parked:
        entry = parked[-1]
        link, mti = entry.link, entry.mti
        rows = await view(journal, "SELECT payload FROM saf WHERE id = ?", (entry.id,))
    else:  # kept past the parked reversal's end ([recon] keep_sealed_days)
        rows = await view(
            journal, "SELECT payload, link, mti FROM recon_sealed WHERE txn_id = ?", (row.txn_id,)
        )
        if not rows:
            raise ItemRefused(
                f"item {item.id}: no sealed card data is held for {row.txn_id} (its parked"
                " reversal went with its shift's close or [reversal] hold_approved_s, and"
                " [recon] keep_sealed_days kept none): send the advice at the acquirer,"
                " then resolve the item"
            )
        link, mti = str(rows[0][1]), str(rows[0][2])
    sealed = bytes(rows[0][0]) if rows and rows[0][0] is not None else b""
    try:
        payload = SafSealer(saf_key).open(sealed, row.txn_id, link, mti)
    except JournalError:
        raise ItemRefused(
            f"item {item.id}: the sealed reversal of {row.txn_id} does not open with this"
            " LMK's SAF key: run the command with the switch's LMK"
        ) from None
    return saf_message(payload)
