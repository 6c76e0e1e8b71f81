"""CDR closing, registrar planning and trunk digest checks: pure, no loop."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import uuid

import pytest

from protocols.ng.replies import CallStats, Counters, SsrcStats, StreamStats
from protocols.sip.digest import DigestAlgorithm, compute_response
from protocols.sip.headers import AuthValue
from protocols.sip.message import SipRequest, SipResponse
from protocols.sip.transaction import StreamAddr, Transport
from warpd.voice.auth import Refusal, TrunkAuth, answer_challenge
from warpd.voice.cdr import Cdr, close_cdr, disposition_of
from warpd.voice.inbox import q850_of
from warpd.voice.media import fill_media_stats
from warpd.voice.rating import VoiceRate
from warpd.voice.registrar import Binding, plan_register
from warpd.voice.session_timer import (
    CarrierTimer,
    SessionTimer,
    carrier_request,
    carrier_timer,
    min_se,
    negotiate,
)
from warpd.voice.trunks import Directory, Gateway, Trunk

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def cdr(**kw: object) -> Cdr:
    return Cdr(uuid.uuid4(), "outbound", "c@x", "100", "441234", T0, **kw)  # type: ignore[arg-type]


def test_close_an_answered_call_bills_from_answer() -> None:
    rate = VoiceRate("", per_min_micros=60_000, connect_fee_micros=1000, first_increment_s=30,
                     next_increment_s=6)  # fmt: skip
    end = T0 + dt.timedelta(seconds=36, milliseconds=1)
    closed = close_cdr(cdr(answer_at=T0 + dt.timedelta(seconds=5)), end, rate, cancelled=False)
    assert (closed.disposition, closed.billsec, closed.duration_ms) == ("ANSWERED", 32, 36_001)
    assert closed.price_micros == 1000 + 36 * 1000  # 30 s + one 6 s block, 1000 micros/s
    assert closed.hangup_by == "system"


def test_close_unanswered_and_cancelled_calls() -> None:
    cancelled = close_cdr(cdr(), T0, None, cancelled=True)
    assert (cancelled.disposition, cancelled.sip_code, cancelled.hangup_by) == (
        "CANCELLED", 487, "caller",
    )  # fmt: skip
    busy = close_cdr(cdr(sip_code=486), T0, None, cancelled=False)
    assert (busy.disposition, busy.price_micros) == ("BUSY", 0)
    assert [disposition_of(c) for c in (408, 480, 503, 404, 600)] == [
        "NO ANSWER", "NO ANSWER", "CONGESTION", "FAILED", "BUSY",
    ]  # fmt: skip


def test_cdr_json_round_trip_keeps_types() -> None:
    original = cdr(answer_at=T0, attempt_codes=[503, 200], account_id=3)
    assert Cdr.from_json(original.to_json()) == original


def test_media_stats_are_split_by_side() -> None:
    stats = CallStats(
        created=None, last_signal=None, rtp=Counters(), rtcp=Counters(),
        ssrcs=(SsrcStats(11, 100, 17_200, 3, 42, 40), SsrcStats(22, 90, 15_480, 1, 40, 38)),
        streams=(
            StreamStats("A", 30000, False, 11, Counters(100, 17_200)),
            StreamStats("A", 30001, True, None, Counters(5, 400)),
            StreamStats("B", 30002, False, 22, Counters(90, 15_480)),
        ),
    )  # fmt: skip
    record = cdr()
    fill_media_stats(record, stats, "A", "B")
    assert (record.rtp_packets_a, record.rtp_bytes_a, record.rtp_lost_a) == (100, 17_200, 3)
    assert (record.rtp_packets_b, record.rtp_lost_b) == (90, 1)
    assert (record.mos_avg_x10, record.mos_min_x10) == (41, 38)


def register(contact: str, expires: str | None = "600") -> SipRequest:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-r"),
        ("From", "<sip:pbx@example.com>;tag=1"), ("To", "<sip:pbx@example.com>"),
        ("Call-ID", "reg@192.0.2.1"), ("CSeq", "7 REGISTER"), ("Contact", contact),
    ]  # fmt: skip
    if expires is not None:
        headers.append(("Expires", expires))
    return SipRequest.build("REGISTER", "sip:example.com", headers)


def test_register_plan_bounds_expires_and_removes() -> None:
    source = ("203.0.113.5", 40000)
    plan = plan_register(register("<sip:pbx@10.0.0.5:5060>", "99999"), 1, source, T0,
                         min_expires=60, max_expires=3600)  # fmt: skip
    assert plan.status == 200
    [binding] = plan.store
    assert binding.expires_at == T0 + dt.timedelta(seconds=3600)
    assert binding.cseq == 7
    # Behind NAT the Contact's private address is unreachable: calls go to the source.
    assert binding.target() == source
    short = plan_register(register("<sip:pbx@10.0.0.5>", "10"), 1, source, T0,
                          min_expires=60, max_expires=3600)  # fmt: skip
    assert (short.status, short.min_expires) == (423, 60)
    gone = plan_register(register("<sip:pbx@10.0.0.5>;expires=0"), 1, source, T0,
                         min_expires=60, max_expires=3600)  # fmt: skip
    assert gone.remove == ("sip:pbx@10.0.0.5",)
    star = plan_register(register("*", "0"), 1, source, T0, min_expires=60, max_expires=3600)
    assert star.remove_all


def test_a_contact_at_its_own_source_is_used_as_is() -> None:
    binding = Binding(1, "sip:pbx@127.0.0.1:5099", ("127.0.0.1", 40000), "c", 1, T0)
    assert binding.target() == ("127.0.0.1", 5099)


def test_a_binding_made_over_tcp_sends_calls_back_on_its_connection() -> None:
    connection = StreamAddr("127.0.0.1", 40000, Transport.TCP)
    binding = Binding(1, "sip:pbx@127.0.0.1:5099;transport=tcp", connection, "c", 1, T0)
    assert binding.target() == connection


def _trunk(password: str = "pw") -> Trunk:
    a1 = f"pbx:warpd:{password}".encode()
    md5, sha256 = hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest()
    return Trunk(
        5, 1, "pbx", "digest", username="pbx", realm="warpd", ha1_md5=md5, ha1_sha256=sha256
    )


def invite(authorization: str | None = None) -> SipRequest:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-i"), ("From", "<sip:p@x>;tag=1"),
        ("To", "<sip:441@x>"), ("Call-ID", "i@x"), ("CSeq", "1 INVITE"),
    ]  # fmt: skip
    if authorization is not None:
        headers.append(("Proxy-Authorization", authorization))
    return SipRequest.build("INVITE", "sip:441@x", headers)


@pytest.mark.parametrize("algorithm", [DigestAlgorithm.MD5, DigestAlgorithm.SHA_256])
def test_trunk_auth_challenges_then_accepts_a_right_answer(algorithm: DigestAlgorithm) -> None:
    auth = TrunkAuth("warpd", (DigestAlgorithm.SHA_256, DigestAlgorithm.MD5), b"k" * 32)
    directory = Directory(trunks=(_trunk(),))
    challenge = auth.authenticate(invite(), directory, 1000.0)
    assert isinstance(challenge, Refusal)
    assert challenge.status == 407
    assert [name for name, _ in challenge.headers] == ["Proxy-Authenticate"] * 2
    nonce = auth.server.make_nonce(1000.0)
    # The answer computed independently of warpd's digest client, from RFC 7616 3.4.1.
    digest = hashlib.md5 if algorithm is DigestAlgorithm.MD5 else hashlib.sha256
    ha1 = digest(b"pbx:warpd:pw").hexdigest()
    ha2 = digest(b"INVITE:sip:441@x").hexdigest()
    response = digest(f"{ha1}:{nonce}:00000001:cn:auth:{ha2}".encode()).hexdigest()
    assert response == compute_response(algorithm, ha1, nonce, "INVITE", "sip:441@x",
                                        qop="auth", nc=1, cnonce="cn")  # fmt: skip
    answer = (
        f'Digest username="pbx", realm="warpd", nonce="{nonce}", uri="sip:441@x", '
        f'response="{response}", algorithm={algorithm.value}, qop=auth, nc=00000001, cnonce="cn"'
    )
    assert auth.authenticate(invite(answer), directory, 1001.0) == directory.trunks[0]
    wrong = answer.replace(response, "0" * len(response))
    refused = auth.authenticate(invite(wrong), directory, 1001.0)
    assert isinstance(refused, Refusal)
    assert refused.status == 403


def test_answer_challenge_uses_the_gateway_credentials() -> None:
    gateway = Gateway(1, "g", "192.0.2.9", username="warpd", password="secret")
    request = invite()
    challenge = AuthValue("Digest", (("realm", '"carrier"'), ("nonce", '"n1"')))
    response = SipResponse.build(407, headers=[("Proxy-Authenticate", str(challenge))])
    header = answer_challenge(gateway, request, response, "cn")
    assert header is not None
    name, value = header
    ha1 = hashlib.md5(b"warpd:carrier:secret").hexdigest()
    ha2 = hashlib.md5(b"INVITE:sip:441@x").hexdigest()
    assert name == "Proxy-Authorization"
    assert hashlib.md5(f"{ha1}:n1:{ha2}".encode()).hexdigest() in value
    assert answer_challenge(Gateway(2, "g", "h"), request, response, "cn") is None


def test_directory_knows_carriers_by_address_and_port() -> None:
    gateway = Gateway(1, "g", "192.0.2.9", 5070)
    directory = Directory(gateways={1: gateway}, trunks=(
        Trunk(1, 1, "t", "ip", (ipaddress.ip_network("192.0.2.0/24"),)),))  # fmt: skip
    assert directory.gateway_for_source("192.0.2.9", 5070) == gateway
    assert directory.gateway_for_source("192.0.2.9", 5080) is None


def _timer_invite(*headers: tuple[str, str]) -> SipRequest:
    base = invite()
    return SipRequest.build("INVITE", "sip:441@x", [*base.headers, *headers])


def test_session_timer_negotiation() -> None:
    asked = _timer_invite(("Supported", "100rel, timer"), ("Session-Expires", "1800;refresher=uas"))
    assert negotiate(asked, 90) == SessionTimer(1800)
    assert SessionTimer(1800).header() == ("Session-Expires", "1800;refresher=uac")
    too_short = _timer_invite(("Supported", "timer"), ("Session-Expires", "30"))
    assert negotiate(too_short, 90) == 422
    assert negotiate(_timer_invite(("Session-Expires", "1800")), 90) is None  # no timer support
    assert negotiate(invite(), 90) is None
    assert negotiate(_timer_invite(("Supported", "timer"), ("Session-Expires", "x")), 90) == 400


def test_the_carriers_2xx_decides_the_b_legs_timer() -> None:
    def ok(*headers: tuple[str, str]) -> SipResponse:
        return SipResponse.build(200, headers=list(headers))

    assert carrier_request(1800) == (("Supported", "timer"), ("Session-Expires", "1800"))
    ours = carrier_timer(ok(("Session-Expires", "1800;refresher=uac")))
    assert ours == CarrierTimer(1800, we_refresh=True)
    assert (ours.refresh_due(10.0), ours.expires(10.0)) == (910.0, 1810.0)
    assert ours.headers()[1] == ("Session-Expires", "1800;refresher=uac")
    assert carrier_timer(ok(("Session-Expires", "90; Refresher=UAS"))) == CarrierTimer(90, False)
    assert carrier_timer(ok(("Session-Expires", "90"))) == CarrierTimer(90, True)  # UAS chose none
    assert carrier_timer(ok()) is None  # RFC 4028 7.2: no Session-Expires, no timer
    assert carrier_timer(ok(("Session-Expires", "soon"))) is None
    too_small = SipResponse.build(422, headers=[("Min-SE", "3600")])
    assert (min_se(too_small, 1800), min_se(too_small, 3600)) == (3600, None)
    assert min_se(SipResponse.build(422), 1800) is None


def test_q850_cause_comes_from_the_reason_header() -> None:
    bye = SipRequest.build("BYE", "sip:x@y", [*invite().headers[:4], ("CSeq", "2 BYE"),
                           ("Reason", 'SIP;cause=200, Q.850;cause=17;text="busy"')])  # fmt: skip
    assert q850_of(bye) == 17
    assert q850_of(invite()) is None
    broken = SipRequest.build("BYE", "sip:x@y", [("Reason", "Q.850;cause=x")])
    assert q850_of(broken) is None
