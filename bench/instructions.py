"""Instructions per operation under callgrind: ours against the peer, load-independent.

Run: ``.venv/bin/python -m bench.instructions [--rounds 1000]`` (needs Debian's
``valgrind``).

Wall-clock rates on a shared 2-vCPU VM swing by tens of percent between runs;
callgrind counts the instructions a workload executes, which do not move with
the machine's load. Each workload runs twice under callgrind, with a few and
with many rounds, and the difference divided by the extra rounds is the cost
of one round without interpreter start-up. Every process first runs a few
warm-up rounds of every workload (regex compilation, first-call caches), so
one shared baseline serves all workloads. The workloads are the same
functions the timed benchmarks run, so both measure the same work.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Callable

from bench import sip_parse, smpp_codec
from bench.smpp_codec import STRUCT

# title -> (what the issue asks, the peer every row is compared to, rows as (label, workload))
GROUPS: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "SIP INVITE+SDP: parse, 6 routing headers, serialize": (
        "issue 4: >= 3x", "sipmessage", (("warpd", "sip_invite_ours"),)),
    "SIP 200 OK+SDP: parse, 6 routing headers, serialize": (
        "", "sipmessage", (("warpd", "sip_200_ours"),)),
    "SMPP submit_sm: build+encode+decode": (
        "issue 3: >= 10x", "aiosmpplib",
        (("warpd", "smpp_submit_ours"), (STRUCT, "smpp_submit_struct"))),
    "SMPP submit_sm: encode+decode of a prebuilt object": (
        "issue 3: >= 10x", "aiosmpplib",
        (("warpd", "smpp_submit_codec_ours"), (STRUCT, "smpp_submit_codec_struct"))),
    "SMPP deliver_sm receipt: build+encode+decode": (
        "issue 3: >= 10x", "aiosmpplib",
        (("warpd", "smpp_receipt_ours"), (STRUCT, "smpp_receipt_struct"))),
    "SMPP deliver_sm receipt: encode+decode of a prebuilt object": (
        "issue 3: >= 10x", "aiosmpplib",
        (("warpd", "smpp_receipt_codec_ours"), (STRUCT, "smpp_receipt_codec_struct"))),
}  # fmt: skip

WORKLOADS: dict[str, Callable[[], object]] = {
    "sip_invite_ours": lambda: sip_parse.ours(sip_parse.INVITE),
    "sip_invite_sipmessage": lambda: sip_parse.theirs(sip_parse.INVITE),
    "sip_200_ours": lambda: sip_parse.ours(sip_parse.OK_200),
    "sip_200_sipmessage": lambda: sip_parse.theirs(sip_parse.OK_200),
    "smpp_submit_ours": smpp_codec.warpd_submit,
    "smpp_submit_struct": smpp_codec.struct_submit,
    "smpp_submit_aiosmpplib": smpp_codec.aiosmpplib_submit,
    "smpp_submit_codec_ours": smpp_codec.warpd_submit_codec,
    "smpp_submit_codec_struct": smpp_codec.struct_submit_codec,
    "smpp_submit_codec_aiosmpplib": smpp_codec.aiosmpplib_submit_codec,
    "smpp_receipt_ours": smpp_codec.warpd_receipt,
    "smpp_receipt_struct": smpp_codec.struct_receipt,
    "smpp_receipt_aiosmpplib": smpp_codec.aiosmpplib_receipt,
    "smpp_receipt_codec_ours": smpp_codec.warpd_receipt_codec,
    "smpp_receipt_codec_struct": smpp_codec.struct_receipt_codec,
    "smpp_receipt_codec_aiosmpplib": smpp_codec.aiosmpplib_receipt_codec,
}

_COLLECTED = re.compile(r"Collected : (\d+)")
FEW = 50


def run_rounds(name: str, rounds: int) -> None:
    for work in WORKLOADS.values():
        for _ in range(FEW):
            work()
    if name != "baseline":
        work = WORKLOADS[name]
        for _ in range(rounds):
            work()


def collected(name: str, rounds: int) -> int:
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "bench.instructions", "--run", name, str(rounds)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    match = _COLLECTED.search(result.stderr)
    if match is None:
        raise SystemExit(f"callgrind printed no total for {name}:\n{result.stderr[-2000:]}")
    return int(match[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500, help="rounds measured")
    parser.add_argument("--seconds", type=float, help="ignored: for bench.report")
    parser.add_argument("--run", nargs=2, metavar=("WORKLOAD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_rounds(args.run[0], int(args.run[1]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    baseline = collected("baseline", 0)

    def per_round(name: str) -> float:
        return (collected(name, args.rounds) - baseline) / args.rounds

    print("| workload | implementation | instructions/op | ratio |")
    print("|---|---|---:|---:|")
    for title, (target, peer, rows) in GROUPS.items():
        label = f"{title} ({target})" if target else title
        # The peer's workload is named like the rows', with the peer's name last.
        peer_workload = rows[0][1].rsplit("_", 1)[0] + f"_{peer}"
        theirs = per_round(peer_workload)
        for implementation, workload in rows:
            mine = per_round(workload)
            print(f"| {label} | {implementation} | {mine:,.0f} | {theirs / mine:.2f}x |")
        print(f"| {label} | {peer} | {theirs:,.0f} | 1.00x |")


if __name__ == "__main__":
    main()
