"""Hostile SMPP clients (issue 12): connections that never bind, half-open binds, bind floods
and password guessing, oversized PDUs. Each ends in seconds; warpd keeps serving the customer.
"""

from __future__ import annotations

import asyncio
import struct
import time

from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import BindTransceiver
from tests.warpd.sms.conftest import Running
from tests.warpd.sms.helpers import Peer, bind

from .clients import closed_after, trickle
from .tally import TALLY, Hostile

ROK = CommandStatus.ESME_ROK


async def test_a_connection_that_never_binds_is_closed_by_session_init(hardened: Running) -> None:
    reader, writer = await asyncio.open_connection(*hardened.smpp)
    took = await closed_after(reader, 5.0)
    writer.close()
    TALLY.hostile.append(
        Hostile("SMPP connect, never bind", f"closed after {took:.1f} s (session_init_timeout 1 s)"
                if took is not None else "still open after 5 s", took is not None)
    )  # fmt: skip
    assert took is not None, "a connection that never binds is held open"
    assert 0.8 < took < 3.0


async def test_slowloris_bind_a_byte_at_a_time_is_closed(hardened: Running) -> None:
    from protocols.smpp.codec import encode

    pdu = encode(BindTransceiver(system_id=hardened.system_id, password=hardened.password))
    reader, writer = await asyncio.open_connection(*hardened.smpp)
    started = time.monotonic()
    sending = asyncio.create_task(trickle(writer, pdu, 0.3, started + 6.0))
    took = await closed_after(reader, 6.0)
    sent = await sending
    writer.close()
    TALLY.hostile.append(
        Hostile("SMPP slowloris bind (1 byte / 0.3 s)",
                f"closed after {took:.1f} s, {sent} of {len(pdu)} bytes read"
                if took is not None else "still open after 6 s", took is not None)
    )  # fmt: skip
    assert took is not None
    assert took < 3.0


async def test_a_half_open_bind_is_closed_by_enquire_link(hardened: Running) -> None:
    """Bound, then the peer vanishes without a FIN: it reads nothing and answers nothing."""
    peer, resp = await bind(hardened, hardened.system_id, hardened.password)
    assert resp.command_status == ROK
    # Never read again: warpd's enquire_link (1 s) goes unanswered (response_timeout 1 s).
    took = await closed_after_silence(peer, 8.0)
    TALLY.hostile.append(
        Hostile("SMPP half-open bind (silent after bind)",
                f"closed after {took:.1f} s (enquire_link 1 s + response_timeout 1 s)"
                if took is not None else "still open after 8 s", took is not None)
    )  # fmt: skip
    assert took is not None, "a bound peer that answers nothing is held forever"
    peer.close()


async def closed_after_silence(peer: Peer, limit: float) -> float | None:
    """Read what warpd sends (enquire_link) without ever answering; seconds until it closes."""
    return await closed_after(peer.reader, limit)


async def test_an_oversized_pdu_is_refused_from_its_header(hardened: Running) -> None:
    reader, writer = await asyncio.open_connection(*hardened.smpp)
    started = time.monotonic()
    # command_length 64 MiB: refused on the header, before any body is read.
    writer.write(struct.pack(">IIII", 64 * 1024 * 1024, 0x00000009, 0, 1) + b"\0" * 1024)
    took = await closed_after(reader, 5.0)
    writer.close()
    TALLY.hostile.append(
        Hostile("SMPP command_length 64 MiB",
                f"closed after {took:.2f} s, body never read" if took is not None
                else "still open after 5 s", took is not None)
    )  # fmt: skip
    assert took is not None
    assert time.monotonic() - started < 2.0


async def test_a_bind_flood_with_wrong_passwords_is_answered_slowly_and_closed(
    warpd: Running,
) -> None:
    flood = 40
    started = time.monotonic()

    async def guess(n: int) -> tuple[int | None, float, bool]:
        """The bind's status (None: closed unanswered), seconds to it, and whether it closed."""
        peer = await Peer.connect(warpd)
        t0 = time.monotonic()
        try:
            resp = await peer.request(
                BindTransceiver(system_id=warpd.system_id, password=f"guess{n:03d}")
            )
        except asyncio.IncompleteReadError:
            peer.close()  # closed before its answer: refused all the same
            return None, time.monotonic() - t0, True
        took = time.monotonic() - t0
        closed = await peer.closed(3.0)
        peer.close()
        return resp.command_status, took, closed

    guesses = asyncio.gather(*(guess(n) for n in range(flood)))
    await asyncio.sleep(0.1)
    # The real customer binds in the middle of the flood.
    t0 = time.monotonic()
    peer, resp = await bind(warpd, warpd.system_id, warpd.password)
    customer = time.monotonic() - t0
    results = await guesses
    elapsed = time.monotonic() - started
    peer.close()
    statuses = {status for status, _, _ in results if status is not None}
    unanswered = sum(1 for status, _, _ in results if status is None)
    slowest_refusal = min(took for status, took, _ in results if status is not None)
    TALLY.hostile.append(
        Hostile(f"SMPP bind flood, {flood} wrong passwords at once",
                f"{sorted(hex(s) for s in statuses)} after >= {slowest_refusal:.2f} s and closed "
                f"({unanswered} closed unanswered); {flood / elapsed:.0f} "
                f"guesses/s from one address; the customer bound "
                f"in {customer:.2f} s meanwhile")
    )  # fmt: skip
    assert resp.command_status == ROK
    # Wrong password, or (past the lockout's limit) refused unchecked.
    assert statuses <= {CommandStatus.ESME_RINVPASWD, CommandStatus.ESME_RBINDFAIL}, statuses
    assert all(closed for _, _, closed in results), "a failed bind left the connection open"
    assert slowest_refusal >= 0.45  # FAILED_BIND_DELAY
    # scrypt runs in the default executor: the customer's bind queues behind the flood's
    # hashes (with a 1 s session_init_timeout it is closed unanswered).
    assert customer < 5.0


async def test_unknown_system_id_and_wrong_password_look_the_same(hardened: Running) -> None:
    _, wrong = await bind(hardened, hardened.system_id, "not-it")
    _, unknown = await bind(hardened, "nosuchuser", "not-it")
    assert wrong.command_status == unknown.command_status
    TALLY.hostile.append(
        Hostile("SMPP unknown system_id vs wrong password",
                f"same answer 0x{wrong.command_status:08x}")
    )  # fmt: skip


async def test_password_guessing_locks_the_system_id_out(hardened: Running) -> None:
    async def guess(n: int) -> int:
        peer, resp = await bind(hardened, hardened.system_id, f"guess{n:03d}")
        peer.close()
        return resp.command_status

    statuses = await asyncio.gather(*(guess(n) for n in range(30)))
    assert ROK not in statuses
    peer, resp = await bind(hardened, hardened.system_id, hardened.password)
    peer.close()
    locked = resp.command_status != ROK
    TALLY.hostile.append(
        Hostile("SMPP password guessing: 30 wrong, then the right one",
                "locked out" if locked else "the right password binds at once: no lockout",
                locked)
    )  # fmt: skip
    # Locked out for a while, even with the right password (or at least slowed down).
    assert locked
