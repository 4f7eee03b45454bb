"""Change points recovered from the demo's synthetic 2017-2019 flows, through
the classifier and a daily report: the planted turning points are found
within a month, and a planted flat stretch has none."""

from __future__ import annotations

from datetime import date

import pytest

import nkclass
from nkclass.demo.synth import NAME_GRACE, PLANTED, generate
from nkclass.report import Report, aggregate
from nkclass.report.changes import detect_changes

FLOWS = 2_000_000  # the demo's default size
MONTH = 31


@pytest.fixture(scope="module")
def daily() -> Report:
    # as the demo classifies its flow records: with the names learned on the wire
    clf, names = nkclass.Classifier(asn=False), nkclass.NameCache(grace=NAME_GRACE)
    report = Report("day")
    for batch in generate(flows=FLOWS, seed=2020):
        report.merge_in(aggregate(clf.classify(batch, names=names), bucket="day"),
                        consume=True)
    return report


def _days_apart(a: str, b: str) -> int:
    return abs((date.fromisoformat(a) - date.fromisoformat(b)).days)


def test_mining_start_and_jump_found_within_a_month(daily):
    changes = detect_changes(daily, activities=["mining"], paths=["kp_range"])
    start = [c for c in changes if _days_apart(c.date, PLANTED.monero_start) <= MONTH]
    jump = [c for c in changes if _days_apart(c.date, PLANTED.mining_jump_date) <= MONTH]
    assert len(start) == 1 and start[0].ratio is None and start[0].before == 0
    assert len(jump) == 1 and jump[0].ratio >= 10
    assert {start[0].confidence, jump[0].confidence} == {"high"}
    assert len(changes) == 2  # the stretch between them is flat as planted


def test_anonymiser_rise_found_within_a_month(daily):
    rise_starts = "2017-08-15"  # the obfuscation anchors in nkclass.demo.synth
    changes = detect_changes(
        daily, activities=["vpn", "tor", "proxy"], paths=["kp_range"], combine=True
    )
    rise = [c for c in changes if _days_apart(c.date, rise_starts) <= MONTH]
    assert len(rise) == 1 and rise[0].ratio > 4
    assert rise[0].activity == "vpn+tor+proxy"
    first = detect_changes(daily, activities=["vpn"], paths=["kp_range"])[0]
    assert _days_apart(first.date, rise_starts) <= MONTH and first.ratio > 4


def test_no_change_on_the_flat_planted_mining_stretch(daily):
    flat = Report("day")
    for key, group in daily.groups.items():
        if "2018-03-01" <= nkclass.report.model.format_time(key[0]) < "2019-04-01":
            flat.groups[key] = group
    assert detect_changes(flat, activities=["mining"]) == []
