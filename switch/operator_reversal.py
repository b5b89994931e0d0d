"""`forecourt journal reverse TXN`: an operator reverses a transaction by hand.

The switch keeps the reversal of every approved transaction parked, sealed, in the
store-and-forward queue until the transaction is reversed, completed or its shift
closes (docs/switch.md). An operator reversal makes that parked reversal due now;
the SAF sender of any running node delivers it (or the next node to start). It is
journalled as the operator's, with who and why. It is sent with the parked
reversal's reason code (4021 / 68): the card data needed to build another one is
not held outside the sealed payload.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import trio
from forecourt.switch.journal import (
    PARKED_HORIZON_S,
    AddEvent,
    Event,
    Journal,
    JournalError,
    RetrySaf,
    WriteOp,
    open_journal,
)


class NothingToReverse(Exception):
    """The transaction cannot be reversed from here (with the reason why)."""


def add_parser(
    jsub: argparse._SubParsersAction[argparse.ArgumentParser],
    location: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = jsub.add_parser(
        "reverse",
        help="reverse a transaction by hand (operator)",
        epilog="example: forecourt journal reverse 01J9Z... --config /etc/forecourt/forecourt.toml"
        " --reason 'pump fault, customer refunded'",
    )
    location(p)
    p.add_argument("txn_id", help="the transaction id, as `journal list` shows it")
    p.add_argument("--reason", default="", help="why, for the journal")
    p.set_defaults(func=run)


async def reverse(target: Path | str, txn_id: str, reason: str, actor: str) -> str:
    """Make the transaction's parked reversal due; returns the state it had."""
    async with open_journal(target) as journal:
        refusal, before = await _reverse(journal, txn_id, reason, actor)
    # raised outside the journal's nursery, so it is not wrapped in an exception group
    if refusal is not None:
        raise NothingToReverse(refusal)
    return before


async def _reverse(
    journal: Journal, txn_id: str, reason: str, actor: str
) -> tuple[str | None, str]:
    refusal, before, ops = await reversal_ops(journal, txn_id, reason, actor)
    if refusal is None:
        await journal.write(*ops)
    return refusal, before


async def reversal_ops(
    journal: Journal, txn_id: str, reason: str, actor: str
) -> tuple[str | None, str, list[WriteOp]]:
    """(refusal, state before, the write that makes the parked reversal due): a caller
    may add its own operations to the same write (reconciliation's audit)."""
    row = await journal.get(txn_id)
    if row is None:
        return f"no transaction {txn_id}", "", []
    if row.state in ("reversed", "reversal_pending"):
        return f"transaction {txn_id} is already {row.state}", row.state, []
    if row.state != "approved" or row.mti_class not in ("1", "2"):
        return (
            f"transaction {txn_id} is {row.state} (class {row.mti_class}): nothing to reverse",
            row.state,
            [],
        )
    horizon = time.time() + PARKED_HORIZON_S
    entries = [e for e in await journal.saf_entries_of([txn_id]) if e.state == "pending"]
    parked = [e for e in entries if e.next_attempt_at > horizon or row.mti_class == "1"]
    if not parked:
        return (
            f"no reversal data is held for {txn_id} (its shift is closed, or it was"
            " completed): reverse it at the host",
            row.state,
            [],
        )
    note = json.dumps({"actor": actor, "reason": reason}, sort_keys=True)
    ops: list[WriteOp] = [
        *journal.update_ops(txn_id, state="reversal_pending"),
        RetrySaf(parked[0].id, f"operator reversal by {actor}", time.time()),
        AddEvent(Event(txn_id, time.time(), "operator_reversal", note)),
    ]
    return None, row.state, ops


def run(args: argparse.Namespace) -> int:
    from forecourt.switch.journal_cli import _target

    try:
        target = _target(args)
        actor = getpass.getuser()
        before = trio.run(reverse, target, args.txn_id, args.reason, actor)
    except (NothingToReverse, JournalError) as exc:
        print(f"forecourt journal reverse: {exc}", file=sys.stderr)
        return 2
    print(f"reversal of {args.txn_id} ({before}) queued by {actor}; SAF delivers it")
    return 0
