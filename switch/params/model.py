"""A parameter set: what a terminal needs to sell and to decide offline.

A set is records of six kinds, each a key and a tuple of text values in the
order the wire carries them (docs/terminal-interfaces.md, "Parameter, rule and
device-information downloads"). Versions are immutable once published; what a
terminal downloads is the `Delta` between the version it holds and the latest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

__all__ = [
    "KINDS",
    "Change",
    "Delta",
    "Kind",
    "ParamSet",
    "VersionInfo",
    "apply_delta",
    "delta_between",
]


@attrs.frozen
class Kind:
    """One kind of record: its name in the file, its letter on the wire, its values."""

    name: str
    letter: str
    values: tuple[str, ...]
    title: str


# The order here is the order of a delta's records and of `params show`.
KINDS: tuple[Kind, ...] = (
    Kind("products", "P", ("name", "unit", "unit_price", "tax_code"), "products and prices"),
    Kind(
        "card_limits",
        "L",
        ("offline_floor", "max_amount", "max_litres"),
        "card limits (minor units, litres)",
    ),
    Kind("bins", "B", ("product", "route", "offline"), "BIN and route table for offline use"),
    Kind("block_list", "K", ("reason",), "card block list (truncated PANs)"),
    Kind("grey_list", "G", ("reason",), "grey list (truncated PANs)"),
    Kind("receipt", "R", ("text",), "receipt texts"),
)
KIND_BY_NAME = {k.name: k for k in KINDS}
KIND_BY_LETTER = {k.letter: k for k in KINDS}
_ORDER = {k.name: n for n, k in enumerate(KINDS)}

Records = Mapping[tuple[str, str], tuple[str, ...]]  # (kind, key) -> values


@attrs.frozen
class ParamSet:
    """Every record of one version: (kind name, key) -> values."""

    records: Mapping[tuple[str, str], tuple[str, ...]] = attrs.field(factory=dict)

    def of_kind(self, kind: str) -> list[tuple[str, tuple[str, ...]]]:
        return sorted((key, v) for (k, key), v in self.records.items() if k == kind)


@attrs.frozen
class Change:
    """One record of a delta: op A(dd), C(hange) or D(elete); `values` empty for D."""

    op: str
    kind: str
    key: str
    values: tuple[str, ...] = ()


@attrs.frozen
class Delta:
    changes: tuple[Change, ...]


@attrs.frozen
class VersionInfo:
    version: int
    published_at: float
    operator: str
    note: str
    records: int  # records in the whole set
    changed: int  # records added, changed or deleted against the version before


def _sort_key(kind_key: tuple[str, str]) -> tuple[int, str]:
    return (_ORDER[kind_key[0]], kind_key[1])


def delta_between(old: Records, new: Records) -> Delta:
    """What turns `old` into `new`, record by record, in kind then key order."""
    changes: list[Change] = []
    for kk in sorted(set(old) | set(new), key=_sort_key):
        before, after = old.get(kk), new.get(kk)
        if after is None:
            changes.append(Change("D", kk[0], kk[1]))
        elif before is None:
            changes.append(Change("A", kk[0], kk[1], after))
        elif before != after:
            changes.append(Change("C", kk[0], kk[1], after))
    return Delta(tuple(changes))


def apply_delta(held: Records, changes: Iterable[Change]) -> dict[tuple[str, str], tuple[str, ...]]:
    """What a terminal holds after applying `changes` (the terminal's side, for tests
    and the simulators). Raises ValueError when a change does not fit what is held:
    an add of a record held, a change or delete of one not held."""
    out = dict(held)
    for c in changes:
        kk = (c.kind, c.key)
        if c.op == "A":
            if kk in out:
                raise ValueError(f"add of {c.kind} {c.key!r}, already held")
            out[kk] = c.values
        elif c.op == "C":
            if kk not in out:
                raise ValueError(f"change of {c.kind} {c.key!r}, not held")
            out[kk] = c.values
        elif c.op == "D":
            if out.pop(kk, None) is None:
                raise ValueError(f"delete of {c.kind} {c.key!r}, not held")
        else:
            raise ValueError(f"unknown operation {c.op!r}")
    return out
