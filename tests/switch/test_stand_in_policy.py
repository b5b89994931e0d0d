"""The stand-in decision as a property: which purchases the floors let through.

`StandInPolicy.check` alone (no sockets: it is a pure function of the request and
`[stand_in]`); the real-socket cases are in test_stand_in.py.
"""

from __future__ import annotations

from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.switch.config import parse_config
from forecourt.switch.stand_in import StandInPolicy, Verification, verification_of
from hypothesis import given
from hypothesis import strategies as st

PAN = "4761739001010010"
floors = st.integers(min_value=0, max_value=100_000)


def _policy(pin: int, signature: int, offline: int) -> StandInPolicy:
    doc = {
        "acquirers": [{"name": "bank", "host": "127.0.0.1", "port": 1}],
        "routes": [{"name": "cards", "acquirer": "bank", "prefixes": ["4761"]}],
        "stand_in": {
            "enabled": True,
            "floor_limits": [
                {"product": "cards", "pin": pin, "signature": signature, "offline": offline}
            ],
        },
    }
    return StandInPolicy(parse_config(doc).stand_in)


def _purchase(amount: int, method: Verification, code: str = "000000") -> Message:
    fields = {"2": PAN, "3": code, "4": f"{amount:012d}", "49": "978", "22": "C10101C14001"}
    if method is Verification.PIN:
        fields["52"] = "0123456789ABCDEF"
    if method is Verification.OFFLINE:
        fields["22"] = "C10101C11001"
    return Message("1200", fields)


@given(
    pin=floors,
    signature=floors,
    offline=floors,
    amount=st.integers(min_value=0, max_value=200_000),
    method=st.sampled_from(list(Verification)),
)
def test_a_purchase_stands_in_exactly_when_its_floor_covers_it(
    pin: int, signature: int, offline: int, amount: int, method: Verification
) -> None:
    policy = _policy(pin, signature, offline)
    request = _purchase(amount, method)
    assert verification_of(request, Family.ISO1993) is method
    check = policy.check(request, Family.ISO1993, "iso8583", PAN)
    floor = {Verification.PIN: pin, Verification.SIGNATURE: signature}.get(method, offline)
    assert (check.refusal is None) == (floor > 0 and amount <= floor)
    if check.refusal is None:
        assert (check.product, check.method, check.floor) == ("cards", method, floor)


@given(
    code=st.sampled_from(["000000", "200000", "310000", "010000", "090000"]),
    kind=st.sampled_from(["iso8583", "ledger", "wallet"]),
    pan=st.sampled_from([PAN, "5100000000000008"]),
    currency=st.sampled_from(["978", "840"]),
)
def test_only_a_purchase_in_the_currency_to_iso8583_with_a_product(
    code: str, kind: str, pan: str, currency: str
) -> None:
    policy = _policy(100, 100, 100)
    request = _purchase(50, Verification.SIGNATURE, code).with_fields({2: pan, 49: currency})
    check = policy.check(request, Family.ISO1993, kind, pan)
    eligible = code == "000000" and kind == "iso8583" and pan == PAN and currency == "978"
    # never a refund, an inquiry, cash; never another kind, currency or a card with no product
    assert (check.refusal is None) == eligible


def test_1987_never_reads_field_22_as_offline() -> None:
    request = _purchase(50, Verification.OFFLINE).with_fields({22: "C10101C11001"})
    assert verification_of(request, Family.ISO1987) is Verification.SIGNATURE
