"""``nkclass classify INPUT... -o OUT``: one labelled row per flow."""

from __future__ import annotations

import argparse
import os
import sys

import pyarrow as pa

from nkclass.classify import Classifier
from nkclass.cli.options import positive, usage_error
from nkclass.flows.formats import FORMATS
from nkclass.flows.read import FlowReader
from nkclass.flows.schema import FLOW_SCHEMA
from nkclass.flows.write import STDOUT, WRITE_FORMATS, FlowWriter, output_format
from nkclass.names import DnsLogReader, NameCache, is_dns_log
from nkclass.rules import load_rules

#: Flows per batch the commands read and classify at a time (--batch-size).
BATCH_SIZE = 262144

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
    "sni",
    "host",
    "learned_name",
    # metered captures: the stratum share counters (nkclass report --metric hashrate)
    "stratum_submits",
    "stratum_difficulty",
    "stratum_algo",
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
        help="pcap/pcapng, Parquet, Arrow, nfdump CSV, Zeek conn.log, pmacct or GoFlow2 JSON "
        "Lines, nkclass's own CSV/JSON Lines (format detected; gzip/bz2/zstd undone); a folder "
        "(its files), a pattern such as 'flows/*.parquet', or - for standard input",
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
    parser.add_argument("--batch-size", type=positive, default=BATCH_SIZE, metavar="N")
    add_asn_options(parser)
    add_names_options(parser)


def add_names_options(parser: argparse.ArgumentParser) -> None:
    """The learned-names switches (on by default)."""
    parser.add_argument(
        "--no-learned-names",
        action="store_true",
        help="do not name flows by names learned on the wire (DNS answers in the inputs, "
        "Zeek dns.log inputs, the SNI/Host of earlier flows)",
    )
    parser.add_argument(
        "--names-state",
        metavar="FILE",
        help="start from the learned names saved in FILE when it exists, and save them there "
        "at the end (so names carry across runs)",
    )


def learned_names(args: argparse.Namespace, reader: FlowReader) -> NameCache | None:
    """The run's name cache (None with --no-learned-names): loaded from
    --names-state when that file exists, then taught by the Zeek dns.log
    inputs, which are taken out of the flow inputs here (before any flow is
    read)."""
    state = getattr(args, "names_state", None)
    off = getattr(args, "no_learned_names", False)
    if state and not off and not os.path.isdir(os.path.dirname(os.path.abspath(state))):
        reader.close()
        usage_error(args, f"argument --names-state: the folder of {state} does not exist")
    logs = []
    if reader.format is None:
        logs = [s for s in reader.sources if s.head and is_dns_log(s.head)]
        reader.sources[:] = [s for s in reader.sources if s not in logs]
    if off:
        if logs:
            for log in logs:
                log.close()
            reader.close()
            usage_error(args, f"argument --no-learned-names: {logs[0].name} is a Zeek dns.log, "
                        "which only teaches names")
        return None
    try:
        names = NameCache.load(state) if state and os.path.exists(state) else NameCache()
        if logs:
            dns = DnsLogReader(logs, errors="skip" if args.skip_bad else "raise")
            taken = sum(names.learn(b["address"], b["name"], b["at"], b["ttl"]) for b in dns)
    except BaseException:
        for log in logs:
            log.close()
        reader.close()
        raise
    if logs:
        print(f"nkclass: {taken:,} names learned from {dns.stats.records:,} dns.log records "
              f"({dns.stats.details()})", file=sys.stderr)
    return names


def save_names(args: argparse.Namespace, names: NameCache | None) -> None:
    """Save the learned names to --names-state, when given."""
    state = getattr(args, "names_state", None)
    if names is not None and state:
        names.save(state)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("classify", help="label every flow of the inputs")
    add_input_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file: .csv, .jsonl, .parquet or .arrow (written atomically), or - for "
        "standard output (JSON Lines unless --output-format says otherwise)",
    )
    parser.add_argument("--output-format", choices=WRITE_FORMATS)
    parser.add_argument(
        "--all-columns",
        action="store_true",
        help="keep every input column (payloads only in binary outputs)",
    )
    parser.add_argument(
        "--server-names",
        action="store_true",
        help="add the columns sni and host (the server name the flow's payload carried) and "
        "learned_name (the name learned on the wire for its peer)",
    )
    parser.set_defaults(run=run, command_parser=parser)


def open_inputs(args: argparse.Namespace) -> FlowReader:
    """The reader over the command's inputs (folders and patterns expanded,
    nothing read yet); errors name ``--input-format`` where it helps."""
    return FlowReader(
        args.inputs,
        format=args.format,
        batch_size=args.batch_size,
        errors="skip" if args.skip_bad else "raise",
        format_option="--input-format",
    )


def input_named_as_output(reader: FlowReader, output: str) -> str | None:
    """The input that ``output`` names too, if any."""
    if output == STDOUT:
        return None
    target = os.path.realpath(output)
    for source in reader.sources:
        if source.path is None:
            continue
        try:
            if os.path.samefile(source.path, output):
                return source.path
        except OSError:
            pass
        if os.path.realpath(source.path) == target:
            return source.path
    return None


def run(args: argparse.Namespace) -> int:
    try:
        output_format(args.output, args.output_format, "--output-format")
    except ValueError as exc:
        usage_error(args, f"argument -o/--output: {exc}")
    reader = open_inputs(args)
    clash = input_named_as_output(reader, args.output)
    if clash is not None:
        usage_error(args, f"argument -o/--output: {args.output} is also an input ({clash}); "
                    "refusing to write over it")
    classifier = classifier_from_args(args)
    names = learned_names(args, reader)
    options = {"all_columns": args.all_columns, "names": names,
               "server_names": args.server_names}
    with reader, FlowWriter(args.output, args.output_format) as writer:
        for batch in reader:
            writer.write(labelled_table(classifier, batch, **options))
        if writer.rows == 0:  # still a valid file, with the columns
            writer.write(labelled_table(classifier, FLOW_SCHEMA.empty_table(), **options))
    save_names(args, names)
    if writer.dropped_columns:
        print(f"nkclass: note: columns only later inputs have were left out: "
              f"{', '.join(sorted(writer.dropped_columns))}", file=sys.stderr)
    stats = reader.stats
    where = "" if args.output == STDOUT else f" (to {args.output})"
    print(f"nkclass: {stats.records + stats.skipped:,} rows in, {writer.rows:,} rows out{where}, "
          f"{stats.details()}", file=sys.stderr)
    return 0


def labelled_table(classifier: Classifier, batch, all_columns: bool,
                   names: NameCache | None = None, server_names: bool = False) -> pa.Table:
    table = classifier.classify(batch, names=names, server_names=server_names).to_arrow()
    if not all_columns:
        table = table.select([c for c in OUTPUT_COLUMNS if c in table.column_names])
    return table
