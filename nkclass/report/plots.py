"""PNG charts of a Report (matplotlib, Agg backend; no display needed).

Each chart function writes a PNG to ``out`` and returns its path, or with
``out=None`` returns the open matplotlib figure. Every time chart plots
rates (per day; per hour for hourly reports), so that months of different
lengths and partly covered first and last buckets do not dip; every activity
has one colour in every chart (:mod:`nkclass.report.palette`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import numpy as np

from nkclass.report.model import (
    ANONYMISING,
    KEY_POSITION,
    MS_PER_DAY,
    ROLLUPS,
    Report,
    bucket_index,
    bucket_start_ms,
    format_time,
    parse_time,
)
from nkclass.report.palette import OTHER_COLOUR, WATCHED_BANDS, colour
from nkclass.report.top import TopRow
from nkclass.rules.model import Ruleset

TOP_ACTIVITIES = 9  # largest other activities drawn on their own; the rest is "other"
MAX_POINTS = 120  # write_plots rolls finer buckets up until a time chart has at most this many
BUCKET_WORDS = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}
COUNTRIES = 6  # operator countries drawn on their own; the rest is "other countries"
ADDITIVE = ("flows", "bytes", "packets")  # metrics that have a rate per day
PATH_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path | None, time_axis: bool = True):
    """Common finish: grid, dated x axis, tight layout; then the PNG written
    and the figure closed, or with ``out=None`` the open figure returned
    (to restyle it, or to look inside)."""
    import matplotlib.pyplot as plt

    for ax in fig.axes:
        ax.grid(alpha=0.3, axis="both" if time_axis else "x")
    if time_axis:
        fig.autofmt_xdate()
    fig.tight_layout()
    if out is None:
        return fig
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _dates(starts: Sequence[int] | np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(int(s) / 1000, tz=UTC) for s in starts]


class Timeline:
    """Every bucket from a report's first to its last (gaps included), with
    the time each covers in rate units (days; hours for hourly reports):
    the whole bucket, except where the data starts or ends inside it."""

    def __init__(self, report: Report) -> None:
        if not report.groups:
            raise ValueError("the report is empty: nothing to plot")
        present = np.array(sorted({k[0] for k in report.groups}), np.int64)
        index = bucket_index(present, report.bucket)
        numbers = np.arange(index[0], index[-1] + 2)
        edges = bucket_start_ms(numbers, report.bucket)
        self.starts, self.ends = edges[:-1], edges[1:]
        self.unit, unit_ms = ("hour", 3_600_000) if report.bucket == "hour" else ("day", MS_PER_DAY)
        lo = self.starts[0] if report.first_ms is None else report.first_ms // unit_ms * unit_ms
        hi = (
            self.ends[-1]
            if report.last_ms is None
            else -(-(report.last_ms + 1) // unit_ms) * unit_ms
        )
        covered = np.minimum(self.ends, hi) - np.maximum(self.starts, lo)
        self.units = np.maximum(covered, unit_ms) / unit_ms
        self.position = {int(s): i for i, s in enumerate(self.starts)}

    def series(
        self, report: Report, metric: str, keep: Callable[[tuple], str | None]
    ) -> dict[str, np.ndarray]:
        """Rates of ``metric`` per label; ``keep(key)`` names the label a
        group counts under, or None to leave it out."""
        out: dict[str, np.ndarray] = {}
        for key, g in report.groups.items():
            label = keep(key)
            if label is not None:
                values = out.setdefault(label, np.zeros(len(self.starts)))
                values[self.position[key[0]]] += getattr(g, metric)
        return {label: values / self.units for label, values in out.items()}

    def step(self, values: np.ndarray) -> tuple[list[datetime], np.ndarray]:
        """x and y of a step line (each bucket's rate held to its end)."""
        return _dates([*self.starts, self.ends[-1]]), np.append(values, values[-1])


def readable(report: Report, max_points: int = MAX_POINTS) -> Report:
    """``report`` rolled up (exactly, :meth:`Report.rebucket`) to the finest
    bucket that draws a time chart of at most ``max_points`` steps; three
    years of days become months."""
    if not report.groups:
        return report
    starts = np.array([min(k[0] for k in report.groups), max(k[0] for k in report.groups)])
    for bucket in (report.bucket, *ROLLUPS[report.bucket]):
        first, last = bucket_index(starts, bucket)
        if last - first + 1 <= max_points:
            return report.rebucket(bucket)
    return report.rebucket((report.bucket, *ROLLUPS[report.bucket])[-1])


def _scale(metric: str) -> tuple[float, str]:
    return (1e9, "GB") if metric == "bytes" else (1.0, metric)


def _bands(series: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, str]]:
    """(label, values, colour) per band, bottom first: the watched bands,
    the largest other activities, then "other" and "unknown"."""
    zeros = np.zeros(len(next(iter(series.values()))))
    bands = []
    banded: set[str] = set()
    for label, (members, band_colour) in WATCHED_BANDS.items():
        values = sum((series.get(a, zeros) for a in members), zeros)
        banded.update(members)
        if values.any():
            bands.append((label, values, band_colour))
    rest = [a for a in series if a not in banded and a != "unknown"]
    rest.sort(key=lambda a: (-series[a].sum(), a))
    for activity in rest[:TOP_ACTIVITIES]:
        bands.append((activity, series[activity], colour(activity)))
    other = sum((series[a] for a in rest[TOP_ACTIVITIES:]), zeros)
    if other.any():
        bands.append((f"other ({len(rest) - TOP_ACTIVITIES} activities)", other, OTHER_COLOUR))
    if "unknown" in series and series["unknown"].any():
        bands.append(("unknown", series["unknown"], colour("unknown")))
    return bands


