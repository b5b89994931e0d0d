"""`[keys] backend` and a terminal group's DUKPT keys: read, and refused with one
line naming the key and the fix."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest
from forecourt.switch.config import parse_config
from forecourt.switch.config_dukpt import DukptGroup
from forecourt.switch.config_reading import ConfigError

from tests.operators.config_keys import REPO

SHIPPED = tomllib.loads((REPO / "conf" / "forecourt.toml").read_text(encoding="utf-8"))


def doc(keys: dict[str, Any] | None = None, **group: Any) -> dict[str, Any]:
    d = copy.deepcopy(SHIPPED)
    d["keys"].update(keys or {})
    d["terminal_groups"][0].update(group)
    return d


def test_defaults_and_a_dukpt_group() -> None:
    config = parse_config(doc())
    assert config.keys.module.backend == "software"
    assert config.terminal_groups[0].dukpt is None
    config = parse_config(doc(dukpt="aes", dukpt_bdk="bdk1", ksn_field="53"))
    assert config.terminal_groups[0].dukpt == DukptGroup("aes", "bdk1", "53")


@pytest.mark.parametrize(
    ("keys", "group", "message"),
    [
        ({"backend": "pkcs11"}, {}, r"keys\.backend.*not wired into the switch yet"),
        ({"backend": "payshield"}, {}, r"keys\.backend.*needs a \[keys\.payshield\] table"),
        ({"backend": "thales"}, {}, r"keys\.backend.*not a backend"),
        ({}, {"dukpt": "aes"}, r"dukpt_bdk.*names its BDK"),
        ({}, {"dukpt_bdk": "bdk1"}, r"dukpt_bdk.*DUKPT group only"),
        ({}, {"dukpt": "des"}, r"dukpt.*must be one of"),
        ({}, {"dukpt": "tdes", "dukpt_bdk": "b", "ksn_field": "62"}, r"ksn_field"),
        ({}, {"dukpt": "aes", "dukpt_bdk": "b", "mac_required": False}, r"mac_required"),
    ],
)
def test_mistakes_are_one_line(keys: dict[str, Any], group: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(doc(keys, **group))
    assert "\n" not in str(info.value)
