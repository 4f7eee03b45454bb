"""``nkclass demo``: the whole pipeline on built-in synthetic data."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow.compute as pc

from nkclass.cli.classify import add_asn_options, classifier_from_args
from nkclass.cli.options import check_output_folder, usage_error
from nkclass.demo import figures as fig
from nkclass.demo.synth import NAME_GRACE, PLANTED, generate
from nkclass.names import NameCache
from nkclass.report import Report, aggregate
from nkclass.report.model import ANONYMISING
from nkclass.report.render import aligned, render_summary
from nkclass.report.top import TopCounter

MIN_FLOWS = 10_000  # fewer leave the planted figures to chance
TOP_PEERS = 15


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo", help="generate a synthetic 2017-2019 dataset, classify, report and plot it"
    )
    parser.add_argument(
        "--flows", type=int, default=2_000_000, help=f"flows to generate (at least {MIN_FLOWS:,})"
    )
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--out",
        default="nkclass-demo",
        metavar="DIR",
        help="folder for the charts (default: ./nkclass-demo)",
    )
    add_asn_options(parser)
    parser.add_argument(
        "--no-learned-names",
        action="store_true",
        help="do not name flows by the DNS answers and server names seen earlier",
    )
    parser.set_defaults(run=run, command_parser=parser)


def _mining_intensity(clf, out: Path) -> Path:
    """The planted miners' capture (written to ``out``), metered and turned
    into hashrates per path and month; prints the recovered step, returns
    the chart's path."""
    import os

    from nkclass.demo.mining import PLANTED_MINERS, mining_capture, recover_step
    from nkclass.flows.pcap import read_pcap
    from nkclass.report.hashrate import hashrate
    from nkclass.report.plots import hashrate_chart

    out.mkdir(parents=True, exist_ok=True)
    capture = out / "planted-miners.pcap"
    partial = capture.with_name(capture.name + ".part")
    partial.write_bytes(mining_capture())
    os.replace(partial, capture)
    report = hashrate(clf.classify(batch) for batch in read_pcap(capture))
    p = PLANTED_MINERS
    print(f"\nmining intensity (nkclass report --metric hashrate on {capture.name}: stratum "
          f"shares x difficulty, {len(p.hosts)} planted hosts, x{p.step:.0f} from "
          f"{p.step_month}):")
    print(aligned(
        ["path", "before (mean per month)", "after", "ratio", "+-", "planted"],
        [[s.path, f"{s.before:,.0f} H/s", f"{s.after:,.0f} H/s", f"x{s.ratio:.2f}",
          f"{100 * s.rel_std:.0f}%", f"x{p.step:.0f}"] for s in recover_step(report)],
        [False, True, True, True, True, True],
    ))
    return hashrate_chart(report, out)


