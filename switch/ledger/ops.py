"""The ledger's journal write operations: each one database transaction's worth.

They go through `Journal.write` like every other operation, so on SQLite the ledger
shares the journal's one writer, and a check and the debit it allows are always in
one transaction (on PostgreSQL under a row lock of the account). The journal's
`apply` hands them to `switch.ledger.apply_ledger`.
"""

from __future__ import annotations

import attrs

from .model import Limits, SaleFacts

__all__ = [
    "LEDGER_OPS",
    "LedgerAddCard",
    "LedgerAuditList",
    "LedgerAuthorise",
    "LedgerBalances",
    "LedgerCardStatus",
    "LedgerCards",
    "LedgerComplete",
    "LedgerExpire",
    "LedgerFund",
    "LedgerInquire",
    "LedgerOp",
    "LedgerOpenAccount",
    "LedgerReverse",
    "LedgerSetLimits",
    "LedgerStatement",
]


@attrs.frozen
class LedgerAuthorise:
    """A purchase (taken at once) or a pre-authorisation (held until completed).

    `reference` names the request as the ledger keeps it (terminal, STAN, local
    date-time); a request seen before gets the same decision again. Result: `Decision`.
    """

    reference: str
    card_ref: str
    kind: str  # purchase | preauth
    amount: int
    currency: str
    facts: SaleFacts
    at: float
    expires_at: float | None = None  # a pre-authorisation's hold is released then
    partial: bool = True  # take what there is when the balance is short
    odometer_declines: bool = False


@attrs.frozen
class LedgerInquire:
    """Balance inquiry. Result: `Decision` (code approved, `available`)."""

    card_ref: str


@attrs.frozen
class LedgerComplete:
    """A completion advice: capture `amount` of the pre-authorisation `original` and
    release the rest of its hold. An advice is never refused: the fuel is in the tank.
    Result: `Settled`."""

    reference: str
    original: str | None
    card_ref: str
    amount: int
    facts: SaleFacts
    at: float


@attrs.frozen
class LedgerReverse:
    """Restore what `original` took or holds, once; `to_amount` (a partial reversal):
    restore down to that amount. Result: `Settled`."""

    original: str
    at: float
    to_amount: int | None = None


@attrs.frozen
class LedgerExpire:
    """Release the holds of pre-authorisations whose window ended before `now`, at
    most `limit` of them. Result: the number released."""

    now: float
    limit: int = 500


@attrs.frozen
class LedgerOpenAccount:
    account_id: str
    kind: str  # fleet | consumer
    name: str
    currency: str
    at: float
    operator: str


@attrs.frozen
class LedgerAddCard:
    card_ref: str
    masked_pan: str
    account_id: str
    binding: str  # vehicle | driver | none
    bound_to: str
    products: tuple[str, ...]
    at: float
    operator: str


@attrs.frozen
class LedgerCardStatus:
    """Block, unblock (active) or mark a card lost; identified by card reference,
    shown by its masked PAN."""

    card_ref: str
    status: str
    at: float
    operator: str


@attrs.frozen
class LedgerFund:
    """A top-up (`amount` > 0) or an adjustment (either sign) of an account."""

    account_id: str
    kind: str  # topup | adjustment
    amount: int
    note: str
    at: float
    operator: str


@attrs.frozen
class LedgerSetLimits:
    """A card's limits at one level, and (when given) its allowed products; takes
    effect at the next request, on every node."""

    card_ref: str
    level: str
    limits: Limits
    products: tuple[str, ...] | None
    at: float
    operator: str


@attrs.frozen
class LedgerStatement:
    """Postings of an account in [since, until). Result: list of posting tuples."""

    account_id: str
    since: float
    until: float


@attrs.frozen
class LedgerBalances:
    """Accounts and their books (one, or all). Result: list of balance tuples."""

    account_id: str | None = None


@attrs.frozen
class LedgerCards:
    """The cards of an account (or all). Result: list of card tuples."""

    account_id: str | None = None


@attrs.frozen
class LedgerAuditList:
    limit: int = 100


LedgerOp = (
    LedgerAuthorise
    | LedgerInquire
    | LedgerComplete
    | LedgerReverse
    | LedgerExpire
    | LedgerOpenAccount
    | LedgerAddCard
    | LedgerCardStatus
    | LedgerFund
    | LedgerSetLimits
    | LedgerStatement
    | LedgerBalances
    | LedgerCards
    | LedgerAuditList
)
LEDGER_OPS: tuple[type, ...] = (
    LedgerAuthorise,
    LedgerInquire,
    LedgerComplete,
    LedgerReverse,
    LedgerExpire,
    LedgerOpenAccount,
    LedgerAddCard,
    LedgerCardStatus,
    LedgerFund,
    LedgerSetLimits,
    LedgerStatement,
    LedgerBalances,
    LedgerCards,
    LedgerAuditList,
)
