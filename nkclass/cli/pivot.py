"""``nkclass pivot``: hosts outside the watched paths that behave like the
watched hosts (same rare peers, activities and hours)."""

from __future__ import annotations

import argparse
import json

from nkclass.asn import default_countries
from nkclass.cli.classify import add_input_options, classifier_from_args
from nkclass.cli.inputs import labelled_batches, print_read_summary
from nkclass.cli.options import check_input_options, positive, usage_error
from nkclass.report.pivot import HostEvidence, pivot
from nkclass.report.render import aligned


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pivot",
        help="rank outside hosts by how much they behave like the watched hosts",
        description="Scores every host outside the watched paths that shares a peer with a "
        "watched host: 0.6 x the rarity-weighted overlap of their peers, 0.2 x the similarity "
        "of their activity mix, 0.2 x that of their hours of the week (see "
        "nkclass.report.pivot). Each candidate's AS organisation and country are named when "
        "known: the IP-to-AS table's organisation (or the ruleset's for its AS number), the "
        "operator's country the ruleset gives, else the address's GeoLite2 country (the "
        "nkclass[asn] extra; --no-asn turns both tables off).",
    )
    add_input_options(parser)
    parser.add_argument("-n", type=positive, default=50, help="how many (default 50)")
    parser.add_argument(
        "--utc-offset",
        type=int,
        default=9,
        metavar="HOURS",
        help="the watched network's local time, for the hours of the week (default 9)",
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=("table", "json"),
        default="table",
        help='json writes {"candidates": [{"host", "score", "shared_peers", ...}, ...]}',
    )
    parser.set_defaults(run=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    if not -12 <= args.utc_offset <= 14:
        usage_error(args, f"argument --utc-offset: must be in -12..14, got {args.utc_offset}")
    check_input_options(args)
    classifier = classifier_from_args(args)
    batches, reader = labelled_batches(args, classifier)
    evidence = HostEvidence(args.utc_offset)
    for batch in batches:
        evidence.add(batch)
    candidates = pivot(
        evidence,
        args.n,
        rules=classifier.rules,
        asn_database=classifier.asn_database,
        countries=default_countries() if classifier.as_attribution else None,
    )
    if args.output_format == "json":
        print(
            json.dumps(
                {
                    "candidates": [c.as_dict() for c in candidates],
                    "watched_hosts": len(evidence.watched),
                    "ipv6_flows_left_out": evidence.ipv6_flows,
                },
                indent=1,
            )
        )
    elif not candidates:
        print("no host outside the watched paths shares a peer with a watched host")
    else:
        cells = [
            [
                c.host,
                f"{c.score:.3f}",
                f"{c.peers:.2f}",
                f"{c.mix:.2f}",
                f"{c.hours:.2f}",
                c.shared_peers,
                f"{c.flows:,}",
                ", ".join(c.activities),
                ", ".join(p["peer"] for p in c.rare_shared[:3]),
                f"AS{c.asn}" if c.asn else "-",
                c.org or "-",
                c.country or "-",
            ]
            for c in candidates
        ]
        headers = [
            "host",
            "score",
            "peers",
            "mix",
            "hours",
            "shared",
            "flows",
            "activities",
            "rarest shared peers",
            "AS",
            "organisation",
            "country",
        ]
        right = [False, True, True, True, True, True, True, False, False, False, False, False]
        print(aligned(headers, cells, right))
        if evidence.ipv6_flows:
            print(f"({evidence.ipv6_flows:,} flows with an IPv6 end left out: IPv4 only)")
        if any(c.country_source == "operator" for c in candidates):
            print("(a country from the ruleset is the operator's headquarters, not the host's)")
    print_read_summary(reader)
    return 0
