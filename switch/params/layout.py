"""The parameter file an operator publishes (`forecourt params publish FILE`).

The whole file is checked before anything is stored; the first mistake is one
line naming the key and the fix. Its layout is in docs/terminal-interfaces.md
("The parameter file"); conf/demo/params-1.toml is an example. Each kind is a
table of entries by key (`[products.95]`, `[bins.707700]`, ...); `[receipt]` maps
a line name to its text; a top-level `note` is shown by `params list`.

Block and grey lists hold truncated PANs only (first six and last four digits,
`*` between); a full PAN is refused, and never repeated in the error.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from .model import KIND_BY_NAME, KINDS, ParamSet

__all__ = ["ParamsFile", "ParamsFileError", "parse_params", "read_params_file"]


class ParamsFileError(Exception):
    """One mistake in a parameter file: the key it is at and how to fix it."""

    def __init__(self, key: str, fix: str) -> None:
        super().__init__(f"{key}: {fix}" if key else fix)
        self.key = key
        self.fix = fix


@attrs.frozen
class ParamsFile:
    note: str
    params: ParamSet


_TEXT = re.compile(r"^[\x20-\x7e]*$")
_FORBIDDEN = set("\\;=")
_PRODUCT = re.compile(r"^[A-Za-z0-9]{1,6}$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_PREFIX = re.compile(r"^[0-9]{1,11}$")
_TRUNCATED = re.compile(r"^[0-9]{6}\*{3,9}[0-9]{4}$")
_UNITS = ("L", "G", "KG", "U")


def _text(key: str, value: object, most: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ParamsFileError(key, "must be a quoted string")
    if required and not value:
        raise ParamsFileError(key, "must not be empty")
    if len(value) > most:
        raise ParamsFileError(key, f"is {len(value)} characters long: at most {most}")
    if not _TEXT.match(value) or _FORBIDDEN & set(value):
        raise ParamsFileError(key, "must be printable ASCII without \\ ; or =")
    return value


def _decimal(key: str, value: object, places: int, example: str) -> Decimal:
    if not isinstance(value, str):
        raise ParamsFileError(key, f'must be a quoted decimal like "{example}"')
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ParamsFileError(key, f'must be a decimal like "{example}"') from None
    if (
        not number.is_finite()
        or number < 0
        or number != number.quantize(Decimal(1).scaleb(-places))
    ):
        raise ParamsFileError(key, f"must be zero or more with at most {places} decimals")
    if number >= 10**9:
        raise ParamsFileError(key, "is too large (at most 9 digits before the point)")
    return number


def _money(key: str, value: object) -> str:
    return str(int(_decimal(key, value, 2, "50.00") * 100))


def _product(key: str, entry: Mapping[str, Any]) -> tuple[str, ...]:
    unit = _text(f"{key}.unit", entry.get("unit"), 2)
    if unit not in _UNITS:
        raise ParamsFileError(f"{key}.unit", f"must be one of {', '.join(_UNITS)}")
    price = _decimal(f"{key}.unit_price", entry.get("unit_price"), 4, "1.659")
    return (
        _text(f"{key}.name", entry.get("name"), 20),
        unit,
        f"{price.normalize():f}",
        _text(f"{key}.tax_code", entry.get("tax_code", ""), 6, required=False),
    )


def _limits(key: str, entry: Mapping[str, Any]) -> tuple[str, ...]:
    litres = _decimal(f"{key}.max_litres", entry.get("max_litres"), 3, "120")
    return (
        _money(f"{key}.offline_floor", entry.get("offline_floor")),
        _money(f"{key}.max_amount", entry.get("max_amount")),
        f"{litres.normalize():f}",
    )


def _bin(key: str, entry: Mapping[str, Any]) -> tuple[str, ...]:
    offline = entry.get("offline")
    if not isinstance(offline, bool):
        raise ParamsFileError(f"{key}.offline", "must be true or false (unquoted)")
    route = _text(f"{key}.route", entry.get("route"), 16)
    if not _NAME.match(route):
        raise ParamsFileError(f"{key}.route", "must be an acquirer name: letters, digits, - or _")
    product = _text(f"{key}.product", entry.get("product"), 16)
    return (product, route, "Y" if offline else "N")


def _listed(key: str, entry: Mapping[str, Any]) -> tuple[str, ...]:
    return (_text(f"{key}.reason", entry.get("reason", ""), 20, required=False),)


_ENTRY: dict[
    str, tuple[re.Pattern[str], str, Callable[[str, Mapping[str, Any]], tuple[str, ...]]]
] = {
    "products": (_PRODUCT, "a product code of 1 to 6 letters or digits (field 63)", _product),
    "card_limits": (_NAME, "a card product name: up to 16 letters, digits, - or _", _limits),
    "bins": (_PREFIX, "a PAN prefix of 1 to 11 digits", _bin),
    "block_list": (_TRUNCATED, "a truncated PAN: first 6 and last 4 digits, * between", _listed),
    "grey_list": (_TRUNCATED, "a truncated PAN: first 6 and last 4 digits, * between", _listed),
}


def parse_params(data: Mapping[str, Any]) -> ParamsFile:
    """Check a parsed file whole; raises ParamsFileError at the first mistake."""
    for top in data:
        if top != "note" and top not in KIND_BY_NAME:
            known = ", ".join(["note", *(k.name for k in KINDS)])
            raise ParamsFileError(top, f"is not a parameter kind; known: {known}")
    note = _text("note", data.get("note", ""), 80, required=False)
    records: dict[tuple[str, str], tuple[str, ...]] = {}
    for kind in KINDS:
        table = data.get(kind.name, {})
        if not isinstance(table, Mapping):
            raise ParamsFileError(kind.name, f"must be a table, [{kind.name}.KEY] or [{kind.name}]")
        for key, entry in table.items():
            records[(kind.name, key)] = _record(kind.name, key, entry)
    _check_bins(records)
    return ParamsFile(note, ParamSet(records))


def _record(kind: str, key: str, entry: object) -> tuple[str, ...]:
    if kind == "receipt":
        if not _NAME.match(key):
            raise ParamsFileError(f"receipt.{key}", "a line name is letters, digits, - or _")
        return (_text(f"receipt.{key}", entry, 40, required=False),)
    pattern, what, read = _ENTRY[kind]
    if not pattern.match(key):
        if kind in ("block_list", "grey_list") and key.isdigit() and len(key) >= 12:
            # never quote a full PAN, not even in an error
            raise ParamsFileError(
                f"{kind} entry ending {key[-4:]}",
                "is a full PAN: give it truncated (first 6, *, last 4, e.g. "
                "476173******0010); a full PAN is never stored",
            )
        raise ParamsFileError(f"{kind}.{key}", f"the key must be {what}")
    path = f"{kind}.{key}"
    if not isinstance(entry, Mapping):
        raise ParamsFileError(path, f"must be a table: [{kind}.{key}] with its values")
    allowed = KIND_BY_NAME[kind].values
    for name in entry:
        if name not in allowed:
            raise ParamsFileError(f"{path}.{name}", f"is not known; known: {', '.join(allowed)}")
    return read(path, entry)


def _check_bins(records: Mapping[tuple[str, str], tuple[str, ...]]) -> None:
    limits = {key for (kind, key) in records if kind == "card_limits"}
    for (kind, key), values in records.items():
        if kind == "bins" and values[0] not in limits:
            raise ParamsFileError(
                f"bins.{key}.product", f"names {values[0]!r}: add [card_limits.{values[0]}]"
            )


def read_params_file(path: Path) -> ParamsFile:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ParamsFileError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParamsFileError(str(path), f"not valid TOML: {exc}") from None
    try:
        return parse_params(data)
    except ParamsFileError as exc:
        raise ParamsFileError(f"{path}: {exc.key}", exc.fix) from None
