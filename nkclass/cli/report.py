"""``nkclass report``, ``nkclass top`` and ``nkclass trend``."""

from __future__ import annotations

import argparse

from nkclass.cli.classify import add_input_options
from nkclass.cli.inputs import labelled_batches, print_read_summary
from nkclass.report import BUCKETS, METRICS, Report, aggregate
from nkclass.report.render import (
    aligned,
    human_bytes,
    render_csv,
    render_json,
    render_summary,
    render_table,
    render_trends,
)
from nkclass.report.top import TOP_BY, top


def register(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="aggregate flows per time bucket, path and activity")
    add_input_options(rep)
    rep.add_argument("--bucket", choices=BUCKETS, default="day")
    rep.add_argument("--by", choices=("app", "service"), help="also group by app or service")
    rep.add_argument(
        "--format", dest="output_format", choices=("table", "json", "csv"), default="table"
    )
    rep.add_argument(
        "--min-flows", type=int, default=0, metavar="N", help="leave out rows with fewer flows"
    )
    rep.add_argument("--plots", metavar="DIR", help="also write PNG charts to DIR")
    rep.add_argument("--split", metavar="DATE", help="with --plots: mark this date on a trend")
    rep.add_argument("--activity", help="with --split: the activity of the trend chart")
    rep.set_defaults(run=run_report)

    tp = sub.add_parser("top", help="largest peers, watched hosts or services")
    add_input_options(tp)
    tp.add_argument("--by", choices=TOP_BY, default="peer")
    tp.add_argument("--metric", choices=("flows", "bytes"), default="flows")
    tp.add_argument("-n", type=int, default=10)
    tp.set_defaults(run=run_top)

    tr = sub.add_parser("trend", help="period-over-period change of a slice, and top movers")
    add_input_options(tr)
    tr.add_argument("--split", required=True, metavar="DATE", help="e.g. 2019-05-01")
    tr.add_argument("--activity", action="append", help="slice (repeatable)")
    tr.add_argument("--path", action="append", help="slice (repeatable)")
    tr.add_argument("--metric", choices=METRICS, default="flows")
    tr.add_argument("--bucket", choices=BUCKETS, default="day")
    tr.add_argument(
        "--movers",
        type=int,
        default=10,
        metavar="N",
        help="also list the N biggest movers (0: none)",
    )
    tr.set_defaults(run=run_trend)


def run_report(args: argparse.Namespace) -> int:
    batches, reader = labelled_batches(args)
    report = Report(args.bucket, args.by)
    # the top-services chart needs service groups: build both in one pass
    services = Report(args.bucket, "service") if args.plots and args.by != "service" else None
    for batch in batches:
        report.merge_in(aggregate(batch, bucket=args.bucket, by=args.by), consume=True)
        if services is not None:
            services.merge_in(aggregate(batch, bucket=args.bucket, by="service"), consume=True)
    if args.by == "service":
        services = report
    if args.output_format == "json":
        print(render_json(report, args.min_flows))
    elif args.output_format == "csv":
        print(render_csv(report, args.min_flows), end="")
    else:
        print(render_summary(report))
        print()
        print(render_table(report, args.min_flows))
    if args.plots:
        from nkclass.report.plots import write_plots

        where = {"activity": args.activity} if args.activity else {}
        written = write_plots(
            report, args.plots, split=args.split, trend_where=where, service_report=services
        )
        print(f"nkclass: {len(written)} charts written to {args.plots}")
    print_read_summary(reader)
    return 0


def run_top(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise SystemExit("nkclass top: -n must be at least 1")
    batches, reader = labelled_batches(args)
    rows = top(batches, by=args.by, metric=args.metric, n=args.n)
    print(
        aligned(
            [args.by, "flows", "bytes"],
            [[label, f"{flows:,}", human_bytes(nbytes)] for label, flows, nbytes in rows],
            [False, True, True],
        )
    )
    print_read_summary(reader)
    return 0


def run_trend(args: argparse.Namespace) -> int:
    batches, reader = labelled_batches(args)
    report = aggregate(batches, bucket=args.bucket)
    where = {}
    if args.activity:
        where["activity"] = args.activity[0] if len(args.activity) == 1 else args.activity
    if args.path:
        where["path"] = args.path[0] if len(args.path) == 1 else args.path
    trend = report.trend(args.metric, split=args.split, **where)
    print(trend.describe())
    if args.movers:
        print()
        print(f"biggest movers across {args.split} ({args.metric} per day):")
        print(render_trends(report.movers(args.split, args.metric, n=args.movers)))
    print_read_summary(reader)
    return 0
