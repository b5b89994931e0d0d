"""Which business day a moment belongs to (switch/business_day.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from forecourt.switch.business_day import Cutover, business_day_of, day_bounds
from hypothesis import given
from hypothesis import strategies as st


def _utc(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_before_the_cut_over_is_still_yesterday() -> None:
    two_am = Cutover(hour=2)
    assert business_day_of(_utc("2026-12-01T01:59:59"), two_am) == dt.date(2026, 11, 30)
    assert business_day_of(_utc("2026-12-01T02:00:00"), two_am) == dt.date(2026, 12, 1)


def test_the_station_clock_is_the_one_that_counts() -> None:
    # 02:00 at UTC+8 is 18:00 UTC the evening before
    beijing = Cutover(hour=2, utc_offset_minutes=8 * 60)
    assert business_day_of(_utc("2026-11-30T17:59:00"), beijing) == dt.date(2026, 11, 30)
    assert business_day_of(_utc("2026-11-30T18:00:00"), beijing) == dt.date(2026, 12, 1)
    assert day_bounds(dt.date(2026, 12, 1), beijing) == (
        _utc("2026-11-30T18:00:00"),
        _utc("2026-12-01T18:00:00"),
    )


@given(
    at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    offset=st.integers(-12 * 60, 14 * 60),
)
def test_every_moment_lies_within_the_bounds_of_its_day(
    at: float, hour: int, minute: int, offset: int
) -> None:
    cutover = Cutover(hour, minute, offset)
    start, end = day_bounds(business_day_of(at, cutover), cutover)
    assert start <= at < end
    assert end - start == 86400


def test_the_cut_over_comes_from_the_configuration() -> None:
    from forecourt.switch.config import parse_config
    from forecourt.switch.config_reading import ConfigError

    base = {"acquirers": [], "routes": []}
    assert parse_config(base).business_day.cutover == Cutover()
    config = parse_config({**base, "business_day": {"cutover": "02:30", "utc_offset": "-05:00"}})
    assert config.business_day.cutover == Cutover(2, 30, -300)
    with pytest.raises(ConfigError, match=r"business_day\.cutover"):
        parse_config({**base, "business_day": {"cutover": "2am"}})
    with pytest.raises(ConfigError, match=r"business_day\.utc_offset"):
        parse_config({**base, "business_day": {"utc_offset": "8"}})
