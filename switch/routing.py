"""PAN-range routing: which acquirer link a card goes to.

Built once from the configuration, then asked once per transaction, so it is a
plain class with sorted integer intervals per prefix length: the longest
matching prefix wins ("4" → bank acquirer, "7077" → fleet card acquirer), and
ranges of equal length may not overlap with different targets (that would be
ambiguous, so the configuration is refused). The same match, over the routes'
tenders, gives a card's tender (fleet, consumer or bank) for split tender.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

# Card brands by IIN range, for `card_types = [...]` in a route. Public IIN ranges,
# enough to route by brand; fleet and private-label cards are routed by prefixes.
CARD_TYPES: dict[str, tuple[str, ...]] = {
    "visa": ("4",),
    "mastercard": ("51-55", "2221-2720"),
    "maestro": ("50", "56-58", "6759", "676770", "676774"),
    "amex": ("34", "37"),
    "discover": ("6011", "644-649", "65"),
    "diners": ("300-305", "36", "38-39"),
    "jcb": ("3528-3589",),
    "unionpay": ("62",),
}


class RoutingError(ValueError):
    """A bad prefix range or an ambiguous routing table."""


class NoRoute(LookupError):
    """No route matches the card and there is no default route."""


class Router:
    """Longest-prefix match of a PAN over digit ranges (e.g. ``"2221-2720"``)."""

    __slots__ = ("_codes", "_default", "_tables", "_tenders")

    def __init__(
        self,
        routes: Iterable[tuple[Sequence[str], str]],
        default: str | None = None,
        *,
        targets: str = "acquirers",
        tenders: Iterable[tuple[Sequence[str], str]] = (),
        payment_codes: Iterable[tuple[Sequence[str], str]] = (),
    ) -> None:
        by_length: dict[int, list[tuple[int, int, str]]] = {}
        for prefixes, link in routes:
            for spec in prefixes:
                lo, hi, length = self.parse_range(spec)
                by_length.setdefault(length, []).append((lo, hi, link))
        tables: list[tuple[int, list[int], list[int], list[str]]] = []
        for length in sorted(by_length, reverse=True):
            ranges = sorted(by_length[length])
            merged: list[tuple[int, int, str]] = []
            for lo, hi, link in ranges:
                if merged and lo <= merged[-1][1]:
                    plo, phi, plink = merged[-1]
                    if plink != link:
                        a, b = _fmt(plo, phi, length), _fmt(lo, hi, length)
                        raise RoutingError(
                            f"prefix ranges overlap with different {targets}: "
                            f"{a} ({plink}) and {b} ({link})"
                        )
                    merged[-1] = (plo, max(phi, hi), link)
                else:
                    merged.append((lo, hi, link))
            tables.append(
                (length, [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged])
            )
        self._tables = tables
        self._default = default
        tender_routes = list(tenders)
        self._tenders = TenderMap(tender_routes) if tender_routes else None
        # wallet payment codes route over their own table (their prefixes overlap card
        # ranges), and never to the default route: a code no wallet takes has no route
        codes = [(p, link) for p, link in payment_codes if p]
        self._codes = Router(codes) if codes else None

    @staticmethod
    def parse_range(spec: str) -> tuple[int, int, int]:
        """``"51-55"`` → (51, 55, 2); ``"4"`` → (4, 4, 1)."""
        lo_s, sep, hi_s = spec.partition("-")
        if not sep:
            hi_s = lo_s
        lo_s, hi_s = lo_s.strip(), hi_s.strip()
        if not (lo_s.isdigit() and hi_s.isdigit() and lo_s.isascii() and hi_s.isascii()):
            raise RoutingError(f"{spec!r}: a prefix is digits, or two of them joined by '-'")
        if len(lo_s) != len(hi_s):
            raise RoutingError(f"{spec!r}: both ends of a range must have the same length")
        if not 1 <= len(lo_s) <= 11:
            raise RoutingError(f"{spec!r}: a prefix is 1 to 11 digits")
        lo, hi = int(lo_s), int(hi_s)
        if lo > hi:
            raise RoutingError(f"{spec!r}: range start is after its end")
        return lo, hi, len(lo_s)

    @property
    def default(self) -> str | None:
        return self._default

    def route_payment_code(self, code: str) -> str:
        """The wallet provider for this payment code; raises NoRoute if none takes it."""
        if self._codes is None:
            raise NoRoute("no route takes wallet payment codes")
        return self._codes.route(code)

    def route(self, pan: str) -> str:
        """The acquirer link name for this PAN; raises NoRoute if nothing matches."""
        n = len(pan)
        for length, los, his, links in self._tables:
            if n < length:
                continue
            head = pan[:length]
            if not head.isdigit():
                continue
            key = int(head)
            i = bisect.bisect_right(los, key) - 1
            if i >= 0 and key <= his[i]:
                return links[i]
        if self._default is None:
            raise NoRoute("no route for this card and no default route")
        return self._default

    def tender(self, pan: str) -> str:
        """The card's tender (``[[routes]] tender``): fleet, consumer or bank."""
        return DEFAULT_TENDER if self._tenders is None else self._tenders.tender(pan)


TENDERS = ("fleet", "consumer", "bank")  # the order a split sale's legs are paid in
DEFAULT_TENDER = "bank"


class TenderMap:
    """The tender of a card (fleet, consumer or bank), by the longest matching route
    prefix like the acquirer; a card no route names is a bank card. Apart from the
    `Router` because two routes may give different tenders to one acquirer."""

    __slots__ = ("_router",)

    def __init__(self, routes: Iterable[tuple[Sequence[str], str]]) -> None:
        self._router = Router(routes, DEFAULT_TENDER, targets="tenders")

    def tender(self, pan: str) -> str:
        return self._router.route(pan)


def _fmt(lo: int, hi: int, length: int) -> str:
    a, b = str(lo).zfill(length), str(hi).zfill(length)
    return a if a == b else f"{a}-{b}"
