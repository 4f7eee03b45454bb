"""The ``nkclass`` command: argument wiring only; the work lives in the API.

Exit codes: 0 ok, 1 failure (bad input, invalid rules, a file that cannot be
read or written), 2 usage error (found before any input is read), 130
interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nkclass import __version__
from nkclass.cli import bench, classify, collect, demo, pivot, report, rules, synth
from nkclass.errors import NkclassError

COMMANDS = (demo, classify, report, pivot, rules, bench, synth, collect)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nkclass",
        description="Classify and trend the traffic of watched networks from flow data.",
    )
    parser.add_argument("--version", action="version", version=f"nkclass {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NkclassError as exc:
        print(f"nkclass: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except OSError as exc:  # a file or folder that cannot be read or written
        print(f"nkclass: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nkclass: interrupted", file=sys.stderr)
        return 130
