"""The demo's stand-in set-up: one card product with a floor, and the acquirer's record.

`conf/cert/07-stand-in.toml` buys with a card the acquirer simulator never answers
(`4000007700000018`, dropped by conf/sim/acquirer.toml). Only that card's prefix is
the product "stand-in-demo", with a floor of 50.00 for signature-or-none: the other
card the simulator drops (`4000000000000002`, the "host timeout answered 911" case)
has no product and still gets 911. The case checks that the advice reached the
acquirer in the simulator's record file, made fresh for each demo run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STAND_IN_TERMINAL = "T0000007"
PRODUCT = "stand-in-demo"
PREFIX = "40000077"
FLOOR = 5000  # minor units of 978 (EUR)


def stand_in_sections(acquirer: str) -> dict[str, Any]:
    """The `[[routes]]` naming the product and the `[stand_in]` section of the demo."""
    return {
        "routes": [{"name": PRODUCT, "acquirer": acquirer, "prefixes": [PREFIX]}],
        "stand_in": {
            "enabled": True,
            "currency": "978",
            "floor_limits": [{"product": PRODUCT, "signature": FLOOR}],
        },
    }


def acquirer_record(data_dir: Path) -> Path:
    """The acquirer simulator's record file, emptied: an earlier run's records must not
    pass this run's check (a kept --data-dir)."""
    path = data_dir / "acquirer-received.jsonl"
    path.unlink(missing_ok=True)
    return path
