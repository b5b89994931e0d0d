"""Checking a card's TAC (transaction authorisation cryptogram): a pluggable check.

The TAC is a MAC the card computes under the card issuer's key over the debit it
makes. Verifying it needs that key, which only the issuer (or its HSM) holds, so
forecourt ships no real check: `none` records the TAC as it came (the issuer checks
it when the records are cleared), and `test` is a TEST DOUBLE standing in for the
issuer's keys, for the tests and the demo only: a retail MAC (ISO 9797-1 algorithm
3) under a published test key over the documented TAC input (docs/terminal-interfaces.md,
"TAC"). An issuer's check is one class with `verify`, named in `TAC_CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from forecourt.keys.mac import retail_mac

__all__ = [
    "TAC_CHECKS",
    "TEST_TAC_KEY",
    "NoTacCheck",
    "TacCheck",
    "TacCheckTestDouble",
    "tac_input",
]

# A published test key (double-length DES): never an issuer's key.
TEST_TAC_KEY = bytes.fromhex("11223344556677888877665544332211")


def tac_input(pan: str, atc: int, amount: int, terminal_id: str) -> bytes:
    """What the card MACs: PAN digits, ATC n5, amount n12, terminal id an8 (ASCII)."""
    return f"{pan}{atc:05d}{amount:012d}{terminal_id:<8.8}".encode("ascii")


class TacCheck(Protocol):
    """Whether a TAC is the card's own for this debit."""

    @property
    def name(self) -> str: ...

    def verify(self, pan: str, atc: int, amount: int, terminal_id: str, tac: bytes) -> bool: ...


class NoTacCheck:
    """Records the TAC as it came; the card issuer verifies it (the default)."""

    name = "none"

    def verify(self, pan: str, atc: int, amount: int, terminal_id: str, tac: bytes) -> bool:
        return True


class TacCheckTestDouble:
    """TEST DOUBLE for the issuer: the first 4 bytes of a retail MAC under
    `TEST_TAC_KEY`. Never for production: the key is in the source."""

    name = "test"

    def __init__(self, key: bytes = TEST_TAC_KEY) -> None:
        self._key = key

    def tac(self, pan: str, atc: int, amount: int, terminal_id: str) -> bytes:
        return retail_mac(self._key, tac_input(pan, atc, amount, terminal_id))[:4]

    def verify(self, pan: str, atc: int, amount: int, terminal_id: str, tac: bytes) -> bool:
        return self.tac(pan, atc, amount, terminal_id) == tac


TAC_CHECKS: Mapping[str, Callable[[], TacCheck]] = {"none": NoTacCheck, "test": TacCheckTestDouble}
