"""PAN and track 2 masking: what logs, CLI output and journal rows may show of a card.

PCI DSS allows at most the first 6 and last 4 digits of a PAN on display; track
data is never shown beyond its (masked) PAN.
"""

from __future__ import annotations

__all__ = ["mask_pan", "mask_track2"]


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, "*" between (PCI DSS display rule).

    A PAN too short to keep 10 digits visible and still hide some shows only
    its last 4 (and nothing at 4 digits or fewer).
    """
    n = len(pan)
    if n > 10:
        return pan[:6] + "*" * (n - 10) + pan[-4:]
    if n > 4:
        return "*" * (n - 4) + pan[-4:]
    return "*" * n


def mask_track2(track: str) -> str:
    """The PAN of track 2 data masked, everything after the separator starred."""
    for separator in ("=", "D", "d"):
        pan, sep, rest = track.partition(separator)
        if sep:
            return mask_pan(pan) + sep + "*" * len(rest)
    return mask_pan(track)