def activity_series(report: Report, path: str, metric: str, out: Path | None) -> Path:
    """Stacked bands of ``metric`` per day by activity for one path."""
    if metric not in ADDITIVE:
        raise ValueError(f"metric must be one of {', '.join(ADDITIVE)}, got {metric!r}")
    plt = _pyplot()
    line = Timeline(report)
    series = line.series(report, metric, lambda k: k[2] if k[1] == path else None)
    if not series:
        series = {"unknown": np.zeros(len(line.starts))}
    bands = _bands(series)
    scale, unit = _scale(metric)
    fig, ax = plt.subplots(figsize=(11, 5.5))
    x, _ = line.step(bands[0][1])
    ax.stackplot(
        x,
        [line.step(v / scale)[1] for _, v, _ in bands],
        labels=[label for label, _, _ in bands],
        colors=[c for _, _, c in bands],
        step="post",
        edgecolor="white",
        linewidth=0.3 if len(line.starts) <= 60 else 0,  # thin seams only where they show
    )
    ax.set_title(
        f"{path}: {metric} per {line.unit} by activity ({BUCKET_WORDS[report.bucket]} buckets)"
    )
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"{unit} per {line.unit}")
    ax.set_xlim(x[0], x[-1])
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        labels[::-1],
        loc="upper left",
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(1.0, 1.0),
    )
    return _save(fig, out)


def anonymising_share(report: Report, out: Path | None, paths: Sequence[str]) -> Path:
    """Share of flows that are Tor, VPN, proxy or DNS tunnel, per path."""
    plt = _pyplot()
    line = Timeline(report)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, path in enumerate(paths):
        series = line.series(report, "flows", lambda k, p=path: k[2] if k[1] == p else None)
        zeros = np.zeros(len(line.starts))
        total = sum(series.values(), zeros)
        hidden = sum((series.get(a, zeros) for a in ANONYMISING), zeros)
        share = np.divide(hidden, total, out=np.zeros_like(total), where=total > 0)
        x, y = line.step(share * 100)
        ax.plot(
            x,
            y,
            drawstyle="steps-post",
            label=path,
            linewidth=1.6,
            color=PATH_COLOURS[i % len(PATH_COLOURS)],
        )
    ax.set_xlim(x[0], x[-1])
    ax.set_title(f"Anonymising traffic ({', '.join(ANONYMISING)}) as a share of flows")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("% of the path's flows")
    ax.legend(frameon=False)
    return _save(fig, out)


