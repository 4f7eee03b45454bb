"""PNG charts of a Report (matplotlib, Agg backend; no display needed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from nkclass.report.model import ANONYMISING, Report, parse_time

TOP_ACTIVITIES = 9  # the rest is drawn as "other"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, time_axis: bool = True) -> Path:
    """Common finish: grid, dated x axis, tight layout, PNG, figure closed."""
    import matplotlib.pyplot as plt

    for ax in fig.axes:
        ax.grid(alpha=0.3, axis="both" if time_axis else "x")
    if time_axis:
        fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _dates(starts: Sequence[int]) -> list[datetime]:
    return [datetime.fromtimestamp(s / 1000, tz=UTC) for s in starts]


def _series(report: Report, metric: str, path: str) -> tuple[list[int], dict[str, np.ndarray]]:
    """Bucket starts and one array per activity for one path."""
    starts = sorted({k[0] for k in report.groups})
    index = {s: i for i, s in enumerate(starts)}
    out: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(starts)))
    for (start, p, activity, _), g in report.groups.items():
        if p == path:
            out[activity][index[start]] += getattr(g, metric)
    return starts, dict(out)


def activity_series(report: Report, path: str, metric: str, out: Path) -> Path:
    """Stacked areas of ``metric`` per activity over time for one path."""
    plt = _pyplot()
    starts, series = _series(report, metric, path)
    ranked = sorted(series, key=lambda a: -series[a].sum())
    shown = [a for a in ranked if a != "unknown"][:TOP_ACTIVITIES]
    rest = sum((series[a] for a in ranked if a not in shown), np.zeros(len(starts)))
    values = [series[a] for a in shown] + ([rest] if rest.any() else [])
    labels = shown + (["other / unknown"] if rest.any() else [])
    scale, unit = (1e9, "GB") if metric == "bytes" else (1, metric)
    fig, ax = plt.subplots(figsize=(11, 5.5))
    colors = plt.get_cmap("tab10").colors
    ax.stackplot(
        _dates(starts),
        [v / scale for v in values],
        labels=labels,
        colors=[colors[i % 10] for i in range(len(values))],
        alpha=0.9,
    )
    ax.set_title(f"{path}: {metric} per {report.bucket} by activity")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"{unit} per {report.bucket}")
    ax.legend(loc="upper left", fontsize=8, ncol=2, frameon=False)
    return _save(fig, out)


def anonymising_share(report: Report, out: Path, paths: Sequence[str]) -> Path:
    """Share of flows that are Tor, VPN, proxy or DNS tunnel, per path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for path in paths:
        starts, series = _series(report, "flows", path)
        total = sum(series.values(), np.zeros(len(starts)))
        hidden = sum((series.get(a, 0) for a in ANONYMISING), np.zeros(len(starts)))
        share = np.divide(hidden, total, out=np.zeros_like(total), where=total > 0)
        ax.plot(_dates(starts), share * 100, label=path, linewidth=1.6)
    ax.set_title(f"Anonymising traffic ({', '.join(ANONYMISING)}) as a share of flows")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("% of the path's flows")
    ax.legend(frameon=False)
    return _save(fig, out)


def top_bars(
    labels: Sequence[str], values: Sequence[float], title: str, xlabel: str, out: Path
) -> Path:
    """Horizontal bars, largest on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(labels), 3) + 1.2))
    y = np.arange(len(labels))[::-1]
    ax.barh(y, values, color=plt.get_cmap("tab10").colors[0])
    ax.set_yticks(y, labels)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return _save(fig, out, time_axis=False)


def trend_chart(
    report: Report, out: Path, split: object, metric: str = "flows", since: object = None, **where
) -> Path:
    """One slice's metric per bucket, the split date marked, the mean level
    before and after drawn; the ratio compares per-day rates from ``since``
    (default: the report's start) to the split and after it."""
    plt = _pyplot()
    starts = sorted({k[0] for k in report.groups})
    values = np.array([report.total(metric, s, s + 1, **where) for s in starts], float)
    cut = parse_time(split)
    before = (since, split) if since is not None else None
    trend = report.trend(metric, split=split, before=before, **where)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    dates = _dates(starts)
    ax.plot(dates, values, marker="o", markersize=2.5, linewidth=1.2, label=f"{metric}")
    ax.axvline(_dates([cut])[0], color="crimson", linestyle="--", label=f"split {split}")
    before = [v for s, v in zip(starts, values, strict=True) if s < cut]
    after = [v for s, v in zip(starts, values, strict=True) if s >= cut]
    if before:
        ax.hlines(np.mean(before), dates[0], _dates([cut])[0], colors="gray", linestyles=":")
    if after:
        ax.hlines(
            np.mean(after),
            _dates([cut])[0],
            dates[-1],
            colors="gray",
            linestyles=":",
            label="mean per bucket",
        )
    what = ", ".join(f"{k}={v}" for k, v in where.items()) or "all traffic"
    ratio = "new" if np.isinf(trend.ratio) else f"{trend.ratio:.1f}x per day"
    base = f" vs {since}..{split}" if since is not None else ""
    ax.set_title(f"{what}: {metric} per {report.bucket} ({ratio} after {split}{base})")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"{metric} per {report.bucket}")
    ax.legend(frameon=False)
    return _save(fig, out)


def write_plots(
    report: Report,
    directory: str | Path,
    split: object = None,
    trend_where: dict | None = None,
    service_report: Report | None = None,
    top_peers: Sequence[tuple[str, float]] = (),
    since: object = None,
) -> list[Path]:
    """Every chart the report supports, as PNG files in ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted({k[1] for k in report.groups if k[1] != "none"})
    written = []
    for path in paths:
        written.append(activity_series(report, path, "flows", out / f"flows_{path}.png"))
        written.append(activity_series(report, path, "bytes", out / f"bytes_{path}.png"))
    if paths:
        written.append(anonymising_share(report, out / "anonymising_share.png", paths))
    if service_report is not None:
        totals: dict[str, int] = defaultdict(int)
        for (_, path, _, service), g in service_report.groups.items():
            if path != "none" and service not in (None, "none"):
                totals[service] += g.flows
        ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:15]
        if ranked:
            written.append(
                top_bars(
                    [k for k, _ in ranked],
                    [v for _, v in ranked],
                    "Top services of watched hosts",
                    "flows",
                    out / "top_services.png",
                )
            )
    if top_peers:
        written.append(
            top_bars(
                [k for k, _ in top_peers],
                [v for _, v in top_peers],
                "Top outside peers of watched hosts",
                "flows",
                out / "top_peers.png",
            )
        )
    if split is not None:
        where = trend_where or {}
        name = (
            "_".join(str(v) if isinstance(v, str) else "+".join(v) for v in where.values()) or "all"
        )
        written.append(trend_chart(report, out / f"trend_{name}.png", split, since=since, **where))
    return written
