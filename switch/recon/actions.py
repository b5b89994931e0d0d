"""What an operator does with an error item, each in ONE journal write with its audit
row (`ActOnItem`): the action and the item's closing stand or fall together, and an
item already closed refuses the whole write.

- reverse: the transaction's parked reversal is made due, as `forecourt journal
  reverse` does (switch/operator_reversal.py); the SAF sender delivers it.
- advice: an advice of the transaction is queued for its acquirer (advice.py); the
  SAF sender delivers it, and the party settles what it had not.
- adjust: a ledger adjustment posting on the account the item's ledger line names
  (or the one given).
- write_off (a reason is required) and resolve: the item is closed as it is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from forecourt.switch.config_acquirers import AcquirerConfig
from forecourt.switch.journal import Journal, JournalError, WriteOp
from forecourt.switch.ledger import LedgerFund
from forecourt.switch.operator_reversal import reversal_ops

from .advice import advice_ops
from .model import ItemRefused
from .ops import ActOnItem, AdviceSent
from .reads import items, view

__all__ = ["act_on_item"]


async def act_on_item(
    journal: Journal,
    item_id: int,
    action: str,
    operator: str,
    reason: str = "",
    amount: int | None = None,
    account: str | None = None,
    *,
    acquirers: Sequence[AcquirerConfig] = (),
    saf_key: bytes | None = None,
) -> str:
    """Do `action` on the item and close it; what was done, for the operator.

    `acquirers` and `saf_key` (the key SAF payloads are sealed under) are for
    `advice`: the link the transaction went to, and its sealed card data."""
    found = await items(journal, item_id=item_id)
    if not found:
        raise ItemRefused(f"no item {item_id}: `forecourt recon items` lists them")
    item = found[0]
    if item.state != "open":
        raise ItemRefused(f"item {item_id} is resolved already ({item.action} by {item.operator})")
    now = time.time()
    ops: list[WriteOp] = []
    detail = ""
    advice: AdviceSent | None = None
    if action == "advice":
        queued = await advice_ops(journal, item, operator, acquirers, saf_key)
        ops, advice, detail = queued.ops, queued.advice, queued.detail
    elif action == "reverse":
        if item.txn_id is None:
            raise ItemRefused(f"item {item_id} names no journal transaction to reverse")
        why = f"recon item {item_id}: {reason or item.match_class}"
        refusal, _, ops = await reversal_ops(journal, item.txn_id, why, operator)
        if refusal is not None:
            raise ItemRefused(refusal)
        detail = f"reversal of {item.txn_id} queued"
    elif action == "adjust":
        if amount is None or amount == 0:
            raise ItemRefused("adjust needs --amount, in minor units (negative to debit)")
        target = account or await _ledger_account(journal, item_id)
        if target is None:
            raise ItemRefused(f"item {item_id} has no ledger line: name the account with --account")
        ops = [
            LedgerFund(
                target, "adjustment", amount, f"recon item {item_id}: {reason}", now, operator
            )
        ]
        detail = f"adjustment {amount:+d} on {target}"
    elif action == "write_off" and not reason.strip():
        raise ItemRefused("write_off needs --reason (why the difference is written off)")
    closing = ActOnItem(item_id, action, operator, now, reason, detail, advice)
    try:
        await journal.write(*ops, closing)
    except JournalError as exc:
        text = str(exc)
        if text.startswith("recon: "):  # refused in the writer's transaction
            raise ItemRefused(text.removeprefix("recon: ")) from None
        if advice is not None and "recon_advices" in text:
            # another node's advice of the same transaction committed first
            raise ItemRefused(
                f"item {item_id}: an advice of {advice.txn_id} was sent already, by another"
                " item at the same moment: close this item with resolve"
            ) from None
        raise
    return detail or action.replace("_", " ")


async def _ledger_account(journal: Journal, item_id: int) -> str | None:
    """The account of the ledger transaction an item's ledger line came from."""
    query = (
        "SELECT t.account_id FROM recon_items i JOIN ledger_txns t"
        " ON i.line_id = 'ledger:' || t.reference WHERE i.id = ?"
    )
    rows = await view(journal, query, (item_id,))
    return str(rows[0][0]) if rows and rows[0][0] is not None else None
