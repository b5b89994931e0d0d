"""Reading a party's file line by line, as its configured layout says (CSV or fixed).

The file is streamed: one line at a time is held, whatever the file's size. The
first line that cannot be read stops everything with its number and the reason;
the import around this (one database transaction) then keeps nothing of the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from forecourt.switch.config_recon import ColumnMap, ReconParty
from forecourt.switch.log import contains_pan

from .model import MalformedFile, SettlementLine

__all__ = ["file_sha256", "mask_pan", "read_lines"]

_DIGITS = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?\d+(\.\d{1,2})?$")
_PAN = re.compile(r"^\d{12,19}$")
_MASKED = re.compile(r"^\d{0,6}\*+\d{0,4}$")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mask_pan(value: str) -> str | None:
    """First 6 and last 4 of a PAN; a value already masked is kept; "" is None."""
    value = value.strip()
    if not value:
        return None
    if _MASKED.match(value):
        return value
    if _PAN.match(value):
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    raise ValueError("the PAN column holds neither a PAN nor a masked PAN")


def read_lines(party: ReconParty, text: IO[str]) -> Iterator[SettlementLine]:
    """The file's settlement lines, in order; raises MalformedFile at the first bad one.
    ``text``: the file opened with ``encoding="utf-8", newline=""``."""
    seen: Counter[str] = Counter()
    rows = _csv_rows(party, text) if party.format == "csv" else _fixed_rows(party, text)
    for line_no, raw, values in rows:
        digest = hashlib.sha256(f"{party.name}\x00{raw}".encode()).hexdigest()[:32]
        seen[digest] += 1
        try:
            yield _line(party.columns, party, line_no, f"{digest}#{seen[digest]}", values)
        except (ValueError, KeyError, decimal.InvalidOperation) as exc:
            raise MalformedFile(line_no, str(exc).split("\n")[0]) from None


def _lines(text: IO[str]) -> Iterator[tuple[int, str]]:
    n = 0
    try:
        for line in text:
            n += 1
            yield n, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise MalformedFile(n + 1, f"not UTF-8 text ({exc.reason})") from None


def _csv_rows(party: ReconParty, text: IO[str]) -> Iterator[tuple[int, str, dict[str, str]]]:
    lines = _lines(text)
    first = next(lines, None)
    if first is None:
        raise MalformedFile(1, "the file is empty (a CSV file starts with its header line)")
    header = next(csv.reader([first[1]], delimiter=party.delimiter))
    index = {name.strip(): i for i, name in enumerate(header)}
    wanted: dict[str, list[int]] = {}
    for field, spec in party.columns.fields.items():
        names = spec.split("|")
        missing = [n for n in names if n not in index]
        if missing:
            raise MalformedFile(1, f"the header has no column {missing[0]!r} ({field})")
        wanted[field] = [index[n] for n in names]
    for line_no, raw in lines:
        if not raw.strip():
            continue
        cells = next(csv.reader([raw], delimiter=party.delimiter))
        if len(cells) != len(header):
            raise MalformedFile(line_no, f"{len(cells)} columns, the header has {len(header)}")
        values = {
            f: next((cells[i] for i in ix if cells[i].strip()), "") for f, ix in wanted.items()
        }
        yield line_no, raw, values


def _fixed_rows(party: ReconParty, text: IO[str]) -> Iterator[tuple[int, str, dict[str, str]]]:
    spans = {f: party.columns.positions(f) for f in party.columns.fields}
    width = max((s[1] for s in spans.values() if s is not None), default=0)
    for line_no, raw in _lines(text):
        if not raw.strip():
            continue
        if len(raw) < width:
            raise MalformedFile(line_no, f"{len(raw)} characters, the layout needs {width}")
        yield line_no, raw, {f: raw[s[0] : s[1]] for f, s in spans.items() if s is not None}


def _line(
    columns: ColumnMap, party: ReconParty, line_no: int, line_id: str, values: dict[str, str]
) -> SettlementLine:
    reference = values["reference"].strip()
    if not reference:
        raise ValueError("the reference is empty")
    if contains_pan(reference):
        raise ValueError("the reference looks like a full PAN; map the reference column")
    amount_text = values["amount"].strip()
    if columns.amount_unit == "minor":
        if not _DIGITS.match(amount_text):
            raise ValueError(f"amount {amount_text!r} is not a whole number of minor units")
        amount = abs(int(amount_text))
    else:
        if not _DECIMAL.match(amount_text):
            raise ValueError(f"amount {amount_text!r} is not a decimal amount (e.g. 12.34)")
        amount = abs(int(decimal.Decimal(amount_text) * 100))
    currency = values.get("currency", "").strip() or party.currency
    if not re.fullmatch(r"\d{3}", currency):
        raise ValueError(f"currency {currency!r} is not an ISO 4217 numeric code")
    when = values["datetime"].strip()
    try:
        at = dt.datetime.strptime(when, columns.datetime_format)
    except ValueError:
        raise ValueError(
            f"date/time {when!r} does not read as {columns.datetime_format!r}"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    spelled = values.get("type", "").strip()
    kind = "sale"
    if "type" in values:
        kind = next((k for k, names in columns.types.items() if spelled in names), "")
        if not kind:
            raise ValueError(f"type {spelled!r} is none of the configured sale, refund, reversal")
    pan = mask_pan(values["pan"]) if "pan" in values else None
    return SettlementLine(line_no, line_id, reference, amount, currency, at.timestamp(), kind, pan)
