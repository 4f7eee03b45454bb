"""Aggregation, reports, trends, rendering and plots against pandas references."""

from __future__ import annotations

import ipaddress
import json
import pickle
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nkclass
from nkclass import _core
from nkclass.cli import main
from nkclass.demo.figures import mining_jump, upstream_share, volume_growth
from nkclass.report import Report, aggregate
from nkclass.report.model import bucket_index, bucket_start_ms
from nkclass.report.render import render_json, render_table
from nkclass.report.top import top

DAY = 86_400_000
T2019 = 1_546_300_800_000  # 2019-01-01T00:00:00Z


def flows(n: int, seed: int = 0, span_days: int = 60, v6_share: float = 0.0) -> dict:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 2**32, n, dtype=np.uint32)
    watched = rng.random(n) < 0.6
    src[watched] = 0xAF2DB000 + rng.integers(0, 64, int(watched.sum()), dtype=np.uint32)
    dst = (0xC0000200 + rng.integers(0, 40, n)).astype(np.uint32)
    batch = {
        "ts_start": T2019 + rng.integers(0, span_days * DAY, n),
        "src_ip": src,
        "dst_ip": dst,
        "src_port": rng.integers(1024, 65536, n).astype(np.uint16),
        "dst_port": rng.choice(np.array([443, 3333, 53, 22, 8333], np.uint16), n),
        "protocol": np.full(n, 6, np.uint8),
        "packets": rng.integers(1, 50, n).astype(np.uint64),
        "bytes": rng.integers(40, 100_000, n).astype(np.uint64),
    }
    if v6_share:
        rows = np.zeros((n, 16), np.uint8)
        rows[:, 10:12] = 0xFF
        rows[:, 12:] = dst.astype(">u4").view(np.uint8).reshape(-1, 4)
        six = rng.random(n) < v6_share
        rows[six, :2] = (0x20, 0x01)
        rows[six, 2:12] = rng.integers(0, 4, (int(six.sum()), 10), dtype=np.uint8)
        batch["dst_ip"] = rows
    return batch


@pytest.fixture(scope="module")
def clf():
    return nkclass.Classifier()


def reference(batch: dict, result, bucket: str) -> pd.DataFrame:
    """The same aggregation with pandas, one obvious step at a time."""
    df = pd.DataFrame(
        {
            "bucket": bucket_start_ms(bucket_index(np.asarray(batch["ts_start"]), bucket), bucket),
            "path": result.names("path"),
            "activity": result.names("activity"),
            "bytes": batch["bytes"].astype(np.int64),
            "packets": batch["packets"].astype(np.int64),
            "side": result.names("side"),
        }
    )
    src = [str(ipaddress.ip_address(int(a))) for a in batch["src_ip"]]
    dst_raw = batch["dst_ip"]
    if dst_raw.ndim == 2:
        dst = []
        for row in dst_raw:
            a = ipaddress.IPv6Address(bytes(row))
            dst.append(
                str(a.ipv4_mapped)
                if a.ipv4_mapped
                else str(ipaddress.IPv6Network((int(a) >> 64 << 64, 64)))
            )
    else:
        dst = [str(ipaddress.ip_address(int(a))) for a in dst_raw]
    host_is_dst = df.side == "dst"
    unwatched = df.side == "none"  # no watched host, no outside peer
    df["host"] = pd.Series(np.where(host_is_dst, dst, src)).mask(unwatched)
    df["peer"] = pd.Series(np.where(host_is_dst, src, dst)).mask(unwatched)
    return (
        df.groupby(["bucket", "path", "activity"])
        .agg(
            flows=("bytes", "size"),
            bytes=("bytes", "sum"),
            packets=("packets", "sum"),
            hosts=("host", "nunique"),
            peers=("peer", "nunique"),
        )
        .reset_index()
    )


@pytest.mark.parametrize("bucket", ["hour", "day", "week", "month"])
def test_aggregate_matches_pandas(clf, bucket):
    batch = flows(5000, seed=1)
    result = clf.classify(batch)
    table = aggregate(result, bucket=bucket).table()
    got = table.set_column(0, "bucket", table.column("bucket").cast(pa.int64())).to_pandas()
    got = got.sort_values(["bucket", "path", "activity"]).reset_index(drop=True)
    want = reference(batch, result, bucket)
    for col in ("flows", "bytes", "packets", "hosts", "peers"):
        assert got[col].astype(np.int64).tolist() == want[col].astype(np.int64).tolist(), col
    assert got["bucket"].tolist() == want["bucket"].tolist()


