"""The demo's (and the certification scripts') ledger accounts: conf/demo/ledger.toml.

Seeding is repeatable: an account that exists is brought back to its seeded
balance by an adjustment, a card that exists gets its seeded status, products and
limits again, so a kept demo data directory certifies like a fresh one (a daily
limit counts the day's earlier runs, though: use a fresh directory for those).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from forecourt.codecs.masking import mask_pan
from forecourt.keys.lmk import Lmk
from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal import Journal, open_journal
from forecourt.switch.ledger import (
    LedgerAddCard,
    LedgerBalances,
    LedgerCardStatus,
    LedgerFund,
    LedgerOpenAccount,
    LedgerSetLimits,
    Limits,
    card_reference,
)

__all__ = [
    "LEDGER_CERT_TERMINALS",
    "SeedAccount",
    "SeedCard",
    "demo_ledger_entries",
    "load_seed",
    "seed_demo_ledger",
    "seed_ledger",
]

DEMO_LEDGER = Path(__file__).resolve().parents[1] / "conf" / "demo" / "ledger.toml"
_OPERATOR = "demo"


@attrs.frozen
class SeedCard:
    pan: str = attrs.field(repr=False)
    binding: str = "none"
    bound_to: str = ""
    status: str = "active"
    products: tuple[str, ...] = ()
    limits: Mapping[str, Limits] = attrs.field(factory=dict)  # level -> limits


@attrs.frozen
class SeedAccount:
    account_id: str
    kind: str
    balance: int
    cards: tuple[SeedCard, ...]
    name: str = ""
    currency: str = "978"


def _limits(table: Mapping[str, Any]) -> Limits:
    return Limits(**{k: int(v) for k, v in table.items()})


def load_seed(path: Path = DEMO_LEDGER) -> tuple[SeedAccount, ...]:
    """The accounts of a seed file (format: conf/demo/ledger.toml)."""
    data = tomllib.loads(path.read_text())
    accounts = []
    for a in data.get("accounts", []):
        cards = tuple(
            SeedCard(
                pan=str(c["pan"]),
                binding=str(c.get("binding", "none")),
                bound_to=str(c.get("bound_to", "")),
                status=str(c.get("status", "active")),
                products=tuple(str(p) for p in c.get("products", ())),
                limits={level: _limits(t) for level, t in c.get("limits", {}).items()},
            )
            for c in a.get("cards", [])
        )
        accounts.append(
            SeedAccount(
                account_id=str(a["id"]),
                kind=str(a["kind"]),
                balance=int(a["balance"]),
                cards=cards,
                name=str(a.get("name", "")),
                currency=str(a.get("currency", "978")),
            )
        )
    return tuple(accounts)


async def seed_ledger(
    journal: Journal,
    card_key: bytes,
    accounts: Sequence[SeedAccount],
    at: float,
    operator: str = _OPERATOR,
) -> None:
    """Create (or bring back) every account and card of the seed, audited as `operator`."""
    for account in accounts:
        await journal.write(
            LedgerOpenAccount(
                account.account_id, account.kind, account.name, account.currency, at, operator
            )
        )
        (rows,) = await journal.write(LedgerBalances(account.account_id))
        assert isinstance(rows, list)
        available = int(rows[0][4])
        if available != account.balance:
            kind = "topup" if available == 0 else "adjustment"
            await journal.write(
                LedgerFund(
                    account.account_id,
                    kind,
                    account.balance - available,
                    "demo seed",
                    at,
                    operator,
                )
            )
        for card in account.cards:
            ref = card_reference(card_key, card.pan)
            await journal.write(
                LedgerAddCard(
                    ref,
                    mask_pan(card.pan),
                    account.account_id,
                    card.binding,
                    card.bound_to,
                    card.products,
                    at,
                    operator,
                ),
                LedgerCardStatus(ref, card.status, at, operator),
            )
            for level, limits in card.limits.items():
                await journal.write(
                    LedgerSetLimits(ref, level, limits, card.products, at, operator)
                )


# The demo's ledger acquirer and the card ranges it authorises (the rest go to the
# acquirer simulator), and the certification terminal of conf/cert/05-ledger.toml.
LEDGER = "ledger"
LEDGER_PREFIXES = ("7077", "7078", "7080")
LEDGER_CERT_TERMINALS = ("T0000050",)


def demo_ledger_entries() -> dict[str, Any]:
    """The `acquirers` entry and the `routes` the demo configuration adds."""
    return {
        "acquirer": {"name": LEDGER, "kind": "ledger", "max_in_flight": 500},
        "routes": [{"name": "fleet and consumer", "prefixes": list(LEDGER_PREFIXES),
                    "acquirer": LEDGER}],
    }  # fmt: skip


async def seed_demo_ledger(config: SwitchConfig, lmk: Lmk, path: Path = DEMO_LEDGER) -> None:
    """Seed the demo's journal with conf/demo/ledger.toml before the switch starts."""
    from forecourt.switch.authorisers.ledger import ledger_card_key

    async with open_journal(config) as journal:
        await seed_ledger(journal, ledger_card_key(lmk), load_seed(path), time.time())
