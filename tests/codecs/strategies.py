"""Hypothesis strategies for valid field values, read from each dialect's layout."""

from __future__ import annotations

from forecourt.codecs._layout import Layout
from forecourt.codecs.dialect import Dialect
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from hypothesis import strategies as st

DIGITS = "0123456789"
HEX_UPPER = "0123456789ABCDEF"
# Text fields are ISO 8859-1: any of its 256 characters.
LATIN1 = st.characters(min_codepoint=0, max_codepoint=255)


def _length(layout: Layout, cap: int | None) -> st.SearchStrategy[int]:
    if layout.prefix:
        top = layout.length if cap is None else min(layout.length, cap)
        return st.integers(min_value=0, max_value=top)
    return st.just(layout.length)


PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def field_value(
    dialect: Dialect, number: int, cap: int | None = None, ascii_text: bool = False
) -> st.SearchStrategy[str]:
    """A value that the dialect's field `number` can carry, in decoded form.

    `cap` bounds the length drawn for variable fields (keeps many-field
    messages small); the maximum lengths are tested deterministically.
    """
    layout = dialect.layout[number]
    if layout.kind == "b":
        return _length(layout, cap).flatmap(
            lambda n: st.binary(min_size=n, max_size=n).map(lambda b: b.hex().upper())
        )
    if layout.kind == "n":
        return _length(layout, cap).flatmap(
            lambda n: st.text(alphabet=DIGITS, min_size=n, max_size=n)
        )
    if layout.kind == "z":
        separator = "D" if dialect.name == "iso87bcd" else "="
        return _length(layout, cap).flatmap(
            lambda n: st.text(alphabet=DIGITS + separator, min_size=n, max_size=n)
        )
    alphabet = PRINTABLE_ASCII if ascii_text else LATIN1
    return _length(layout, cap).flatmap(
        lambda n: st.text(alphabet=alphabet, min_size=n, max_size=n)
    )


def mti(dialect: Dialect) -> st.SearchStrategy[str]:
    version = "1" if dialect.family is Family.ISO1993 else "0"
    return st.text(alphabet=DIGITS, min_size=3, max_size=3).map(lambda rest: version + rest)


def message(
    dialect: Dialect, numbers: list[int] | None = None, cap: int | None = 16
) -> st.SearchStrategy[Message]:
    """A message with a random subset of the dialect's fields (or exactly `numbers`)."""
    if numbers is not None:
        return st.builds(
            Message,
            mti(dialect),
            st.fixed_dictionaries({str(n): field_value(dialect, n, cap) for n in numbers}),
        )
    optional = {str(n): field_value(dialect, n, cap) for n in dialect.layout}
    return st.builds(Message, mti(dialect), st.fixed_dictionaries({}, optional=optional))
