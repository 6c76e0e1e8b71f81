"""The plain-params fast path of parse_params agrees with the general grammar."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.sip.errors import SipError
from protocols.sip.grammar import parse_params, parse_params_general


def outcome(parse: object, text: str) -> object:
    assert callable(parse)
    try:
        return parse(text)
    except SipError:
        return SipError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("branch=z9hG4bK74bf9;rport", (("branch", "z9hG4bK74bf9"), ("rport", None))),
        ("tag=9fxced76sl", (("tag", "9fxced76sl"),)),
        ("received=[2001:db8::1];rport=5060", (("received", "[2001:db8::1]"), ("rport", "5060"))),
        ("a=b=c", (("a", "b=c"),)),
        ('x="quoted ; value"', (("x", '"quoted ; value"'),)),
        ("lr ; x = y", (("lr", None), ("x", "y"))),
    ],
)
def test_common_and_general_forms(text: str, expected: object) -> None:
    assert parse_params(text) == expected == parse_params_general(text)


@pytest.mark.parametrize("text", ["", ";", "a;;b", "a=", "=b", "a b", 'a="unterminated'])
def test_malformed_params_are_refused_by_both_paths(text: str) -> None:
    for parse in (parse_params, parse_params_general):
        with pytest.raises(SipError):
            parse(text)


@given(st.text(alphabet='ab9=;" \t.[]:@?%()/\\\u00e9,<', max_size=24))
def test_fast_path_agrees_with_the_general_grammar(text: str) -> None:
    assert outcome(parse_params, text) == outcome(parse_params_general, text)
