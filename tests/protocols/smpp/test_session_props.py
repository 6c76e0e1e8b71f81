"""Properties of the SMPP session over states x inputs (h2's style of state-machine test).

* Any PDU in any state: the session never raises, never answers a response,
  and every request gets an answer now or is handed to the glue to answer.
* Any bytes: the session never raises.
* Any split of the same bytes gives the same events and answers.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from protocols.smpp.codec import encode
from protocols.smpp.constants import RESPONSE_BIT
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import (
    PDU_CLASSES,
    RESPONSE_CLASSES,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    Pdu,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    Unbind,
    make_response,
)
from protocols.smpp.session import SmppSession
from protocols.smpp.session_events import BindRequested, PduReceived, SessionConfig
from protocols.smpp.session_state import BindState, Role

CONFIG = SessionConfig(enquire_link_interval=None, session_init_timeout=None)


def _open(role: Role) -> SmppSession:
    return SmppSession(role, CONFIG, now=0)


def _bound(role: Role, bind: type[Pdu]) -> SmppSession:
    esme, smsc = SmppSession(Role.ESME, CONFIG, now=0), SmppSession(Role.SMSC, CONFIG, now=0)
    esme.send(bind(), 0)
    smsc.receive_data(esme.data_to_send(), 0)
    event = smsc.next_event()
    assert isinstance(event, BindRequested)
    smsc.send(make_response(event.pdu), 0)
    esme.receive_data(smsc.data_to_send(), 0)
    session = esme if role is Role.ESME else smsc
    while session.next_event() is not None:
        pass
    return session


def _unbinding(role: Role) -> SmppSession:
    session = _bound(role, BindTransceiver)
    session.send(Unbind(), 0)
    session.data_to_send()
    return session


def _binding_esme() -> SmppSession:
    session = _open(Role.ESME)
    session.send(BindTransmitter(), 0)
    session.data_to_send()
    return session


MAKERS: list[Callable[[], SmppSession]] = [
    lambda: _open(Role.ESME),
    lambda: _open(Role.SMSC),
    _binding_esme,
    *(
        (lambda role=role, bind=bind: _bound(role, bind))
        for role in Role
        for bind in (BindTransmitter, BindReceiver, BindTransceiver)
    ),
    lambda: _unbinding(Role.ESME),
    lambda: _unbinding(Role.SMSC),
]


def _make(cls: type[Pdu], seq: int) -> Pdu:
    if cls is SubmitMulti:
        return SubmitMulti(sequence_number=seq, dest_address=(SmeAddress(destination_addr="1"),))
    return cls(sequence_number=seq)


pdus = st.builds(
    _make,
    st.sampled_from(sorted(PDU_CLASSES.values(), key=lambda c: c.command_id)),
    st.integers(1, 0x7FFFFFFF),
)


def answers(session: SmppSession) -> list[Pdu]:
    reader = PduReader()
    reader.feed(session.data_to_send())
    out = []
    while (pdu := reader.next_pdu()) is not None:
        out.append(pdu)
    return out


@given(st.sampled_from(range(len(MAKERS))), pdus)
def test_any_pdu_in_any_state(maker: int, pdu: Pdu) -> None:
    session = MAKERS[maker]()
    before = session.state
    session.receive_data(encode(pdu), 1)
    sent = answers(session)
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    if pdu.command_id & RESPONSE_BIT:
        assert sent == []  # a response is never answered
        return
    answered = [p for p in sent if p.sequence_number == pdu.sequence_number]
    handed = [e for e in events if isinstance(e, PduReceived | BindRequested)]
    if pdu.command_id not in RESPONSE_CLASSES:
        assert all(p.command_id & RESPONSE_BIT for p in sent)
        return
    assert len(answered) + len(handed) == 1, (before, pdu, sent, events)
    if answered:
        assert answered[0].command_id == pdu.command_id | RESPONSE_BIT
    else:
        # The glue's answer is accepted in whatever state the session is in now.
        session.send(make_response(handed[0].pdu), 2)


@given(st.sampled_from(range(len(MAKERS))), st.binary(max_size=200))
def test_any_bytes_never_raise(maker: int, data: bytes) -> None:
    session = MAKERS[maker]()
    session.receive_data(data, 1)
    session.data_to_send()
    while session.next_event() is not None:
        pass
    session.handle_timer(1000)


@given(st.lists(st.integers(1, 60), max_size=10))
def test_any_split_same_result(cuts: list[int]) -> None:
    stream = b"".join(
        encode(SubmitSm(sequence_number=i, short_message=b"m" * i)) for i in range(1, 8)
    )
    stream += b"\x00\x00\x00\x10\x00\x00\x06\x66\x00\x00\x00\x00\x00\x00\x00\x09"  # unknown command

    def run(chunks: list[bytes]) -> tuple[bytes, list[object]]:
        session = _bound(Role.SMSC, BindTransmitter)
        for chunk in chunks:
            session.receive_data(chunk, 1)
        events = []
        while (event := session.next_event()) is not None:
            events.append(event)
        return session.data_to_send(), [type(e) for e in events]

    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(stream[pos : pos + cut])
        pos += cut
    chunks.append(stream[pos:])
    assert run(chunks) == run([stream])
    assert run(chunks)[0] != b""
    assert BindState.BOUND_TX is _bound(Role.SMSC, BindTransmitter).state
