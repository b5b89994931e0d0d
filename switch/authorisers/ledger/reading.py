"""What a request tells the ledger: its reference, how the cardholder was verified,
the products and volume of field 63, and the prompted data of field 48.

The verification level (docs/accounts.md) comes from the 1993 POS data code (field
22, an12): position 8 is the cardholder authentication method, position 9 the
authentication entity. PIN verified needs both a PIN method (1) and an entity that
verified it, the ICC (1) or the terminal (2): the ledger holds no PIN verification
data, so a PIN sent online (entity 3, the authorising agent) is not verified by
anyone here and counts as signature or none. An advice that completes no
pre-authorisation was approved by the terminal itself: offline.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from forecourt.codecs.customer_data import customer_data_of
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.fields import OriginalData
from forecourt.codecs.message import Message
from forecourt.codecs.product import ProductData
from forecourt.switch.ledger import Prompted, SaleFacts

__all__ = ["original_of", "reference_of", "sale_facts", "verification_level"]

_PIN_METHOD = "1"
_VERIFYING_ENTITIES = ("1", "2")  # ICC, card acceptor device
_VOLUME_UNITS = {"L": Decimal(1000)}  # millilitres per unit; other units carry no volume


def reference_of(message: Message) -> str:
    """How the ledger knows a request: terminal id, STAN and local date-time, as a
    reversal's field 56 names it."""
    fields = message.fields
    return f"{fields.get('41', '').strip()}|{fields.get('11', '')}|{fields.get('12', '')}"


def original_of(message: Message) -> str | None:
    """The reference of the original a reversal or advice names in field 56."""
    value = message.fields.get("56")
    if value is None:
        return None
    try:
        data = OriginalData.decode(value)
    except DecodeError:
        return None
    return f"{message.fields.get('41', '').strip()}|{data.stan}|{data.local_datetime}"


def verification_level(message: Message, offline: bool = False) -> str:
    if offline:
        return "offline"
    code = message.fields.get("22", "")
    if len(code) >= 9 and code[7] == _PIN_METHOD and code[8] in _VERIFYING_ENTITIES:
        return "pin"
    return "signature"


def sale_facts(message: Message, offline: bool = False) -> SaleFacts:
    """The facts of a request; DecodeError when field 48 or 63 is malformed."""
    products: tuple[str, ...] = ()
    volume = Decimal(0)
    if "63" in message.fields:
        data = ProductData.decode(message.fields["63"])
        products = tuple(item.code for item in data.items)
        for item in data.items:
            volume += item.quantity * _VOLUME_UNITS.get(item.unit.upper(), Decimal(0))
    customer = customer_data_of(message.fields.get("48"))
    return SaleFacts(
        level=verification_level(message, offline),
        products=products,
        volume_ml=int(volume.to_integral_value(ROUND_HALF_UP)),
        prompted=Prompted(customer.driver, customer.vehicle, customer.odometer),
    )
