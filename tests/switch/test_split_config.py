"""`[[routes]] tender`: the tender of a card, beside (not inside) its acquirer."""

from __future__ import annotations

from typing import Any

import pytest
from forecourt.switch.config import ConfigError, parse_config

from tests.switch.test_config import cfg

ACQUIRERS = [{"name": "bank", "host": "h", "port": 1}, {"name": "fleet", "host": "h", "port": 2}]


def config(routes: list[dict[str, Any]]) -> Any:
    return parse_config(cfg(acquirers=ACQUIRERS, routes=routes, default_route="bank"))


def test_tenders_by_route_and_bank_by_default() -> None:
    router = config(
        [
            {"acquirer": "fleet", "prefixes": ["7077"], "tender": "fleet"},
            {"acquirer": "fleet", "prefixes": ["7080"], "tender": "consumer"},
            {"acquirer": "bank", "prefixes": ["4"]},
        ]
    ).build_router()
    assert router.tender("7077001234567890") == "fleet"
    assert router.tender("7080001234567890") == "consumer"  # same acquirer, other tender
    assert router.route("7080001234567890") == "fleet"
    assert router.tender("4761739001010010") == "bank"  # a route without tender
    assert router.tender("9999000011112222") == "bank"  # the default route


def test_a_longer_prefix_carves_a_tender_out_of_a_shorter_one() -> None:
    router = config(
        [
            {"acquirer": "fleet", "prefixes": ["70"], "tender": "fleet"},
            {"acquirer": "fleet", "prefixes": ["7080"]},
        ]
    ).build_router()
    assert (router.tender("7012"), router.tender("7080123")) == ("fleet", "bank")


def test_an_unknown_tender_is_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"routes\[0\]\.tender: must be one of fleet"):
        config([{"acquirer": "fleet", "prefixes": ["7077"], "tender": "loyalty"}])


def test_overlapping_ranges_with_different_tenders_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"^routes: prefix ranges overlap with different tenders"):
        config(
            [
                {"acquirer": "fleet", "prefixes": ["51-53"], "tender": "fleet"},
                {"acquirer": "fleet", "prefixes": ["53-55"], "tender": "consumer"},
            ]
        )
