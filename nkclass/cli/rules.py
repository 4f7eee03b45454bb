"""``nkclass rules check FILE...``, ``nkclass rules show`` and ``nkclass rules
compile -o FILE``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nkclass.asn.cache import write_atomic
from nkclass.cli.classify import add_asn_options
from nkclass.cli.options import usage_error
from nkclass.rules import Ruleset, load_rules
from nkclass.rules.compile import compile_rules
from nkclass.rules.compiled import FORMAT_VERSION
from nkclass.rules.model import PROTOCOL_LABELS, TRANSPORTS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("rules", help="validate or print rulesets")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate ruleset files (layered over the default)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--no-defaults", action="store_true", help="do not layer over the default")
    check.set_defaults(run=run_check)
    show = actions.add_parser("show", help="print the effective ruleset")
    show.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="FILE",
        help="ruleset file to layer over the default (repeatable)",
    )
    show.add_argument("--no-defaults", action="store_true")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(run=run_show)
    compile_ = actions.add_parser(
        "compile",
        help="write the compiled ruleset file the C interface loads",
        description="Compile the effective ruleset (and, with the AS stage on, the IP-to-AS "
        "table) into one versioned binary file for nkclass.load_compiled and the C interface "
        "(csrc/include/nkclass/nkclass.h). The file is checked by loading it back, and "
        "appears only when complete.",
    )
    compile_.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="FILE",
        help="ruleset file to layer over the default (repeatable)",
    )
    compile_.add_argument(
        "--no-defaults", action="store_true", help="do not layer over the default"
    )
    add_asn_options(compile_)
    compile_.add_argument("-o", "--output", required=True, metavar="FILE",
                          help="the compiled ruleset to write (conventionally *.nkc)")
    compile_.set_defaults(run=run_compile, command_parser=compile_)


def run_check(args: argparse.Namespace) -> int:
    ruleset = load_rules(*args.files, defaults=not args.no_defaults)
    compile_rules(ruleset)  # also proves the tables build
    print(
        f"ok: {', '.join(args.files)}: {len(ruleset.watched)} watched paths, "
        f"{len(ruleset.networks)} networks, {len(ruleset.ports)} port rules, "
        f"{sum(len(d.suffixes) for d in ruleset.domains)} domain suffixes, "
        f"{len(ruleset.service_info)} service operators"
    )
    return 0


def run_compile(args: argparse.Namespace) -> int:
    from nkclass.classify import Classifier

    out = Path(args.output)
    if out.is_dir():
        usage_error(args, f"argument -o/--output: {args.output!r} is a folder")
    ruleset = load_rules(*args.rules, defaults=not args.no_defaults)
    clf = Classifier(ruleset, asn=False if args.no_asn else args.asn_db)
    data = clf.compiled_bytes()
    loaded = Classifier.load(data)  # the file must load as it will be used
    write_atomic(out, data)
    attribution = loaded._compiled.attribution
    if attribution is None:
        as_text = "AS stage off"
    elif attribution.database is None:
        as_text = "AS stage on (exporter AS numbers only, no IP-to-AS table)"
    else:
        v4, v6 = attribution.database.prefix_count
        as_text = f"AS stage on ({v4:,} IPv4 + {v6:,} IPv6 AS prefixes)"
    print(
        f"wrote {out}: {len(data):,} bytes, format {FORMAT_VERSION}; "
        f"{len(ruleset.watched)} watched paths, {len(ruleset.networks)} networks, "
        f"{len(ruleset.ports)} port rules, {len(loaded._compiled.domain_suffixes)} domain "
        f"suffixes, {len(loaded._compiled.dated_prefixes)} dated-list prefixes; {as_text}"
    )
    return 0


def _ports_text(rule) -> str:
    if rule.protocol not in TRANSPORTS:
        return PROTOCOL_LABELS.get(rule.protocol, str(rule.protocol))
    return rule.describe()


def as_dict(ruleset: Ruleset) -> dict:
    return {
        "name": ruleset.name,
        "version": ruleset.version,
        "files": list(ruleset.files),
        "precedence": list(ruleset.precedence),
        "watched": [
            {
                "name": w.name,
                "prefixes": list(w.prefixes),
                "confidence": w.confidence,
                "server_activity": w.server_activity,
                "source": w.source,
            }
            for w in ruleset.watched
        ],
        "networks": [
            {
                "service": n.service,
                "category": n.category,
                "prefixes": len(n.prefixes),
                "source": n.source,
            }
            for n in ruleset.networks
        ],
        "ports": [
            {"rule": _ports_text(p), "app": p.app, "activity": p.activity, "weak": p.weak}
            for p in ruleset.ports
        ],
        "domains": [
            {"service": d.service, "category": d.category, "suffixes": list(d.suffixes),
             "narrows": list(d.narrows)}
            for d in ruleset.domains
        ],
        "asns": [
            {
                "service": a.service,
                "org": a.org,
                "category": a.category,
                "confidence": a.confidence,
                "asns": list(a.asns),
                "as_names": list(a.as_names),
                "source": a.source,
            }
            for a in ruleset.asns
        ],
        "services": [
            {"name": i.name, "org": i.org, "operator": i.operator, "country": i.country,
             "source": i.source}
            for i in ruleset.service_info
        ],
    }


def run_show(args: argparse.Namespace) -> int:
    ruleset = load_rules(*args.rules, defaults=not args.no_defaults)
    if args.format == "json":
        json.dump(as_dict(ruleset), sys.stdout, indent=2)
        print()
        return 0
    out = sys.stdout
    print(f"ruleset {ruleset.name} {ruleset.version} (from {', '.join(ruleset.files)})", file=out)
    print("\nwatched paths:", file=out)
    for w in ruleset.watched:
        extra = f", server activity {w.server_activity}" if w.server_activity else ""
        print(f"  {w.name:<12} {', '.join(w.prefixes)}  [{w.confidence}{extra}]", file=out)
    print(f"\nlabelled networks: {len(ruleset.networks)}", file=out)
    for n in ruleset.networks:
        print(f"  {n.service:<24} {n.category or '-':<18} {len(n.prefixes)} prefixes", file=out)
    print(f"\nport rules: {len(ruleset.ports)}", file=out)
    for p in ruleset.ports:
        strength = "weak" if p.weak else "strong"
        print(
            f"  {_ports_text(p):<18} app={p.app or '-':<12} activity={p.activity or '-':<18} "
            f"{strength}",
            file=out,
        )
    print(f"\ndomain rules: {len(ruleset.domains)} services", file=out)
    for d in ruleset.domains:
        print(f"  {d.service:<24} {d.category:<18} {', '.join(d.suffixes)}", file=out)
    print(f"\nAS entries: {len(ruleset.asns)}", file=out)
    for a in ruleset.asns:
        numbers = ", ".join(f"AS{n}" for n in a.asns) or "-"
        print(f"  {a.service:<24} {a.category or '-':<18} [{a.confidence}] {numbers}; "
              f"{len(a.as_names)} names", file=out)
    print(f"\nservice operators: {len(ruleset.service_info)}", file=out)
    for i in ruleset.service_info:
        print(f"  {i.name:<24} {i.org or '-':<16} {i.country or '-':<3} {i.operator}", file=out)
    return 0
