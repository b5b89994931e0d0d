"""The pieces of host totals that need no sockets: the figures a 1520 / 0500
carries, and the simulator's day and `[totals]` configuration."""

from __future__ import annotations

import datetime as dt

import pytest
from forecourt.codecs.dialect import decode, encode, get_dialect
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.simulators._toml import SimConfigError
from forecourt.simulators.acquirer_config import parse_acquirer_config
from forecourt.simulators.acquirer_totals import HostTotals, TotalsDay
from forecourt.simulators.rules import HostLogic
from forecourt.switch.day.host_totals import Figures, read_answer, reconciliation_request
from hypothesis import given
from hypothesis import strategies as st

_PAIR = st.tuples(st.integers(0, 10**10 - 1), st.integers(0, 10**15))


@given(_PAIR, _PAIR, _PAIR, _PAIR, st.sampled_from(["ifsf", "iso87ascii", "iso87bcd"]))
def test_the_figures_survive_the_wire(
    credits: tuple[int, int],
    credit_rev: tuple[int, int],
    debits: tuple[int, int],
    debit_rev: tuple[int, int],
    dialect_name: str,
) -> None:
    figures = Figures("978", credits, credit_rev, debits, debit_rev)
    dialect = get_dialect(dialect_name)
    request = reconciliation_request(figures, dt.date(2026, 11, 30), dialect.family, 0.0)
    decoded = decode(dialect, encode(dialect, request))
    assert Figures.of_message(decoded) == figures
    net = decoded.fields["97"]
    assert net[0] == ("D" if figures.net >= 0 else "C") and int(net[1:]) == abs(figures.net)
    if dialect.family is Family.ISO1993:
        assert (decoded.mti, decoded.fields["24"], decoded.fields["28"]) == (
            "1520",
            "500",
            "261130",
        )
    else:
        assert (decoded.mti, decoded.fields["15"]) == ("0500", "1130")


def test_the_answer_read_in_each_family() -> None:
    assert read_answer(Message("1530", {"39": "500"}), Family.ISO1993).in_balance is True
    assert read_answer(Message("1530", {"39": "501"}), Family.ISO1993).in_balance is False
    assert read_answer(Message("1530", {"39": "909"}), Family.ISO1993).in_balance is None
    assert read_answer(Message("0510", {"39": "00", "66": "1"}), Family.ISO1987).in_balance
    assert read_answer(Message("0510", {"39": "00", "66": "2"}), Family.ISO1987).in_balance is False
    assert read_answer(Message("0510", {"39": "96", "66": "1"}), Family.ISO1987).in_balance is None


def test_the_simulators_day_and_its_configuration() -> None:
    base = {"listen": {"dialect": "iso87ascii"}}
    config = parse_acquirer_config({**base, "totals": {"cutover": "02:00", "utc_offset": "-05:00"}})
    assert config.totals_day == TotalsDay(120, -300)
    at = dt.datetime(2026, 12, 1, 6, 59, tzinfo=dt.UTC).timestamp()  # 01:59 at UTC-5
    assert config.totals_day.of(at) == dt.date(2026, 11, 30)
    assert config.totals_day.of(at + 60) == dt.date(2026, 12, 1)
    with pytest.raises(SimConfigError, match=r"totals\.cutover"):
        parse_acquirer_config({**base, "totals": {"cutover": "2am"}})
    with pytest.raises(SimConfigError, match=r"totals\.window"):
        parse_acquirer_config({**base, "totals": {"window": 1}})
    # 0500's field 15 has no year: the one nearest the host's today (a new-year close)
    new_year = dt.datetime(2027, 1, 1, 0, 30, tzinfo=dt.UTC).timestamp()
    totals = HostTotals(HostLogic(Family.ISO1987, ()), clock=lambda: new_year)
    assert totals._named_day(Message("0500", {"15": "1231"})) == dt.date(2026, 12, 31)
