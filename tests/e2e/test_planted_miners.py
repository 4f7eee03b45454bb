"""The demo's planted miners: their hashrate step is recovered from the
capture through the meter's share counters and the hashrate report."""

from __future__ import annotations

import pytest

import nkclass
from nkclass.demo.mining import PLANTED_MINERS, mining_capture, recover_step
from nkclass.flows.pcap import read_pcap
from nkclass.report.hashrate import hashrate


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("miners") / "planted-miners.pcap"
    path.write_bytes(mining_capture())
    clf = nkclass.Classifier(asn=False)
    return hashrate(clf.classify(batch) for batch in read_pcap(path))


def test_the_step_is_recovered_on_every_path_within_its_stated_spread(report):
    steps = recover_step(report)
    assert {s.path for s in steps} == {"kp_range", "satgate"}
    for s in steps:
        # about 150 shares a host-month: 3-5% on the ratio of six-month means
        assert s.rel_std < 0.06
        assert abs(s.ratio - PLANTED_MINERS.step) <= 4 * s.rel_std * PLANTED_MINERS.step, s
        assert 0.85 * PLANTED_MINERS.step <= s.ratio <= 1.15 * PLANTED_MINERS.step, s


def test_every_host_month_is_within_four_sigma_of_its_planted_rate(report):
    rows = report.table().to_pylist()
    months = {m.strftime("%Y-%m"): m for m in PLANTED_MINERS.month_starts()}
    hosts = [h for h, _ in PLANTED_MINERS.hosts]
    assert len(rows) == len(months) * len(hosts)
    for r in rows:
        planted = PLANTED_MINERS.rate(hosts.index(r["host"]), months[r["month"]])
        assert r["algo"] == "cryptonote" and r["pool_flows"] == 0
        assert abs(r["hashrate"] - planted) <= 4 * r["rel_std"] * planted, r


def test_the_level_before_the_step_is_the_planted_sum_of_hosts(report):
    planted = {"kp_range": 1_500.0 + 4_000.0, "satgate": 2_500.0}
    steps = recover_step(report)
    assert steps
    for s in steps:
        assert s.before == pytest.approx(planted[s.path], rel=0.1)
