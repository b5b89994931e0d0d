"""The demo's split-tender set-up: which cards are which tender, and the terminal
that runs conf/cert/06-split.toml.

Every route goes to the demo's one acquirer simulator (its rules give fleet and
consumer cards their balances); the tenders make the switch order a sale's legs.
"""

from __future__ import annotations

from typing import Any

SPLIT_TERMINALS = ("T0000006",)


def demo_routes(acquirer: str) -> list[dict[str, Any]]:
    """7077 and 7078 fleet, 7080 consumer; every other card takes the default route
    and is a bank card."""
    return [
        {"name": "fleet", "prefixes": ["7077", "7078"], "acquirer": acquirer, "tender": "fleet"},
        {"name": "consumer", "prefixes": ["7080"], "acquirer": acquirer, "tender": "consumer"},
    ]
