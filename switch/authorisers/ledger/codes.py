"""The ledger's outcomes as ISO 8583:1993 action codes (docs/action-codes.md).

The ledger answers in the 1993 family; a 1987 terminal hears the paired response
code (`to_1987`: 104/62, 118/56, 119/57, 121/61, 208/41, 116/51, 002/10).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ACTION_CODES", "action_code"]

ACTION_CODES: Mapping[str, str] = {
    "approved": "000",
    "partial": "002",  # approved for a partial amount: field 4 approved, 54 the amount due
    "insufficient_funds": "116",
    "card_blocked": "104",  # restricted card
    "card_lost": "208",  # lost card, pick up
    "unknown_card": "118",  # no card record
    "limit_exceeded": "121",  # exceeds amount limit (amount or volume, any period)
    "product_restricted": "119",  # transaction not permitted to cardholder
    "declined": "100",  # do not honour (another currency than the account's)
    "odometer": "100",  # odometer backwards, where configured to decline
    "reversed_before": "100",  # the request's reversal came first
    "not_supported": "115",  # requested function not supported (a refund)
    "original_not_found": "914",
}


def action_code(code: str) -> str:
    return ACTION_CODES.get(code, "909")
