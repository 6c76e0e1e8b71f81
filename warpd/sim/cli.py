"""``warpd sim-smsc`` and ``warpd sim-esme``: the command lines of the simulator and the load.

``register(subparsers)`` adds both to warpd's parser; each parser's
``handler(args) -> exit code`` runs it. ``python -m warpd.sim smsc|esme``
runs the same parsers on their own.

sim-smsc runs until SIGINT/SIGTERM, then prints its stats as JSON on stdout
(exit 0). sim-esme prints its summary (JSON with ``--json``) and exits 0 when
every part got ESME_ROK and, with ``--receipts``, every receipt arrived and
matched; 1 otherwise; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import uvloop

from warpd import log as log_mod
from warpd.config import parse_listen
from warpd.sim.carrier import ID_FORMATS, parse_outcomes
from warpd.sim.control import ControlServer
from warpd.sim.esme import run_esme
from warpd.sim.esme_plan import BINDS, EsmeConfig
from warpd.sim.smsc import SmscSimulator
from warpd.sim.smsc_config import SmscConfig

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _listen(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _outcomes(text: str) -> dict[str, float]:
    try:
        return parse_outcomes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Any) -> None:
    """Add ``sim-smsc`` and ``sim-esme`` to an ``add_subparsers()`` object."""
    smsc_help = "run the SMSC (carrier) simulator until SIGINT/SIGTERM"
    esme_help = "run the SMPP load generator and print its summary"
    add_smsc_arguments(subparsers.add_parser("sim-smsc", help=smsc_help, description=smsc_help))
    add_esme_arguments(subparsers.add_parser("sim-esme", help=esme_help, description=esme_help))


def add_smsc_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 2776),
        help="host:port (default %(default)s)",
    )
    add("--system-id", default="sim")
    add("--password", default="sim")
    add("--response-delay", type=float, default=0.0, help="s before each submit_sm_resp")
    add("--receipt-delay", type=float, default=0.0, help="s from the resp to its receipt")
    add("--outcomes", type=_outcomes, default={"DELIVRD": 1.0}, help="e.g. DELIVRD=0.9,UNDELIV=0.1")
    add("--id-format", choices=ID_FORMATS, default="hex")
    add("--window", type=int, default=100, help="deliver_sm in flight per bind")
    add("--tls-cert", type=Path)
    add("--tls-key", type=Path)
    add("--log", type=Path, help="JSON-lines record of every submit, receipt and MO")
    add("--control", type=_listen, help="host:port of the HTTP control port")
    add("--seed", type=int, help="seed for the outcome draws")
    parser.set_defaults(handler=smsc_command)


def add_esme_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=2775)
    add("--system-id", default="warpd")
    add("--password", default="")
    add("--system-type", default="")
    add("--bind", choices=BINDS, default="transceiver", help="transmitter adds a receiver bind")
    add("--binds", type=int, default=1)
    add("--window", type=int, default=10)
    add("--count", type=int, default=100, help="messages")
    add("--rate", type=float, help="offered messages/s (default: as fast as the windows allow)")
    add("--duration", type=float, help="offer messages for this many seconds, not --count")
    add("--hold", type=float, default=0.0, help="with --count 0: keep the binds open, idle, s")
    add("--source", default="WARPD")
    add("--destination", default="447700900001", help="a number, a,b,c or FIRST-LAST")
    add("--text", default="Your code is 123456", help="{n} or {n:06d}: the message's index")
    add("--ucs2", action="store_true", help="send the text as UCS-2")
    add("--multipart", action="store_true", help="a long text split with UDH")
    add("--registered-delivery", type=int, default=1)
    add("--receipts", action="store_true", help="wait for a receipt per part and require it")
    add("--receipt-timeout", type=float, default=30.0)
    add("--response-timeout", type=float, default=10.0)
    add("--reconnect-for", type=float, default=30.0, help="s to keep reconnecting a lost bind")
    add("--tls", action="store_true", help="connect with TLS (certificate not verified)")
    add("--log", type=Path, help="JSON-lines record of every response and receipt")
    add("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=esme_command)


def smsc_config(args: argparse.Namespace) -> SmscConfig:
    host, port = args.listen
    return SmscConfig(
        host=host,
        port=port,
        system_id=args.system_id,
        password=args.password,
        response_delay=args.response_delay,
        receipt_delay=args.receipt_delay,
        outcomes=args.outcomes,
        id_format=args.id_format,
        window=args.window,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        log=args.log,
        seed=args.seed,
    )


def esme_config(args: argparse.Namespace) -> EsmeConfig:
    return EsmeConfig(
        host=args.host,
        port=args.port,
        system_id=args.system_id,
        password=args.password,
        system_type=args.system_type,
        bind=args.bind,
        binds=args.binds,
        window=args.window,
        count=args.count,
        rate=args.rate,
        duration=args.duration,
        hold=args.hold,
        source=args.source,
        destination=args.destination,
        text=args.text,
        ucs2=args.ucs2,
        multipart=args.multipart,
        registered_delivery=args.registered_delivery,
        receipts=args.receipts,
        receipt_timeout=args.receipt_timeout,
        response_timeout=args.response_timeout,
        reconnect_for=args.reconnect_for,
        tls=args.tls,
        log=args.log,
    )


def smsc_command(args: argparse.Namespace) -> int:
    try:
        config = smsc_config(args)
    except ValueError as exc:
        print(f"warpd sim-smsc: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log_mod.configure("info", "auto")
    try:
        return uvloop.run(_serve(config, args.control))
    except OSError as exc:
        print(f"warpd sim-smsc: {exc}", file=sys.stderr)
        return EXIT_FAILURE


async def _serve(config: SmscConfig, control_at: tuple[str, int] | None) -> int:
    simulator = SmscSimulator(config)
    await simulator.start()
    where = f"{config.host}:{simulator.port}"
    control = None
    if control_at is not None:
        control = ControlServer(simulator, *control_at)
        await control.start()
        where += f" control {control_at[0]}:{control.port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # One line a script can wait for (and read the ports from, with port 0).
    print(f"sim-smsc listening {where}", flush=True)
    try:
        await stop.wait()
    finally:
        if control is not None:
            await control.stop()
        await simulator.stop()
    sys.stdout.write(orjson.dumps(simulator.stats.snapshot()).decode() + "\n")
    return EXIT_OK


def esme_command(args: argparse.Namespace) -> int:
    try:
        config = esme_config(args)
    except ValueError as exc:
        print(f"warpd sim-esme: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log_mod.configure("warning", "auto")
    summary = uvloop.run(run_esme(config))
    print(summary.to_json() if args.json else summary.render(), flush=True)
    return EXIT_OK if summary.ok else EXIT_FAILURE
