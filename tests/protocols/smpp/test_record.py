"""protocols.record: one-call construction keeps every frozen-dataclass behaviour."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.record import fast_init, make
from protocols.smpp.codec import decode, encode
from protocols.smpp.pdu import PDU_CLASSES, DeliverSm, Pdu, SmeAddress, SubmitSm
from protocols.smpp.tlv import Tag, Tlv


@fast_init
@dataclass(frozen=True)
class _Sample:
    required: int
    text: str = "x"
    items: list[int] = field(default_factory=list)
    flag: bool = field(default=False, kw_only=True)


def test_init_binds_positionals_defaults_factories_and_keywords() -> None:
    sample = _Sample(1)
    assert (sample.required, sample.text, sample.items, sample.flag) == (1, "x", [], False)
    assert _Sample(2, "y", [3], flag=True) == _Sample(required=2, text="y", items=[3], flag=True)
    assert _Sample(1).items is not _Sample(1).items  # a fresh default per instance


def test_init_refuses_what_the_dataclass_init_refuses() -> None:
    with pytest.raises(TypeError):
        _Sample()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Sample(1, "y", [], True)  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Sample(1, unknown=2)  # type: ignore[call-arg]


def test_record_stays_frozen() -> None:
    pdu = SubmitSm(source_addr="Acme", sequence_number=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pdu.source_addr = "Other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        pdu.sequence_number = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del pdu.short_message  # type: ignore[misc]
    tlv = Tlv(Tag.MESSAGE_STATE, b"\x02")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tlv.value = b"\x03"  # type: ignore[misc]


def test_equality_hash_repr_and_replace() -> None:
    a = DeliverSm(source_addr="1", short_message=b"hi", sequence_number=2)
    b = DeliverSm(source_addr="1", short_message=b"hi", sequence_number=2)
    assert a == b
    assert hash(a) == hash(b)
    assert a != SubmitSm(source_addr="1", short_message=b"hi", sequence_number=2)
    assert a != dataclasses.replace(a, sequence_number=3)
    assert repr(a).startswith("DeliverSm(sequence_number=2, command_status=0, tlvs=(), ")
    replaced = dataclasses.replace(a, destination_addr="447700900123")
    assert replaced.destination_addr == "447700900123"
    assert replaced.short_message == b"hi"
    assert [f.name for f in dataclasses.fields(a)][:3] == [
        "sequence_number",
        "command_status",
        "tlvs",
    ]
    assert {Tlv(1, b"a"), Tlv(1, b"a"), Tlv(2, b"a")} == {Tlv(1, b"a"), Tlv(2, b"a")}


def test_header_fields_stay_keyword_only() -> None:
    with pytest.raises(TypeError):
        Pdu(1)  # type: ignore[misc]
    assert SmeAddress(1, 2, "3") == SmeAddress(
        dest_addr_ton=1, dest_addr_npi=2, destination_addr="3"
    )


def test_copy_and_pickle() -> None:
    pdu = SubmitSm(short_message=b"x", tlvs=(Tlv(Tag.MESSAGE_STATE, b"\x02"),))
    assert copy.copy(pdu) == pdu
    assert copy.deepcopy(pdu) == pdu
    assert pickle.loads(pickle.dumps(pdu)) == pdu


def test_make_equals_init() -> None:
    built = SubmitSm(source_addr="Acme", sequence_number=9)
    values = {f.name: getattr(built, f.name) for f in dataclasses.fields(built)}
    made = make(SubmitSm, values)
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.source_addr = "x"  # type: ignore[misc]


def test_decoded_pdus_are_ordinary_records() -> None:
    pdu = DeliverSm(source_addr="1", short_message=b"id:1", tlvs=(Tlv(Tag.MESSAGE_STATE, b"\x02"),))
    got = decode(encode(pdu))
    assert got == pdu
    assert hash(got) == hash(pdu)
    assert dataclasses.replace(got, sequence_number=5) == dataclasses.replace(
        pdu, sequence_number=5
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.tlvs = ()  # type: ignore[misc]


@pytest.mark.parametrize("cls", [*PDU_CLASSES.values(), Tlv, SmeAddress])
def test_every_record_has_the_one_call_init(cls: type) -> None:
    # A subclass without @fast_init would silently get dataclass's slow __init__ back.
    init = cls.__dict__["__init__"]
    assert "_set" in init.__code__.co_names
    assert init.__qualname__ == f"{cls.__qualname__}.__init__"


def test_fast_init_refuses_classes_it_cannot_serve() -> None:
    class Plain:
        pass

    @dataclass
    class Mutable:
        a: int = 0

    @dataclass(frozen=True, slots=True)
    class Slotted:
        a: int = 0

    @dataclass(frozen=True)
    class PostInit:
        a: int = 0

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class NoInit:
        a: int = field(default=0, init=False)

    for cls in (Plain, Mutable, Slotted, PostInit, NoInit):
        with pytest.raises(TypeError):
            fast_init(cls)


_SUBMIT_FIELDS = dataclasses.fields(SubmitSm)


@given(st.data())
def test_init_agrees_with_dataclass_defaults(data: st.DataObject) -> None:
    """Any subset of keywords gives the dataclass defaults for the rest."""
    chosen = data.draw(st.sets(st.sampled_from([f.name for f in _SUBMIT_FIELDS])))
    values = {name: data.draw(st.integers(0, 255)) for name in chosen}
    pdu = SubmitSm(**values)  # type: ignore[arg-type]
    for f in _SUBMIT_FIELDS:
        assert getattr(pdu, f.name) == values.get(f.name, f.default)


def test_positional_order_is_the_section_4_order() -> None:
    pdu = SubmitSm("CMT", 1, 2, "Acme", 3, 4, "447700900123")
    assert (pdu.service_type, pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr) == (
        "CMT",
        1,
        2,
        "Acme",
    )
    assert (pdu.dest_addr_ton, pdu.dest_addr_npi, pdu.destination_addr) == (3, 4, "447700900123")
