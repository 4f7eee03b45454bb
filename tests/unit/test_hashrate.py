"""Hashrate per watched host and month from the meter's stratum counters."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pyarrow as pa
import pytest

import nkclass
from nkclass.cli import main
from nkclass.report.hashrate import HASHES_PER_SHARE, HashrateReport, flow_hashrate, hashrate
from tests.unit.test_stratum_counts import _miner_capture

DAY_MS = 86_400_000
T0 = 1_556_668_800_000  # 2019-05-01


def mining_flows(rows) -> dict:
    """rows: (src, dst, start_ms, seconds, submits, difficulty, algo) -> a batch."""
    return {
        "src_ip": [r[0] for r in rows],
        "dst_ip": [r[1] for r in rows],
        "src_port": np.full(len(rows), 50000),
        "dst_port": np.full(len(rows), 3333),
        "protocol": np.full(len(rows), 6),
        "ts_start": np.array([r[2] for r in rows], np.int64),
        "ts_end": np.array([r[2] + int(r[3] * 1000) for r in rows], np.int64),
        "packets": np.full(len(rows), 100),
        "bytes": np.full(len(rows), 10000),
        "stratum_submits": pa.array([r[4] for r in rows], pa.uint64()),
        "stratum_difficulty": pa.array([r[5] for r in rows], pa.float64()),
        "stratum_algo": pa.array([r[6] for r in rows], pa.string()),
    }


@pytest.fixture(scope="module")
def clf():
    return nkclass.Classifier(asn=False)


def test_flow_hashrate_is_submits_times_difficulty_over_duration():
    rate, rel = flow_hashrate([100, 400, 0, 5], [512.0, 10_000.0, 512.0, math.nan],
                              ["stratum_v1", "cryptonote", "stratum_v1", "cryptonote"],
                              [1000.0, 100.0, 10.0, 10.0])
    assert rate[0] == pytest.approx(100 * 512 * 2**32 / 1000)
    assert rate[1] == pytest.approx(400 * 10_000 / 100)
    assert rel[:2] == pytest.approx([0.1, 0.05])
    assert np.isnan(rate[2:]).all() and np.isnan(rel[2:]).all()


def test_host_month_rate_is_work_over_covered_seconds(clf):
    miner, pool = "175.45.176.9", "198.51.100.7"
    batch = mining_flows([
        # two connections at once for an hour, then one alone for an hour
        (miner, pool, T0, 3600, 360, 1000.0, "cryptonote"),
        (miner, pool, T0, 3600, 720, 1000.0, "cryptonote"),
        (miner, pool, T0 + 3_600_000, 3600, 360, 1000.0, "cryptonote"),
    ])
    report = hashrate(clf.classify(batch))
    [row] = report.table().to_pylist()
    assert (row["month"], row["path"], row["host"]) == ("2019-05", "kp_range", miner)
    assert row["seconds"] == 7200 and row["submits"] == 1440
    assert row["hashrate"] == pytest.approx(1440 * 1000 / 7200)
    assert row["rel_std"] == pytest.approx(1 / math.sqrt(1440))
    assert row["algo"] == "cryptonote"


def test_the_watched_endpoint_is_the_host_and_months_are_apart(clf):
    batch = mining_flows([
        ("198.51.100.7", "175.45.176.20", T0, 600, 60, 8.0, "stratum_v1"),
        ("175.45.176.21", "198.51.100.7", T0 + 40 * DAY_MS, 600, 60, 8.0, "stratum_v1"),
    ])
    rows = hashrate(clf.classify(batch)).table().to_pylist()
    assert [(r["month"], r["host"]) for r in rows] == [("2019-05", "175.45.176.20"),
                                                     ("2019-06", "175.45.176.21")]


def test_mixed_difficulties_state_the_poisson_spread_of_the_sum(clf):
    m, p = "175.45.176.9", "198.51.100.7"
    batch = mining_flows([(m, p, T0, 100, 100, 1.0, "cryptonote"),
                          (m, p, T0 + 100_000, 100, 25, 16.0, "cryptonote")])
    [row] = hashrate(clf.classify(batch)).table().to_pylist()
    work = 100 * 1.0 + 25 * 16.0
    assert row["rel_std"] == pytest.approx(math.sqrt(100 * 1.0**2 + 25 * 16.0**2) / work)


def test_reports_merge_exactly_and_pickle(clf):
    rng = np.random.default_rng(5)
    rows = [(f"175.45.176.{rng.integers(1, 6)}", "198.51.100.7",
             T0 + int(rng.integers(0, 90)) * DAY_MS, float(rng.integers(60, 7200)),
             int(rng.integers(0, 500)), float(rng.choice([0.5, 64.0, 2048.0])),
             str(rng.choice(["stratum_v1", "cryptonote"]))) for _ in range(300)]
    whole = hashrate(clf.classify(mining_flows(rows)))
    parts = [hashrate(clf.classify(mining_flows(rows[i:i + 70]))) for i in range(0, 300, 70)]
    total = HashrateReport()
    for part in parts:
        total = total + part
    merged, direct = total.table().to_pylist(), whole.table().to_pylist()
    assert len(merged) == len(direct)
    for a, b in zip(merged, direct, strict=True):
        # float sums: the rounding order differs
        for key in ("hashes", "hashrate", "rel_std", "packet_hashrate", "packet_rel_spread"):
            x, y = a.pop(key), b.pop(key)
            assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12)
        assert a == b
    assert pickle.loads(pickle.dumps(whole)) == whole
    assert whole.table().num_rows > 5


def test_mining_flows_without_shares_are_counted_not_estimated(clf):
    batch = mining_flows([("175.45.176.9", "198.51.100.7", T0, 600, 0, None, None)])
    result = clf.classify(batch)
    assert result.names("activity")[0] in ("mining", "mining_suspect")
    [row] = hashrate(result).table().to_pylist()
    assert row["pool_flows"] == 1 and row["hashrate"] is None and row["flows"] == 0


def test_the_estimate_recovers_a_known_rate_within_its_stated_spread():
    # shares of a 10 kH/s CryptoNote miner at difficulty 5000 over 600 s
    # windows: the estimates' spread matches the stated 1/sqrt(n)
    rng = np.random.default_rng(11)
    true_rate, difficulty, seconds = 10_000.0, 5000.0, 600.0
    n = rng.poisson(true_rate * seconds / difficulty, size=4000)
    rate, rel = flow_hashrate(n, np.full(n.size, difficulty), ["cryptonote"] * n.size,
                              np.full(n.size, seconds))
    assert np.nanmean(rate) == pytest.approx(true_rate, rel=0.01)
    stated = np.nanmean(rel)
    assert np.nanstd(rate) / true_rate == pytest.approx(stated, rel=0.05)


def test_report_metric_hashrate_from_a_capture(tmp_path, capsys):
    path = tmp_path / "miner.pcap"
    path.write_bytes(_miner_capture(40))  # 40 shares at difficulty 512, 10 s apart
    assert main(["report", str(path), "--metric", "hashrate", "--format", "json",
                 "--no-asn"]) == 0
    out = json.loads(capsys.readouterr().out)
    [host] = out["hosts"]
    assert host["host"] == "175.45.176.9" and host["submits"] == 40
    assert host["algo"] == "stratum_v1"
    seconds = host["seconds"]
    assert 390 <= seconds <= 392
    assert host["hashrate"] == pytest.approx(40 * 512 * HASHES_PER_SHARE["stratum_v1"] / seconds)
    assert out["paths"][0]["hashrate"] == pytest.approx(host["hashrate"])
    assert main(["report", str(path), "--metric", "hashrate", "--no-asn",
                 "--plots", str(tmp_path / "charts")]) == 0
    text = capsys.readouterr().out
    assert "175.45.176.9" in text and "GH/s" in text
    assert (tmp_path / "charts" / "hashrate_per_path.png").stat().st_size > 1000


def test_report_metric_hashrate_refuses_options_it_does_not_use(tmp_path, capsys):
    path = tmp_path / "miner.pcap"
    path.write_bytes(_miner_capture(2))
    with pytest.raises(SystemExit):
        main(["report", str(path), "--metric", "hashrate", "--by", "app"])
    assert "--by" in capsys.readouterr().err


def test_flows_without_payload_are_calibrated_on_their_pool(clf):
    miner, other, pool = "175.45.176.9", "175.45.176.10", "198.51.100.7"
    # share-counted flows: 3 packets per share, 1000 hashes per share
    counted = [(miner, pool, T0 + k * 7_200_000, 3600, 100 + 10 * k, 1000.0, "cryptonote")
               for k in range(4)]
    batch = mining_flows(counted)
    batch["packets"] = np.array([3 * (100 + 10 * k) for k in range(4)])
    # a flow record of another host to the same pool: 600 packets in 1000 s
    bare = mining_flows([(other, pool, T0, 1000, 0, None, None)])
    bare["packets"] = np.array([600])
    report = hashrate([clf.classify(batch), clf.classify(bare)])
    [cal] = report.calibrations().to_pylist()
    assert cal["pool"] == f"{pool} 3333" and cal["packets_per_share"] == pytest.approx(3.0)
    assert cal["hashes_per_share"] == pytest.approx(1000.0)
    assert cal["ratio_rel_spread"] == pytest.approx(0.0, abs=1e-9)
    row = next(r for r in report.table().to_pylist() if r["host"] == other)
    assert row["hashrate"] is None and row["pool_flows"] == 1
    assert row["packet_hashrate"] == pytest.approx(600 / 3 * 1000 / 1000)
    assert row["uncalibrated_packets_per_hour"] is None


def test_a_pool_without_calibration_gives_only_the_labelled_packet_proxy(clf):
    bare = mining_flows([("175.45.176.9", "203.0.113.5", T0, 1800, 0, None, None)])
    bare["packets"] = np.array([900])
    [row] = hashrate(clf.classify(bare)).table().to_pylist()
    assert row["packet_hashrate"] is None and row["hashrate"] is None
    assert row["uncalibrated_packets_per_hour"] == pytest.approx(900 * 3600 / 1800)


def test_stored_stratum_columns_are_checked_when_read_back():
    from nkclass.errors import SchemaValueError
    from nkclass.flows.convert import conform

    good = pa.table(mining_flows([("175.45.176.9", "198.51.100.7", T0, 60, 5, 8.0,
                                   "stratum_v1")]))
    back = conform(good)
    assert back.schema.field("stratum_difficulty").type == pa.float64()
    assert back.schema.field("stratum_submits").type == pa.uint64()
    for bad in (-1.0, math.inf, 0.0):
        table = good.set_column(good.schema.get_field_index("stratum_difficulty"),
                                "stratum_difficulty", pa.array([bad]))
        with pytest.raises(SchemaValueError, match=r"stratum_difficulty.*row 0"):
            conform(table)
    table = good.set_column(good.schema.get_field_index("stratum_submits"),
                            "stratum_submits", pa.array([-3]))
    with pytest.raises(SchemaValueError, match="stratum_submits"):
        conform(table)


def test_difficulty_as_text_reads_empty_as_missing_and_names_a_bad_row():
    from nkclass.errors import SchemaValueError
    from nkclass.flows.convert import difficulty_column

    got = difficulty_column(pa.array(["512", "", " 1.5e3 ", None]))
    assert got.to_pylist() == [512.0, None, 1500.0, None]
    with pytest.raises(SchemaValueError, match=r"stratum_difficulty.*row 2.*a number"):
        difficulty_column(pa.array(["512", "", "lots"]))
