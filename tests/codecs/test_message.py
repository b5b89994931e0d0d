"""The Message value."""

from __future__ import annotations

from forecourt.codecs.message import Message


def test_accessors_and_with_fields() -> None:
    msg = Message(
        "1200", {"2": "4761739001010010", "4": "000000004217", "11": "1", "41": "T"}, b"x"
    )
    assert (msg.pan, msg.amount, msg.stan, msg.terminal_id) == (
        "4761739001010010",
        "000000004217",
        "1",
        "T",
    )
    assert msg.get(4) == "000000004217" and msg.get(5) is None
    answer = msg.with_fields({2: None, 39: "000"}, mti="1210")
    assert answer.mti == "1210" and answer.raw is None
    assert "2" not in answer.fields and answer.fields["39"] == "000"
    assert msg.fields["2"] == "4761739001010010"  # the original is untouched


def test_raw_is_not_part_of_equality() -> None:
    assert Message("1200", {"3": "0"}, b"a") == Message("1200", {"3": "0"}, b"b")


def test_repr_never_shows_field_data() -> None:
    text = repr(Message("1200", {"2": "4761739001010010", "35": "4761739001010010=25"}))
    assert "476173" not in text
    assert text == "Message(mti='1200', fields=[2,35])"
