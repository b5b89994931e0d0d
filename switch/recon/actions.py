"""What an operator does with an error item, each in ONE journal write with its audit
row (`ActOnItem`): the action and the item's closing stand or fall together, and an
item already closed refuses the whole write.

- reverse: the transaction's parked reversal is made due, as `forecourt journal
  reverse` does (switch/operator_reversal.py); the SAF sender delivers it.
- adjust: a ledger adjustment posting on the account the item's ledger line names
  (or the one given).
- write_off (a reason is required) and resolve: the item is closed as it is.
"""

from __future__ import annotations

import time

from forecourt.switch.journal import Journal, WriteOp
from forecourt.switch.ledger import LedgerFund
from forecourt.switch.operator_reversal import reversal_ops

from .model import ItemRefused
from .ops import ActOnItem
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
) -> str:
    """Do `action` on the item and close it; what was done, for the operator."""
    found = await items(journal, item_id=item_id)
    if not found:
        raise ItemRefused(f"no item {item_id}: `forecourt recon items` lists them")
    item = found[0]
    if item.state != "open":
        raise ItemRefused(f"item {item_id} is resolved already ({item.action} by {item.operator})")
    now = time.time()
    ops: list[WriteOp] = []
    detail = ""
    if action == "reverse":
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
    await journal.write(*ops, ActOnItem(item_id, action, operator, now, reason, detail))
    return detail or action.replace("_", " ")


async def _ledger_account(journal: Journal, item_id: int) -> str | None:
    """The account of the ledger transaction an item's ledger line came from."""
    query = (
        "SELECT t.account_id FROM recon_items i JOIN ledger_txns t"
        " ON i.line_id = 'ledger:' || t.reference WHERE i.id = ?"
    )
    rows = await view(journal, query, (item_id,))
    return str(rows[0][0]) if rows and rows[0][0] is not None else None
