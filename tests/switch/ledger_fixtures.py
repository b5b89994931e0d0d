"""Shared by the ledger tests: a journal with accounts and cards, on either backend."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from forecourt.codecs.masking import mask_pan
from forecourt.switch.journal import Journal, open_journal
from forecourt.switch.ledger import (
    Decision,
    LedgerAddCard,
    LedgerAuthorise,
    LedgerBalances,
    LedgerFund,
    LedgerOpenAccount,
    SaleFacts,
    card_reference,
)

CARD_KEY = bytes(range(32))
NO_FACTS = SaleFacts()
FLEET_PAN = "7077001111111111"
CONSUMER_PAN = "7080001111111111"


def ref(pan: str) -> str:
    return card_reference(CARD_KEY, pan)


async def open_fleet(
    journal: Journal, account: str, balance: int, *pans: str, products: tuple[str, ...] = ()
) -> None:
    now = time.time()
    await journal.write(LedgerOpenAccount(account, "fleet", "Fleet Ltd", "978", now, "test"))
    if balance:
        await journal.write(LedgerFund(account, "topup", balance, "opening", now, "test"))
    for pan in pans:
        await journal.write(
            LedgerAddCard(
                ref(pan), mask_pan(pan), account, "vehicle", "AB12CDE", products, now, "t"
            )
        )


async def available(journal: Journal, account: str) -> tuple[int, int, int]:
    """(available, held, settled) of an account."""
    (rows,) = await journal.write(LedgerBalances(account))
    assert isinstance(rows, list)
    return int(rows[0][4]), int(rows[0][5]), int(rows[0][6])


async def buy(
    journal: Journal,
    pan: str,
    amount: int,
    reference: str,
    kind: str = "purchase",
    facts: SaleFacts = NO_FACTS,
    expires_at: float | None = None,
) -> Decision:
    (decision,) = await journal.write(
        LedgerAuthorise(reference, ref(pan), kind, amount, "978", facts, time.time(), expires_at)
    )
    assert isinstance(decision, Decision)
    return decision


@asynccontextmanager
async def ledger_journal(target: Path | str) -> AsyncIterator[Journal]:
    async with open_journal(target) as journal:
        yield journal
