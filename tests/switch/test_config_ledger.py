"""`[[acquirers]] kind = "ledger"`: its keys read and checked, another kind's refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from forecourt.switch.config import ConfigError, parse_config
from forecourt.switch.config_ledger import LedgerSettings


def _doc(tmp_path: Path, **ledger: Any) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path),
        "default_route": "ledger",
        "listeners": [{"name": "pos", "port": 0, "terminal_group": "site"}],
        "terminal_groups": [{"name": "site", "terminals": ["T0000001"]}],
        "acquirers": [{"name": "ledger", "kind": "ledger", **ledger}],
        "routes": [{"prefixes": ["7077", "7080"], "acquirer": "ledger"}],
    }


def test_defaults_and_keys(tmp_path: Path) -> None:
    config = parse_config(_doc(tmp_path), source="t")
    (entry,) = config.acquirers
    assert entry.kind == "ledger" and entry.settings == LedgerSettings()
    config = parse_config(
        _doc(tmp_path, preauth_window_s=60, release_interval_s=1, currency="826",
             odometer_declines=True, partial_approval=False),
        source="t",
    )  # fmt: skip
    assert config.acquirers[0].settings == LedgerSettings(
        currency="826", preauth_window_s=60.0, release_interval_s=1.0,
        partial_approval=False, odometer_declines=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("keys", "where"),
    [
        ({"host": "127.0.0.1"}, "acquirers[0].host: unknown key"),
        ({"currency": "EUR"}, "acquirers[0].currency: must be an ISO 4217 numeric code"),
        ({"preauth_window_s": 0}, "acquirers[0].preauth_window_s"),
    ],
)
def test_refused_keys_name_themselves(tmp_path: Path, keys: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse_config(_doc(tmp_path, **keys), source="t")


def test_a_ledger_entry_has_no_iso8583_link(tmp_path: Path) -> None:
    (entry,) = parse_config(_doc(tmp_path), source="t").acquirers
    with pytest.raises(TypeError, match="is a ledger authoriser, not ISO 8583"):
        _ = entry.host
