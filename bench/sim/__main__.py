"""``python -m bench.sim smsc|esme ...``: the stopgap simulator and load generator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uvloop

from bench.sim import esme, smsc


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sim")
    sub = parser.add_subparsers(dest="role", required=True)
    carrier = sub.add_parser("smsc", help="carrier simulator")
    carrier.add_argument("--host", default="127.0.0.1")
    carrier.add_argument("--port", type=int, required=True)
    carrier.add_argument("--delay", type=float, default=0.02, help="seconds before each resp")
    carrier.add_argument(
        "--receipt-delay", type=float, default=0.2, help="seconds from the resp to its receipt"
    )
    carrier.add_argument("--stats-file", type=Path, help="where to keep the submit count")
    client = sub.add_parser("esme", help="load generator")
    client.add_argument("--host", default="127.0.0.1")
    client.add_argument("--port", type=int, required=True)
    client.add_argument("--system-id", default="bench")
    client.add_argument("--password", default="bench")
    client.add_argument("--binds", type=int, default=1)
    client.add_argument("--window", type=int, default=10)
    client.add_argument("--seconds", type=float, default=5.0, help="sending time")
    client.add_argument("--count", type=int, help="stop after this many submits")
    client.add_argument(
        "--rate", type=float, help="submits/s over all binds (default: window-bound)"
    )
    client.add_argument("--receipt-wait", type=float, default=10.0)
    client.add_argument("--no-receipts", action="store_true", help="registered_delivery 0")
    client.add_argument("--idle", action="store_true", help="only bind, hold until stdin closes")
    client.add_argument(
        "--interval", type=float, default=0.0, help="also report figures per this many seconds"
    )
    args = parser.parse_args()
    if args.role == "smsc":
        uvloop.run(
            smsc.serve(args.host, args.port, args.delay, args.receipt_delay, args.stats_file)
        )
        return
    load = esme.Load(
        args.host,
        args.port,
        args.system_id,
        args.password,
        args.binds,
        args.window,
        args.seconds,
        args.count,
        args.rate,
        args.receipt_wait,
        not args.no_receipts,
        args.interval,
    )
    if args.idle:
        uvloop.run(esme.hold_idle(load))
    else:
        print(json.dumps(uvloop.run(esme.run(load))))


if __name__ == "__main__":
    main()