def top_bars(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    xlabel: str,
    out: Path | None,
    categories: Sequence[str | None] | None = None,
) -> Path:
    """Horizontal bars, largest on top; with ``categories`` (activity names)
    each bar takes its activity's colour and a legend says which is which."""
    plt = _pyplot()
    longest = max((len(label) for label in labels), default=0)
    fig, ax = plt.subplots(figsize=(6 + 0.08 * longest, 0.42 * max(len(labels), 3) + 1.4))
    y = np.arange(len(labels))[::-1]
    kinds = list(categories) if categories is not None else [None] * len(labels)
    colours = [colour(k) if k else colour("unknown") for k in kinds]
    ax.barh(y, values, color=colours)
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if categories is not None:
        from matplotlib.patches import Patch

        seen = list(dict.fromkeys(k or "unknown" for k in kinds))
        ax.legend(
            [Patch(color=colour(k)) for k in seen],
            seen,
            fontsize=8,
            frameon=False,
            loc="lower right",
        )
    return _save(fig, out, time_axis=False)


def service_groups(
    service_report: Report,
    groups: Mapping[str, tuple[Sequence[str], str]],
    out: Path | None,
    title: str,
    activities: Sequence[str] | None = None,
) -> Path:
    """Flows per day of the watched paths to groups of services (label ->
    (service names, colour)), one line each; ``activities`` narrows to the
    flows of those activities."""
    if service_report.by != "service":
        raise ValueError("needs a report made with by='service'")
    plt = _pyplot()
    line = Timeline(service_report)
    group_of = {s: label for label, (services, _) in groups.items() for s in services}
    wanted = set(activities) if activities is not None else None

    def keep(key: tuple) -> str | None:
        if key[1] == "none" or (wanted is not None and key[2] not in wanted):
            return None
        return group_of.get(key[3])

    series = line.series(service_report, "flows", keep)
    fig, ax = plt.subplots(figsize=(11, 4.8))
    zeros = np.zeros(len(line.starts))
    for label, (_, group_colour) in groups.items():
        x, y = line.step(series.get(label, zeros))
        ax.plot(x, y, drawstyle="steps-post", color=group_colour, linewidth=1.8, label=label)
    x = line.step(zeros)[0]
    ax.set_xlim(x[0], x[-1])
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"flows per {line.unit}")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=9)
    return _save(fig, out)


def _slice_text(where: Mapping[str, object]) -> str:
    return (
        ", ".join(f"{k}={v if isinstance(v, str) else '+'.join(v)}" for k, v in where.items())
        or "all traffic"
    )


def trend_chart(
    report: Report,
    out: Path | None,
    split: object,
    metric: str = "flows",
    since: object = None,
    series_report: Report | None = None,
    **where,
) -> Path:
    """One slice's ``metric`` per day, with the two windows its ratio
    compares drawn as they are used: the before window from ``since``
    (default: the report's start) to ``split``, the after window from
    ``split`` to the report's end, each at its mean rate per day. The ratio
    always comes from ``report``; ``series_report`` (a rolled-up copy, see
    :func:`readable`) may draw the line."""
    if metric not in ADDITIVE:
        raise ValueError(f"metric must be one of {', '.join(ADDITIVE)}, got {metric!r}")
    plt = _pyplot()
    before = (since, split) if since is not None else None
    trend = report.trend(metric, split=split, before=before, **where)
    drawn = report if series_report is None else series_report
    line = Timeline(drawn)
    wanted = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in where.items()}
    series = line.series(
        drawn,
        metric,
        lambda key: "slice" if all(key[KEY_POSITION[k]] in v for k, v in wanted.items()) else None,
    ).get("slice", np.zeros(len(line.starts)))
    scale, unit = _scale(metric)
    activity = where.get("activity")
    series_colour = colour(activity) if isinstance(activity, str) else "#333333"
    fig, ax = plt.subplots(figsize=(11, 4.8))
    x, y = line.step(series / scale)
    ax.plot(
        x,
        y,
        drawstyle="steps-post",
        color=series_colour,
        linewidth=1.4,
        label=f"{metric} per {line.unit}",
    )
    unit_days = 1 / 24 if line.unit == "hour" else 1
    for (lo, hi), rate, name, shade in (
        (trend.before, trend.before_per_day, "before", "#4575b4"),
        (trend.after, trend.after_per_day, "after", "#d73027"),
    ):
        span = _dates([lo, hi])
        ax.axvspan(span[0], span[1], color=shade, alpha=0.07)
        ax.hlines(
            rate * unit_days / scale,
            span[0],
            span[1],
            colors=shade,
            linestyles="--",
            linewidth=1.6,
            label=f"{name} {format_time(lo)}..{format_time(hi)}: "
            f"{rate * unit_days / scale:,.1f} per {line.unit}",
        )
    ax.axvline(_dates([parse_time(split)])[0], color="black", linewidth=0.8)
    if math.isinf(trend.ratio):
        ratio = "up from nothing"
    elif math.isnan(trend.ratio):
        ratio = "none in either window"
    else:
        ratio = f"{trend.ratio:.1f}x"
    ax.set_title(
        f"{_slice_text(where)}: {metric} per {line.unit}, after {split} vs before: {ratio}\n"
        "(dashed: the mean rate of each window the ratio compares)",
        fontsize=11,
    )
    ax.set_xlim(x[0], x[-1])
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"{unit} per {line.unit}")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=9, loc="upper left")
    return _save(fig, out)


