"""Change points: PELT against plain optimal partitioning, the line cost
against numpy's least squares, and detection on planted series."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nkclass.report import Report
from nkclass.report.changes import (
    LineCost,
    detect_changes,
    detect_series,
    optimal_partition,
    pelt,
)
from nkclass.report.model import MS_PER_DAY, Group, parse_time

DAY0 = parse_time("2017-01-01") // MS_PER_DAY


@given(
    st.lists(st.floats(-50, 50), min_size=3, max_size=40),
    st.data(),
)
def test_line_cost_is_the_residual_of_numpys_least_squares_line(values, data):
    y = np.array(values)
    cost = LineCost(y)
    start = data.draw(st.integers(0, len(y) - 2))
    end = data.draw(st.integers(start + 1, len(y)))
    t = np.arange(start, end, dtype=float)
    seg = y[start:end]
    if len(seg) >= 2:
        a = np.vstack([t, np.ones_like(t)]).T
        residual = seg - a @ np.linalg.lstsq(a, seg, rcond=None)[0]
        expected = float(residual @ residual)
    else:
        expected = 0.0
    assert float(cost(start, end)) == pytest.approx(expected, abs=1e-6 * (1 + np.sum(seg**2)))


def test_line_cost_skips_points_of_weight_zero():
    y = np.array([1.0, 2.0, 100.0, 4.0, 5.0])
    weight = np.array([1, 1, 0, 1, 1.0])
    assert float(LineCost(y, weight)(0, 5)) == pytest.approx(0.0, abs=1e-9)
    assert float(LineCost(y)(0, 5)) > 1000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=4, max_size=36),
    st.integers(2, 4),
    st.floats(0.1, 30),
)
def test_pelt_reaches_the_optimum_of_plain_optimal_partitioning(steps, min_size, penalty):
    # integer-valued levels make ties and exact fits common: the hard cases for pruning
    y = np.cumsum(np.repeat(steps, 2)).astype(float) + np.resize([0.0, 0.5, -0.5], 2 * len(steps))
    cost = LineCost(y)
    ends = pelt(cost, len(y), penalty, min_size)
    assert ends[-1] == len(y)
    starts = [0, *ends[:-1]]
    lengths = np.diff([0, *ends])
    assert len(ends) == 1 or lengths.min() >= min_size
    total = sum(float(cost(s, e)) for s, e in zip(starts, ends, strict=True))
    total += penalty * (len(ends) - 1)
    assert total == pytest.approx(optimal_partition(cost, len(y), penalty, min_size), abs=1e-6)


def test_pelt_needs_two_points_a_segment():
    with pytest.raises(ValueError, match="at least 2 points"):
        pelt(LineCost(np.zeros(10)), 10, 1.0, 1)


def _poisson_days(rng, rates: np.ndarray, weekend: float = 1.0) -> np.ndarray:
    weekday = (np.arange(len(rates)) + 6) % 7  # 2017-01-01 was a Sunday
    factor = np.where(weekday >= 5, weekend, 1.0)
    factor = factor / factor.mean()
    return rng.poisson(rates * factor).astype(float)


@pytest.mark.parametrize("rate", [0.3, 5.0, 200.0, 20_000.0])
def test_no_change_on_flat_series_of_any_volume(rate):
    rng = np.random.default_rng(int(rate * 10))
    for _ in range(5):
        values = _poisson_days(rng, np.full(3 * 365, rate), weekend=1.8)
        assert detect_series(values, np.ones(len(values), bool)) == []


def test_no_change_on_steady_exponential_growth():
    rng = np.random.default_rng(7)
    days = np.arange(3 * 365)
    values = _poisson_days(rng, 300 * np.exp(np.log(4) / 730 * days), weekend=1.5)
    assert detect_series(values, np.ones(len(values), bool)) == []


def test_step_found_to_the_day_with_its_ratio():
    rng = np.random.default_rng(3)
    rates = np.where(np.arange(1095) < 850, 20.0, 300.0)
    values = _poisson_days(rng, rates)
    (change,) = detect_series(values, np.ones(len(values), bool))
    day, before, after, strength, penalty = change
    assert abs(day - 850) <= 2
    assert after / before == pytest.approx(15, rel=0.1)
    assert strength > 4 * penalty


def test_start_from_nothing_and_ramp_found():
    rng = np.random.default_rng(5)
    days = np.arange(1095)
    rates = np.interp(days, [0, 200, 330, 1094], [10, 10, 120, 120])
    rates = np.where(days < 500, rates, rates + np.where(days < 600, 0, 60))
    values = _poisson_days(rng, rates)
    found = [c[0] for c in detect_series(values, np.ones(len(values), bool))]
    assert any(abs(d - 200) <= 31 for d in found), found
    assert any(abs(d - 330) <= 31 for d in found), found
    assert any(abs(d - 600) <= 31 for d in found), found


def test_capture_gaps_are_missing_days_not_drops():
    rng = np.random.default_rng(11)
    values = _poisson_days(rng, np.full(1095, 50.0))
    present = np.ones(1095, bool)
    present[400:460] = False  # two months without any flow captured
    values[~present] = 0
    assert detect_series(values, present) == []


def test_short_series_has_no_changes():
    values = np.array([0, 0, 0, 100, 100, 100.0] * 7)
    assert detect_series(values, np.ones(len(values), bool)) == []


def _report(series: dict[tuple[str, str], np.ndarray]) -> Report:
    report = Report("day")
    for (path, activity), values in series.items():
        for day, flows in enumerate(values):
            if flows:
                start = (DAY0 + day) * MS_PER_DAY
                report.groups[(start, path, activity, None)] = Group(int(flows), int(flows) * 100)
    return report


def test_detect_changes_names_path_activity_and_date():
    rng = np.random.default_rng(1)
    mining = _poisson_days(rng, np.where(np.arange(1095) < 850, 20.0, 300.0))
    flat = _poisson_days(rng, np.full(1095, 400.0))
    report = _report(
        {
            ("kp_range", "mining"): mining,
            ("kp_range", "streaming"): flat,
            ("none", "mining"): mining,
        }
    )
    changes = detect_changes(report)
    assert [(c.path, c.activity) for c in changes] == [("kp_range", "mining")]
    (c,) = changes
    assert abs(parse_time(c.date) // MS_PER_DAY - (DAY0 + 850)) <= 2
    assert c.ratio == pytest.approx(15, rel=0.1)
    assert c.confidence == "high"
    assert set(c.as_dict()) >= {"date", "before", "after", "ratio", "path"}
    assert "up 1" in c.describe() and "kp_range mining" in c.describe()
    assert detect_changes(report, activities=["streaming"]) == []
    assert [c.path for c in detect_changes(report, paths=["none"])] == ["none"]
    assert detect_changes(report, metric="bytes")[0].date == c.date
    assert detect_changes(report, metric="hosts") == []  # these groups carry no addresses


def test_detect_changes_refuses_other_buckets_and_metrics():
    with pytest.raises(ValueError, match="daily report"):
        detect_changes(Report("month"))
    with pytest.raises(ValueError, match="metric must be one of"):
        detect_changes(Report("day"), metric="volume")
    assert detect_changes(Report("day")) == []