def test_ipv6_peers_count_per_64(clf):
    batch = flows(3000, seed=2, v6_share=0.5)
    result = clf.classify(batch)
    got = aggregate(result, bucket="month").table().to_pandas()
    want = reference(batch, result, "month")
    assert got["peers"].astype(int).tolist() == want["peers"].tolist()


@given(st.integers(1, 2999))
def test_partial_reports_merge_exactly(split):
    clf = nkclass.Classifier()
    batch = flows(3000, seed=3)
    whole = aggregate(clf.classify(batch), bucket="day")
    a = aggregate(clf.classify({k: v[:split] for k, v in batch.items()}), bucket="day")
    b = aggregate(clf.classify({k: v[split:] for k, v in batch.items()}), bucket="day")
    assert a + b == whole
    assert (a + b).profile("hour").tolist() == whole.profile("hour").tolist()


def test_classified_tables_aggregate_like_results(clf, tmp_path):
    batch = flows(2000, seed=4)
    result = clf.classify(batch)
    nkclass.write(result, tmp_path / "out.parquet")
    table = pa.Table.from_batches(list(nkclass.read(tmp_path / "out.parquet")))
    assert aggregate(table, bucket="week") == aggregate(result, bucket="week")


def test_by_service_and_app(clf):
    batch = flows(2000, seed=5)
    by_app = aggregate(clf.classify(batch), by="app").table()
    assert "app" in by_app.column_names
    assert set(by_app.column("app").to_pylist()) >= {"tls", "dns"}


def test_buckets_are_utc_calendar_units():
    ts = np.array([T2019 - 1, T2019, T2019 + 6 * DAY, T2019 + 31 * DAY])  # Tue 2019-01-01
    assert bucket_start_ms(bucket_index(ts, "month"), "month").tolist() == [
        T2019 - 31 * DAY,
        T2019,
        T2019,
        T2019 + 31 * DAY,
    ]
    week = bucket_start_ms(bucket_index(ts, "week"), "week")
    assert pd.to_datetime(week, unit="ms").day_name().tolist() == ["Monday"] * 4


def test_trend_compares_per_day_rates(clf):
    rng = np.random.default_rng(6)
    n1, n2 = 100, 2000
    ts = np.concatenate(
        [
            T2019 + rng.integers(0, 120 * DAY, n1),  # Jan-Apr: 100 flows
            T2019 + 120 * DAY + rng.integers(0, 60 * DAY, n2),
        ]
    )  # 60 days: 2000
    batch = flows(n1 + n2, seed=6)
    batch["ts_start"] = ts
    batch["dst_port"] = np.full(n1 + n2, 3333, np.uint16)
    report = aggregate(clf.classify(batch), bucket="day")
    split = "2019-05-01"
    t = report.trend("flows", before=("2019-01-01", split), after=(split, "2019-06-30"))
    assert t.before_total == n1 and t.after_total == n2
    assert t.ratio == pytest.approx((n2 / 60) / (n1 / 120))
    assert "up" in t.describe() and "per day" in t.describe()
    movers = report.movers(split, n=3)
    assert (movers and movers[0].after_total >= movers[-1].after_total) or len(movers) == 1


def test_unknown_slice_and_empty_report_errors(clf):
    report = aggregate(clf.classify(flows(100)))
    with pytest.raises(ValueError, match="unknown slice colour"):
        report.total("flows", colour="red")
    with pytest.raises(ValueError, match="empty"):
        Report().trend(split="2019-01-01")
    with pytest.raises(ValueError, match="bucket must be"):
        aggregate(clf.classify(flows(10)), bucket="fortnight")


def test_missing_times_are_an_error(clf):
    batch = flows(10)
    del batch["ts_start"]
    with pytest.raises(ValueError, match="needs column 'ts_start'"):
        aggregate(clf.classify(batch))


def test_report_pickles(clf):
    report = aggregate(clf.classify(flows(500)), by="service")
    assert pickle.loads(pickle.dumps(report)) == report


def test_upstream_share_uses_the_watched_side_as(clf):
    batch = flows(1000, seed=7)
    watched_src = (batch["src_ip"] >> 10) == (0xAF2DB000 >> 10)
    batch["src_as"] = np.where(np.arange(1000) % 4 == 0, 20485, 4837).astype(np.uint32)
    batch["dst_as"] = np.zeros(1000, np.uint32)
    report = aggregate(clf.classify(batch), bucket="month")
    table = report.upstream_share(20485, path="kp_range")
    expected = np.mean((np.arange(1000) % 4 == 0)[watched_src])
    total = table.column("total").to_numpy().astype(float)
    got = float((table.column("share").to_numpy() * total).sum() / total.sum())
    assert got == pytest.approx(expected)


