"""Field 63, product data: what was sold (fuel grade or shop item, quantity, price, amount).

Sub-fields each ended by a backslash: service level, number of items (n2), then
per item product code, unit of measure, quantity, unit price, amount (minor
units), tax code, additional product code. The widths are forecourt's reading
of IFSF product data (docs/codecs.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

import attrs

from ._digits import check_digits
from .errors import DecodeError, EncodeError

__all__ = ["ProductData", "ProductItem"]

_QUANTITY = re.compile(r"\d{1,9}(\.\d{1,4})?")
_CODE = re.compile(r"[0-9A-Za-z]{1,6}")
_UNIT = re.compile(r"[A-Za-z]{1,3}")
_OPTIONAL_CODE = re.compile(r"[0-9A-Za-z]{0,6}")
_SEPARATOR = "\\"
_ITEM_PARTS = 7


def _decimal_text(value: Decimal, field: str, what: str) -> str:
    text = format(value, "f")
    if not _QUANTITY.fullmatch(text):
        raise EncodeError(field, f"{what} must be 0..999999999 with at most 4 decimals")
    return text


@attrs.frozen
class ProductItem:
    """One product of a sale: fuel grade or shop item.

    quantity and unit_price are decimals as the pump reports them ("42.17"
    litres at "1.659"); amount is in minor units of the transaction currency.
    """

    code: str
    unit: str  # "L" litre, "G" gallon, "KG", "U" unit/piece
    quantity: Decimal
    unit_price: Decimal
    amount: int
    tax_code: str = ""
    additional_code: str = ""

    def _parts(self) -> list[str]:
        if not _CODE.fullmatch(self.code):
            raise EncodeError("63", "product code must be 1..6 letters or digits")
        if not _UNIT.fullmatch(self.unit):
            raise EncodeError("63", "unit of measure must be 1..3 letters")
        if not 0 <= self.amount < 10**12:
            raise EncodeError("63", "item amount out of range for n..12")
        for extra in (self.tax_code, self.additional_code):
            if not _OPTIONAL_CODE.fullmatch(extra):
                raise EncodeError("63", "tax and additional codes are 0..6 letters or digits")
        return [
            self.code,
            self.unit,
            _decimal_text(self.quantity, "63", "quantity"),
            _decimal_text(self.unit_price, "63", "unit price"),
            str(self.amount),
            self.tax_code,
            self.additional_code,
        ]


def _item_tuple(items: Iterable[ProductItem]) -> tuple[ProductItem, ...]:
    return tuple(items)


@attrs.frozen
class ProductData:
    """Field 63: service level and the products sold (at most 99 items)."""

    service_level: str  # "S" self-serve, "F" full serve, "N" none (shop)
    items: tuple[ProductItem, ...] = attrs.field(converter=_item_tuple)

    @property
    def total(self) -> int:
        """Sum of the item amounts, to check against field 4."""
        return sum(item.amount for item in self.items)

    def encode(self) -> str:
        if len(self.service_level) != 1 or not self.service_level.isalpha():
            raise EncodeError("63", "service level must be one letter")
        if not 1 <= len(self.items) <= 99:
            raise EncodeError("63", "product data holds 1..99 items")
        parts = [self.service_level, f"{len(self.items):02d}"]
        for item in self.items:
            parts.extend(item._parts())
        text = _SEPARATOR.join(parts) + _SEPARATOR
        if len(text) > 999:
            raise EncodeError("63", "product data longer than 999 characters")
        return text

    @classmethod
    def decode(cls, value: str) -> ProductData:
        if not value.endswith(_SEPARATOR):
            raise DecodeError("63", "product data does not end with a separator")
        parts = value[:-1].split(_SEPARATOR)
        if len(parts) < 2 or len(parts[0]) != 1 or not parts[0].isalpha():
            raise DecodeError("63", "service level missing")
        count_text = check_digits(parts[1], "63", "number of items", 2)
        count = int(count_text)
        if count == 0 or len(parts) != 2 + count * _ITEM_PARTS:
            raise DecodeError("63", "number of items does not match the data")
        items = []
        for i in range(count):
            code, unit, quantity, price, amount, tax, extra = parts[
                2 + i * _ITEM_PARTS : 2 + (i + 1) * _ITEM_PARTS
            ]
            if not (_CODE.fullmatch(code) and _UNIT.fullmatch(unit)):
                raise DecodeError("63", f"item {i + 1}: bad product code or unit")
            if not (_QUANTITY.fullmatch(quantity) and _QUANTITY.fullmatch(price)):
                raise DecodeError("63", f"item {i + 1}: bad quantity or unit price")
            if not (amount.isascii() and amount.isdigit() and len(amount) <= 12):
                raise DecodeError("63", f"item {i + 1}: bad amount")
            if not (_OPTIONAL_CODE.fullmatch(tax) and _OPTIONAL_CODE.fullmatch(extra)):
                raise DecodeError("63", f"item {i + 1}: bad tax or additional code")
            items.append(
                ProductItem(code, unit, Decimal(quantity), Decimal(price), int(amount), tax, extra)
            )
        return cls(parts[0], tuple(items))
