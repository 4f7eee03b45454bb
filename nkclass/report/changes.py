"""Change points: the dates where a slice's level or slope changed.

Each (path, activity) daily series of a report is searched for the
segmentation that best fits it with one straight line per segment, by PELT
(Killick, Fearnhead and Eckley 2012: exact optimal partitioning with pruning)
on the log of the rate per day, so a tenfold jump weighs the same at any
volume and steady exponential growth is one segment, not a staircase.

How, and why so:

* **Weekly blocks.** The search runs on 7-day blocks (rate per day over the
  days with data; a trailing part-week joins the last block), which cancels
  the weekday pattern, then each change is refined to the day on the daily
  series within a week either side. Days on which no flow at all was seen
  (capture gaps) count as missing, not as zero.
* **Segment cost.** The residual sum of squares of a least-squares line,
  computed in O(1) from prefix sums, so one PELT step for all admissible
  starts is a handful of numpy operations. ruptures' ``Pelt`` with its
  ``CostLinear`` fits the same model (and found the same change points on
  the demo's mining series) but solves a least-squares problem per candidate
  in Python: 68 ms for that one series against 2.7 ms here, about 4 s for the
  demo's 57 series where the budget is one second for all.
* **Penalty (the stated rule).** A change adds a location, a level and a
  slope: BIC gives ``3 * ln(n) * sigma^2`` per change for ``n`` blocks.
  ``sigma^2`` is the larger of a robust estimate from the data (the MAD of
  second differences, which steps and trends barely move, over sqrt(6)) and
  the Poisson variance of the log rate of counts (so a series of a few
  flows a week does not read every stray flow as a change); it is multiplied
  by :data:`PENALTY_FACTOR`, because real series are not exactly lines plus
  white noise (see the constant).
* **Confidence.** A change's strength is how much the fit worsens when the
  two segments beside it are merged, in noise variances; it is ``high`` at
  four times the penalty or more, ``medium`` at twice, else ``low``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from nkclass.report.model import KEY_POSITION, METRICS, MS_PER_DAY, Report, format_time

BLOCK_DAYS = 7
#: Shortest segment, in blocks: a change needs four weeks either side.
MIN_BLOCKS = 4
#: Fewest blocks a series needs to be searched at all.
MIN_SERIES_BLOCKS = 2 * MIN_BLOCKS
#: BIC assumes lines plus independent noise, and reads the wander of real
#: weekly series around their trend as changes: with BIC alone 7 of 80
#: simulated flat 3-year series (Poisson counts of 0.3 to 20,000 a day with a
#: weekday pattern) showed a change, with 1.5 or 2 times BIC none did. Twice
#: BIC still finds every planted turning point of the demo.
PENALTY_FACTOR = 2.0
CONFIDENCE_LEVELS = ((4.0, "high"), (2.0, "medium"), (0.0, "low"))


@dataclass(frozen=True)
class Change:
    """One change point of one slice: the first day of the new behaviour, the
    mean rate per day of ``metric`` over the segments before and after it,
    and how sure the fit is (``strength``: the fit's gain in noise
    variances; ``confidence`` from it, see the module)."""

    date: str
    path: str
    activity: str
    metric: str
    before: float
    after: float
    ratio: float | None  # after / before; None when before is 0
    strength: float
    confidence: str

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.ratio is None:
            change = "from nothing"
        elif self.ratio >= 1:
            change = f"up {self.ratio:.1f}x"
        else:
            change = f"down to {self.ratio:.2f}x"
        return (
            f"{self.date} {self.path} {self.activity}: {self.metric} per day {change} "
            f"({self.before:,.1f} -> {self.after:,.1f}), {self.confidence} confidence"
        )


class LineCost:
    """Residual sum of squares of the weighted least-squares line through the
    points ``(t, y)`` of a segment ``[start, end)``, from prefix sums.
    Points of weight 0 are missing."""

    def __init__(self, y: np.ndarray, weight: np.ndarray | None = None) -> None:
        y = np.asarray(y, np.float64)
        w = np.ones(len(y)) if weight is None else np.asarray(weight, np.float64)
        t = np.arange(len(y), dtype=np.float64) - len(y) / 2  # centred: smaller sums
        yw = y * w
        terms = np.stack((w, w * t, w * t * t, yw, yw * y, yw * t))
        self.sums = np.concatenate((np.zeros((6, 1)), np.cumsum(terms, axis=1)), axis=1)

    def __call__(self, start: np.ndarray | int, end: np.ndarray | int) -> np.ndarray:
        start, end = np.broadcast_arrays(start, end)
        n, st, stt, sy, syy, sty = self.sums[:, end] - self.sums[:, start]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_t = np.where(n > 0, st / n, 0.0)
            vtt = stt - st * mean_t
            vyy = syy - np.where(n > 0, sy * sy / n, 0.0)
            vty = sty - sy * mean_t
            fitted = np.where(vtt > 1e-9 * np.maximum(n, 1), vty * vty / vtt, 0.0)
        return np.maximum(vyy - fitted, 0.0)

    def ending_at(self, end: int, starts: np.ndarray) -> np.ndarray:
        """``self(starts, end)`` for segments of at least two points of
        positive weight: the same sums with fewer array operations (this is
        PELT's inner loop)."""
        n, st, stt, sy, syy, sty = self.sums[:, end, None] - self.sums[:, starts]
        mean_t = st / n
        vty = sty - sy * mean_t
        return np.maximum(syy - sy * sy / n - vty * vty / (stt - st * mean_t), 0.0)


def pelt(cost: LineCost, n: int, penalty: float, min_size: int) -> list[int]:
    """The segment ends (the last is ``n``) of the partition of ``[0, n)``
    into segments of at least ``min_size`` (>= 2) points minimising the total cost
    plus ``penalty`` per segment; exact (PELT pruning is applied only where
    it cannot cut the optimum: ``min_size`` steps after it was decided)."""
    if min_size < 2:
        raise ValueError(f"a line needs segments of at least 2 points, got min_size={min_size}")
    if n < 2 * min_size:
        return [n]
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    previous = np.zeros(n + 1, np.int64)
    pruned_from = np.full(n + 1, n + 1, np.int64)  # candidate s is dropped from this t on
    pool = np.zeros(n + 1, np.int64)  # the admissible starts are pool[:size]
    size = 0
    for t in range(min_size, n + 1):
        start = t - min_size
        if start == 0 or start >= min_size:
            pool[size] = start
            size += 1
        candidates = pool[:size]
        candidates = candidates[pruned_from[candidates] > t]
        size = len(candidates)
        pool[:size] = candidates
        fits = best[candidates] + cost.ending_at(t, candidates)
        k = int(np.argmin(fits))
        best[t] = fits[k] + penalty
        previous[t] = candidates[k]
        dominated = candidates[fits > best[t]]
        pruned_from[dominated] = np.minimum(pruned_from[dominated], t + min_size)
    ends = [n]
    while ends[-1] > 0:
        ends.append(int(previous[ends[-1]]))
    return ends[-2::-1]


def optimal_partition(cost: LineCost, n: int, penalty: float, min_size: int) -> float:
    """The minimal penalised cost by plain optimal partitioning (O(n^2), no
    pruning): the reference :func:`pelt` is checked against."""
    best = [math.inf] * (n + 1)
    best[0] = -penalty
    for t in range(min_size, n + 1):
        for s in range(0, t - min_size + 1):
            if s == 0 or s >= min_size:
                best[t] = min(best[t], best[s] + float(cost(s, t)) + penalty)
    return best[n]


def noise_variance(y: np.ndarray, poisson: np.ndarray | None = None) -> float:
    """The noise variance of a series around its piecewise lines: a robust
    estimate from second differences, not below the mean ``poisson``
    variance when given."""
    estimate = 0.0
    if len(y) >= 3:
        d2 = np.diff(y, 2)
        mad = float(np.median(np.abs(d2 - np.median(d2))))
        estimate = (1.4826 * mad) ** 2 / 6
    floor = float(np.mean(poisson)) if poisson is not None and len(poisson) else 0.0
    return max(estimate, floor, 1e-12)


def _block_starts(present: np.ndarray) -> np.ndarray:
    """First day of each 7-day block from the first day that has any day of
    data; the trailing part-week belongs to the last block."""
    starts = np.arange(0, max(len(present) - BLOCK_DAYS + 1, 1), BLOCK_DAYS)
    days = np.add.reduceat(present.astype(np.int64), starts)
    return starts[days > 0]


def detect_series(
    values: np.ndarray, present: np.ndarray, counts: bool = True
) -> list[tuple[int, float, float, float, float]]:
    """Change points of one daily series: ``values`` per day, ``present``
    (bool) marks the days that have data at all. Returns (first day of the
    change, mean per day before, mean per day after, strength, penalty in
    the same units) per change, in day order."""
    values = np.asarray(values, np.float64)
    present = np.asarray(present, bool)
    starts = _block_starts(present)
    if len(starts) < MIN_SERIES_BLOCKS:
        return []
    block_days = np.add.reduceat(present.astype(np.float64), starts)
    block_sums = np.add.reduceat(np.where(present, values, 0.0), starts)
    # reduceat sums up to the next kept start: the blocks dropped had no data
    rate = block_sums / block_days
    y = np.log1p(rate)
    poisson = rate / block_days / (1 + rate) ** 2 if counts else None
    variance = noise_variance(y, poisson)
    n = len(y)
    penalty = PENALTY_FACTOR * 3 * math.log(n) * variance
    cost = LineCost(y)
    ends_found = pelt(cost, n, penalty, MIN_BLOCKS)
    if len(ends_found) == 1:
        return []
    # refine each block boundary to the day on the daily series
    daily = LineCost(np.log1p(np.where(present, values, 0.0)), present.astype(np.float64))
    bounds = [0, *(int(starts[e]) for e in ends_found[:-1]), len(values)]
    refined = list(bounds)
    for i in range(1, len(bounds) - 1):
        lo_limit = refined[i - 1] + BLOCK_DAYS
        hi_limit = bounds[i + 1] - BLOCK_DAYS
        window = np.arange(
            max(bounds[i] - BLOCK_DAYS + 1, lo_limit), min(bounds[i] + BLOCK_DAYS, hi_limit) + 1
        )
        if len(window):
            fit = daily(refined[i - 1], window) + daily(window, bounds[i + 1])
            refined[i] = int(window[np.argmin(fit)])
    out = []
    edges = [0, *ends_found]  # the strength is the fit's, on blocks
    for i in range(1, len(refined) - 1):
        a, b, c = refined[i - 1], refined[i], refined[i + 1]
        before = _mean(values, present, a, b)
        after = _mean(values, present, b, c)
        ba, bb, bc = edges[i - 1], edges[i], edges[i + 1]
        gain = float(cost(ba, bc) - cost(ba, bb) - cost(bb, bc))
        out.append((b, before, after, gain / variance, penalty / variance))
    return out


def _mean(values: np.ndarray, present: np.ndarray, lo: int, hi: int) -> float:
    days = int(present[lo:hi].sum())
    return float(values[lo:hi][present[lo:hi]].sum() / days) if days else 0.0


def _confidence(strength: float, penalty: float) -> str:
    for times, name in CONFIDENCE_LEVELS:
        if strength >= times * penalty:
            return name
    return "low"


def daily_series(
    report: Report, metric: str = "flows", paths=None, activities=None, combine: bool = False
) -> tuple[int, np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """First day (ms), the days with any flow, and ``metric`` per day for each
    (path, activity) of a daily report; ``paths`` / ``activities`` keep only
    those (default: every watched path, every activity). With ``combine``
    the activities kept are one series per path, named ``a+b+...``."""
    if report.bucket != "day":
        raise ValueError(f"change points need a daily report, got {report.bucket} buckets")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not report.groups:
        return 0, np.zeros(0, bool), {}
    index = report._group_index()  # the groups' keys as columns
    day = index.starts // MS_PER_DAY
    first = int(day.min())
    present = np.zeros(int(day.max()) - first + 1, bool)
    present[day - first] = True
    if metric in ("hosts", "peers"):
        value = np.array([g.distinct(metric) for g in index.groups], np.float64)
    else:
        value = np.array([getattr(g, metric) for g in index.groups], np.float64)
    path_names, path_code = index.codes[KEY_POSITION["path"]]
    activity_names, activity_code = index.codes[KEY_POSITION["activity"]]
    wanted_paths = [p for p in path_names if p != "none"] if paths is None else list(paths)
    keep = index.matching("path", wanted_paths)
    if activities is not None:
        keep &= index.matching("activity", list(activities))
    if combine:
        shown = activities if activities is not None else list(activity_names)
        activity_names = {"+".join(shown): 0}
        activity_code = np.zeros_like(activity_code)
    width = len(activity_names)
    pairs, code = np.unique(path_code[keep] * width + activity_code[keep], return_inverse=True)
    grid = np.zeros((len(pairs), len(present)))
    np.add.at(grid, (code, (day - first)[keep]), value[keep])
    path_of, activity_of = list(path_names), list(activity_names)
    series = {
        (path_of[p], activity_of[a]): grid[i]
        for i, (p, a) in enumerate(divmod(pair, width) for pair in pairs.tolist())
    }
    return first * MS_PER_DAY, present, series


def detect_changes(
    report: Report, metric: str = "flows", paths=None, activities=None, combine: bool = False
) -> list[Change]:
    """The change points of every (path, activity) daily series of ``report``
    (watched paths only unless ``paths`` names them; ``activities`` to keep
    some; ``combine`` to search their sum, e.g. the anonymising activities
    together), ordered by date, path and activity.

    ``hosts`` and ``peers`` per day are distinct counts per day, so a change
    in them is a change in how many addresses were active each day."""
    first_ms, present, series = daily_series(report, metric, paths, activities, combine)
    counts = metric in ("flows", "packets", "hosts", "peers")
    out = []
    for (path, activity), values in series.items():
        for day, before, after, strength, penalty in detect_series(values, present, counts):
            out.append(
                Change(
                    date=format_time(first_ms + day * MS_PER_DAY),
                    path=path,
                    activity=activity,
                    metric=metric,
                    before=before,
                    after=after,
                    ratio=after / before if before > 0 else None,
                    strength=round(strength, 1),
                    confidence=_confidence(strength, penalty),
                )
            )
    return sorted(out, key=lambda c: (c.date, c.path, c.activity))