def test_top_peers_hosts_and_services(clf):
    batch = flows(3000, seed=8)
    result = clf.classify(batch)
    rows = top([result], by="host", n=3)
    df = pd.DataFrame({"src": batch["src_ip"], "side": result.side})
    counts = df[df.side == 1].src.value_counts()
    assert rows[0][1] == counts.iloc[0]
    assert rows[0][0] == str(ipaddress.IPv4Address(int(counts.index[0])))
    assert top([result], by="service", n=1)[0][0] == "none"


def test_renderings(clf):
    report = aggregate(clf.classify(flows(500)), bucket="month")
    doc = json.loads(render_json(report))
    assert doc["bucket"] == "month" and doc["by"] is None
    assert set(doc["rows"][0]) == {
        "bucket",
        "path",
        "activity",
        "flows",
        "bytes",
        "packets",
        "hosts",
        "peers",
    }
    assert doc["rows"][0]["bucket"].endswith("Z")
    text = render_table(report)
    assert text.splitlines()[0].split() == [
        "bucket",
        "path",
        "activity",
        "flows",
        "bytes",
        "packets",
        "hosts",
        "peers",
    ]


def test_figures_on_the_synthetic_dataset():
    from nkclass.demo.synth import PLANTED, generate

    clf = nkclass.Classifier()
    report = aggregate((clf.classify(b) for b in generate(flows=200_000, seed=11)), bucket="month")
    assert volume_growth(report, metric="flows").value == pytest.approx(PLANTED.growth, rel=0.1)
    assert mining_jump(report).value >= 10
    assert upstream_share(report, "2019-01-01", "2020-01-01").value == pytest.approx(
        PLANTED.ttk_share_2019, abs=0.03
    )


def test_cli_report_formats_and_plots(tmp_path, capsys):
    path = tmp_path / "flows.parquet"
    assert main(["synth", "--flows", "30000", "-o", str(path)]) == 0
    capsys.readouterr()
    assert main(["report", str(path), "--bucket", "month", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] and doc["bucket"] == "month"
    assert main(["report", str(path), "--format", "csv", "--by", "service"]) == 0
    assert capsys.readouterr().out.startswith('"bucket","path","activity","service"')
    plots = tmp_path / "plots"
    assert (
        main(
            [
                "report",
                str(path),
                "--bucket",
                "month",
                "--plots",
                str(plots),
                "--split",
                "2019-05-01",
                "--trend",
                "mining",
            ]
        )
        == 0
    )
    names = {p.name for p in plots.iterdir()}
    assert {
        "flows_kp_range.png",
        "bytes_kp_range.png",
        "anonymising_share.png",
        "top_services.png",
        "top_peers.png",
        "service_countries.png",
        "trend_mining.png",
    } <= names
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots.iterdir())
    assert "30,000 records read" in capsys.readouterr().err


def test_cli_top_and_trend(tmp_path, capsys):
    path = tmp_path / "flows.parquet"
    main(["synth", "--flows", "30000", "-o", str(path)])
    capsys.readouterr()
    assert main(["top", str(path), "--by", "service", "-n", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["service", "flows", "bytes"] and len(out) == 7
    assert main(["trend", str(path), "--activity", "mining", "--split", "2019-05-01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mining flows per day up") and "biggest movers" in out


def test_cli_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--flows", "60000", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "headline figures" in out and "charts written to" in out
    assert "change points found" in out and "kp_range vpn+tor+proxy:" in out
    bare = re.search(r"(\d+)% are flow records without payload, (\d+)% carry AS fields", out)
    assert int(bare[1]) >= 80 and 0 < int(bare[2]) < 100
    mining = next(line for line in out.splitlines() if line.startswith("mining flows per day"))
    assert "dns_learned" in mining.split('"at least tenfold"')[1]  # what carried the figure
    assert len(list((tmp_path / "demo").glob("*.png"))) >= 8
    assert (tmp_path / "demo" / "western_chinese.png").exists()
    assert "mining intensity" in out and (tmp_path / "demo" / "hashrate_per_path.png").exists()
    steps = re.findall(r"^(kp_range|satgate) .* x(\d+\.\d+) .* x4$", out, re.M)
    assert {path for path, _ in steps} == {"kp_range", "satgate"}
    assert all(3.4 <= float(ratio) <= 4.6 for _, ratio in steps)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**42), min_size=1, max_size=50),
       st.sampled_from(["hour", "day", "week", "month"]))
