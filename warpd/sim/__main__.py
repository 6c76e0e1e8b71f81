"""``python -m warpd.sim smsc|esme ...``: the simulators without warpd's own command line."""

from __future__ import annotations

import argparse
import sys

from warpd.sim.cli import add_esme_arguments, add_smsc_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warpd.sim")
    sub = parser.add_subparsers(dest="command", required=True, metavar="smsc|esme")
    add_smsc_arguments(sub.add_parser("smsc", help="the SMSC (carrier) simulator"))
    add_esme_arguments(sub.add_parser("esme", help="the SMPP load generator"))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
