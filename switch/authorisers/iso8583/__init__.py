"""The ISO 8583 acquirer link: a pool (`pool`) of host connections (`connection`)."""

from __future__ import annotations

from .connection import AcquirerConnection, AwaitedAnswers, MacKey, ZoneMac
from .pool import KIND, Iso8583Authoriser, LinkSettings, build_iso8583, link_settings, match_key

__all__ = [
    "KIND",
    "AcquirerConnection",
    "AwaitedAnswers",
    "Iso8583Authoriser",
    "LinkSettings",
    "MacKey",
    "ZoneMac",
    "build_iso8583",
    "link_settings",
    "match_key",
]