def test_native_buckets_match_the_calendar(times, bucket):
    """The native pass buckets times as numpy's calendar does (months and
    ISO weeks included), over any date from 1970 to the 2100s."""
    n = len(times)
    native = _core.Aggregator(bucket)
    native.add(np.array(times, np.int64), np.zeros(n, np.uint16), np.zeros(n, np.uint8),
               np.zeros(n, np.uint8), src_v4=np.zeros(n, np.uint32),
               dst_v4=np.zeros(n, np.uint32))
    got = sorted(native.groups()[0].tolist())
    assert got == sorted(set(bucket_index(np.array(times, np.int64), bucket).tolist()))


def test_a_sum_past_2_64_is_an_error_and_changes_nothing():
    ones = np.ones(2, np.uint64)
    native = _core.Aggregator("day")
    args = (np.zeros(2, np.int64), np.ones(2, np.uint16), np.zeros(2, np.uint8),
            np.ones(2, np.uint8))
    addrs = {"src_v4": np.arange(2, dtype=np.uint32), "dst_v4": np.arange(2, dtype=np.uint32)}
    native.add(*args, **addrs, bytes=ones)
    before = [a.tolist() for a in native.groups()]
    with pytest.raises(ValueError, match="2\\^64"):
        native.add(*args, **addrs, bytes=np.array([2**64 - 1, 0], np.uint64))
    assert [a.tolist() for a in native.groups()] == before
    native.add(*args, **addrs, bytes=ones)  # still usable, sums as before plus this batch
    assert native.groups()[4][0].tolist() == [4, 4, 0]


def native_distinct_counts(native) -> dict:
    """{(bucket, path, activity): (hosts, peers)} of a native aggregation."""
    buckets, path, activity, _, _, _ = native.groups()
    sizes = native.all_sets()[2]
    return {(int(b), int(p), int(a)): (int(s[0]), int(s[1]))
            for b, p, a, s in zip(buckets, path, activity, sizes, strict=True)}


def reference_distinct_counts(batches) -> dict:
    """The same by Python sets over the flows of every batch given."""
    hosts: dict = {}
    peers: dict = {}
    for ts, path, activity, side, src, dst in batches:
        for t, p, a, s, x, y in zip(ts.tolist(), path.tolist(), activity.tolist(),
                                    side.tolist(), src.tolist(), dst.tolist(), strict=True):
            key = (t // DAY, p, a)
            hosts.setdefault(key, set())
            peers.setdefault(key, set())
            if s:
                host, peer = (y, x) if s == 2 else (x, y)
                hosts[key].add(host)
                peers[key].add(peer)
    return {k: (len(hosts[k]), len(peers[k])) for k in hosts}


def native_batch(rng, n: int, hosts: int, peers: int, days: int) -> tuple:
    """Flows with few distinct hosts and peers (so pairs repeat, within a
    batch and across batches), in time order."""
    ts = np.sort(rng.integers(0, days * DAY, n)).astype(np.int64) + T2019
    side = rng.integers(0, 3, n).astype(np.uint8)
    host = (0xAF2DB000 + rng.integers(0, hosts, n)).astype(np.uint32)
    peer = rng.integers(0, peers, n).astype(np.uint32) * np.uint32(65_599)
    src = np.where(side == 2, peer, host).astype(np.uint32)
    dst = np.where(side == 2, host, peer).astype(np.uint32)
    return (ts, rng.integers(0, 3, n).astype(np.uint16), rng.integers(0, 4, n).astype(np.uint8),
            side, src, dst)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 400), min_size=1, max_size=5),
       st.integers(1, 300), st.integers(1, 3000), st.integers(-1, 4))
