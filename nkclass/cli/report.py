"""``nkclass report``, ``nkclass top`` and ``nkclass trend``."""

from __future__ import annotations

import argparse
import json
import sys

from nkclass.cli.classify import add_input_options
from nkclass.cli.inputs import labelled_batches, print_read_summary
from nkclass.cli.options import (
    Names,
    add_activity_option,
    add_filter_options,
    add_path_option,
    check_input_options,
    check_output_folder,
    check_paths,
    date,
    flow_filter,
    non_negative,
    positive,
    usage_error,
)
from nkclass.labels import ACTIVITIES
from nkclass.report import BUCKETS, METRICS, ReportBuilder, aggregate
from nkclass.report.model import format_time, parse_time
from nkclass.report.render import (
    aligned,
    human_bytes,
    render_csv,
    render_json,
    render_summary,
    render_table,
    render_trends,
    table_csv,
)
from nkclass.report.top import TOP_BY, TopCounter
from nkclass.rules import load_rules

TOP_PEERS_CHART = 15


def rows_option(text: str) -> int | None:
    """``--rows``: a count, or ``all`` (None: no limit)."""
    return None if text == "all" else positive(text)


def register(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser(
        "report",
        help="summarise flows per path and activity; tables per time bucket on request",
        description="Prints a short summary (period, totals per watched path, top activities). "
        "--rows adds the bucket x path x activity table; --format json|csv writes every row.",
    )
    add_input_options(rep)
    add_filter_options(rep)
    rep.add_argument("--bucket", choices=BUCKETS, default="day", help="table and chart buckets")
    rep.add_argument(
        "--by",
        choices=("app", "service", "org"),
        help="also group by app, service or organisation (the rules' [[service]] org labels: "
        "google for YouTube, Gmail and googleapis)",
    )
    rep.add_argument(
        "--format",
        dest="output_format",
        choices=("table", "json", "csv"),
        default="table",
        help="table: the summary (and --rows); json, csv: every bucket row, for machines",
    )
    rep.add_argument(
        "--rows",
        type=rows_option,
        default=0,
        metavar="N|all",
        help="with --format table: also print the N busiest bucket rows of the watched paths "
        "(in time order), or all of them",
    )
    rep.add_argument(
        "--min-flows",
        type=non_negative,
        default=0,
        metavar="N",
        help="leave out bucket rows with fewer flows",
    )
    rep.add_argument(
        "--metric",
        choices=("flows", "hashrate"),
        default="flows",
        help="flows: the flow report; hashrate: estimated mining hashrate per watched host and "
        "month from the stratum shares of metered captures (nkclass.report.hashrate says "
        "what the estimate assumes)",
    )
    rep.add_argument("--plots", metavar="DIR", help="also write PNG charts to DIR")
    rep.add_argument(
        "--split",
        type=date,
        metavar="WHEN",
        help="with --plots: draw a trend chart comparing before and after WHEN",
    )
    rep.add_argument(
        "--trend",
        dest="trend_activity",
        metavar="ACTIVITY[,ACTIVITY...]",
        action=Names,
        vocabulary=ACTIVITIES,
        kind="activity",
        help="with --split: the activities of the trend chart (default: the --activity "
        "filter, else all traffic)",
    )
    rep.set_defaults(run=run_report, command_parser=rep)

    tp = sub.add_parser("top", help="largest peers, watched hosts or services")
    add_input_options(tp)
    add_filter_options(tp)
    tp.add_argument("--by", choices=TOP_BY, default="peer")
    tp.add_argument("--metric", choices=("flows", "bytes"), default="flows")
    tp.add_argument("-n", type=positive, default=10, help="how many (default 10)")
    tp.set_defaults(run=run_top, command_parser=tp)

    tr = sub.add_parser(
        "trend",
        help="period-over-period change of a slice and top movers, or the dates it changed",
        description="With --split WHEN: the slice's rate per day after WHEN over before, and "
        "the biggest movers. With --detect: the dates where each (path, activity) daily "
        "series changed its level or slope (PELT on the log rate, piecewise lines; see "
        "nkclass.report.changes for the penalty rule).",
    )
    add_input_options(tr)
    tr.add_argument("--split", type=date, metavar="WHEN", help="e.g. 2019-05-01")
    tr.add_argument(
        "--detect",
        action="store_true",
        help="find the change points of every path and activity (or of --path/--activity) "
        "instead of comparing around --split",
    )
    tr.add_argument(
        "--combined",
        action="store_true",
        help="with --detect: search the --activity activities' sum as one series per path "
        "(e.g. --activity tor,vpn,proxy --combined)",
    )
    tr.add_argument(
        "--format",
        dest="output_format",
        choices=("table", "json"),
        default="table",
        help='with --detect: json writes {"changes": [{"date", "before", "after", '
        '"ratio", "path", ...}]}',
    )
    tr.add_argument(
        "--plots",
        metavar="DIR",
        help="with --detect: a chart per series with changes, each change marked",
    )
    tr.add_argument(
        "--start",
        type=date,
        metavar="WHEN",
        help="start of the before window (default: the data's)",
    )
    tr.add_argument(
        "--end", type=date, metavar="WHEN", help="end of the after window (default: the data's)"
    )
    add_activity_option(tr, "the slice: these activities (repeatable or a comma list)")
    add_path_option(tr, "the slice: these watched paths (repeatable or a comma list)")
    tr.add_argument("--metric", choices=METRICS, default="flows")
    tr.add_argument("--bucket", choices=BUCKETS, default="day")
    tr.add_argument(
        "--movers",
        type=non_negative,
        default=10,
        metavar="N",
        help="also list the N biggest movers (0: none)",
    )
    tr.set_defaults(run=run_trend, command_parser=tr)


def _check_report_usage(args: argparse.Namespace) -> None:
    if args.rows != 0 and args.output_format != "table":
        usage_error(args, "argument --rows: only with --format table (json and csv hold every row)")
    if args.split is not None and not args.plots:
        usage_error(args, "argument --split: draws a trend chart, so it needs --plots DIR")
    if args.trend_activity and args.split is None:
        usage_error(args, "argument --trend: needs --split WHEN")
    check_output_folder(args, "--plots", args.plots)
    check_input_options(args)


def run_report(args: argparse.Namespace) -> int:
    _check_report_usage(args)
    if args.metric == "hashrate":
        return _run_hashrate(args)
    ruleset = load_rules(*args.rules)
    chosen = flow_filter(args, ruleset)
    batches, reader = labelled_batches(args)
    # by organisation: gathered by service, rolled up at the end
    by = "service" if args.by == "org" else args.by
    limits = {"start": args.start, "end": args.end, "path": args.path, "activity": args.activity}
    builder = ReportBuilder(args.bucket, by, **limits)
    # the charts need service groups and top peers: gather them in the same pass
    by_service = (ReportBuilder(args.bucket, "service", **limits)
                  if args.plots and by != "service" else None)
    peers = TopCounter("peer", chosen=chosen, rules=ruleset) if args.plots else None
    for batch in batches:
        builder.add(batch)
        if by_service is not None:
            by_service.add(batch)
        if peers is not None:
            peers.add(batch)
    report = builder.report()
    services = by_service.report() if by_service is not None else None
    if by == "service":
        services = report
    if args.by == "org":
        report = report.by_organisation(ruleset.organisations())
    if args.output_format == "json":
        print(render_json(report, args.min_flows))
    elif args.output_format == "csv":
        print(render_csv(report, args.min_flows), end="")
    else:
        if not len(report):
            print("no flows matched the filters" if chosen is not None else "no flows read")
        else:
            print(render_summary(report, [w.name for w in ruleset.watched]))
        if args.rows != 0 and len(report):
            print()
            print(render_table(report, args.min_flows, limit=args.rows))
    if args.plots:
        from nkclass.report.plots import write_plots

        activities = args.trend_activity or args.activity
        where = (
            {"activity": activities[0] if len(activities) == 1 else activities}
            if (activities)
            else {}
        )
        written = write_plots(
            report,
            args.plots,
            split=args.split,
            trend_where=where,
            service_report=services,
            top_peers=peers.rows(TOP_PEERS_CHART) if peers is not None else (),
            rules=ruleset,
        )
        print(f"nkclass: {len(written)} charts written to {args.plots}")
    print_read_summary(reader)
    return 0


def _run_hashrate(args: argparse.Namespace) -> int:
    from nkclass.report.hashrate import hashrate, render_hashrate

    for option, given in (("--by", args.by), ("--split", args.split), ("--min-flows",
                                                                      args.min_flows)):
        if given:
            usage_error(args, f"argument {option}: not with --metric hashrate")
    if args.activity:
        usage_error(args, "argument --activity: --metric hashrate reads the mining flows itself")
    ruleset = load_rules(*args.rules)
    check_paths(args, ruleset)
    batches, reader = labelled_batches(args)
    report = hashrate(batches, start=args.start, end=args.end, path=args.path)
    table = report.table()
    if args.output_format == "json":
        print(json.dumps({"hosts": table.to_pylist(), "paths": report.per_path().to_pylist()}))
    elif args.output_format == "csv":
        print(table_csv(table), end="")
    elif not len(report):
        print("no mining flows read" + (" (with these filters)" if args.start or args.end
                                         or args.path else ""))
    else:
        print(render_hashrate(report, limit=None if args.rows is None else args.rows or 20))
    if args.plots and len(report):
        from nkclass.report.plots import hashrate_chart

        written = hashrate_chart(report, args.plots)
        print(f"nkclass: 1 chart written to {written}")
    print_read_summary(reader)
    return 0


def run_top(args: argparse.Namespace) -> int:
    check_input_options(args)
    ruleset = load_rules(*args.rules)
    chosen = flow_filter(args, ruleset)
    batches, reader = labelled_batches(args)
    counter = TopCounter(args.by, args.metric, chosen=chosen, rules=ruleset)
    for batch in batches:
        counter.add(batch)
    rows = counter.rows(args.n)
    if args.by == "service":
        headers, right = ["service", "flows", "bytes"], [False, True, True]
        cells = [[r.label, f"{r.flows:,}", human_bytes(r.bytes)] for r in rows]
    else:
        headers = [args.by, "service", "AS", "organisation", "flows", "bytes"]
        right = [False, False, True, False, True, True]
        cells = [
            [
                r.label,
                r.service or "-",
                f"AS{r.asn}" if r.asn is not None else "-",
                r.org or "-",
                f"{r.flows:,}",
                human_bytes(r.bytes),
            ]
            for r in rows
        ]
    if rows:
        print(aligned(headers, cells, right))
    else:
        print("no flow touched a watched network" + (" (with these filters)" if chosen else ""))
    print_read_summary(reader)
    return 0


def _check_trend_usage(args: argparse.Namespace) -> None:
    if args.detect:
        if args.split is not None:
            usage_error(args, "argument --split: --detect finds the dates itself; give one")
        if args.combined and len(args.activity or ()) < 2:
            usage_error(args, "argument --combined: needs two or more --activity names")
        if args.bucket != "day":
            usage_error(args, "argument --bucket: --detect searches daily series")
        if args.start and args.end and parse_time(args.end) <= parse_time(args.start):
            usage_error(args, f"argument --end: {args.end} is not after --start {args.start}")
        check_output_folder(args, "--plots", args.plots)
    else:
        if args.split is None:
            usage_error(args, "give --split WHEN to compare around a date, or --detect")
        for option, given in (
            ("--format", args.output_format != "table"),
            ("--plots", args.plots),
            ("--combined", args.combined),
        ):
            if given:
                usage_error(args, f"argument {option}: only with --detect")
    check_input_options(args)


def run_trend(args: argparse.Namespace) -> int:
    _check_trend_usage(args)
    ruleset = load_rules(*args.rules)
    check_paths(args, ruleset)
    if args.detect:
        return _run_detect(args)
    split = parse_time(args.split)
    if args.start is not None and parse_time(args.start) >= split:
        usage_error(args, f"argument --start: {args.start} is not before --split {args.split}")
    if args.end is not None and parse_time(args.end) <= split:
        usage_error(args, f"argument --end: {args.end} is not after --split {args.split}")
    batches, reader = labelled_batches(args)
    report = aggregate(batches, bucket=args.bucket, start=args.start, end=args.end)
    if not report.groups:
        between = " between --start and --end" if args.start or args.end else ""
        print(f"no flows to compare{between}")
    elif not report.first_ms < split <= report.last_ms:
        print_read_summary(reader)
        print(
            f"nkclass: error: --split {args.split} leaves one window empty: the flows run "
            f"from {format_time(report.first_ms)} to {format_time(report.last_ms)}",
            file=sys.stderr,
        )
        return 1
    else:
        where = {}
        if args.activity:
            where["activity"] = args.activity[0] if len(args.activity) == 1 else args.activity
        if args.path:
            where["path"] = args.path[0] if len(args.path) == 1 else args.path
        first, last = report.span()
        before = (args.start if args.start is not None else first, args.split)
        after = (args.split, args.end if args.end is not None else last)
        trend = report.trend(args.metric, before=before, after=after, **where)
        print(trend.describe())
        if args.movers:
            print()
            print(f"biggest movers across {args.split} ({args.metric} per day):")
            print(render_trends(report.movers(args.split, args.metric, n=args.movers)))
    print_read_summary(reader)
    return 0


def _run_detect(args: argparse.Namespace) -> int:
    from nkclass.report.changes import PENALTY_FACTOR, detect_changes

    batches, reader = labelled_batches(args)
    report = aggregate(batches, bucket="day", start=args.start, end=args.end)
    changes = detect_changes(report, args.metric, args.path, args.activity, args.combined)
    if args.output_format == "json":
        print(json.dumps({"changes": [c.as_dict() for c in changes]}, indent=1))
    elif not report.groups:
        between = " between --start and --end" if args.start or args.end else ""
        print(f"no flows to search{between}")
    elif not changes:
        print(f"no change found in {args.metric} per day")
    else:
        print(
            f"{len(changes)} change{'s' * (len(changes) != 1)} in {args.metric} per day "
            "(PELT over weekly blocks, "
            f"piecewise lines on the log rate, penalty {PENALTY_FACTOR:g} x BIC):"
        )
        cells = [
            [
                c.date,
                c.path,
                c.activity,
                _rate(c.before),
                _rate(c.after),
                "from 0" if c.ratio is None else f"{c.ratio:.2f}x",
                f"{c.strength:,.0f}",
                c.confidence,
            ]
            for c in changes
        ]
        headers = ["date", "path", "activity", "before", "after", "ratio", "strength", "confidence"]
        print(aligned(headers, cells, [False, False, False, True, True, True, True, False]))
    if args.plots and changes:
        from nkclass.report.plots import change_charts

        written = change_charts(
            report, changes, args.plots, args.metric, args.activity, args.combined
        )
        print(f"nkclass: {len(written)} charts written to {args.plots}", file=sys.stderr)
    print_read_summary(reader)
    return 0


def _rate(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
