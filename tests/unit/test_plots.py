"""Charts: one colour per activity everywhere, bands of their own for what
watchers look for, rates per day, and trend windows drawn as the ratio uses
them. Figures are inspected (``out=None`` returns them open), not just
written."""

from __future__ import annotations

import matplotlib
import matplotlib.colors as mcolors
import matplotlib.dates as mdates
import numpy as np
import pytest

import nkclass
from nkclass.demo import figures as demo_figures
from nkclass.report import aggregate
from nkclass.report.palette import ACTIVITY_COLOURS, OTHER_COLOUR, WATCHED_BANDS
from nkclass.report.plots import (
    Timeline,
    activity_series,
    service_groups,
    top_bars,
    trend_chart,
    write_plots,
)
from tests.unit.test_report import DAY, T2019, flows

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def clf():
    return nkclass.Classifier()


def _bands(fig) -> dict[str, str]:
    """Legend label -> fill colour of each band of a stacked chart."""
    ax = fig.axes[0]
    return {
        c.get_label(): mcolors.to_hex(c.get_facecolor()[0])
        for c in ax.collections
        if not c.get_label().startswith("_")
    }


def test_every_activity_has_its_own_colour():
    assert set(ACTIVITY_COLOURS) == set(nkclass.ACTIVITIES)
    colours = [*ACTIVITY_COLOURS.values(), OTHER_COLOUR]
    assert len(set(colours)) == len(colours)


def test_activity_bands_keep_their_colour_from_chart_to_chart(clf):
    # two paths whose activities rank differently
    a, b = flows(3000, seed=31), flows(3000, seed=32)
    b["src_ip"] = (0xD2346D00 + (b["src_ip"] & 0xFF)).astype(np.uint32)  # 210.52.109.0/24: unicom
    b["dst_port"] = np.where(np.arange(3000) % 3 == 0, 22, b["dst_port"]).astype(np.uint16)
    report = aggregate([clf.classify(a), clf.classify(b)], bucket="week")
    first = _bands(activity_series(report, "kp_range", "flows", None))
    second = _bands(activity_series(report, "unicom", "flows", None))
    shared = set(first) & set(second)
    assert len(shared) >= 3
    for label in shared:
        assert first[label] == second[label], label
    for label, colour in first.items():
        if label in ACTIVITY_COLOURS:
            assert colour == ACTIVITY_COLOURS[label]


def test_watched_activities_never_hide_in_other_or_unknown(clf):
    batch = flows(4000, seed=33)
    ports = np.array([443, 80, 53, 25, 22, 3389, 9001, 1194, 8333, 6881], np.uint16)
    batch["dst_port"] = ports[np.arange(4000) % len(ports)]
    batch["dst_port"][:2] = 3333  # two pool-port flows among thousands
    report = aggregate(clf.classify(batch), bucket="week")
    bands = _bands(activity_series(report, "kp_range", "flows", None))
    assert bands["mining (suspect)"] == ACTIVITY_COLOURS["mining_suspect"]
    assert "Tor/VPN/proxy/DNS tunnel" in bands and any(label.startswith("P2P") for label in bands)
    assert "unknown" not in [label for label in bands if label.startswith("other")]
    for members, _ in WATCHED_BANDS.values():
        for activity in members:
            assert activity not in bands  # drawn inside their band, not also alone


