"""Whether a purchase qualifies for stand-in, its acquirer being unavailable.

The decision alone, read from the request and `[stand_in]`: a purchase (processing
code 00) in the configured currency, to an ISO 8583 acquirer, whose card product
has a floor limit for the way the cardholder was verified, at or above its amount.
What the switch then journals and queues is in `switch/flows/stand_in.py`.
"""

from __future__ import annotations

import enum

import attrs
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.switch.config_stand_in import StandInConfig, Verification, product_of
from forecourt.switch.routing import Router

__all__ = ["StandInCheck", "StandInPolicy", "Unanswered", "Verification", "verification_of"]


class Unanswered(enum.Enum):
    """Why the acquirer gave no answer; the value is the advice's reason (1993 field 25)."""

    NO_LINK = "1003"  # card issuer unavailable: nothing left the switch
    TIMEOUT = "1002"  # card issuer timed out on the original request: it may have reached it


def verification_of(request: Message, family: Family) -> Verification:
    """How the cardholder was verified.

    Offline: 1993 field 22 says the PIN (position 8 = 1) was verified by the chip
    (position 9 = 1). PIN: an online PIN block in field 52. Anything else (signature,
    no verification, a 1987 entry mode, which cannot say) is signature-or-none.
    """
    pos = request.fields.get("22", "")
    if family is Family.ISO1993 and len(pos) >= 9 and pos[7] == "1" and pos[8] == "1":
        return Verification.OFFLINE
    if request.fields.get("52"):
        return Verification.PIN
    return Verification.SIGNATURE


@attrs.frozen
class StandInCheck:
    """The outcome of the check; `refusal` None means the switch stands in."""

    refusal: str | None
    product: str | None = None
    method: Verification | None = None
    floor: int = 0


class StandInPolicy:
    """`[stand_in]` made ready to ask: the products' prefix table built once."""

    def __init__(self, config: StandInConfig) -> None:
        self.config = config
        self._products: Router = config.product_router()

    def check(self, request: Message, family: Family, kind: str, pan: str) -> StandInCheck:
        config = self.config
        if not config.enabled:
            return StandInCheck("off")
        if kind != "iso8583":
            return StandInCheck("not an ISO 8583 acquirer")
        if request.fields.get("3", "000000")[:2] != "00":
            return StandInCheck("not a purchase")
        if request.fields.get("49") != config.currency:
            return StandInCheck("currency")
        amount = request.fields.get("4", "")
        if not (amount.isascii() and amount.isdigit()):
            return StandInCheck("no amount")
        product = product_of(self._products, pan)
        limits = config.limits_of(product) if product is not None else None
        if product is None or limits is None:
            return StandInCheck("no floor limit for the card product")
        method = verification_of(request, family)
        floor = limits.floor(method)
        if floor == 0 or int(amount) > floor:
            return StandInCheck("over the floor limit", product, method, floor)
        return StandInCheck(None, product, method, floor)
