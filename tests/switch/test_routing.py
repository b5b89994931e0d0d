"""Routing: longest prefix over digit ranges, default route, refusal of ambiguity."""

from __future__ import annotations

import pytest
from forecourt.switch.routing import CARD_TYPES, NoRoute, Router, RoutingError


def test_longest_prefix_wins() -> None:
    r = Router([(["4"], "visa-acq"), (["4571"], "dankort"), (["51-55", "2221-2720"], "mc")])
    assert r.route("4111111111111111") == "visa-acq"
    assert r.route("4571000000000001") == "dankort"
    assert r.route("5500000000000004") == "mc"
    assert r.route("5100000000000000") == "mc"
    assert r.route("2221000000000009") == "mc"
    assert r.route("2720990000000000") == "mc"
    with pytest.raises(NoRoute):
        r.route("2721000000000000")
    with pytest.raises(NoRoute):
        r.route("5600000000000000")


def test_default_route_and_short_or_odd_pans() -> None:
    r = Router([(["700000-700999"], "fleet")], default="bank")
    assert r.route("7005551234567890") == "fleet"
    assert r.route("7010001234567890") == "bank"
    assert r.route("700") == "bank"
    assert r.route("") == "bank"
    assert r.route("70x0001234") == "bank"
    assert r.default == "bank"


def test_ambiguous_ranges_are_refused_but_same_target_merges() -> None:
    with pytest.raises(RoutingError, match="overlap"):
        Router([(["51-53"], "a"), (["53-55"], "b")])
    r = Router([(["51-53"], "a"), (["53-55"], "a")])
    assert r.route("5555") == "a"


@pytest.mark.parametrize("spec", ["", "4-", "x1", "55-51", "5-55", "123456789012"])
def test_bad_range(spec: str) -> None:
    with pytest.raises(RoutingError):
        Router.parse_range(spec)


def test_card_types_do_not_overlap() -> None:
    Router([(prefixes, name) for name, prefixes in CARD_TYPES.items()])


def test_no_pan_in_no_route_message() -> None:
    with pytest.raises(NoRoute) as info:
        Router([]).route("4111111111111111")
    assert "4111" not in str(info.value)
