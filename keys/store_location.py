"""Where the key store and its LMK are, read from the switch's configuration file.

`forecourt keys --config FILE` and `forecourt serve --config FILE` must open the
same store under the same LMK: the keys commands read the keys that say so
(`data_dir`, `database`, `[keys] lmk_file`, `[keys] allow_lmk_in_data_dir`, and
`[keys] backend` with `[keys.payshield]`'s address: the HSM a payshield store's
blocks are under) with
the switch's rule (a relative path is taken from the file's folder). The switch
checks the whole file when it starts; a test holds the two readings equal.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs
from forecourt.keys.errors import KeysError
from forecourt.keys.payshield_module import PayShieldSettings


class StoreConfigError(KeysError):
    """The configuration file cannot be read, or a location key has the wrong type."""


@attrs.frozen
class StoreLocation:
    data_dir: Path
    database: str | None = None
    lmk_file: Path | None = None
    allow_lmk_in_data_dir: bool = False
    key_backend: str = "software"
    payshield: PayShieldSettings | None = None


def _string(table: dict[str, Any], key: str, where: str, path: Path) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise StoreConfigError(f"{path}: {where}{key}: must be a string")
    return value


def read_store_location(path: Path) -> StoreLocation:
    """The key store's location in the switch configuration at `path`."""
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise StoreConfigError(
            f"{path}: cannot read the configuration: {exc.strerror or type(exc).__name__}"
            " (give the switch's config file with --config)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise StoreConfigError(f"{path}: not valid TOML: {exc}") from None
    keys = doc.get("keys", {})
    if not isinstance(keys, dict):
        raise StoreConfigError(f"{path}: keys: must be a table")
    base = path.parent

    def resolve(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    lmk_file = _string(keys, "lmk_file", "keys.", path)
    allow = keys.get("allow_lmk_in_data_dir", False)
    if not isinstance(allow, bool):
        raise StoreConfigError(f"{path}: keys.allow_lmk_in_data_dir: must be true or false")
    return StoreLocation(
        data_dir=resolve(_string(doc, "data_dir", "", path) or "./data"),
        database=_string(doc, "database", "", path),
        lmk_file=resolve(lmk_file) if lmk_file else None,
        allow_lmk_in_data_dir=allow,
        key_backend=_string(keys, "backend", "keys.", path) or "software",
        payshield=_payshield(keys.get("payshield"), path),
    )


def _payshield(table: object, path: Path) -> PayShieldSettings | None:
    """`[keys.payshield]`'s address and timing (the switch reads the whole table
    with its checks, switch/config_payshield.py)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise StoreConfigError(f"{path}: keys.payshield: must be a table")
    d = PayShieldSettings()
    host = _string(table, "host", "keys.payshield.", path) or d.host
    port, header, timeout = (
        table.get("port", d.port),
        table.get("header", 4),
        table.get("timeout_s", d.timeout_s),
    )
    if not isinstance(port, int) or not isinstance(header, int):
        raise StoreConfigError(f"{path}: keys.payshield.port and header: must be whole numbers")
    if not isinstance(timeout, int | float):
        raise StoreConfigError(f"{path}: keys.payshield.timeout_s: must be a number of seconds")
    return PayShieldSettings(host=host, port=port, header_length=header, timeout_s=float(timeout))
