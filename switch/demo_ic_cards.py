"""The demo's IC fuel cards: `[ic_cards]` on the demo's ledger with the TAC test
double, the card of conf/demo/ic_cards.toml, and the certification terminals of
conf/cert/09-ic-card.toml (a pump and an indoor terminal)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from forecourt.keys.lmk import Lmk
from forecourt.switch.config import SwitchConfig
from forecourt.switch.demo_ledger import LEDGER, load_seed, seed_ledger
from forecourt.switch.journal import open_journal

__all__ = ["DEMO_IC_CARDS", "IC_CARD_TERMINALS", "ic_cards_section", "seed_demo_ic_cards"]

DEMO_IC_CARDS = Path(__file__).resolve().parents[1] / "conf" / "demo" / "ic_cards.toml"
IC_CARD_TERMINALS = ("T0000090", "T0000091")


def ic_cards_section() -> dict[str, Any]:
    """The demo configuration's `[ic_cards]`: the TAC test double, never for production."""
    return {"enabled": True, "acquirer": LEDGER, "tac_check": "test"}


async def seed_demo_ic_cards(config: SwitchConfig, lmk: Lmk, path: Path = DEMO_IC_CARDS) -> None:
    from forecourt.switch.authorisers.ledger import ledger_card_key

    async with open_journal(config) as journal:
        await seed_ledger(journal, ledger_card_key(lmk), load_seed(path), time.time())
