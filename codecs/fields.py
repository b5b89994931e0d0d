"""Typed views of structured data elements, and masking: one import for all of them.

The helpers live in one module per concept and are re-exported here, where the
switch and the simulators import them from:

- `masking`: `mask_pan`, `mask_track2`;
- `original`: fields 56 and 90 (the message a reversal or advice refers to) and
  30 (its amounts): `OriginalData`, `OriginalElements`, `OriginalAmounts`;
- `product`: field 63, `ProductData`, `ProductItem`;
- `field48`: ifsf field 48 sub-elements, `SUBELEMENTS_48`, `decode_field48`,
  `encode_field48`.

Each turns one field's text (as it sits in `Message.fields`) into an attrs value
and back, raising DecodeError / EncodeError that name the field, never quote it.
They are opt-in: `decode` of a message never parses these sub-structures, so a
malformed field 63 costs the switch nothing unless it reads product data.
Layouts in docs/codecs.md.
"""

from __future__ import annotations

from .field48 import SUBELEMENTS_48, decode_field48, encode_field48
from .masking import mask_pan, mask_track2
from .original import OriginalAmounts, OriginalData, OriginalElements
from .product import ProductData, ProductItem

__all__ = [
    "SUBELEMENTS_48",
    "OriginalAmounts",
    "OriginalData",
    "OriginalElements",
    "ProductData",
    "ProductItem",
    "decode_field48",
    "encode_field48",
    "mask_pan",
    "mask_track2",
]