def run(args: argparse.Namespace) -> int:
    if args.flows < MIN_FLOWS:
        usage_error(args, f"argument --flows: must be at least {MIN_FLOWS}, got {args.flows}")
    if args.seed < 0:
        usage_error(args, f"argument --seed: must be at least 0, got {args.seed}")
    check_output_folder(args, "--out", args.out)
    clf = classifier_from_args(args)
    rules = clf.rules
    timings = {"generate": 0.0, "classify": 0.0, "aggregate": 0.0}
    daily, monthly, services = Report("day"), Report("month"), Report("month", "service")
    peers = TopCounter("peer", rules=rules)
    tally = fig.EvidenceTally(rules)
    names = None if args.no_learned_names else NameCache(grace=NAME_GRACE)
    n = bare = with_as = 0
    start = time.perf_counter()
    for batch in generate(flows=args.flows, seed=args.seed):
        t0 = time.perf_counter()
        timings["generate"] += t0 - start
        result = clf.classify(batch, names=names)
        t1 = time.perf_counter()
        daily.merge_in(aggregate(result, bucket="day"), consume=True)
        monthly.merge_in(aggregate(result, bucket="month"), consume=True)
        services.merge_in(aggregate(result, bucket="month", by="service"), consume=True)
        peers.add(result)
        ts = batch.column("ts_start").cast("int64").to_numpy()
        tally.add(result, ts)
        bare += batch.num_rows - pc.sum(pc.or_(batch.column("src_payload").is_valid(),
                                                 batch.column("dst_payload").is_valid())).as_py()
        with_as += pc.sum(pc.or_(pc.not_equal(batch.column("src_as"), 0),
                                 pc.not_equal(batch.column("dst_as"), 0))).as_py()
        start = time.perf_counter()
        timings["classify"] += t1 - t0
        timings["aggregate"] += start - t1
        n += len(result)
    print(f"nkclass demo: {n:,} synthetic flows, 2017-2019 (seed {args.seed}); "
          f"{bare / n:.0%} are flow records without payload, {with_as / n:.0%} carry AS fields"
          f"{'' if names is not None else '; learned names off'}\n")
    print(render_summary(monthly, [w.name for w in rules.watched]))

    origins = fig.origins(rules)
    west_china = origins["Western"] + origins["Chinese"]
    labels_only = "prefixes and times (no label)"
    figures = [
        (fig.volume_growth(monthly, metric="flows"), f"{PLANTED.growth:.1f}x", labels_only),
        (fig.volume_growth(monthly, metric="bytes"), f"{PLANTED.growth:.1f}x", labels_only),
        (
            fig.share(monthly, ("gaming", "streaming"), 2017),
            f"{PLANTED.gaming_streaming_2017:.0%} (> 65%)",
            tally.carried(("gaming", "streaming"), "2017-01-01", "2018-01-01"),
        ),
        (fig.chinese_over_western(services, 2017, rules), "Western ahead",
         tally.carried(fig.COMPARED_ACTIVITIES, "2017-01-01", "2018-01-01", west_china)),
        (fig.chinese_over_western(services, 2019, rules), "Chinese ahead",
         tally.carried(fig.COMPARED_ACTIVITIES, "2019-01-01", "2020-01-01", west_china)),
        (fig.mining_jump(monthly), f"{PLANTED.mining_jump:.0f}x (>= 10x)",
         tally.carried(("mining",), "2019-05-01", "2020-01-01")),
        (fig.anonymising_rise(monthly), f"{PLANTED.obfuscation_peak:.0f}x",
         tally.carried(ANONYMISING, "2017-12-01", "2018-03-15")),
        (fig.weekend_share(daily, 2017), "weekend-heavy", labels_only),
        (fig.weekend_share(daily, 2019), "weekday-heavy", labels_only),
        (
            fig.upstream_share(monthly, "2018-01-01", "2018-04-01"),
            f"{PLANTED.ttk_share_q1_2018:.0%}",
            "the exporter's AS fields",
        ),
        (fig.upstream_share(monthly, "2019-01-01", "2020-01-01"), f"{PLANTED.ttk_share_2019:.0%}",
         "the exporter's AS fields"),
    ]
    print("\nheadline figures (recovered by the classifier and the report vs planted):")
    print(
        aligned(
            ["figure", "recovered", "planted", "report says", "carried by (evidence of its flows)"],
            [[f.name, f.text(), planted, f.note, carried] for f, planted, carried in figures],
            [False, True, True, False, False],
        )
    )

    from nkclass.report.changes import detect_changes

    print("\nchange points found (nkclass trend --detect) vs planted:")
    planted = {
        "mining": f"start {PLANTED.monero_start}, x{PLANTED.mining_jump:.0f} on "
        f"{PLANTED.mining_jump_date}",
        "vpn+tor+proxy": f"rise from 2017-08-15 to x{PLANTED.obfuscation_peak:.0f} by "
        f"{PLANTED.obfuscation_peak_window[0]}, held to {PLANTED.obfuscation_peak_window[1]}, "
        "lower from then",
    }
    for activities in (["mining"], ["vpn", "tor", "proxy"]):
        found = detect_changes(
            daily, paths=["kp_range"], activities=activities, combine=len(activities) > 1
        )
        text = "; ".join(
            f"{c.date} {'from 0' if c.ratio is None else f'x{c.ratio:.2g}'} ({c.confidence})"
            for c in found
        )
        print(f"  kp_range {'+'.join(activities)}: {text or 'none'}")
        print(f"    planted: {planted['+'.join(activities)]}")

    out = Path(args.out)
    hashrate_chart = _mining_intensity(clf, out)

    from nkclass.report.plots import write_plots

    written = write_plots(
        monthly,
        out,
        split=PLANTED.mining_jump_date,
        trend_where={"activity": "mining"},
        service_report=services,
        top_peers=peers.rows(TOP_PEERS),
        since="2019-01-01",
        rules=rules,
    )
    written.append(fig.western_chinese_chart(services, rules, out / "western_chinese.png"))
    written.append(hashrate_chart)
    total = sum(timings.values())
    print(f"\n{len(written)} charts written to {out.resolve()}/")
    print(
        "time: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        + f" ({n / (timings['classify'] + timings['aggregate']) / 1e6:.1f} M flows/s "
        f"classify+aggregate; {total:.1f} s in all)"
    )
    return 0
