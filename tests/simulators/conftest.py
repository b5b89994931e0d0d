"""Fixtures: a running acquirer simulator on 127.0.0.1 (real sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest
import trio
from forecourt.simulators.acquirer import AcquirerConfig, AcquirerSimulator, simple_config
from forecourt.simulators.rules import Rule

TEST_PAN = "4761739001010010"
FLEET_PAN = "7077001234567890"
KEK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
ZAK = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")


@pytest.fixture
async def start_host(
    nursery: trio.Nursery,
) -> AsyncIterator[Callable[..., Awaitable[AcquirerSimulator]]]:
    """`await start_host(rules, **simple_config kwargs)` -> a started simulator."""

    async def start(
        rules: Iterable[Rule] = (),
        config: AcquirerConfig | None = None,
        **kwargs: Any,
    ) -> AcquirerSimulator:
        sim = AcquirerSimulator(config or simple_config(rules, **kwargs))
        await nursery.start(sim.run)
        return sim

    yield start
