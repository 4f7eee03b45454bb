"""Text renderings of reports: aligned tables for people, JSON and CSV for
machines.

JSON schema (``nkclass report --format json``)::

    {"bucket": "day", "by": null | "app" | "service",
     "rows": [{"bucket": "2019-05-01T00:00:00Z", "path": "kp_range",
               "activity": "mining", ["app" | "service": "...",]
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

import pyarrow as pa
import pyarrow.csv as pacsv

from nkclass.report.model import Report, Trend


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
    buf = io.BytesIO()
    pacsv.write_csv(report.table(min_flows), buf)
    return buf.getvalue().decode()


def render_table(report: Report, min_flows: int = 0, watched_only: bool = True) -> str:
    table = report.table(min_flows)
    if watched_only:
        table = table.filter(pa.compute.not_equal(table.column("path"), "none"))
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


def render_summary(report: Report) -> str:
    """Per path and activity over the whole report, largest first."""
    totals: dict[tuple[str, str], list[int]] = {}
    for (_, path, activity, _), g in report.groups.items():
        row = totals.setdefault((path, activity), [0, 0, 0])
        row[0] += g.flows
        row[1] += g.bytes
        row[2] += g.packets
    by_path: dict[str, int] = {}
    for (path, _), v in totals.items():
        by_path[path] = by_path.get(path, 0) + v[0]
    rows = []
    for (path, activity), (flows, nbytes, _) in sorted(
        totals.items(), key=lambda kv: (kv[0][0] == "none", -by_path[kv[0][0]], -kv[1][0])
    ):
        share = flows / by_path[path] if by_path[path] else 0
        rows.append(
            [
                path,
                activity,
                f"{flows:,}",
                f"{share:6.1%}",
                human_bytes(nbytes),
                f"{report.total('hosts', path=path, activity=activity):,}",
                f"{report.total('peers', path=path, activity=activity):,}",
            ]
        )
    return aligned(
        ["path", "activity", "flows", "share", "bytes", "hosts", "peers"],
        rows,
        [False, False, True, True, True, True, True],
    )


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
