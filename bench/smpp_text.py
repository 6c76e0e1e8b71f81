"""SMS text benchmark: warpd's segmentation and receipt parsing against independent peers.

Run: ``.venv/bin/python -m bench.smpp_text [--seconds 1.0]``

Workloads, per message:

(a) a 120-character GSM7 OTP (one part): choose the alphabet, encode, split;
(b) a 400-character GSM7 text with two '€' (3 parts, 8-bit concat UDH);
(c) a 200-character Cyrillic text (UCS-2, 3 parts);
(d) parse one Appendix B delivery receipt into fields and dates.

Peers: smpplib 2.2.4 ``gsm.make_parts`` for (a)-(c) (GSM7 with UCS-2
fallback, 8-bit UDH); aiosmpplib 0.7.4 ``DeliverSm.parse_receipt`` for (d)
(its per-object cache is reset each round so it parses every time).  Both
sides must produce the same part bodies / id and stat before timing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import smpplib.gsm
from aiosmpplib.protocol import DeliverSm

from protocols.smpp.dlr import parse_receipt
from protocols.smpp.segment import count_parts, split_text

OTP = ("Your verification code is 493817. It expires in 10 minutes. Do not share it. " * 2)[:120]
LONG_GSM = ("Dear customer, your invoice of €25 is ready. Pay online at example.com. " * 6)[:400]
CYRILLIC = ("Ваш код подтверждения 493817. Никому его не сообщайте. " * 4)[:200]
RECEIPT = (
    "id:0A1B2C3D4E sub:001 dlvrd:001 submit date:2403051407 done date:2403051408 "
    "stat:DELIVRD err:000 text:Your verification c"
)


def ours_split(text: str) -> object:
    return split_text(text, ref=7)


def theirs_split(text: str) -> object:
    return smpplib.gsm.make_parts(text)


def ours_count(text: str) -> object:
    return count_parts(text)


def ours_receipt(text: str) -> object:
    return parse_receipt(text)


_DELIVER = DeliverSm(short_message=RECEIPT, esm_class=0x04)


def theirs_receipt(text: str) -> object:
    _DELIVER._parsed_receipt = None
    return _DELIVER.parse_receipt()


def rate(work: Callable[[str], object], data: str, seconds: float) -> float:
    """Operations per second: best of five runs of ``seconds / 5`` each."""
    best = 0.0
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while True:
            for _ in range(100):
                work(data)
            count += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def check() -> None:
    """Both sides read the same thing (where smpplib's splitter is correct: no ESC at a cut)."""
    for text in (OTP, CYRILLIC):
        theirs, _, _ = smpplib.gsm.make_parts(text)
        mine = split_text(text, ref=7)
        assert [p.short_message[4:] if len(mine) > 1 else p.short_message for p in mine] == [
            p[4:] if len(theirs) > 1 else p for p in theirs
        ]
    assert len(split_text(LONG_GSM, ref=7)) == len(smpplib.gsm.make_parts(LONG_GSM)[0]) == 3
    parsed = theirs_receipt(RECEIPT)
    receipt = parse_receipt(RECEIPT)
    assert (receipt.message_id, receipt.stat) == (parsed["id"], parsed["stat"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    check()
    print("| workload | implementation | ops/s | us/op | ratio |")
    print("|---|---|---:|---:|---:|")
    rows = [
        ("(a) OTP 1 part", OTP, ours_split, "smpplib make_parts", theirs_split),
        ("(b) GSM7 3 parts", LONG_GSM, ours_split, "smpplib make_parts", theirs_split),
        ("(c) UCS-2 3 parts", CYRILLIC, ours_split, "smpplib make_parts", theirs_split),
        ("(b) count only", LONG_GSM, ours_count, "smpplib make_parts", theirs_split),
        ("(d) DLR parse", RECEIPT, ours_receipt, "aiosmpplib parse_receipt", theirs_receipt),
    ]
    for label, data, mine_fn, peer_name, peer_fn in rows:
        mine = rate(mine_fn, data, args.seconds)
        peer = rate(peer_fn, data, args.seconds)
        name = mine_fn.__name__.replace("ours_", "warpd ")
        print(f"| {label} | {name} | {mine:,.0f} | {1e6 / mine:.2f} | {mine / peer:.1f}x |")
        print(f"| {label} | {peer_name} | {peer:,.0f} | {1e6 / peer:.2f} | 1.0x |")


if __name__ == "__main__":
    main()
