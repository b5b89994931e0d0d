"""A table row's own predicate tells apart messages of one class (switch/flows/table.py)."""

from __future__ import annotations

from forecourt.codecs.message import Message
from forecourt.codecs.network import function_code
from forecourt.switch.flows import unsupported
from forecourt.switch.flows.table import Row, flow_for


def test_a_row_with_a_predicate_takes_only_what_it_accepts() -> None:
    wanted = unsupported._refused("wanted")
    table = (
        Row("6", wanted, advice=False, when=lambda m: function_code(m) == "690"),
        Row("6", unsupported.ADMINISTRATIVE),
    )
    assert flow_for(Message("1604", {"24": "690"}), table) is wanted
    assert flow_for(Message("1604", {"24": "691"}), table) is unsupported.ADMINISTRATIVE
    # an advice of the same function is not a request the row takes
    assert flow_for(Message("1624", {"24": "690"}), table) is unsupported.ADMINISTRATIVE


def test_the_1987_family_has_no_function_code() -> None:
    assert function_code(Message("0600", {"24": "690"})) is None
    assert function_code(Message("1604", {"24": "690"})) == "690"