def country_groups(
    service_report: Report, rules: Ruleset, top: int = COUNTRIES
) -> dict[str, tuple[list[str], str]]:
    """The ``top`` operator countries (by watched flows) of the services in a
    by-service report, as :func:`service_groups` groups; services without a
    [[service]] country are left out."""
    country = rules.countries()
    flows: dict[str, int] = {}
    for (_, path, _, service), g in service_report.groups.items():
        if path != "none" and service in country:
            flows[country[service]] = flows.get(country[service], 0) + g.flows
    ranked = sorted(flows, key=lambda c: (-flows[c], c))[:top]
    return {
        c: ([s for s, sc in country.items() if sc == c], PATH_COLOURS[i % len(PATH_COLOURS)])
        for i, c in enumerate(ranked)
    }


def write_plots(
    report: Report,
    directory: str | Path,
    split: object = None,
    trend_where: dict | None = None,
    service_report: Report | None = None,
    top_peers: Sequence[TopRow] = (),
    since: object = None,
    rules: Ruleset | None = None,
) -> list[Path]:
    """Every chart the report supports, as PNG files in ``directory``:
    activity bands per watched path (flows and bytes), the anonymising share,
    with ``service_report`` (by service) the top services and, when ``rules``
    carries [[service]] countries, flows by operator country; the top peers
    given; with ``split`` a trend chart of ``trend_where``. Time charts roll
    fine buckets up to at most :data:`MAX_POINTS` steps (:func:`readable`)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if not report.groups:
        return written
    shown = readable(report)
    paths = sorted({k[1] for k in report.groups if k[1] != "none"})
    for path in paths:
        written.append(activity_series(shown, path, "flows", out / f"flows_{path}.png"))
        written.append(activity_series(shown, path, "bytes", out / f"bytes_{path}.png"))
    if paths:
        written.append(anonymising_share(shown, out / "anonymising_share.png", paths))
    categories = rules.service_categories() if rules is not None else {}
    if service_report is not None and service_report.groups:
        totals: dict[str, int] = {}
        for (_, path, _, service), g in service_report.groups.items():
            if path != "none" and service not in (None, "none"):
                totals[service] = totals.get(service, 0) + g.flows
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
        if ranked:
            countries = rules.countries() if rules else {}
            written.append(
                top_bars(
                    [f"{k} ({countries[k]})" if countries.get(k) else k for k, _ in ranked],
                    [v for _, v in ranked],
                    "Top services of watched hosts",
                    "flows",
                    out / "top_services.png",
                    [categories.get(k) for k, _ in ranked],
                )
            )
        groups = country_groups(service_report, rules) if rules is not None else {}
        if groups:
            written.append(
                service_groups(
                    readable(service_report),
                    groups,
                    out / "service_countries.png",
                    "Flows of watched hosts to named services, by the operator's country\n"
                    "(the services the ruleset's [[service]] entries place)",
                )
            )
    if top_peers:
        written.append(
            top_bars(
                [row.describe() for row in top_peers],
                [row.flows for row in top_peers],
                "Top outside peers of watched hosts\n(the service, AS and organisation most seen "
                "with each)",
                "flows",
                out / "top_peers.png",
                [categories.get(row.service) if row.service else None for row in top_peers],
            )
        )
    if split is not None:
        where = trend_where or {}
        name = (
            "_".join(str(v) if isinstance(v, str) else "+".join(v) for v in where.values()) or "all"
        )
        written.append(
            trend_chart(
                report, out / f"trend_{name}.png", split, since=since, series_report=shown, **where
            )
        )
    return written


def change_charts(
    report: Report,
    changes: Sequence,
    out_dir: str | Path,
    metric: str = "flows",
    activities: Sequence[str] | None = None,
    combine: bool = False,
) -> list[Path]:
    """One chart per (path, activity) of ``changes`` (from
    :func:`nkclass.report.changes.detect_changes` on ``report``, a daily
    report): the metric per day (thin) and per week (thick), each change a
    vertical line labelled with its ratio and confidence, and each segment's
    mean rate per day dashed. ``activities`` and ``combine`` as given to
    the detection."""
    from nkclass.report.changes import BLOCK_DAYS, daily_series

    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_series: dict[tuple[str, str], list] = {}
    for change in changes:
        by_series.setdefault((change.path, change.activity), []).append(change)
    first_ms, present, series = daily_series(
        report,
        metric,
        sorted({p for p, _ in by_series}),
        activities if combine else sorted({a for _, a in by_series}),
        combine,
    )
    scale, unit = _scale(metric)
    written = []
    for (path, activity), found in sorted(by_series.items()):
        values = series[(path, activity)] / scale
        days = first_ms + np.arange(len(values)) * MS_PER_DAY
        fig, ax = plt.subplots(figsize=(11, 4.8))
        shown = np.where(present, values, np.nan)
        line_colour = colour(activity) if "+" not in activity else "#333333"
        ax.plot(
            _dates(days),
            shown,
            color=line_colour,
            alpha=0.35,
            linewidth=0.7,
            label=f"{unit} per day",
        )
        weeks = np.arange(0, len(values), BLOCK_DAYS)
        have = np.add.reduceat(present.astype(float), weeks)
        weekly = np.add.reduceat(np.where(present, values, 0.0), weeks) / np.maximum(have, 1)
        ax.step(
            _dates(days[weeks]),
            np.where(have > 0, weekly, np.nan),
            where="post",
            color=line_colour,
            linewidth=1.6,
            label=f"{unit} per day, weekly mean",
        )
        cuts = [first_ms, *(parse_time(c.date) for c in found), first_ms + len(values) * MS_PER_DAY]
        means = [found[0].before] + [c.after for c in found]
        for (lo, hi), mean in zip(pairwise(cuts), means, strict=True):
            ax.hlines(
                mean / scale, *_dates([lo, hi]), colors="black", linestyles="--", linewidth=1.1
            )
        for c in found:
            when = _dates([parse_time(c.date)])[0]
            ax.axvline(when, color="#d73027", linewidth=1.0)
            ratio = "from 0" if c.ratio is None else f"{c.ratio:.2g}x"
            ax.annotate(
                f"{c.date}\n{ratio}, {c.confidence}",
                (when, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                va="top",
                fontsize=8,
            )
        ax.set_title(
            f"path={path}, activity={activity}: {len(found)} change(s) in {metric} per "
            "day\n(dashed: each segment's mean rate per day)",
            fontsize=11,
        )
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel(f"{unit} per day")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, fontsize=9, loc="upper left")
        name = activity.replace("+", "_")
        written.append(_save(fig, out / f"changes_{path}_{name}.png"))
    return written


def hashrate_chart(report, out_dir: str | Path, out_name: str = "hashrate_per_path.png"):
    """Estimated hashrate per watched path per month (the sum of its hosts'
    rates, :meth:`~nkclass.report.hashrate.HashrateReport.per_path`), a
    point per month with its Poisson one-sigma bar, log scale; returns the
    PNG's path."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = report.per_path().to_pylist()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, path in enumerate(sorted({r["path"] for r in rows})):
        mine = [r for r in rows if r["path"] == path]
        starts = [parse_time(r["month"] + "-01") for r in mine]
        rate = np.array([r["hashrate"] for r in mine])
        sigma = rate * np.array([r["rel_std"] for r in mine])
        ax.errorbar(_dates(starts), rate, yerr=sigma, marker="o", linewidth=1.6, capsize=3,
                    label=path, color=PATH_COLOURS[i % len(PATH_COLOURS)])
    ax.set_yscale("log")
    ax.set_title("Estimated mining hashrate per path (stratum shares x difficulty)")
    ax.set_xlabel("month (UTC)")
    ax.set_ylabel("hashes per second")
    ax.legend(frameon=False)
    return _save(fig, out / out_name)
