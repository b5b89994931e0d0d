"""`[keys.pkcs11]`: read with its defaults, the PIN never from the file, mistakes in
one line; and `[keys] backend = "pkcs11"` refused, since the switch's key store
cannot hold token references yet (docs/hsm.md "The pkcs11 backend")."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest
from forecourt.keys.pkcs11_module import DEBIAN_SOFTHSM2, Pkcs11Settings
from forecourt.switch.config import parse_config
from forecourt.switch.config_reading import ConfigError

from tests.operators.config_keys import REPO

SHIPPED = tomllib.loads((REPO / "conf" / "forecourt.toml").read_text(encoding="utf-8"))


def doc(pkcs11: dict[str, Any] | None, **keys: Any) -> dict[str, Any]:
    d = copy.deepcopy(SHIPPED)
    d["keys"].update(keys)
    if pkcs11 is not None:
        d["keys"]["pkcs11"] = pkcs11
    return d


def test_absent_defaults_and_set() -> None:
    assert parse_config(doc(None)).keys.pkcs11 is None
    assert parse_config(doc({})).keys.pkcs11 == Pkcs11Settings()
    assert Pkcs11Settings().library == DEBIAN_SOFTHSM2
    settings = parse_config(
        doc({"token_label": "station-7", "pin_env": "P11_PIN", "sessions": 2})
    ).keys.pkcs11
    assert settings == Pkcs11Settings(token_label="station-7", pin_env="P11_PIN", sessions=2)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"pin": "1234"}, r"keys\.pkcs11\.pin: the PIN never goes in the file"),
        ({"user_pin": "1234"}, r"keys\.pkcs11\.user_pin: the PIN never goes in the file"),
        ({"pin_env": "my pin"}, r"keys\.pkcs11\.pin_env: must be an environment variable name"),
        ({"sessions": 0}, r"keys\.pkcs11\.sessions"),
        ({"token_label": "x" * 33}, r"keys\.pkcs11\.token_label: must be 1-32"),
        ({"software_pin_translation": "yes"}, r"keys\.pkcs11\.software_pin_translation"),
        ({"slot": 0}, r"keys\.pkcs11\.slot"),
    ],
)
def test_mistakes_are_one_line(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(doc(table))
    assert "\n" not in str(info.value)
    assert "1234" not in str(info.value)


def test_the_switch_does_not_run_on_pkcs11() -> None:
    with pytest.raises(ConfigError, match=r"keys\.backend") as info:
        parse_config(doc({}, backend="pkcs11"))
    assert "\n" not in str(info.value)
