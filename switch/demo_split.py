"""The demo's split-tender set-up: which cards are which tender, and the terminal
that runs conf/cert/06-split.toml.

The fleet and consumer routes go to the demo's ledger (switch/demo_ledger.py seeds
their cards); the tenders make the switch order a sale's legs.
"""

from __future__ import annotations

from typing import Any

SPLIT_TERMINALS = ("T0000006",)


def demo_routes(ledger: str) -> list[dict[str, Any]]:
    """7077 and 7078 fleet, 7080 consumer; every other card takes the default route
    and is a bank card."""
    return [
        {"name": "fleet", "prefixes": ["7077", "7078"], "acquirer": ledger, "tender": "fleet"},
        {"name": "consumer", "prefixes": ["7080"], "acquirer": ledger, "tender": "consumer"},
    ]
