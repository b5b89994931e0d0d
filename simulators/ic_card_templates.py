"""The IC fuel card messages a pump terminal sends (docs/terminal-interfaces.md).

`ic_card_check` (1604/680), `grey_lock` (1624/681), `grey_result` (1624/682) and
`grey_unlock` (1604/683), IFSF only. A grey-lock and a result carry ATC 1 (48-50),
pump 1 nozzle 1 (48-52) and the TAC the simulated card computes for them (48-51).
The simulated card's TAC is a TEST DOUBLE of a real card's: a retail MAC under
the published test key over the documented TAC input, the same the switch's
`tac_check = "test"` verifies. A script step that changes the ATC, amount or
terminal gives the TAC for them (`forecourt.simulators.ic_card_templates.simulated_card_tac`).
"""

from __future__ import annotations

import time

from forecourt.codecs.field48 import encode_field48
from forecourt.codecs.message import Message
from forecourt.keys.mac import retail_mac

__all__ = ["IC_CARD_TEMPLATES", "TEST_CARD_TAC_KEY", "ic_card_request", "simulated_card_tac"]

IC_CARD_TEMPLATES = ("ic_card_check", "grey_lock", "grey_result", "grey_unlock")
_FUNCTION = {"ic_card_check": "680", "grey_lock": "681", "grey_result": "682", "grey_unlock": "683"}
_MTI = {"ic_card_check": "1604", "grey_lock": "1624", "grey_result": "1624", "grey_unlock": "1604"}
# The published test key of the simulated cards: never an issuer's key.
TEST_CARD_TAC_KEY = bytes.fromhex("11223344556677888877665544332211")
DEFAULT_ATC = 1


def simulated_card_tac(pan: str, atc: int, amount: int, terminal_id: str) -> bytes:
    """The simulated card's TAC: 4 bytes of a retail MAC over PAN, ATC n5, amount n12
    and terminal id an8 (ASCII)."""
    data = f"{pan}{atc:05d}{amount:012d}{terminal_id:<8.8}".encode("ascii")
    return retail_mac(TEST_CARD_TAC_KEY, data)[:4]


def ic_card_request(
    template: str,
    *,
    terminal_id: str,
    merchant_id: str,
    pan: str,
    amount: int,
    currency: str,
    stan: str,
    now: float,
) -> Message:
    """The request `template`; the caller checked the terminal speaks IFSF (1993)."""
    gm = time.gmtime(now)
    fields = {
        "2": pan,
        "7": time.strftime("%m%d%H%M%S", gm),
        "11": stan,
        "12": time.strftime("%y%m%d%H%M%S", gm),
        "24": _FUNCTION[template],
        "41": terminal_id,
        "42": merchant_id,
    }
    if template in ("grey_lock", "grey_result"):
        tac = simulated_card_tac(pan, DEFAULT_ATC, amount, terminal_id)
        fields["4"] = f"{amount:012d}"
        fields["49"] = currency
        fields["48"] = encode_field48({50: f"{DEFAULT_ATC:05d}", 51: tac, 52: "0101"})
    return Message(_MTI[template], fields)
