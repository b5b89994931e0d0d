"""The console's parts without a server: PAN search, percentiles, the login
throttle, sessions and their secret, metrics parsing, the key catalogue."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from forecourt.console.data import ConsoleData, dashboard_of, percentile
from forecourt.console.links import links_of
from forecourt.console.operators import (
    BadOperator,
    Operator,
    Role,
    check_name,
    hash_password,
    password_matches,
)
from forecourt.console.pan_search import BadPanQuery, pan_pattern
from forecourt.console.sessions import IDLE_S, SecretUnusable, SessionBook, load_secret
from forecourt.console.throttle import LoginThrottle
from forecourt.keys.catalogue import KeyCatalogue
from forecourt.keys.lmk import LMK_ENV
from forecourt.keys.store import KeyStore
from forecourt.switch.journal import LATEST_VERSION, MIGRATIONS, open_journal
from forecourt.switch.metrics import SwitchMetrics
from hypothesis import given
from hypothesis import strategies as st

digits = st.text(alphabet="0123456789", min_size=11, max_size=19)


@given(digits)
def test_a_full_pan_typed_in_becomes_its_mask(pan: str) -> None:
    pattern, shown = pan_pattern(pan)
    assert shown == pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    assert pattern == f"{pan[:6]}%{pan[-4:]}"
    assert pan not in pattern + shown


@given(st.text(alphabet="0123456789", min_size=1, max_size=4))
def test_up_to_four_digits_search_the_last_four(tail: str) -> None:
    assert pan_pattern(tail) == (f"%{tail}", tail)


def test_pan_queries_that_are_neither_refused() -> None:
    for text in ("1234567", "12345678", "4761**x0010", "' OR 1=1 --"):
        with pytest.raises(BadPanQuery):
            pan_pattern(text)
    assert pan_pattern("476173") == ("476173%", "476173")
    assert pan_pattern("476173******0010") == ("476173%0010", "476173******0010")


@given(st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1), st.sampled_from([50, 95, 99]))
def test_percentile_is_the_nearest_rank(values: list[float], q: int) -> None:
    ordered = sorted(values)
    p = percentile(ordered, q)
    assert p in ordered
    at_or_below = sum(v <= p for v in ordered)
    below = sum(v < p for v in ordered)
    assert at_or_below * 100 >= q * len(ordered)  # at least q % are at or below it
    assert below * 100 < q * len(ordered)  # and it is the smallest such value


def test_dashboard_buckets_by_second_and_skips_outside_the_window() -> None:
    now = 1_000_000.5
    rows = [
        (now - 1, "2", "approved", 4.0),
        (now - 1, "2", "declined", 6.0),
        (now - 1, "8", "approved", None),  # network management: counted, not rated
        (now - 500, "2", "approved", 1.0),  # outside
    ]
    board = dashboard_of(rows, now)
    assert board.total == 3 and sum(board.tps) == 3
    assert board.approved == 1 and board.declined == 1
    assert [a for a in board.approval if a is not None] == [50.0]
    assert [p for p in board.p99 if p is not None] == [6.0]
    assert board.seconds[-1] == int(now) and len(board.seconds) == len(board.tps)


def test_the_throttle_locks_out_then_forgets() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60.0)
    keys = ("name:alice", "addr:10.0.0.1")
    for n in range(3):
        assert throttle.retry_after(keys, 100.0 + n) is None
        throttle.failed(keys, 100.0 + n)
    wait = throttle.retry_after(keys, 103.0)
    assert wait == pytest.approx(57.0)
    # another name from the same address is locked out too; another address is not
    assert throttle.retry_after(("name:bob", "addr:10.0.0.1"), 103.0) is not None
    assert throttle.retry_after(("name:bob", "addr:10.0.0.2"), 103.0) is None
    assert throttle.retry_after(keys, 161.0) is None  # the window passed


def test_passwords_are_argon2id_and_short_ones_refused() -> None:
    with pytest.raises(BadOperator, match="at least 12"):
        hash_password("short")
    hashed = hash_password("a long test passphrase")
    assert hashed.startswith("$argon2id$") and "a long test passphrase" not in hashed
    alice = Operator("alice", Role.OPERATOR, hashed)
    assert password_matches(alice, "a long test passphrase")
    assert not password_matches(alice, "a long test passphrasE")
    assert not password_matches(None, "a long test passphrase")  # unknown name
    for bad in ("Alice", "1alice", "a" * 33, "al ice", ""):
        with pytest.raises(BadOperator):
            check_name(bad)


def test_the_session_secret_is_private_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    secret = load_secret(data_dir)
    path = data_dir / "console.secret"
    assert len(secret) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(data_dir) == secret  # the same secret after a restart
    path.write_bytes(b"short")
    with pytest.raises(SecretUnusable, match="shorter than 32 bytes"):
        load_secret(data_dir)


def test_sessions_refuse_forgeries_and_end_when_idle() -> None:
    book = SessionBook(b"k" * 32)
    session = book.open(1000.0, "alice", Role.OPERATOR)
    cookie = book.cookie_value(session)
    assert book.find(cookie, 1001.0) is session
    token = cookie.rsplit(".", 1)[0]
    assert book.find(f"{token}.{'0' * 64}", 1001.0) is None
    assert SessionBook(b"x" * 32).find(cookie, 1001.0) is None  # another console's secret
    assert book.find(cookie, 1001.0 + IDLE_S + 1) is None
    assert book.find(cookie, 1002.0) is None  # ended for good


def test_links_are_read_from_the_prometheus_text() -> None:
    metrics = SwitchMetrics()
    metrics.set_link_state("bank", "signing_on")
    metrics.host_timeouts.labels(link="bank").inc(2)
    metrics.unmatched_answers.labels(link="bank", kind="late").inc()
    metrics.unmatched_answers.labels(link="bank", kind="unknown").inc()
    metrics.in_flight.set(7)
    links, in_flight = links_of(metrics.render().decode())
    (bank,) = links
    assert bank.state == "signing_on"
    assert bank.values["host_timeouts"] == 2.0
    assert bank.values["unmatched_answers"] == 2.0  # summed over kinds
    assert in_flight == 7.0


def test_the_key_catalogue_needs_no_lmk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, lmk = tmp_path / "data", tmp_path / "lmk.key"
    with KeyStore.init(data_dir, lmk_file=lmk) as store:
        store.add_terminal("T0000001", actor="test")
        expected = store.list_keys()
        kcv = store.lmk_kcv
    os.remove(lmk)  # gone: the catalogue must not need it
    monkeypatch.delenv(LMK_ENV, raising=False)
    catalogue = KeyCatalogue(data_dir)
    try:
        assert catalogue.keys() == expected
        assert catalogue.lmk_kcv() == kcv
        assert [o.name for o in catalogue.owners()] == ["T0000001"]
        assert catalogue.audit()[0].owner == "T0000001"
    finally:
        catalogue.close()


def test_migration_7_adds_the_console_tables() -> None:
    (version, sql), *_ = [m for m in MIGRATIONS if "console_operators" in m[1]]
    assert version == 7 <= LATEST_VERSION
    assert "console_audit" in sql and "password_hash" in sql and "CHECK (role IN" in sql


async def test_the_dashboard_is_read_once_a_second(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "journal.db") as journal:
        data = ConsoleData(journal)
        try:
            first = await data.dashboard(now=1000.2)
            assert await data.dashboard(now=1000.9) is first
            assert await data.dashboard(now=1001.0) is not first
        finally:
            data.close()
