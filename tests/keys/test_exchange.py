"""The key-exchange payload (field 96 / field 48) and the terminal side."""

from __future__ import annotations

import pytest
from forecourt.keys import (
    Algorithm,
    KcvMismatch,
    KeyBlockInvalid,
    KeyType,
    PayloadEntry,
    PayloadError,
    build_payload,
    decode_payload,
    encode_payload,
    install_key_change,
    kcv,
)
from forecourt.keys.crypto import generate_key
from hypothesis import given, settings
from hypothesis import strategies as st

WORKING = [KeyType.TAK, KeyType.TPK, KeyType.TDK, KeyType.ZAK, KeyType.ZPK]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([Algorithm.TDES2, Algorithm.TDES3, Algorithm.AES128, Algorithm.AES256]),
    st.lists(st.tuples(st.sampled_from(WORKING), st.integers(0, 999_999)), min_size=1, max_size=4),
    st.booleans(),
)
def test_payload_round_trip(
    master_alg: Algorithm, specs: list[tuple[KeyType, int]], as_bytes: bool
) -> None:
    master = generate_key(master_alg)
    work_alg = Algorithm.AES128 if master_alg.is_aes else Algorithm.TDES2
    keys = [(t, v, work_alg, generate_key(work_alg)) for t, v in specs]
    payload = build_payload(master, master_alg, keys)
    assert payload.isascii() and payload.isprintable()
    assert len(payload) <= 999 or len(specs) > 3  # three keys fit an LLL field
    wk = install_key_change(master, payload.encode() if as_bytes else payload)
    assert [(k.key_type, k.version, k.algorithm, k.key) for k in wk.keys] == keys
    for k in wk.keys:
        assert k.kcv == kcv(k.key, k.algorithm)
        assert k.key.hex() not in repr(wk).lower()


def test_layout_is_exactly_as_documented() -> None:
    e = PayloadEntry(KeyType.TAK, 7, "ABCDEF", "B0016M3TC00N0000")
    assert encode_payload([e]) == "K101TAK000007ABCDEF0016B0016M3TC00N0000"
    assert decode_payload("K101TAK000007ABCDEF0016B0016M3TC00N0000") == (e,)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "X101",
        "K100",
        "K1AB",
        "K101TAK",
        "K101XXX000007ABCDEF0004ABCD",
        "K101TAK00000XABCDEF0004ABCD",
        "K101TAK000007GHIJKL0004ABCD",
        "K101TAK000007ABCDEF0005ABCD",
        "K101TAK000007ABCDEF0004ABCDEXTRA",
        "K101KEK000007ABCDEF0004ABCD",
        b"K101TAK000007ABCDEF0004AB\xffD",
    ],
)
def test_bad_payloads(bad: str | bytes) -> None:
    with pytest.raises(PayloadError):
        decode_payload(bad)


def test_terminal_side_refuses_wrong_kek_and_wrong_kcv() -> None:
    kek = generate_key(Algorithm.TDES2)
    tak = generate_key(Algorithm.TDES2)
    payload = build_payload(kek, Algorithm.TDES2, [(KeyType.TAK, 2, Algorithm.TDES2, tak)])
    with pytest.raises(KeyBlockInvalid) as e:
        install_key_change(generate_key(Algorithm.TDES2), payload)
    assert tak.hex().upper() not in str(e.value)
    (entry,) = decode_payload(payload)
    wrong = encode_payload([PayloadEntry(entry.key_type, entry.version, "000000", entry.block)])
    with pytest.raises(KcvMismatch) as e2:
        install_key_change(kek, wrong)
    assert tak.hex().upper() not in str(e2.value)
    # a TAK block relabelled as a TPK is refused (usage M3 is not P0)
    relabelled = encode_payload([PayloadEntry(KeyType.TPK, 2, entry.kcv, entry.block)])
    with pytest.raises(KeyBlockInvalid):
        install_key_change(kek, relabelled)
