"""DUKPT terminals in the key store: the KSN high-water mark and its rules.

A counter must move forward (a replay is refused and counted), stay a counter a
terminal uses (at most 16 / 10 one-bits), and come from the terminal's own
initial key ID; the mark survives closing and reopening the store (a restart).
"""

from __future__ import annotations

import time
from pathlib import Path

from forecourt.keys import KeyStore
from forecourt.keys.crypto import Algorithm
from forecourt.keys.dukpt_aes import ksn_of
from forecourt.keys.dukpt_store import (
    DukptScheme,
    KsnVerdict,
    remaining_counters,
    usable_up_to,
)
from hypothesis import given
from hypothesis import strategies as st

IKID = bytes.fromhex("1234567890123456")
BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")


def test_ksn_mark_moves_forward_and_survives_a_restart(store: KeyStore, tmp_path: Path) -> None:
    registry = store.dukpt()
    registry.add_bdk("bdk1", Algorithm.AES128, BDK, time.time(), "test")
    registry.add_terminal("P1", "bdk1", IKID, "000000", time.time(), "test")
    now = time.time()
    assert registry.advance("P1", ksn_of(IKID, 1), now).verdict is KsnVerdict.OK
    assert registry.advance("P1", ksn_of(IKID, 5), now).verdict is KsnVerdict.OK
    assert registry.advance("P1", ksn_of(IKID, 5), now).verdict is KsnVerdict.REPLAY
    assert registry.advance("P1", ksn_of(IKID, 3), now).verdict is KsnVerdict.REPLAY
    assert registry.advance("P1", ksn_of(IKID, 0x0001FFFF), now).verdict is KsnVerdict.INVALID
    assert registry.advance("P1", ksn_of(bytes(8), 9), now).verdict is KsnVerdict.WRONG_DEVICE
    assert registry.advance("P1", bytes(10), now).verdict is KsnVerdict.INVALID
    bdk_kcv = registry.bdk_ref("bdk1").kcv
    store.close()

    reopened = KeyStore.open(tmp_path / "data", lmk_file=tmp_path / "etc" / "lmk.key")
    try:
        again = reopened.dukpt()
        term = again.terminal("P1")
        assert term is not None and term.counter == 5 and term.replays == 5
        assert again.advance("P1", ksn_of(IKID, 5), now).verdict is KsnVerdict.REPLAY
        check = again.advance("P1", ksn_of(IKID, 6), now)
        assert check.ok and check.remaining == remaining_counters(DukptScheme.AES, 6)
        assert again.bdk_ref("bdk1").kcv == bdk_kcv
    finally:
        reopened.close()


def test_exhaustion_is_reported_by_the_remaining_count(store: KeyStore) -> None:
    registry = store.dukpt()
    registry.add_bdk("bdk1", Algorithm.AES128, BDK, time.time(), "test")
    registry.add_terminal("P1", "bdk1", IKID, "000000", time.time(), "test")
    last = registry.advance("P1", ksn_of(IKID, 0xFFFF0000), time.time())
    assert last.ok and last.remaining == 0
    assert registry.advance("P1", ksn_of(IKID, 0xFFFF8000), time.time()).verdict in (
        KsnVerdict.INVALID,
        KsnVerdict.REPLAY,
    )
    assert remaining_counters(DukptScheme.TDES, 0) == 2**20 - 1  # sum of C(21, k), k = 1..10


@given(bits=st.integers(1, 12), max_ones=st.integers(1, 12), data=st.data())
def test_usable_counters_agree_with_counting_them(
    bits: int, max_ones: int, data: st.DataObject
) -> None:
    value = data.draw(st.integers(0, (1 << bits) - 1))
    expected = sum(1 for n in range(1, value + 1) if n.bit_count() <= max_ones)
    assert usable_up_to(value, bits, max_ones) == expected