def test_native_distinct_hosts_and_peers_match_python_sets(seed, sizes, hosts, peers, failing):
    """Distinct hosts and peers per group, as Python sets count them, over
    batches whose (group, address) pairs repeat within and across batches;
    a batch refused for a sum past 2^64 adds none of its addresses, and a
    later batch with the same addresses adds them all."""
    rng = np.random.default_rng(seed)
    native = _core.Aggregator("day")
    added = []
    for k, n in enumerate(sizes):
        batch = native_batch(rng, n, hosts, peers, days=3)
        ts, path, activity, side, src, dst = batch
        if k == failing:
            too_big = np.zeros(n, np.uint64)
            too_big[-1] = 2**64 - 1
            native.add(ts, path, activity, side, src_v4=src, dst_v4=dst,
                       bytes=np.ones(n, np.uint64))
            added.append(batch)
            with pytest.raises(ValueError, match="2\\^64"):
                native.add(ts, path, activity, side, src_v4=src, dst_v4=dst, bytes=too_big)
            # new pairs, refused: their last flow is in a group of the batch added
            batch = native_batch(rng, n, hosts, peers, days=3)
            refused = [np.concatenate([a, b[-1:]]) for a, b in zip(batch, added[-1], strict=True)]
            with pytest.raises(ValueError, match="2\\^64"):
                native.add(*refused[:4], src_v4=refused[4], dst_v4=refused[5],
                           bytes=np.concatenate([np.zeros(n, np.uint64), too_big[-1:]]))
            ts, path, activity, side, src, dst = batch
        native.add(ts, path, activity, side, src_v4=src, dst_v4=dst)
        added.append(batch)
    assert native_distinct_counts(native) == reference_distinct_counts(added)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12_000), st.sampled_from([1, 3, 300, 65_536]),
       st.integers(1, 4))
def test_native_address_sets_serialize_as_roaring_does(seed, count, blocks, batches):
    """Each group's IPv4 set, small (kept sorted) or past 8192 values or
    4096 in one 2^16 block (kept as a bitmap), serializes to the bytes
    roaring writes for the same set, over batches that add to it."""
    pyroaring = pytest.importorskip("pyroaring")
    rng = np.random.default_rng(seed)
    first = int(rng.integers(0, 65_536 - blocks + 1))
    peers = ((first + rng.integers(0, blocks, count)) << 16 | rng.integers(0, 65_536, count))
    peers = peers.astype(np.uint32)
    native = _core.Aggregator("day")
    for part in np.array_split(peers, batches):
        n = len(part)
        native.add(np.full(n, T2019, np.int64), np.ones(n, np.uint16), np.zeros(n, np.uint8),
                   np.ones(n, np.uint8), src_v4=np.full(n, 0xAF2DB001, np.uint32), dst_v4=part)
    buffer, offsets, sizes = native.all_sets()
    got = bytes(buffer[offsets[0, 1]:offsets[0, 2]])
    want = pyroaring.BitMap(sorted(set(peers.tolist())), optimize=False)
    assert got == want.serialize()
    assert int(sizes[0, 1]) == len(want)


def test_native_distinct_counts_hold_past_the_repeat_filter():
    """A batch with far more distinct (group, address) pairs than the
    native pass remembers as added (2^13 a side) still counts every one."""
    rng = np.random.default_rng(11)
    native = _core.Aggregator("day")
    batches = [native_batch(rng, 150_000, 4000, 200_000, days=2) for _ in range(2)]
    for ts, path, activity, side, src, dst in batches:
        native.add(ts, path, activity, side, src_v4=src, dst_v4=dst)
    assert native_distinct_counts(native) == reference_distinct_counts(batches)


@given(st.integers(1, 2999), st.sampled_from([None, "app", "service"]))
@settings(max_examples=25, deadline=None)
def test_streamed_batches_equal_one_batch(split, by):
    """Batches streamed into one aggregation (IPv6 /64s included) give the
    report of the whole batch."""
    clf = nkclass.Classifier()
    batch = flows(3000, seed=7, v6_share=0.3)
    whole = aggregate(clf.classify(batch), bucket="week", by=by)
    parts = [clf.classify({k: v[:split] for k, v in batch.items()}),
             clf.classify({k: v[split:] for k, v in batch.items()})]
    streamed = aggregate(parts, bucket="week", by=by)
    assert streamed == whole
    assert streamed.profile("weekday").tolist() == whole.profile("weekday").tolist()


def test_column_groups_and_group_objects_give_one_table(clf):
    """A fresh report answers from the native columns; once its groups are
    objects (and their sets unpacked) the table is the same, and so is a
    pickled copy."""
    for by in (None, "service"):
        result = clf.classify(flows(4000, seed=8, v6_share=0.2))
        fresh = aggregate(result, bucket="day", by=by)
        from_columns = fresh.table()
        for group in fresh.groups.values():
            group.hosts  # noqa: B018 - unpacks the sets
        assert fresh.table().equals(from_columns)
        assert pickle.loads(pickle.dumps(aggregate(result, bucket="day", by=by))).table().equals(
            from_columns)