def _constant_daily(clf, days: int, first_day: int = 0, per_day: int = 24):
    """per_day flows every day (one an hour) for ``days`` days from T2019 + first_day."""
    n = days * per_day
    batch = flows(n, seed=34)
    batch["ts_start"] = T2019 + first_day * DAY + np.arange(n) * (DAY // per_day)
    return clf.classify(batch)


def test_monthly_rates_per_day_do_not_dip_in_short_months(clf):
    report = aggregate(_constant_daily(clf, 31 + 28 + 31), bucket="month")  # Jan-Mar 2019
    line = Timeline(report)
    rates = line.series(report, "flows", lambda k: "all")["all"]
    assert rates.tolist() == pytest.approx([24.0, 24.0, 24.0])


def test_partly_covered_first_and_last_buckets_count_their_covered_days(clf):
    report = aggregate(_constant_daily(clf, 40, first_day=10), bucket="month")  # Jan 11-Feb 19
    rates = Timeline(report).series(report, "flows", lambda k: "all")["all"]
    assert rates.tolist() == pytest.approx([24.0, 24.0])


def test_trend_chart_draws_the_windows_its_ratio_compares(clf):
    batch = flows(6000, seed=35, span_days=120)
    report = aggregate(clf.classify(batch), bucket="month")
    trend = report.trend(
        "flows", before=("2019-02-01", "2019-03-15"), split="2019-03-15", activity="crypto_p2p"
    )
    fig = trend_chart(report, None, "2019-03-15", since="2019-02-01", activity="crypto_p2p")
    levels = {}
    for c in fig.axes[0].collections:
        if c.get_label().startswith(("before", "after")):
            (x0, y0), (x1, y1) = c.get_segments()[0]
            assert y0 == y1  # a level, held across its window
            levels[c.get_label().split()[0]] = (
                mdates.num2date(x0).timestamp() * 1000,
                mdates.num2date(x1).timestamp() * 1000,
                y0,
            )
    assert levels["before"] == pytest.approx((*trend.before, trend.before_per_day))
    assert levels["after"] == pytest.approx((*trend.after, trend.after_per_day))
    assert f"{trend.ratio:.1f}x" in fig.axes[0].get_title()


def test_trend_chart_refuses_metrics_without_a_daily_rate(clf):
    report = aggregate(clf.classify(flows(200)), bucket="month")
    with pytest.raises(ValueError, match="metric must be one of flows, bytes, packets"):
        trend_chart(report, None, "2019-01-20", metric="hosts")


def test_top_bars_take_the_colour_of_each_label_activity():
    fig = top_bars(["a", "b"], [2, 1], "t", "flows", None, ["streaming", None])
    patches = fig.axes[0].patches
    assert mcolors.to_hex(patches[0].get_facecolor()) == ACTIVITY_COLOURS["streaming"]
    assert mcolors.to_hex(patches[1].get_facecolor()) == ACTIVITY_COLOURS["unknown"]


def test_western_and_chinese_lines_follow_the_ruleset_countries(clf):
    rules = nkclass.load_rules()
    sides = demo_figures.origins(rules)
    assert {"facebook", "google", "instagram", "amazon"} <= set(sides["Western"])
    assert {"baidu", "alibaba", "taobao", "qq", "weibo"} <= set(sides["Chinese"])
    from nkclass.demo.synth import generate

    services = aggregate(
        (clf.classify(b) for b in generate(flows=40_000, seed=5)), bucket="month", by="service"
    )
    fig = demo_figures.western_chinese_chart(services, rules, None)
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].get_lines()}
    january_2019 = services.total(
        "flows",
        "2019-01-01",
        "2019-02-01",
        service=sides["Chinese"],
        activity=list(demo_figures.COMPARED_ACTIVITIES),
        path=list(demo_figures.WATCHED),
    )
    assert lines["Chinese"][Timeline(services).position[T2019]] == pytest.approx(january_2019 / 31)
    with pytest.raises(ValueError, match="by='service'"):
        service_groups(aggregate(clf.classify(flows(100))), {}, None, "t")


def test_write_plots_labels_peers_with_service_and_as(tmp_path, clf):
    batch = flows(2000, seed=36)
    batch["src_as"] = np.full(2000, 4837, np.uint32)
    batch["dst_as"] = np.full(2000, 64500, np.uint32)
    result = clf.classify(batch)
    rules = nkclass.load_rules()
    peers = nkclass.report.top.top([result], by="peer", n=5, rules=rules)
    assert all(row.asn == 64500 for row in peers)
    report = aggregate(result, bucket="week")
    written = write_plots(report, tmp_path, top_peers=peers, rules=rules)
    assert tmp_path / "top_peers.png" in written
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    assert write_plots(aggregate([]), tmp_path / "empty") == []


def test_charts_roll_long_fine_reports_up_to_readable_steps(clf):
    from nkclass.report.plots import readable

    short = aggregate(_constant_daily(clf, 30, per_day=4), bucket="day")
    assert readable(short).bucket == "day"
    batch = flows(2000, seed=37)
    batch["ts_start"] = T2019 + np.arange(2000) * (3 * 365 * DAY // 2000)  # three years
    long = aggregate(clf.classify(batch), bucket="day")
    assert readable(long).bucket == "month" and readable(long) == long.rebucket("month")
    assert readable(long, max_points=200).bucket == "week"
