"""Inputs of the C tests, made with the nkclass Python package.

    python prepare.py OUT_DIR CAPTURE...

Compiles two rulesets with the command line (`nkclass rules compile`):
OUT_DIR/rules.nkc, the default ruleset with its AS stage and IP-to-AS table,
and OUT_DIR/rules-watched.nkc without the AS stage, layered with
watched.toml (the captures' own networks watched). Then, for each, writes
the labels the Python API gives the flows of each capture: the ruleset is
loaded back as nkclass.load_compiled does, the capture metered with
read_pcap (default settings, as nk_meter_new(NULL) has them) and all its
flows classified as one batch, into OUT_DIR/expected[-watched]/NAME.tsv: one
line per flow in the meter's order, the columns of LINE below.
test_capture.c writes the same line for each flow it meters and labels
through libnkclass and compares the files line by line. NAME.BUCKET.tsv
hold the groups nkclass.report.aggregate makes of them (sorted lines of
bucket start, path, activity, sums and distinct counts), which the C side's
nk_aggregator must equal.
"""
import ipaddress
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

import nkclass
from nkclass.flows.pcap import read_pcap
from nkclass.report.aggregate import aggregate

BUCKETS = ("day", "week", "month")
LINE = ("ts_start", "ts_end", "src_ip", "dst_ip", "src_port", "dst_port", "protocol",
        "packets", "bytes", "tcp_flags", "path", "side", "service", "app", "activity",
        "evidence", "confidence", "peer_as", "peer_org")


def text(column: pa.ChunkedArray) -> list:
    """Values as test_capture.c prints them: times as int ms, addresses as
    text (IPv4-mapped ones as IPv4)."""
    if pa.types.is_timestamp(column.type):
        return column.cast(pa.int64()).to_pylist()
    if column.type == pa.binary(16):
        addresses = [ipaddress.IPv6Address(a) for a in column.to_pylist()]
        return [a.ipv4_mapped or a for a in addresses]
    return column.to_pylist()


def expected_labels(rules: Path, out: Path, captures: list[str]) -> None:
    clf = nkclass.Classifier.load(rules)
    out.mkdir(parents=True, exist_ok=True)
    for capture in captures:
        table = pa.Table.from_batches(list(read_pcap(capture)))
        labelled = clf.classify(table).to_arrow()
        columns = {}
        for name in LINE:
            if name in labelled.column_names:
                columns[name] = text(labelled.column(name))
            else:  # without the AS stage the C side writes 0 / ""
                columns[name] = [0 if name == "peer_as" else ""] * labelled.num_rows
        lines = ["\t".join(str(columns[name][i]) for name in LINE)
                 for i in range(labelled.num_rows)]
        (out / (Path(capture).stem + ".tsv")).write_text("".join(f"{s}\n" for s in lines))
        for bucket in BUCKETS:
            groups = aggregate(clf.classify(table), bucket=bucket).groups
            rows = sorted(
                "\t".join(map(str, (start, path, activity, g.flows, g.bytes, g.packets,
                                     len(g.hosts), len(g.peers), len(g.hosts6 or ()),
                                     len(g.peers6 or ()))))
                for (start, path, activity, _), g in groups.items())
            (out / f"{Path(capture).stem}.{bucket}.tsv").write_text(
                "".join(f"{row}\n" for row in rows))


def main(out_dir: str, captures: list[str]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    watched = str(Path(__file__).with_name("watched.toml"))
    for suffix, options in (("", []), ("-watched", ["--no-asn", "--rules", watched])):
        rules = out / f"rules{suffix}.nkc"
        subprocess.run([sys.executable, "-m", "nkclass", "rules", "compile", *options,
                        "-o", str(rules)], check=True)
        expected_labels(rules, out / f"expected{suffix}", captures)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
