"""``[[recon.parties]]``: who the switch reconciles with, and how their files read.

A party is an acquirer (its settlement file), a wallet provider (its bill file) or
the switch's own fleet and consumer ledger (no file: its books). The layout of a
file is configuration, not code: which CSV column (or which fixed-width
positions) holds the reference, the amount, the currency, the date and time and
the transaction type (docs/reconciliation.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs
from forecourt.switch.config_reading import ConfigTable, check_unique

__all__ = [
    "FIELDS",
    "MATCH_KEYS",
    "PARTY_KINDS",
    "ColumnMap",
    "ReconConfig",
    "ReconParty",
    "read_recon",
]

PARTY_KINDS = ("acquirer", "wallet", "ledger")
FORMATS = ("csv", "fixed")
# what the party's reference is, on the switch's side: the host's field 37, its
# field 38, or the wallet order number ("FC" + transaction id; refunds "FR" + id)
MATCH_KEYS = ("rrn", "auth_code", "order_no")
AMOUNT_UNITS = ("minor", "decimal")
FIELDS = ("reference", "amount", "currency", "datetime", "type", "pan")
_REQUIRED = ("reference", "amount", "datetime")
_RANGE = re.compile(r"^([1-9]\d*)-([1-9]\d*)$")


@attrs.frozen
class ColumnMap:
    """Where each field is: CSV header names (``"a|b"``: the first non-empty of
    several columns) or fixed-width ``"start-end"`` positions, 1-based inclusive."""

    fields: Mapping[str, str]
    amount_unit: str = "minor"
    datetime_format: str = "%Y-%m-%d %H:%M:%S"
    # the file's spelling of each transaction type (`sale = ["PAY"]`)
    types: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    def positions(self, name: str) -> tuple[int, int] | None:
        """A fixed-width field's [start, end) slice, or None when not mapped."""
        spec = self.fields.get(name)
        if spec is None:
            return None
        m = _RANGE.match(spec)
        assert m is not None  # checked when read
        return int(m.group(1)) - 1, int(m.group(2))


@attrs.frozen
class ReconParty:
    name: str
    kind: str
    settles: str  # the journal route (acquirer link name) whose transactions it settles
    match_on: str = "rrn"
    format: str = "csv"
    delimiter: str = ","
    currency: str = "978"  # when the file has no currency column
    columns: ColumnMap = attrs.field(factory=lambda: ColumnMap({}))


@attrs.frozen
class ReconConfig:
    parties: tuple[ReconParty, ...] = ()
    # days past a sale's business day its sealed request is kept for an advice
    # (0: erased with its parked reversal, docs/security.md)
    keep_sealed_days: int = 0

    def party(self, name: str) -> ReconParty | None:
        return next((p for p in self.parties if p.name == name), None)


def read_recon(root: ConfigTable, acquirers: set[str]) -> ReconConfig:
    t = root.table("recon")
    parties = tuple(_party(p, acquirers) for p in t.tables("parties"))
    keep_sealed_days = t.int_("keep_sealed_days", 0, 0, 14)
    t.finish()
    check_unique(root, "recon.parties", [p.name for p in parties])
    return ReconConfig(parties, keep_sealed_days)


def _party(t: ConfigTable, acquirers: set[str]) -> ReconParty:
    name = t.name()
    kind = t.str_("kind", choices=PARTY_KINDS)
    settles = t.opt_str("settles") or name
    if settles not in acquirers:
        raise t.error(
            "settles", f"names no [[acquirers]] entry ({settles!r}); name the link it settles"
        )
    # the ledger's authoriser answers no RRN: its approval code names a sale
    match_on = t.opt_str("match_on") or ("auth_code" if kind == "ledger" else "rrn")
    if match_on not in MATCH_KEYS:
        raise t.error("match_on", f"must be one of {', '.join(MATCH_KEYS)} (got {match_on!r})")
    fmt = t.str_("format", "csv", FORMATS)
    delimiter = t.str_("delimiter", ",")
    if len(delimiter) != 1:
        raise t.error("delimiter", "must be one character")
    currency = t.str_("currency", "978")
    if not re.fullmatch(r"\d{3}", currency):
        raise t.error("currency", "must be an ISO 4217 numeric code (e.g. 978)")
    columns = _columns(t.table("columns"), fmt, kind)
    t.finish()
    return ReconParty(name, kind, settles, match_on, fmt, delimiter, currency, columns)


def _columns(t: ConfigTable, fmt: str, kind: str) -> ColumnMap:
    fields: dict[str, str] = {}
    for name in FIELDS:
        value = t.opt_str(name)
        if value is None:
            if name in _REQUIRED and kind != "ledger":
                raise t.error(name, "is required (the column or positions that hold it)")
            continue
        if fmt == "fixed" and not _fixed_ok(value):
            raise t.error(name, 'must be "start-end" positions (1-based, inclusive), e.g. "1-12"')
        fields[name] = value
    unit = t.str_("amount_unit", "minor", AMOUNT_UNITS)
    when = t.str_("datetime_format", "%Y-%m-%d %H:%M:%S")
    types: dict[str, tuple[str, ...]] = {}
    spelled = t.table("types")
    for kind_name in ("sale", "refund", "reversal"):
        types[kind_name] = spelled.str_list(kind_name) or (kind_name,)
    spelled.finish()
    t.finish()
    return ColumnMap(fields, unit, when, types)


def _fixed_ok(spec: str) -> bool:
    m = _RANGE.match(spec)
    return m is not None and int(m.group(1)) <= int(m.group(2))
