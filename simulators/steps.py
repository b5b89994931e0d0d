"""A certification case's steps: what each one is, and how it is read from the script.

A step sends a request built from a template (`Send`), expects an answer or its
absence or a close, waits, reconnects, sends raw bytes or an oversize header, or
checks the acquirer simulator's record. Each is read from one `[[cases.steps]]`
table and checked as it is read (docs/simulators.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import attrs
from forecourt.codecs.family import Family

from ._toml import SimConfigError, Table
from .field48_steps import parse_field48, parse_field48_present
from .rules import named_code
from .split_steps import SplitSale, parse_split
from .templates import TEMPLATES

__all__ = [
    "ANSWER_MAC",
    "MAC_MODES",
    "Disconnect",
    "Expect",
    "ExpectAtAcquirer",
    "ExpectClose",
    "ExpectNothing",
    "Expectation",
    "Oversize",
    "Raw",
    "Reconnect",
    "Send",
    "Step",
    "Wait",
    "parse_step",
]

MAC_MODES = ("auto", "none", "corrupt", "previous")
ANSWER_MAC = ("verify", "required", "absent", "any")


@attrs.frozen
class Expectation:
    """What an answer must look like; `action_codes` are literal, any one may match."""

    within_s: float
    action_codes: tuple[str, ...] = ()
    mti: str | None = None
    fields: Mapping[str, str] = attrs.field(factory=dict)
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    mac: str = "verify"
    stan: str | None = None  # None: the STAN of the last request sent
    # field 54 must decode and hold an available balance (amount type 02) of this
    # many minor units (a balance inquiry's answer)
    available_balance: int | None = None
    # field 54 must hold the amount a split sale still owes (amount type 04)
    amount_due: int | None = None
    # ifsf field 48 sub-elements the answer must carry (simulators/field48_steps.py)
    field48: Mapping[int, str] = attrs.field(factory=dict)
    field48_present: tuple[int, ...] = ()


@attrs.frozen
class Send:
    """Send a request built from a template, with field overrides."""

    template: str
    overrides: Mapping[str, str] = attrs.field(factory=dict)
    remove: tuple[str, ...] = ()
    mti: str | None = None
    stan: str = "next"  # "next", "same" (a retransmission) or six digits
    mac: str = "auto"  # auto, none, corrupt, previous
    expect: Expectation | None = None
    pin: str | None = attrs.field(default=None, repr=False)  # entered PIN: field 52 under the TPK
    split: SplitSale | None = None  # the sale this request is a leg (or the reversal) of
    field48: Mapping[int, str] = attrs.field(factory=dict)  # sub-elements set in field 48


@attrs.frozen
class Expect:
    expectation: Expectation


@attrs.frozen
class ExpectNothing:
    """No frame at all may arrive for `seconds` (e.g. a late host answer must not leak)."""

    seconds: float


@attrs.frozen
class ExpectClose:
    """The peer must close the connection within `within_s` (malformed or oversize frame)."""

    within_s: float


@attrs.frozen
class ExpectAtAcquirer:
    """The acquirer simulator's record file must hold an answered `mti` (or its repeat)
    for the card and amount of the last request (simulators/acquirer_check.py)."""

    mti: str
    within_s: float


@attrs.frozen
class Wait:
    seconds: float


@attrs.frozen
class Disconnect:
    pass


@attrs.frozen
class Reconnect:
    pass


@attrs.frozen
class Raw:
    """Bytes as they are (`framed` false) or as one frame's payload (header added)."""

    data: bytes
    framed: bool
    expect: Expectation | None = None


@attrs.frozen
class Oversize:
    """A length header announcing `length` bytes, then some of them."""

    length: int


Step: TypeAlias = (
    Send
    | Expect
    | ExpectNothing
    | ExpectClose
    | Wait
    | Disconnect
    | Reconnect
    | Raw
    | Oversize
    | ExpectAtAcquirer
)


_KINDS = (
    "send",
    "expect",
    "expect_nothing",
    "expect_close",
    "wait",
    "disconnect",
    "reconnect",
    "raw",
    "frame",
    "oversize",
    "expect_at_acquirer",
)


