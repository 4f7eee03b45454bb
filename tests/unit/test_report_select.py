"""Report filters (time window, paths, activities), the fast slice totals,
the short summary and the named top lists, each against a plain reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nkclass
from nkclass.report import Report, aggregate
from nkclass.report.model import sum_metric
from nkclass.report.render import render_summary, render_table
from nkclass.report.select import FlowFilter
from nkclass.report.top import TopRow, top
from nkclass.rules import rules_from_text
from tests.unit.test_report import DAY, T2019, flows

ACTIVITY_POOL = ["mining", "mining_suspect", "tor", "unknown", "crypto_p2p", "vpn"]


@pytest.fixture(scope="module")
def clf():
    return nkclass.Classifier()


@pytest.fixture(scope="module")
def labelled(clf):
    """A classified batch and its table (the labels as strings)."""
    batch = flows(4000, seed=21, span_days=90)
    result = clf.classify(batch)
    return result, result.to_arrow()


def _filtered(table: pa.Table, start=None, end=None, path=None, activity=None) -> pa.Table:
    """The reference filter, with pyarrow compute on the classified table."""
    ts = table.column("ts_start").cast(pa.int64())
    keep = pc.greater_equal(ts, 0)
    if start is not None:
        keep = pc.and_(keep, pc.greater_equal(ts, nkclass.report.model.parse_time(start)))
    if end is not None:
        keep = pc.and_(keep, pc.less(ts, nkclass.report.model.parse_time(end)))
    if path is not None:
        keep = pc.and_(keep, pc.is_in(table.column("path"), pa.array(path)))
    if activity is not None:
        keep = pc.and_(keep, pc.is_in(table.column("activity"), pa.array(activity)))
    return table.filter(keep)


@settings(max_examples=25, deadline=None)
@given(
    start_day=st.none() | st.integers(0, 80),
    days=st.integers(1, 40),
    path=st.none() | st.lists(st.sampled_from(["kp_range", "none"]), min_size=1, unique=True),
    activity=st.none() | st.lists(st.sampled_from(ACTIVITY_POOL), min_size=1, unique=True),
)
def test_aggregate_filters_match_filtering_the_table_first(
    labelled, start_day, days, path, activity
):
    result, table = labelled
    start = None if start_day is None else T2019 + start_day * DAY
    end = None if start is None else start + days * DAY
    got = aggregate(result, bucket="week", start=start, end=end, path=path, activity=activity)
    want = aggregate(_filtered(table, start, end, path, activity), bucket="week")
    assert got.table().equals(want.table())


def test_filtered_report_records_the_period_it_covers(labelled):
    result, table = labelled
    report = aggregate(result, start="2019-02-01", end="2019-03-01")
    ts = _filtered(table, "2019-02-01", "2019-03-01").column("ts_start").cast(pa.int64())
    assert report.first_ms == pc.min(ts).as_py() and report.last_ms == pc.max(ts).as_py()
    assert (report + aggregate(result)).first_ms == pc.min(table.column("ts_start")).as_py()


def test_unknown_activity_filter_says_what_was_meant(labelled):
    with pytest.raises(ValueError, match=r"unknown activity 'minning' \(did you mean 'mining'\?\)"):
        aggregate(labelled[0], activity="minning")
    with pytest.raises(ValueError, match="must come after the start"):
        FlowFilter.of("2019-05-01", "2019-05-01")
    assert FlowFilter.of() is None


@settings(max_examples=30, deadline=None)
@given(
    metric=st.sampled_from(["flows", "bytes", "packets", "hosts", "peers"]),
    activity=st.none() | st.lists(st.sampled_from(ACTIVITY_POOL), min_size=1, unique=True),
    path=st.none() | st.sampled_from(["kp_range", "none", "unicom"]),
    lo=st.none() | st.integers(0, 60),
)
def test_total_matches_a_plain_scan_of_the_groups(labelled, metric, activity, path, lo):
    report = aggregate(labelled[0], bucket="day")
    where = {k: v for k, v in (("activity", activity), ("path", path)) if v is not None}
    start = None if lo is None else T2019 + lo * DAY
    chosen = [
        g
        for (bucket, p, a, _), g in report.groups.items()
        if (start is None or bucket >= start)
        and (path is None or p == path)
        and (activity is None or a in activity)
    ]
    assert report.total(metric, start, **where) == sum_metric(chosen, metric)


def test_totals_follow_merges_into_the_report(clf):
    report = aggregate(clf.classify(flows(500, seed=1)))
    before = report.total("flows")
    report.merge_in(aggregate(clf.classify(flows(700, seed=2))))
    assert report.total("flows") == before + 700


def test_summary_totals_agree_with_the_report(labelled):
    report = aggregate(labelled[0], bucket="day")
    text = render_summary(report, ["kp_range", "unicom", "satgate"])
    lines = text.splitlines()
    assert lines[0].startswith(f"{report.total('flows'):,} flows from 2019-01-0")
    watched = report.total("flows") - report.total("flows", path="none")
    assert f"{watched:,} flows" in lines[1]
    row = next(line.split() for line in lines if line.startswith("kp_range "))
    assert row[1] == f"{report.total('flows', path='kp_range'):,}"
    assert row[-2] == f"{report.total('peers', path='kp_range'):,}"
    none_row = next(line.split() for line in lines if line.startswith("none "))
    assert none_row[-3:-1] == ["-", "-"]  # unwatched flows keep no address sets
    suspect = next(line.split() for line in lines if line.startswith("mining_suspect "))
    on_watched = ["kp_range", "unicom", "satgate"]
    assert suspect[1] == f"{report.total('flows', activity='mining_suspect', path=on_watched):,}"
    assert len(lines) < 40  # a summary, not a table per day


def test_summary_says_when_no_watched_network_was_touched(clf):
    batch = flows(300, seed=3)
    batch["src_ip"] = np.full(300, 0x0A000001, np.uint32)  # 10.0.0.1, watched by nothing
    text = render_summary(aggregate(clf.classify(batch)), ["kp_range", "unicom"])
    assert text.splitlines()[-1] == "no flow touched a watched network (kp_range, unicom)"
    assert render_summary(Report()) == "no flows"


def test_table_limit_keeps_the_busiest_rows_in_time_order(labelled):
    report = aggregate(labelled[0], bucket="week")
    rows = render_table(report, limit=3).splitlines()[2:]
    table = report.table().to_pandas()
    table = table[table.path != "none"]
    busiest = sorted(table.flows.tolist(), reverse=True)[:3]
    assert sorted((int(r.split()[3].replace(",", "")) for r in rows), reverse=True) == busiest
    assert [r.split()[0] for r in rows] == sorted(r.split()[0] for r in rows)


def _named_table() -> pa.Table:
    """Classified rows (nkclass's own output) for a top list by hand."""
    kp, resolver, web = "175.45.176.9", "8.8.8.8", "198.51.100.20"
    rows = [
        # src, dst, side, app, service, src_as, dst_as
        (kp, resolver, "src", "dns", "facebook", 4837, 15169),
        (kp, resolver, "src", "dns", "baidu", 4837, 15169),
        (kp, resolver, "src", "dns", "facebook", 4837, 15169),
        (kp, web, "src", "tls", "youtube", 4837, 15169),
        (kp, web, "src", "tls", "youtube", 4837, 15169),
        (kp, web, "src", "http", "none", 4837, 0),
        (web, kp, "dst", "tls", "youtube", 15169, 4837),
    ]
    cols = list(zip(*rows, strict=True))
    n = len(rows)
    return pa.table(
        {
            "ts_start": pa.array([T2019] * n, pa.int64()),
            "src_ip": pa.array(cols[0]),
            "dst_ip": pa.array(cols[1]),
            "path": pa.array(["kp_range"] * n),
            "side": pa.array(cols[2]),
            "app": pa.array(cols[3]),
            "activity": pa.array(["unknown"] * n),
            "service": pa.array(cols[4]),
            "src_as": pa.array(cols[5], pa.uint32()),
            "dst_as": pa.array(cols[6], pa.uint32()),
            "bytes": pa.array([100] * n, pa.uint64()),
        }
    )


def test_top_peers_carry_their_service_and_as():
    rows = top([_named_table()], by="peer", n=2)
    assert rows[0] == TopRow("198.51.100.20", 4, 400, "youtube", 15169)
    assert rows[0].describe() == "198.51.100.20 youtube AS15169"
    # a resolver's flows name the domains looked up, never the resolver itself
    assert rows[1] == TopRow("8.8.8.8", 3, 300, None, 15169)
    assert top([_named_table()], by="host", n=1)[0].asn == 4837


def test_top_peers_take_as_and_organisation_from_the_as_columns():
    table = _named_table()
    table = table.append_column("peer_as", pa.array([15169] * 3 + [64500] * 4, pa.uint32()))
    table = table.append_column(
        "peer_org", pa.array(["Google LLC"] * 3 + ["Example Web"] * 3 + [""], pa.string())
    )
    rows = top([table], by="peer", n=2)
    assert rows[0] == TopRow("198.51.100.20", 4, 400, "youtube", 64500, "Example Web")
    assert rows[0].describe() == "198.51.100.20 youtube AS64500 (Example Web)"
    assert rows[1].org == "Google LLC" and rows[1].asn == 15169


def test_top_names_peers_inside_ruleset_networks():
    rows = top([_named_table()], by="peer", n=2, rules=nkclass.load_rules())
    assert rows[1].service == "google-public-dns"
    custom = rules_from_text(
        '[[network]]\nservice = "lab-web"\ncategory = "web_other"\nprefixes = ["198.51.100.0/24"]\n'
    )
    assert top([_named_table()], by="peer", n=1, rules=custom)[0].service == "lab-web"


def test_top_filters_like_aggregate(labelled):
    result, table = labelled
    got = top([result], by="peer", n=5, activity=["mining", "tor"], start="2019-02-01")
    want = top([_filtered(table, "2019-02-01", None, None, ["mining", "tor"])], by="peer", n=5)
    assert got == want


@pytest.mark.parametrize(("fine", "coarse"), [("hour", "day"), ("day", "week"), ("day", "month")])
def test_rebucket_equals_aggregating_in_the_coarser_bucket(clf, fine, coarse):
    batch = flows(3000, seed=22, span_days=70)
    batch["src_as"] = np.where(np.arange(3000) % 3 == 0, 20485, 4837).astype(np.uint32)
    batch["dst_as"] = np.zeros(3000, np.uint32)
    result = clf.classify(batch)
    rolled = aggregate(result, bucket=fine).rebucket(coarse)
    direct = aggregate(result, bucket=coarse)
    assert rolled == direct
    assert rolled.upstream_share(20485).equals(direct.upstream_share(20485))
    assert rolled.profile("weekday").tolist() == direct.profile("weekday").tolist()
    assert (rolled.first_ms, rolled.last_ms) == (direct.first_ms, direct.last_ms)


def test_rebucket_refuses_buckets_that_do_not_nest(clf):
    report = aggregate(clf.classify(flows(100)), bucket="week")
    with pytest.raises(ValueError, match="week buckets do not roll up into month"):
        report.rebucket("month")
    assert report.rebucket("week") is report


@pytest.mark.parametrize("by", [None, "service", "app"])
def test_report_builder_fed_batch_by_batch_equals_merged_reports(clf, by):
    # What `nkclass report` streams: one builder over every batch, with the
    # filters, against one report per batch merged (and aggregate over all).
    results = [clf.classify(flows(900, seed=s, span_days=40)) for s in (3, 4, 5)]
    limits = {"start": "2019-01-05", "activity": ["mining_suspect", "crypto_p2p", "web_other"]}
    builder = nkclass.report.ReportBuilder("week", by, **limits)
    merged = Report("week", by)
    for result in results:
        builder.add(result)
        merged.merge_in(aggregate(result, "week", by, **limits))
    report = builder.report()
    assert report.groups and report == merged == aggregate(results, "week", by, **limits)
    assert (report.first_ms, report.last_ms) == (merged.first_ms, merged.last_ms)
    assert render_summary(report, ["kp_range"]) == render_summary(merged, ["kp_range"])


def test_report_builder_gives_its_report_once(clf):
    builder = nkclass.report.ReportBuilder().add(clf.classify(flows(50, seed=1)))
    assert builder.report().total("flows") == 50
    for again in (builder.report, lambda: builder.add(clf.classify(flows(5, seed=2)))):
        with pytest.raises(ValueError, match="report was taken already"):
            again()
