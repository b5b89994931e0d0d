"""IFSF field 48 sub-element 8, customer data: what the pump prompted the driver for.

Fleet cards prompt for a vehicle, a driver and the odometer. The sub-element
(`an LLL..250`) holds entries, each ended by a backslash like the sub-fields of
field 63: a one-character type, then the value. Types: `1` driver id (an..20),
`2` vehicle registration (an..20), `3` odometer in whole kilometres (n..8).
Unknown types are skipped (a terminal may prompt for more than the switch reads);
this is forecourt's reading, written down in docs/codecs.md.
"""

from __future__ import annotations

import attrs

from .errors import DecodeError, EncodeError
from .field48 import decode_field48, encode_field48

__all__ = ["CUSTOMER_DATA", "CustomerData", "customer_data_of"]

CUSTOMER_DATA = 8  # the sub-element of IFSF field 48
_DRIVER, _VEHICLE, _ODOMETER = "1", "2", "3"
_SEPARATOR = "\\"
_MAX_TEXT = 20
_MAX_ODOMETER_DIGITS = 8


@attrs.frozen
class CustomerData:
    """The prompted data of one request; None where the driver was not asked."""

    driver: str | None = None
    vehicle: str | None = None
    odometer: int | None = None

    def encode(self) -> str:
        parts: list[str] = []
        for kind, text in ((_DRIVER, self.driver), (_VEHICLE, self.vehicle)):
            if text is not None:
                if not (0 < len(text) <= _MAX_TEXT) or _SEPARATOR in text:
                    raise EncodeError("48", "driver and vehicle are 1..20 characters, no '\\'")
                parts.append(kind + text)
        if self.odometer is not None:
            if not 0 <= self.odometer < 10**_MAX_ODOMETER_DIGITS:
                raise EncodeError("48", "odometer is 0..99999999 km")
            parts.append(_ODOMETER + str(self.odometer))
        return "".join(p + _SEPARATOR for p in parts)

    @classmethod
    def decode(cls, value: str) -> CustomerData:
        if value and not value.endswith(_SEPARATOR):
            raise DecodeError("48", "customer data does not end with a separator")
        found: dict[str, str] = {}
        for entry in value[:-1].split(_SEPARATOR) if value else ():
            if not entry:
                raise DecodeError("48", "empty customer data entry")
            found.setdefault(entry[0], entry[1:])
        odometer = found.get(_ODOMETER)
        if odometer is not None and not (
            odometer.isascii() and odometer.isdigit() and len(odometer) <= _MAX_ODOMETER_DIGITS
        ):
            raise DecodeError("48", "odometer is not n..8")
        for kind in (_DRIVER, _VEHICLE):
            text = found.get(kind)
            if text is not None and not 0 < len(text) <= _MAX_TEXT:
                raise DecodeError("48", "driver or vehicle is not an..20")
        return cls(
            found.get(_DRIVER),
            found.get(_VEHICLE),
            int(odometer) if odometer is not None else None,
        )

    def field48(self) -> str:
        """Field 48 holding only this customer data (upper-case hex, for Message.fields)."""
        return encode_field48({CUSTOMER_DATA: self.encode()})


def customer_data_of(field48: str | None) -> CustomerData:
    """The customer data of an `ifsf` field 48 value (empty when absent); DecodeError
    when field 48 or the sub-element is malformed."""
    if not field48:
        return CustomerData()
    value = decode_field48(field48).get(CUSTOMER_DATA)
    if value is None:
        return CustomerData()
    if not isinstance(value, str):
        raise DecodeError("48", "customer data is text")
    return CustomerData.decode(value)
