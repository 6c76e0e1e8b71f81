"""protocols.record: tuple-backed records keep every frozen-dataclass behaviour."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import ClassVar
from unittest import mock

import pytest

from protocols.record import Record, RecordMeta, fields, replace
from protocols.smpp.codec import decode, encode
from protocols.smpp.pdu import PDU_CLASSES, DeliverSm, Pdu, SmeAddress, SubmitSm
from protocols.smpp.tlv import Tag, Tlv


class _Base(Record):
    kind: ClassVar[str] = "base"
    required: int
    flag: bool = dataclasses.field(default=False, kw_only=True)


class _Sample(_Base):
    text: str = "x"
    items: tuple[int, ...] = ()


class _Other(_Base):
    text: str = "x"
    items: tuple[int, ...] = ()


def test_construction_binds_as_a_dataclass_init_would() -> None:
    sample = _Sample(1)
    assert (sample.required, sample.flag, sample.text, sample.items) == (1, False, "x", ())
    assert _Sample(2, "y", (3,), flag=True) == _Sample(required=2, text="y", items=(3,), flag=True)
    assert _Sample.kind == "base"  # a ClassVar is a class attribute, not a field
    assert [f.name for f in fields(_Sample)] == ["required", "flag", "text", "items"]
    assert fields(sample) == fields(_Sample)
    assert fields(_Sample)[1] == ("flag", False, True)


def test_construction_refuses_what_a_dataclass_init_refuses() -> None:
    with pytest.raises(TypeError):
        _Sample()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Sample(1, "y", (), True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Sample(1, unknown=2)  # type: ignore[call-arg]


def test_records_are_frozen_and_slotted() -> None:
    sample = _Sample(1)
    with pytest.raises(AttributeError):
        sample.text = "y"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del sample.text
    with pytest.raises(AttributeError):
        sample.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(sample, "__dict__")


def test_equality_is_per_type_and_hash_follows_it() -> None:
    assert _Sample(1) == _Sample(1)
    assert hash(_Sample(1, "y")) == hash(_Sample(1, "y"))
    assert _Sample(1) != _Other(1)
    assert not _Sample(1) == _Other(1)  # noqa: SIM201 (__eq__ itself under test)
    assert _Sample(1) != (1, False, "x", ())
    assert _Sample(1) != _Sample(2)
    assert not _Sample(1) != _Sample(1)  # noqa: SIM202 (__ne__ itself under test)
    assert {Tlv(1, b"a"), Tlv(1, b"a"), Tlv(2, b"a")} == {Tlv(1, b"a"), Tlv(2, b"a")}
    # Anything that is not a tuple decides for itself, as with a dataclass.
    assert _Sample(1) == mock.ANY
    assert not _Sample(1) != mock.ANY  # noqa: SIM202 (__ne__ itself under test)


def test_repr_names_every_field_in_storage_order() -> None:
    assert repr(_Sample(1, items=(2,))) == "_Sample(required=1, flag=False, text='x', items=(2,))"
    pdu = DeliverSm(source_addr="1", short_message=b"hi", sequence_number=2)
    assert repr(pdu).startswith("DeliverSm(sequence_number=2, command_status=0, tlvs=(), ")


def test_replace_changes_named_fields_only() -> None:
    sample = _Sample(1, "y", flag=True)
    changed = replace(sample, text="z", required=5)
    assert changed == _Sample(5, "z", flag=True)
    assert type(changed) is _Sample
    assert sample == _Sample(1, "y", flag=True)
    with pytest.raises(TypeError, match="no field 'nope'"):
        replace(sample, nope=1)


def test_class_vars_are_recognised_without_pep_563() -> None:
    namespace: dict[str, object] = {}
    exec(  # a module without `from __future__ import annotations`
        "import typing\nimport typing as t\nfrom protocols.record import Record\n"
        "class Plain(Record):\n"
        "    a: typing.ClassVar[int] = 1\n    b: t.ClassVar[int] = 2\n    value: int = 0\n",
        namespace,
    )
    plain = namespace["Plain"]
    assert [f.name for f in fields(plain)] == ["value"]  # type: ignore[arg-type]


def test_pattern_matching_uses_the_positional_fields() -> None:
    match _Sample(1, "y", flag=True):
        case _Sample(1, "y", items=()) as matched:
            assert matched.flag
        case _:
            pytest.fail("did not match")
    assert _Sample.__match_args__ == ("required", "text", "items")


def test_copy_and_pickle() -> None:
    pdu = SubmitSm(short_message=b"x", tlvs=(Tlv(Tag.MESSAGE_STATE, b"\x02"),))
    assert copy.copy(pdu) == pdu
    assert copy.deepcopy(pdu) == pdu
    assert pickle.loads(pickle.dumps(pdu)) == pdu


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(TypeError, match="reserved"):

        class _Count(Record):
            count: int = 0  # type: ignore[assignment]

    with pytest.raises(TypeError, match="immutable defaults"):

        class _Factory(Record):
            items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="redeclares"):

        class _Again(_Base):
            required: int = 0

    with pytest.raises(TypeError, match="default and kw_only"):

        class _Hidden(Record):
            secret: str = dataclasses.field(default="", repr=False)

    with pytest.raises(TypeError, match="follows a default"):

        class _Order(Record):
            first: int = 0
            second: int  # type: ignore[misc]

    for generated in ("__new__", "__init__", "__post_init__"):
        with pytest.raises(TypeError, match="generated __new__"):
            RecordMeta("_Custom", (Record,), {generated: lambda *args: None})

    with pytest.raises(TypeError, match="one base only"):

        class _Both(_Sample, _Other):
            pass


def test_pdu_header_fields_stay_keyword_only() -> None:
    with pytest.raises(TypeError):
        Pdu(1)  # type: ignore[call-arg]
    assert SmeAddress(1, 2, "3") == SmeAddress(
        dest_addr_ton=1, dest_addr_npi=2, destination_addr="3"
    )


def test_decoded_pdus_are_ordinary_records() -> None:
    pdu = DeliverSm(source_addr="1", short_message=b"id:1", tlvs=(Tlv(Tag.MESSAGE_STATE, b"\x02"),))
    got = decode(encode(pdu))
    assert got == pdu
    assert hash(got) == hash(pdu)
    assert replace(got, sequence_number=5) == replace(pdu, sequence_number=5)
    with pytest.raises(AttributeError):
        got.tlvs = ()  # type: ignore[misc]


@pytest.mark.parametrize("cls", PDU_CLASSES.values(), ids=lambda cls: cls.__name__)
def test_every_pdu_stores_its_header_first(cls: type[Pdu]) -> None:
    # The codec slices the body off at index 3 (codec._BODY_START).
    names = [f.name for f in fields(cls)]
    assert names[:3] == ["sequence_number", "command_status", "tlvs"]
    pdu = cls(sequence_number=9, command_status=1)
    assert pdu[:2] == (9, 1)
    assert not hasattr(pdu, "__dict__")
