"""`[terminal.dukpt]` of a certification script: the PIN pad's initial key and identity
(simulators/dukpt_keys.py uses them; docs/simulators.md)."""

from __future__ import annotations

import attrs

from ._toml import Table

__all__ = ["DukptSettings", "parse_dukpt"]


@attrs.frozen(repr=False)
class DukptSettings:
    scheme: str
    initial_key: bytes
    initial_key_id: bytes
    ksn_field: str = "48.29"
    counter_start: int = 0

    def __repr__(self) -> str:
        return f"DukptSettings({self.scheme}, {self.initial_key_id.hex().upper()})"


def parse_dukpt(t: Table) -> DukptSettings | None:
    """`[terminal.dukpt]`, or None when the script's terminal is not a DUKPT one."""
    if "dukpt" not in t:
        t.raw("dukpt")
        return None
    d = t.table("dukpt")
    scheme = d.text("scheme", choices=("aes", "tdes"))
    try:
        key = bytes.fromhex(d.text("initial_key"))
        ident = bytes.fromhex(d.text("initial_key_id"))
    except ValueError:
        raise d.error("initial_key", "initial_key and initial_key_id must be hex") from None
    if (len(key) != 16 and scheme == "tdes") or len(key) not in (16, 24, 32):
        raise d.error("initial_key", "must be 16 bytes (TDES) or 16/24/32 bytes (AES)")
    if len(ident) != (8 if scheme == "aes" else 10):
        raise d.error("initial_key_id", "must be 8 bytes (AES) or the 10-byte initial KSN (TDES)")
    settings = DukptSettings(
        scheme,
        key,
        ident,
        d.text("ksn_field", "48.29", ("48.29", "53")),
        d.integer("counter_start", 0, low=0),
    )
    d.done()
    return settings
