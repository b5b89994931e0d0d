"""The ISO 8583 version family is a `Family` member wherever codecs/ hands one out.

Functions that take a family accept the member; a plain "1993" / "1987" (from a
caller not yet converted, or a configuration file) gives the same result.
"""

from __future__ import annotations

import pytest
from forecourt.codecs import ifsf, iso87, iso87ascii, iso87bcd
from forecourt.codecs.action_codes import FAMILIES, Outcome, code_for, is_approved, outcome_of
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.family import Family
from forecourt.codecs.network import NetworkFunction, network_function, network_request


def test_dialect_modules_and_dialects_name_members() -> None:
    assert ifsf.FAMILY is Family.ISO1993
    assert iso87.FAMILY is iso87ascii.FAMILY is iso87bcd.FAMILY is Family.ISO1987
    assert get_dialect("ifsf").family is Family.ISO1993
    assert get_dialect("iso87ascii", "hex").family is Family.ISO1987
    assert get_dialect("iso87bcd").family is Family.ISO1987


def test_families_are_the_members() -> None:
    assert FAMILIES == (Family.ISO1993, Family.ISO1987)
    assert all(type(f) is Family for f in FAMILIES)


@pytest.mark.parametrize(("family", "text"), [(Family.ISO1993, "1993"), (Family.ISO1987, "1987")])
def test_a_plain_string_gives_the_same_answer(family: Family, text: str) -> None:
    for outcome in Outcome:
        assert code_for(outcome, text) == code_for(outcome, family)
        code = code_for(outcome, family)
        assert outcome_of(code, text) is outcome_of(code, family)
        assert is_approved(code, text) is is_approved(code, family)
    for function in NetworkFunction:
        member = network_request(family, function, "000001", "T0000001", now=0.0)
        plain = network_request(text, function, "000001", "T0000001", now=0.0)
        assert member == plain
        assert network_function(member) is function


def test_network_request_per_family() -> None:
    sign_on_93 = network_request(Family.ISO1993, NetworkFunction.SIGN_ON, "000001", now=0.0)
    assert (sign_on_93.mti, sign_on_93.fields["24"]) == ("1804", "801")
    echo_87 = network_request(Family.ISO1987, NetworkFunction.ECHO, "000002", now=0.0)
    assert (echo_87.mti, echo_87.fields["70"]) == ("0800", "301")
