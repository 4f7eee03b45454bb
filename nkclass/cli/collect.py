"""``nkclass collect``: a live NetFlow/IPFIX/sFlow collector writing
classified, hive-partitioned Parquet."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from nkclass.cli.classify import add_asn_options, classifier_from_args
from nkclass.cli.options import check_output_folder, usage_error

UNITS = {"s": 1, "m": 60, "h": 3600}


def duration(text: str) -> float:
    """``300``, ``90s``, ``5m``, ``1h``: seconds, positive."""
    unit = UNITS.get(text[-1:], None)
    number = text[:-1] if unit else text
    try:
        value = float(number) * (unit or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (seconds, or a number with s, m or h)") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "collect",
        help="receive NetFlow v5/v9, IPFIX and sFlow over UDP, classify, write Parquet",
    )
    parser.add_argument("--listen", action="append", required=True, metavar="udp://HOST:PORT",
                        help="where to receive export datagrams (repeatable), e.g. "
                        "udp://0.0.0.0:2055 or udp://[::]:4739")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="folder of date=YYYY-MM-DD/hour=HH Parquet partitions")
    parser.add_argument("--rotate", type=duration, default=300.0, metavar="TIME",
                        help="complete the open files this often (default 5m)")
    parser.add_argument("--rules", action="append", default=[], metavar="FILE",
                        help="ruleset file layered over the default (repeatable)")
    parser.add_argument("--no-classify", action="store_true",
                        help="write the decoded records without labels")
    parser.add_argument("--template-timeout", type=duration, default=1800.0, metavar="TIME",
                        help="forget a template not received again for this long (default 30m)")
    parser.add_argument("--rcvbuf", type=int, default=32 << 20, metavar="BYTES",
                        help="socket receive buffer to ask for (capped by net.core.rmem_max)")
    parser.add_argument("--duration", type=duration, metavar="TIME",
                        help="stop after this long (default: until SIGINT or SIGTERM)")
    parser.add_argument("--progress", type=duration, default=10.0, metavar="TIME",
                        help="print the counters to stderr this often (default 10s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_asn_options(parser)
    parser.set_defaults(run=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    from nkclass.collect import Collector, parse_listen

    for spec in args.listen:
        try:
            parse_listen(spec)
        except ValueError as exc:
            usage_error(args, f"argument --listen: {exc}")
    check_output_folder(args, "-o/--output", args.output)
    if not 0 <= args.rcvbuf < 2**31:
        usage_error(args, f"argument --rcvbuf: must be in [0, 2**31), got {args.rcvbuf}")
    classifier = None if args.no_classify else classifier_from_args(args)
    stop = threading.Event()

    def on_signal(signum, frame):  # flush and close cleanly, then exit 0
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        collector = Collector(args.listen, args.output, classifier=classifier,
                              rotate=args.rotate, rcvbuf=args.rcvbuf,
                              template_timeout=args.template_timeout)
        ports = ", ".join(f"udp {p}" for p in collector.ports)
        if not args.quiet:
            print(f"nkclass collect: listening on {ports}; writing to {args.output}",
                  file=sys.stderr, flush=True)
        with collector:
            counters = collector.run(stop, args.duration,
                                     None if args.quiet else sys.stderr, args.progress)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"nkclass collect: stopped; {counters['records_written']:,} records in "
          f"{counters['files']:,} files", file=sys.stderr)
    return 0