_WITH_EXPECT = ("send", "raw", "frame")


def parse_step(t: Table, family: Family, timeout_s: float) -> Step:
    kinds = [k for k in _KINDS if k in t]
    main = [k for k in kinds if k != "expect"]
    if len(main) > 1 or not kinds or (main and kinds != main and main[0] not in _WITH_EXPECT):
        raise SimConfigError(t.path, f"a step needs exactly one of {', '.join(_KINDS)}", t.source)
    step: Step
    if "send" in t:
        template = t.text("send", choices=TEMPLATES)
        overrides = _fields(t, "fields")
        stan = t.text("stan", "next")
        if stan not in ("next", "same") and not (len(stan) == 6 and stan.isdigit()):
            raise t.error("stan", 'must be "next", "same" or six digits')
        step = Send(
            template=template,
            overrides=overrides,
            remove=t.texts("remove"),
            mti=t.opt_text("mti"),
            stan=stan,
            mac=t.text("mac", "auto", MAC_MODES),
            expect=_expectation(t, family, timeout_s),
            pin=_pin(t),
            split=parse_split(t),
            field48=parse_field48(t),
        )
    elif "raw" in t or "frame" in t:
        key = "raw" if "raw" in t else "frame"
        try:
            data = bytes.fromhex(t.text(key))
        except ValueError:
            raise t.error(key, "must be hex") from None
        step = Raw(data, framed=key == "frame", expect=_expectation(t, family, timeout_s))
    elif "expect" in t:
        expectation = _expectation(t, family, timeout_s)
        assert expectation is not None
        step = Expect(expectation)
    elif "expect_nothing" in t:
        step = ExpectNothing(t.number("expect_nothing"))
    elif "expect_close" in t:
        step = ExpectClose(t.number("expect_close"))
    elif "wait" in t:
        step = Wait(t.number("wait"))
    elif "expect_at_acquirer" in t:
        a = t.table("expect_at_acquirer")
        step = ExpectAtAcquirer(a.text("mti"), a.number("within_s", timeout_s))
        a.done()
    elif "disconnect" in t:
        t.flag("disconnect", True)
        step = Disconnect()
    elif "reconnect" in t:
        t.flag("reconnect", True)
        step = Reconnect()
    else:
        step = Oversize(t.integer("oversize", low=1))
    t.done()
    return step


def _fields(t: Table, key: str) -> dict[str, str]:
    raw = t.raw(key, {})
    if not isinstance(raw, Mapping):
        raise t.error(key, "must be a table of field number = value")
    out: dict[str, str] = {}
    for k, v in raw.items():
        if not (k.isdigit() and 2 <= int(k) <= 128):
            raise t.error(f"{key}.{k}", "must be a data element number 2..128")
        if not isinstance(v, str):
            raise t.error(f"{key}.{k}", "must be a string (field values are text)")
        out[str(int(k))] = v
    return out


def _pin(t: Table) -> str | None:
    """A send step's `pin`: 4 to 12 digits (the error never quotes it)."""
    pin = t.opt_text("pin")
    if pin is not None and not (4 <= len(pin) <= 12 and pin.isascii() and pin.isdigit()):
        raise t.error("pin", "must be 4 to 12 digits")
    return pin


def _expectation(t: Table, family: Family, timeout_s: float) -> Expectation | None:
    if "expect" not in t:
        return None
    e = t.table("expect")
    codes = []
    for code in e.texts("action_code"):
        named = named_code(code, family)
        codes.append(named if named is not None else code)
    stan = e.opt_text("stan")
    expectation = Expectation(
        within_s=e.number("within_s", timeout_s),
        action_codes=tuple(codes),
        mti=e.opt_text("mti"),
        fields=_fields(e, "fields"),
        present=e.texts("present"),
        absent=e.texts("absent"),
        mac=e.text("mac", "verify", ANSWER_MAC),
        stan=stan,
        available_balance=e.opt_integer("available_balance"),
        amount_due=e.opt_integer("amount_due"),
        field48=parse_field48(e),
        field48_present=parse_field48_present(e),
    )
    e.done()
    return expectation
