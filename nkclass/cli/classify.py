"""``nkclass classify INPUT... -o OUT``: one labelled row per flow."""

from __future__ import annotations

import argparse
import sys

from nkclass.classify import Classifier
from nkclass.flows.io import FORMATS, WRITE_FORMATS, FlowWriter, read
from nkclass.rules import load_rules

OUTPUT_COLUMNS = (
    "ts_start",
    "ts_end",
    "src_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    "protocol",
    "packets",
    "bytes",
    "path",
    "side",
    "service",
    "app",
    "activity",
    "confidence",
    "evidence",
    "src_as",
    "dst_as",
    "peer_as",
    "peer_org",
)


def add_asn_options(parser: argparse.ArgumentParser) -> None:
    """The AS stage's switches (on by default with the nkclass[asn] extra)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--no-asn",
        action="store_true",
        help="turn AS attribution off (no AS evidence, no src_as/dst_as/peer_as/peer_org)",
    )
    group.add_argument(
        "--asn-db",
        metavar="FILE",
        help="IP-to-AS database: MaxMind DB (GeoLite2-ASN, IPinfo), RouteViews pfx2as or "
        "iptoasn TSV (default: the nkclass[asn] extra's GeoLite2 extract)",
    )


def classifier_from_args(args: argparse.Namespace) -> Classifier:
    """The classifier the options describe."""
    asn = False if getattr(args, "no_asn", False) else getattr(args, "asn_db", None)
    return Classifier(load_rules(*getattr(args, "rules", [])), asn=asn)


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that reads flows shares."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="pcap/pcapng, Parquet, Arrow, nfdump CSV, Zeek conn.log, pmacct or "
        "GoFlow2 JSON Lines (format detected)",
    )
    parser.add_argument(
        "--input-format", dest="format", choices=FORMATS, help="input format (default: detected)"
    )
    parser.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="FILE",
        help="ruleset file layered over the default (repeatable)",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip and count malformed records instead of stopping",
    )
    parser.add_argument("--batch-size", type=int, default=262144, metavar="N")
    add_asn_options(parser)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("classify", help="label every flow of the inputs")
    add_input_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file: .csv, .jsonl, .parquet or .arrow",
    )
    parser.add_argument("--output-format", choices=WRITE_FORMATS)
    parser.add_argument(
        "--all-columns",
        action="store_true",
        help="keep every input column (payloads only in binary outputs)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    classifier = classifier_from_args(args)
    reader = read(
        args.inputs,
        format=args.format,
        batch_size=args.batch_size,
        errors="skip" if args.skip_bad else "raise",
    )
    with FlowWriter(args.output, args.output_format) as writer:
        for batch in reader:
            table = classifier.classify(batch).to_arrow()
            if not args.all_columns:
                table = table.select([c for c in OUTPUT_COLUMNS if c in table.column_names])
            writer.write(table)
    print(
        f"nkclass: {reader.stats.summary()}; {writer.rows:,} flows written to {args.output}",
        file=sys.stderr,
    )
    return 0
