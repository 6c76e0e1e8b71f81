"""SMPP session benchmark: an SMSC-side session taking submit_sm and answering each.

Run: ``.venv/bin/python -m bench.smpp_session [--seconds 1.0]``

Per message, warpd does the whole sans-I/O session path: receive_data (framing,
decode, bind-state table, window bookkeeping), next_event, send(submit_sm_resp)
and data_to_send, with 100 PDUs arriving per read as under load.  The peer row
is smpplib 2.2.4 doing only its codec part of the same job (parse_pdu of the
submit_sm, then build and generate the submit_sm_resp): it has no session
state machine to run, so the ratio understates the difference.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import smpplib.smpp

from protocols.record import replace
from protocols.smpp.codec import encode
from protocols.smpp.framing import PduReader
from protocols.smpp.pdu import BindTransceiver, SubmitSm, make_response
from protocols.smpp.session import SmppSession
from protocols.smpp.session_events import BindRequested, PduReceived, SessionConfig
from protocols.smpp.session_state import Role

BATCH = 100
SUBMIT = SubmitSm(
    source_addr="Acme",
    source_addr_ton=5,
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="447700900123",
    registered_delivery=1,
    short_message=b"Your verification code is 493817",
)
STREAM = b"".join(encode(replace(SUBMIT, sequence_number=i)) for i in range(1, BATCH + 1))


def _frames(stream: bytes) -> list[bytes]:
    reader = PduReader()
    reader.feed(stream)
    return list(reader)


FRAMES = _frames(STREAM)


def bound_smsc() -> SmppSession:
    config = SessionConfig(window=BATCH, enquire_link_interval=None, session_init_timeout=None)
    session = SmppSession(Role.SMSC, config, now=0)
    session.receive_data(encode(BindTransceiver(sequence_number=1, system_id="c")), 0)
    event = session.next_event()
    assert isinstance(event, BindRequested)
    session.send(make_response(event.pdu), 0)
    session.data_to_send()
    while session.next_event() is not None:
        pass
    return session


_SESSION = bound_smsc()


def ours() -> int:
    session = _SESSION
    session.receive_data(STREAM, 1.0)
    answered = 0
    while (event := session.next_event()) is not None:
        assert isinstance(event, PduReceived)
        session.send(make_response(event.pdu, message_id="m"), 1.0)
        answered += 1
    session.data_to_send()
    return answered


class _Client:
    sequence = 1

    def next_sequence(self) -> int:
        return 1


_CLIENT = _Client()


def theirs() -> int:
    for frame in FRAMES:
        pdu = smpplib.smpp.parse_pdu(frame, client=_CLIENT)
        resp = smpplib.smpp.make_pdu(
            "submit_sm_resp", client=_CLIENT, sequence=pdu.sequence, message_id="m"
        )
        resp.generate()
    return len(FRAMES)


def rate(work: Callable[[], int], seconds: float) -> float:
    """Messages per second: best of five runs of ``seconds / 5`` each."""
    best = 0.0
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            count += work()
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    assert ours() == theirs() == BATCH
    mine = rate(ours, args.seconds)
    peer = rate(theirs, args.seconds)
    print("| workload | implementation | submit_sm/s | us/message | ratio |")
    print("|---|---|---:|---:|---:|")
    print(
        f"| submit_sm -> resp | warpd SmppSession (SMSC) | {mine:,.0f} | {1e6 / mine:.1f} | "
        f"{mine / peer:.1f}x |"
    )
    print(
        f"| submit_sm -> resp | smpplib 2.2.4 codec only | {peer:,.0f} | {1e6 / peer:.1f} | 1.0x |"
    )


if __name__ == "__main__":
    main()
