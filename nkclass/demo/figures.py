"""The headline figures of the public reports on North Korea's traffic
(DOMAIN.md 1), measured on a Report: the demo prints them next to what its
generator planted, and an analyst can call them on real data of the default
watch list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nkclass.report.model import ANONYMISING, Report, parse_time
from nkclass.rules.model import Ruleset

WATCHED = ("kp_range", "unicom", "satgate")
AS_TRANSTELEKOM = 20485
#: The comparison the reports drew (DOMAIN.md 1.2): Western social media,
#: search and shopping abandoned for their Chinese counterparts.
COMPARED_ACTIVITIES = ("social", "search_portal", "ecommerce")
#: Operator countries counted as Western: North America, the EU/EEA, the UK,
#: Switzerland, Australia and New Zealand.
WESTERN_COUNTRIES = frozenset(
    "US CA GB IE FR DE NL BE LU AT CH IT ES PT DK SE NO FI IS CY MT GR PL CZ SK HU SI HR "
    "RO BG EE LV LT AU NZ".split()
)
CHINESE_COUNTRIES = frozenset({"CN"})
WESTERN_COLOUR, CHINESE_COLOUR = "#1f78b4", "#e31a1c"


def origins(rules: Ruleset) -> dict[str, list[str]]:
    """Services by the country of their organisation (the ruleset's
    [[service]] org and country): ``{"Western": [...], "Chinese": [...]}``."""
    out: dict[str, list[str]] = {"Western": [], "Chinese": []}
    for service, country in rules.countries().items():
        if country in WESTERN_COUNTRIES:
            out["Western"].append(service)
        elif country in CHINESE_COUNTRIES:
            out["Chinese"].append(service)
    return out


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str  # "x" (ratio) or "%" (share)
    note: str = ""

    def text(self) -> str:
        return f"{self.value:.1f}x" if self.unit == "x" else f"{self.value * 100:.1f}%"


def _year(y: int) -> tuple[str, str]:
    return f"{y}-01-01", f"{y + 1}-01-01"


def volume_growth(
    report: Report, first: int = 2017, last: int = 2019, metric: str = "bytes"
) -> Figure:
    t = report.trend(metric, before=_year(first), after=_year(last), path=list(WATCHED))
    return Figure(f"watched {metric}, {last} over {first}", t.ratio, "x", '"300% increase"')


def mining_jump(report: Report, split: str = "2019-05-01", since: str = "2019-01-01") -> Figure:
    t = report.trend(
        "flows",
        before=(since, split),
        after=(split, "2020-01-01"),
        activity="mining",
        path=list(WATCHED),
    )
    return Figure(
        f"mining flows per day after {split} vs {since}..{split}",
        t.ratio,
        "x",
        '"at least tenfold"',
    )


def share(report: Report, activities: tuple[str, ...], year: int) -> Figure:
    part = report.total("flows", *_year(year), path=list(WATCHED), activity=list(activities))
    whole = report.total("flows", *_year(year), path=list(WATCHED))
    return Figure(
        f"{'+'.join(activities)} share of watched flows, {year}",
        part / whole if whole else 0.0,
        "%",
    )


def chinese_over_western(report: Report, year: int, rules: Ruleset) -> Figure:
    """Flows to Chinese over Western social, search and shopping services
    (origins from the ruleset's [[service]] countries)."""
    if report.by != "service":
        raise ValueError("needs a report made with by='service'")
    side = origins(rules)
    where = {"path": list(WATCHED), "activity": list(COMPARED_ACTIVITIES)}
    china = report.total("flows", *_year(year), service=side["Chinese"], **where)
    west = report.total("flows", *_year(year), service=side["Western"], **where)
    return Figure(
        f"Chinese / Western social, search, shopping flows, {year}",
        china / west if west else float("inf"),
        "x",
    )


def western_chinese_chart(service_report: Report, rules: Ruleset, out: Path) -> Path:
    """Flows per day of the watched paths to Western and to Chinese social,
    search and shopping services."""
    from nkclass.report.plots import service_groups

    side = origins(rules)
    return service_groups(
        service_report,
        {
            "Western (US, EU, ...)": (side["Western"], WESTERN_COLOUR),
            "Chinese": (side["Chinese"], CHINESE_COLOUR),
        },
        out,
        "Social, search and shopping: flows to Western and Chinese services "
        "(operator countries from the ruleset)",
        activities=COMPARED_ACTIVITIES,
    )


def weekend_share(report: Report, year: int) -> Figure:
    """Share of watched flows on Saturdays and Sundays (needs day buckets)."""
    if report.bucket not in ("hour", "day"):
        raise ValueError("needs hour or day buckets")
    lo, hi = (parse_time(t) for t in _year(year))
    weekend = total = 0
    for (start, path, _, _), g in report.groups.items():
        if path in WATCHED and lo <= start < hi:
            total += g.flows
            if (start // 86_400_000 + 3) % 7 >= 5:
                weekend += g.flows
    return Figure(
        f"weekend share of watched flows, {year}",
        weekend / total if total else 0.0,
        "%",
        "2/7 = 28.6% if flat",
    )


def upstream_share(
    report: Report, start: str, end: str, asn: int = AS_TRANSTELEKOM, path: str = "kp_range"
) -> Figure:
    lo, hi = parse_time(start), parse_time(end)
    table = report.upstream_share(asn, path=path)
    starts = table.column("bucket").cast("int64").to_numpy()
    totals = table.column("total").to_numpy().astype(float)
    shares = table.column("share").to_numpy()
    keep = (starts >= lo) & (starts < hi)
    value = float(np.sum(shares[keep] * totals[keep]) / max(totals[keep].sum(), 1))
    return Figure(f"AS{asn} share of {path} flows, {start}..{end}", value, "%")


def anonymising_rise(report: Report) -> Figure:
    t = report.trend(
        "flows",
        before=("2017-04-01", "2017-07-06"),
        after=("2017-12-01", "2018-03-15"),
        path=list(WATCHED),
        activity=list(ANONYMISING),
    )
    return Figure(
        "Tor/VPN/proxy flows per day, Dec 2017-Mar 2018 vs Apr-Jul 2017",
        t.ratio,
        "x",
        '"up 1,200%"',
    )


#: Evidence, strongest first: a flow's label is carried by the first of these
#: its evidence code holds.
DECISIVE = ("payload", "sni", "host", "dns", "dns_learned", "ip_list", "pair_cache",
            "dns_score", "asn", "flow_shape", "port", "watched")


class EvidenceTally:
    """Watched flows counted by day, activity, service and the strongest
    evidence behind their label, so a figure can say what carried it."""

    def __init__(self, rules: Ruleset) -> None:
        from nkclass.labels import ACTIVITIES, EVIDENCE

        self.activities = ACTIVITIES
        self.services = rules.services
        strongest = np.full(1 << len(EVIDENCE), len(DECISIVE), np.int64)
        for code in range(len(strongest) - 1, 0, -1):
            for rank, name in enumerate(DECISIVE):
                if code & EVIDENCE[name]:
                    strongest[code] = rank
                    break
        self._strongest = strongest
        self.counts: dict[int, int] = {}

    def add(self, result, ts_start: np.ndarray) -> None:
        """Count ``result``'s watched flows; ``ts_start`` in ms (or
        datetime64) per flow."""
        watched = np.asarray(result.side) != 0
        day = np.asarray(ts_start)[watched].astype("datetime64[ms]").astype("datetime64[D]")
        key = (((day.astype(np.int64) * 256 + np.asarray(result.activity)[watched]) * 65536
                + np.asarray(result.service)[watched]) * 16
               + self._strongest[np.asarray(result.evidence)[watched]])
        keys, counts = np.unique(key, return_counts=True)
        for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
            self.counts[k] = self.counts.get(k, 0) + c

    def carried(self, activities, start: str, end: str, services=None) -> str:
        """The evidence behind the watched flows of ``activities`` (and
        ``services``) starting in [start, end), as shares: ``"dns_learned
        61%, port 24%, sni 9%"`` (shares under 2% left out)."""
        lo, hi = (np.datetime64(t).astype("datetime64[D]").astype(np.int64) for t in (start, end))
        wanted = {self.activities.index(a) for a in activities}
        named = None if services is None else {self.services.index(s) for s in services
                                                if s in self.services}
        by: dict[str, int] = {}
        for key, count in self.counts.items():
            ev, rest = key % 16, key // 16
            svc, rest = rest % 65536, rest // 65536
            act, day = rest % 256, rest // 256
            if lo <= day < hi and act in wanted and (named is None or svc in named):
                name = DECISIVE[ev] if ev < len(DECISIVE) else "none"
                by[name] = by.get(name, 0) + count
        total = sum(by.values())
        if not total:
            return "no flows"
        ranked = sorted(by.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {count / total:.0%}" for name, count in ranked
                         if count / total >= 0.02)
