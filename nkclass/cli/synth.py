"""``nkclass synth --flows N -o OUT``: write the seeded synthetic dataset."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

from nkclass.cli.options import non_negative, positive, usage_error
from nkclass.demo import write_synth


def day(text: str) -> str:
    """A YYYY-MM-DD argument."""
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2019-05-01, got {text!r}"
        ) from None
    return text


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "synth", help="write the seeded synthetic dataset (2017-2019) for demos and benchmarks"
    )
    parser.add_argument("--flows", type=positive, default=2_000_000, metavar="N")
    parser.add_argument("--seed", type=non_negative, default=2020)
    parser.add_argument("--format", choices=("parquet", "csv", "pcap"), default="parquet")
    parser.add_argument("--start", type=day, default="2017-01-01", help="first day (YYYY-MM-DD)")
    parser.add_argument(
        "--end", type=day, default="2020-01-01", help="day after the last (YYYY-MM-DD)"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT")
    parser.set_defaults(run=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    if date.fromisoformat(args.end) <= date.fromisoformat(args.start):
        usage_error(args, f"argument --end: {args.end} is not after --start {args.start}")
    began = time.perf_counter()
    written = write_synth(
        args.output, args.flows, format=args.format, seed=args.seed, start=args.start, end=args.end
    )
    seconds = time.perf_counter() - began
    print(
        f"nkclass: {written:,} synthetic flows written to {args.output} in {seconds:.1f} s",
        file=sys.stderr,
    )
    return 0
