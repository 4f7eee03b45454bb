"""Inputs of the C tests, made with the nkclass Python package.

    python prepare.py OUT_DIR CAPTURE...

Compiles three rulesets with the command line (`nkclass rules compile`):
OUT_DIR/rules.nkc, the default ruleset with its AS stage and IP-to-AS table,
OUT_DIR/rules-watched.nkc without the AS stage, layered with watched.toml
(the captures' own networks watched), and OUT_DIR/rules-dated.nkc, that one
with a [[dated_list]] too (OUT_DIR/dated.toml and peers.csv: public peers of
the captures, each valid from its first flow to about its middle one, so
that some of its flows match and later ones do not). Then, for each, writes
the labels the Python API gives the flows of each capture: the ruleset is
loaded back as nkclass.load_compiled does (the dated one is built from its
TOML instead, so that the file is checked against the rules themselves), the
capture metered with
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
from nkclass.rules import load_rules

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


def expected_labels(clf: nkclass.Classifier, out: Path, captures: list[str]) -> None:
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


def write_dated_list(out: Path, captures: list[str]) -> Path:
    """A dated list of up to three public peers per capture (peers.csv) and
    the ruleset naming it (dated.toml). Each peer's row runs from its first
    flow's second to its middle flow's (Unix seconds), so that its earlier
    flows fall inside and its later ones outside."""
    rows = []
    for capture in captures:
        table = pa.Table.from_batches(list(read_pcap(capture)))
        starts = table.column("ts_start").cast(pa.int64()).to_pylist()
        seen: dict[str, list[int]] = {}
        for side in ("dst_ip", "src_ip"):
            for address, start in zip(text(table.column(side)), starts, strict=True):
                if address.is_global:
                    seen.setdefault(str(address), []).append(start)
        for address, times in list(seen.items())[:3]:
            times.sort()
            first = times[0] // 1000
            until = max(times[len(times) // 2] // 1000, first + 1)
            rows.append((first, until, address))
    rows.sort()
    (out / "peers.csv").write_text("prefix,valid_from,valid_until\n" + "".join(
        f"{address},{first},{until}\n" for first, until, address in rows))
    dated = out / "dated.toml"
    dated.write_text('[[dated_list]]\nservice = "capture-peers"\ncategory = "vpn"\n'
                     'format = "csv"\nfiles = ["peers.csv"]\nsource = "test"\n')
    return dated


def main(out_dir: str, captures: list[str]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    watched = str(Path(__file__).with_name("watched.toml"))
    dated = write_dated_list(out, captures)
    for suffix, options in (("", []), ("-watched", ["--no-asn", "--rules", watched]),
                            ("-dated", ["--no-asn", "--rules", watched, "--rules", str(dated)])):
        rules = out / f"rules{suffix}.nkc"
        subprocess.run([sys.executable, "-m", "nkclass", "rules", "compile", *options,
                        "-o", str(rules)], check=True)
        if suffix == "-dated":
            clf = nkclass.Classifier(load_rules(watched, dated), asn=False)
            services = [s for c in captures
                        for s in clf.classify(pa.Table.from_batches(list(read_pcap(c))))
                        .names("service")]
            # the list must decide some flows for the comparison to mean anything
            assert services.count("capture-peers") >= 10, services.count("capture-peers")
        else:
            clf = nkclass.Classifier.load(rules)
        expected_labels(clf, out / f"expected{suffix}", captures)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
