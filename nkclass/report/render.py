"""Text renderings of reports: aligned tables for people, JSON and CSV for
machines.

JSON schema (``nkclass report --format json``)::

    {"bucket": "day", "by": null | "app" | "service" | "org",
     "rows": [{"bucket": "2019-05-01T00:00:00Z", "path": "kp_range",
               "activity": "mining", ["app" | "service" | "org": "...",]
               "flows": 12, "bytes": 3400, "packets": 80,
               "hosts": 2, "peers": 1}, ...]}

``bucket`` is the bucket's start (UTC); ``hosts`` and ``peers`` are distinct
watched addresses and distinct outside addresses in the row (0 on ``none``
rows, whose flows touch no watched path).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from nkclass.report.model import MS_PER_DAY, Group, Report, Trend


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def aligned(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] | None = None
) -> str:
    """A plain aligned table (numbers right-aligned)."""
    texts = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in texts]) for i, h in enumerate(headers)]
    right = right or [False] * len(headers)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in texts]
    return "\n".join(out)


def report_rows(report: Report, min_flows: int = 0) -> list[dict]:
    table = report.table(min_flows)
    rows = table.to_pylist()
    for row in rows:
        row["bucket"] = row["bucket"].strftime("%Y-%m-%dT%H:%M:%SZ")
    return rows


def render_json(report: Report, min_flows: int = 0) -> str:
    return json.dumps(
        {"bucket": report.bucket, "by": report.by, "rows": report_rows(report, min_flows)}, indent=1
    )


def render_csv(report: Report, min_flows: int = 0) -> str:
    return table_csv(report.table(min_flows))


def table_csv(table: pa.Table) -> str:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue().decode()


def render_table(
    report: Report, min_flows: int = 0, watched_only: bool = True, limit: int | None = None
) -> str:
    """Bucket x path x activity rows as an aligned table, in time order;
    ``limit`` keeps the busiest rows (by flows)."""
    table = report.table(min_flows)
    if watched_only:
        table = table.filter(pa.compute.not_equal(table.column("path"), "none"))
    if limit is not None and table.num_rows > limit:
        busiest = np.argsort(-table.column("flows").to_numpy().astype(np.float64), kind="stable")
        table = table.take(np.sort(busiest[:limit]))
    stamp = (
        "%Y-%m-%d %H:%M"
        if report.bucket == "hour"
        else ("%Y-%m" if report.bucket == "month" else "%Y-%m-%d")
    )
    headers = (
        ["bucket", "path", "activity"]
        + ([report.by] if report.by else [])
        + ["flows", "bytes", "packets", "hosts", "peers"]
    )
    rows = []
    for r in table.to_pylist():
        rows.append(
            [r["bucket"].strftime(stamp), r["path"], r["activity"]]
            + ([r[report.by]] if report.by else [])
            + [
                f"{r['flows']:,}",
                human_bytes(r["bytes"]),
                f"{r['packets']:,}",
                f"{r['hosts']:,}",
                f"{r['peers']:,}",
            ]
        )
    right = [False] * (len(headers) - 5) + [True] * 5
    return aligned(headers, rows, right)


def _period(report: Report) -> str:
    first, last = report.first_ms, report.last_ms
    if first is None or last is None:
        return ""
    days = (last - first) / MS_PER_DAY
    length = f"{days:,.0f} days" if days >= 2 else f"{days * 24:,.1f} hours"
    return f"from {_stamp(first)} to {_stamp(last)} UTC ({length})"


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def render_summary(
    report: Report, watched: Sequence[str] = (), top_activities: int = 10
) -> str:
    """A short summary: the period covered, totals per path and the top
    activities on the watched paths (``watched`` names the ruleset's paths,
    so that a report in which none of them appears can say so)."""
    if not len(report):
        return "no flows"
    # Rolled up natively (exact unions of the address sets), not group by group.
    by_path = {path: g for (path,), g in report.rolled_up(["path"]).items()}
    activities_of: dict[str, dict[str, int]] = {}
    pairs = report.table().group_by(["path", "activity"]).aggregate([("flows", "sum")])
    for path, activity, n in zip(*(pairs.column(c).to_pylist() for c in
                                   ("path", "activity", "flows_sum")), strict=True):
        activities_of.setdefault(path, {})[activity] = n
    by_activity = {a: g for (a,), g in report.rolled_up(["activity"], watched_only=True).items()}
    flows = {path: g.flows for path, g in by_path.items()}
    everything = sum(flows.values())
    on_watched = everything - flows.get("none", 0)
    lines = [f"{everything:,} flows {_period(report)}".rstrip()]
    if on_watched == 0:
        names = f" ({', '.join(watched)})" if watched else ""
        lines.append(f"no flow touched a watched network{names}")
        return "\n".join(lines)
    lines.append(f"{on_watched:,} flows ({on_watched / everything:.1%}) touched a watched path")
    lines.append("")

    def stats(g: Group, whole: int, addresses: bool = True) -> list[str]:
        # flows on no watched path keep no address sets: their hosts/peers are not known
        return [
            f"{g.flows:,}",
            f"{g.flows / whole:6.1%}" if whole else "-",
            human_bytes(g.bytes),
            f"{g.distinct('hosts'):,}" if addresses else "-",
            f"{g.distinct('peers'):,}" if addresses else "-",
        ]

    order = sorted(flows, key=lambda p: (p == "none", -flows[p], p))
    rows = []
    for path in order:
        busiest = max(activities_of[path].items(), key=lambda kv: (kv[1], kv[0]))[0]
        rows.append([path, *stats(by_path[path], everything, path != "none"), busiest])
    lines.append(
        aligned(
            ["path", "flows", "share", "bytes", "hosts", "peers", "top activity"],
            rows,
            [False, True, True, True, True, True, False],
        )
    )
    ranked = sorted(by_activity, key=lambda a: (-by_activity[a].flows, a))
    shown = ranked[:top_activities]
    lines += ["", "top activities on the watched paths:"]
    lines.append(
        aligned(
            ["activity", "flows", "share", "bytes", "hosts", "peers"],
            [[a, *stats(by_activity[a], on_watched)] for a in shown],
            [False, True, True, True, True, True],
        )
    )
    if len(ranked) > len(shown):
        lines.append(f"({len(ranked) - len(shown)} more activities)")
    return "\n".join(lines)


def render_trends(trends: Sequence[Trend]) -> str:
    rows = []
    for t in trends:
        what = (
            " ".join(
                str(v) if not isinstance(v, list | tuple) else "+".join(v) for v in t.where.values()
            )
            or "all"
        )
        ratio = "new" if t.ratio == float("inf") else f"{t.ratio:.2f}x"
        rows.append([what, t.metric, f"{t.before_per_day:,.1f}", f"{t.after_per_day:,.1f}", ratio])
    return aligned(
        ["slice", "metric", "before/day", "after/day", "change"],
        rows,
        [False, False, True, True, True],
    )
