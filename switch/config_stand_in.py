"""``[stand_in]``: when the switch may approve a purchase itself, its acquirer being down.

Off by default. A floor limit is set per card product and per verification method; a
card product is a ``[[routes]]`` entry's ``name`` (so a brand, a BIN range or a fleet
product is whatever the routes make of it), and the card's product is the named route
its PAN matches by longest prefix. Only ISO 8583 acquirers stand in (docs/switch.md).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping

import attrs
from forecourt.switch.config_acquirers import RouteConfig
from forecourt.switch.config_reading import ConfigError, ConfigTable, check_unique
from forecourt.switch.routing import NoRoute, Router, RoutingError

__all__ = [
    "FloorLimits",
    "StandInConfig",
    "Verification",
    "read_stand_in",
]

# The floor of any one transaction, in minor units (a sanity bound, not a policy).
_MOST = 10_000_000


class Verification(enum.Enum):
    """How the cardholder was verified, as the request tells it (stand_in.verification)."""

    PIN = "pin"  # an online PIN was entered (field 52): nobody can verify it while the host is down
    SIGNATURE = "signature"  # signature, or no cardholder verification
    OFFLINE = "offline"  # the chip verified the cardholder (offline PIN)


@attrs.frozen
class FloorLimits:
    """One card product's floors, in minor units of ``[stand_in] currency``; 0: never."""

    product: str
    pin: int = 0
    signature: int = 0
    offline: int = 0

    def floor(self, method: Verification) -> int:
        return {
            Verification.PIN: self.pin,
            Verification.SIGNATURE: self.signature,
            Verification.OFFLINE: self.offline,
        }[method]


@attrs.frozen
class StandInConfig:
    enabled: bool = False
    currency: str = "978"  # ISO 4217 numeric; a purchase in another currency never stands in
    limits: tuple[FloorLimits, ...] = ()
    # the named routes' prefixes, for the card's product (built at load)
    products: tuple[tuple[tuple[str, ...], str], ...] = ()

    def product_router(self) -> Router:
        return Router(self.products)

    def limits_of(self, product: str) -> FloorLimits | None:
        return next((x for x in self.limits if x.product == product), None)


def product_of(router: Router, pan: str) -> str | None:
    """The card product (named route) of a PAN, or None when no named route has it."""
    try:
        return router.route(pan)
    except NoRoute:
        return None


def read_stand_in(root: ConfigTable, routes: Collection[RouteConfig]) -> StandInConfig:
    """``[stand_in]``; products must name a route that has a name."""
    t = root.table("stand_in")
    enabled = t.bool_("enabled", False)
    currency = t.str_("currency", "978")
    if not (currency.isascii() and currency.isdigit() and len(currency) == 3):
        raise t.error("currency", "must be an ISO 4217 numeric code, 3 digits (978 = EUR)")
    named: Mapping[str, RouteConfig] = {r.name: r for r in routes if r.name}
    limits = []
    for lt in t.tables("floor_limits"):
        product = lt.str_("product")
        if product not in named:
            known = ", ".join(sorted(named)) or "none: give a [[routes]] entry a name"
            raise lt.error("product", f"no route named {product!r} (named routes: {known})")
        limits.append(
            FloorLimits(
                product=product,
                pin=lt.int_("pin", 0, 0, _MOST),
                signature=lt.int_("signature", 0, 0, _MOST),
                offline=lt.int_("offline", 0, 0, _MOST),
            )
        )
        lt.finish()
    check_unique(t, "stand_in.floor_limits", [x.product for x in limits], "product")
    if enabled and not limits:
        raise t.error("floor_limits", "stand-in is enabled but no [[stand_in.floor_limits]] is set")
    products = tuple((named[x.product].all_prefixes(), x.product) for x in limits)
    try:
        Router(products)
    except RoutingError as exc:
        raise ConfigError("stand_in.floor_limits", str(exc), root.source) from None
    t.finish()
    return StandInConfig(enabled, currency, tuple(limits), products)
