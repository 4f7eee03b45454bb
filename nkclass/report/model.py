"""The Report: mergeable aggregates, their table form and trends.

A report holds one :class:`Group` per (bucket start, path, activity, extra)
where extra is the app or service when the report was made ``by`` one
(else None). Distinct watched hosts and outside peers are roaring bitmaps of
IPv4 addresses; IPv6 addresses are counted by their /64 prefix in 64-bit
bitmaps (one host per /64, the usual unit of an IPv6 subscriber). Merging
two reports adds counts and unions the bitmaps, so it is exact. Flows that
touch no watched path (path ``none``) are counted but add no addresses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap, BitMap64

from nkclass import _core

BUCKETS = ("hour", "day", "week", "month")
METRICS = ("flows", "bytes", "packets", "hosts", "peers")
MS_PER_DAY = 86_400_000
ANONYMISING = ("tor", "vpn", "proxy", "dns_tunnel")  # the "opsec" share (DOMAIN.md 6.9)
KEY_POSITION = {"path": 1, "activity": 2, "app": 3, "service": 3, "org": 3}  # in a group key
ROLLUPS = {"hour": ("day", "week", "month"), "day": ("week", "month"), "week": (), "month": ()}


def bucket_index(ts_ms: np.ndarray, bucket: str) -> np.ndarray:
    """Bucket number of each time (ms since epoch, UTC) since 1970."""
    if bucket == "hour":
        return ts_ms // 3_600_000
    if bucket == "day":
        return ts_ms // MS_PER_DAY
    if bucket == "week":  # ISO weeks start on Monday; 1970-01-01 was a Thursday
        return (ts_ms // MS_PER_DAY + 3) // 7
    months = ts_ms.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
    return months


def bucket_start_ms(index: np.ndarray, bucket: str) -> np.ndarray:
    """Start (ms since epoch) of bucket numbers from :func:`bucket_index`."""
    index = np.asarray(index, np.int64)
    if bucket == "hour":
        return index * 3_600_000
    if bucket == "day":
        return index * MS_PER_DAY
    if bucket == "week":
        return (index * 7 - 3) * MS_PER_DAY
    return index.astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)


def parse_time(value: object) -> int:
    """ms since epoch (UTC) of a date/time text, datetime or number (ms)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected a date such as 2019-05-01, got {value!r}") from None
        return parse_time(dt)
    raise TypeError(f"expected a date, got {type(value).__name__}")


def format_time(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%d %H:%M") if dt.hour or dt.minute else dt.strftime("%Y-%m-%d")


class Group:
    """One report group: flows, bytes, packets and the distinct watched
    hosts and outside peers (IPv4 in ``hosts``/``peers``, IPv6 /64s in
    ``hosts6``/``peers6``, None when there are none).

    Groups from the native pass arrive packed (their sets serialized in one
    shared buffer) and unpack on first use of a set; their distinct counts
    are known without unpacking, so a report that is only printed never
    builds a bitmap."""

    __slots__ = ("_packed", "_sets", "_sizes", "bytes", "flows", "packets")
    SETS = ("hosts", "peers", "hosts6", "peers6")

    def __init__(self, flows: int = 0, bytes: int = 0, packets: int = 0,
                 hosts: BitMap | None = None, peers: BitMap | None = None,
                 hosts6: BitMap64 | None = None, peers6: BitMap64 | None = None) -> None:
        self.flows, self.bytes, self.packets = flows, bytes, packets
        self._sets: list | None = [BitMap() if hosts is None else hosts,
                                   BitMap() if peers is None else peers, hosts6, peers6]
        self._packed: tuple | None = None
        self._sizes: tuple[int, int, int, int] | None = None

    @classmethod
    def packed(cls, flows: int, nbytes: int, packets: int, buffer: memoryview,
               bounds: tuple[int, int, int, int, int], sizes: tuple[int, int, int, int]) -> Group:
        """A group whose sets are ``buffer[bounds[k]:bounds[k + 1]]`` in the
        portable roaring formats (empty: no set), of ``sizes`` elements."""
        group = cls.__new__(cls)
        group.flows, group.bytes, group.packets = flows, nbytes, packets
        group._sets, group._packed, group._sizes = None, (buffer, bounds), sizes
        return group

    def _unpacked(self) -> list:
        if self._sets is None:
            buffer, (a, h, p, h6, p6) = self._packed
            self._sets = [
                BitMap.deserialize(buffer[a:h]) if h > a else BitMap(),
                BitMap.deserialize(buffer[h:p]) if p > h else BitMap(),
                BitMap64.deserialize(buffer[p:h6]) if h6 > p else None,
                BitMap64.deserialize(buffer[h6:p6]) if p6 > h6 else None,
            ]
            self._packed = self._sizes = None
        return self._sets

    def _set(self, k: int, value) -> None:
        self._unpacked()[k] = value

    hosts = property(lambda self: self._unpacked()[0], lambda self, v: self._set(0, v))
    peers = property(lambda self: self._unpacked()[1], lambda self, v: self._set(1, v))
    hosts6 = property(lambda self: self._unpacked()[2], lambda self, v: self._set(2, v))
    peers6 = property(lambda self: self._unpacked()[3], lambda self, v: self._set(3, v))

    def distinct(self, which: str) -> int:
        """Distinct ``hosts`` or ``peers`` (IPv4 addresses plus IPv6 /64s)."""
        k = self.SETS.index(which)
        if self._sets is None:
            return self._sizes[k] + self._sizes[k + 2]
        sixes = self._sets[k + 2]
        return len(self._sets[k]) + (len(sixes) if sixes is not None else 0)

    def merge(self, other: Group) -> None:
        self.flows += other.flows
        self.bytes += other.bytes
        self.packets += other.packets
        self.hosts |= other.hosts
        self.peers |= other.peers
        self.hosts6 = _union64(self.hosts6, other.hosts6)
        self.peers6 = _union64(self.peers6, other.peers6)

    def copy(self) -> Group:
        if self._sets is None:  # packed sets are never changed in place: share them
            return Group.packed(self.flows, self.bytes, self.packets, *self._packed, self._sizes)
        return Group(
            self.flows,
            self.bytes,
            self.packets,
            BitMap(self.hosts),
            BitMap(self.peers),
            _copy64(self.hosts6),
            _copy64(self.peers6),
        )

    def __getstate__(self) -> tuple:
        return (self.flows, self.bytes, self.packets, *self._unpacked())

    def __setstate__(self, state: tuple) -> None:
        self.__init__(*state)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    def __repr__(self) -> str:
        return (f"Group(flows={self.flows}, bytes={self.bytes}, packets={self.packets}, "
                f"hosts={self.distinct('hosts')}, peers={self.distinct('peers')})")


def _union64(a: BitMap64 | None, b: BitMap64 | None) -> BitMap64 | None:
    if a is None:
        return _copy64(b)
    if b is not None:
        a |= b
    return a


def _copy64(a: BitMap64 | None) -> BitMap64 | None:
    return None if a is None else BitMap64(a)


@dataclass(frozen=True)
class Trend:
    """A period-over-period comparison of one metric for one slice."""

    metric: str
    where: dict
    before: tuple[int, int]
    after: tuple[int, int]
    before_total: float
    after_total: float

    @property
    def before_per_day(self) -> float:
        return self.before_total / max((self.before[1] - self.before[0]) / MS_PER_DAY, 1e-9)

    @property
    def after_per_day(self) -> float:
        return self.after_total / max((self.after[1] - self.after[0]) / MS_PER_DAY, 1e-9)

    @property
    def ratio(self) -> float:
        """After over before, per day (periods of different length compare)."""
        if self.before_per_day == 0:
            return math.inf if self.after_per_day else math.nan
        return self.after_per_day / self.before_per_day

    @property
    def change_percent(self) -> float:
        return (self.ratio - 1) * 100

    def describe(self) -> str:
        what = " ".join(f"{v}" for v in self.where.values()) or "all traffic"
        span = (
            f"{format_time(self.before[0])}..{format_time(self.before[1])} -> "
            f"{format_time(self.after[0])}..{format_time(self.after[1])}"
        )
        if math.isinf(self.ratio):
            change = "from nothing"
        elif math.isnan(self.ratio):
            change = "none in either period"
        elif self.ratio >= 1:
            change = f"up {self.ratio:.1f}x ({self.change_percent:+.0f}%)"
        else:
            change = f"down to {self.ratio:.2f}x ({self.change_percent:+.0f}%)"
        return f"{what} {self.metric} per day {change}, {span}"


@dataclass
class GroupColumns:
    """Groups as the native pass hands them over: keys, counters, distinct
    counts and the serialized address sets, one row per group. A report
    keeps them like this until a group is needed as an object, so building,
    merging, pickling and printing a report cost no Python work per group.
    The arrays and the buffer are never changed in place (reports share
    them)."""

    starts: np.ndarray  # bucket start, ms
    paths: np.ndarray  # names (object arrays)
    activities: np.ndarray
    extras: np.ndarray
    sums: np.ndarray  # (n, 3) uint64: flows, bytes, packets
    sizes: np.ndarray  # (n, 4) uint64: |hosts|, |peers|, |hosts /64|, |peers /64|
    buffer: bytes  # group g's set k is buffer[offsets[g, k]:offsets[g, k + 1]]
    offsets: np.ndarray  # (n, 5) int64

    def __len__(self) -> int:
        return len(self.starts)

    def groups(self) -> dict[tuple, Group]:
        sets = memoryview(self.buffer)
        flows, nbytes, packets = (self.sums[:, k].tolist() for k in range(3))
        keys = zip(self.starts.tolist(), self.paths.tolist(), self.activities.tolist(),
                   self.extras.tolist(), strict=True)
        return {
            key: Group.packed(flows[g], nbytes[g], packets[g], sets, tuple(bounds), tuple(size))
            for g, (key, bounds, size) in enumerate(
                zip(keys, self.offsets.tolist(), self.sizes.tolist(), strict=True))
        }

    @classmethod
    def merged(cls, parts: list[GroupColumns]) -> GroupColumns:
        """The groups of ``parts`` merged by key in one native pass, as
        adding their group objects would: sums add, address sets unite
        (exact distinct counts), keys in the order they first appear."""
        parts = [part for part in parts if len(part)]
        if len(parts) <= 1:
            return parts[0] if parts else _no_columns()
        bases = np.cumsum([0] + [len(part.buffer) for part in parts[:-1]]).tolist()
        try:
            return _merge_rows(
                np.concatenate([part.starts for part in parts]),
                *(np.concatenate([getattr(part, name) for part in parts])
                  for name in ("paths", "activities", "extras", "sums", "sizes")),
                np.concatenate([part.offsets.astype(np.int64, copy=False) + base
                                for part, base in zip(parts, bases, strict=True)]),
                b"".join(bytes(part.buffer) for part in parts))
        except _MergeError as exc:
            ends = np.cumsum([len(part) for part in parts])
            k = int(np.searchsorted(ends, exc.row, side="right"))
            group = exc.row - (int(ends[k - 1]) if k else 0)
            raise ValueError(f"cannot merge reports: group {group} of the {_ordinal(k + 1)} "
                             f"report with groups: {exc.reason}") from None

    def rolled_up(self, fields: Sequence[str], rows: np.ndarray | None = None) -> GroupColumns:
        """The groups (``rows``, a boolean mask: only those) merged over
        every bucket and every key field not in ``fields`` (of "path",
        "activity", "extra") in one native pass: sums add, address sets
        unite. The dropped fields read None, the bucket 0."""
        picked = slice(None) if rows is None else rows
        n = len(self.starts[picked])
        kept = {name: getattr(self, name)[picked] if field in fields else np.full(n, None, object)
                for field, name in (("path", "paths"), ("activity", "activities"),
                                    ("extra", "extras"))}
        try:
            return _merge_rows(np.zeros(n, np.int64), kept["paths"], kept["activities"],
                               kept["extras"], self.sums[picked], self.sizes[picked],
                               self.offsets[picked], bytes(self.buffer))
        except _MergeError as exc:
            group = int(np.flatnonzero(rows)[exc.row]) if rows is not None else exc.row
            raise ValueError(f"cannot roll up the report: group {group}: {exc.reason}") from None

    def table(self, by: str | None, min_flows: int) -> pa.Table:
        keep = self.sums[:, 0] >= min_flows
        cols = {
            "bucket": pa.array(self.starts[keep]).cast(pa.timestamp("ms", tz="UTC")),
            "path": pa.array(self.paths[keep], pa.string()),
            "activity": pa.array(self.activities[keep], pa.string()),
        }
        if by:
            cols[by] = pa.array(self.extras[keep], pa.string())
        for k, name in enumerate(("flows", "bytes", "packets")):
            cols[name] = pa.array(self.sums[keep, k], pa.uint64())
        cols["hosts"] = pa.array(self.sizes[keep, 0] + self.sizes[keep, 2], pa.uint64())
        cols["peers"] = pa.array(self.sizes[keep, 1] + self.sizes[keep, 3], pa.uint64())
        order = [(name, "ascending") for name in ("bucket", "path", "activity", by) if name]
        return pa.table(cols).sort_by(order)


class Report:
    """Aggregated classified flows. Build with :func:`nkclass.aggregate`;
    combine with ``+``; read with :meth:`table`, :meth:`trend`,
    :meth:`movers`, :meth:`profile` and :meth:`upstream_share`.

    Reports pickle (to keep partial reports of workers or days). As with any
    pickle, unpickling can run arbitrary code: only unpickle reports you
    made or otherwise trust."""

    def __init__(self, bucket: str = "day", by: str | None = None) -> None:
        self.bucket = bucket
        self.by = by
        self._groups: dict[tuple[int, str, str, str | None], Group] = {}
        self._columns: GroupColumns | None = None  # groups not yet made objects
        self.profiles: dict[str, dict[tuple[str, str], np.ndarray]] = {"hour": {}, "weekday": {}}
        self.upstreams: dict[tuple[int, str, int], list[int]] = {}
        # first and last flow start seen (ms, UTC; None while empty)
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self._index: _GroupIndex | None = None

    @property
    def groups(self) -> dict[tuple[int, str, str, str | None], Group]:
        """Group objects by (bucket start ms, path, activity, app/service or
        None)."""
        if self._columns is not None:
            self._groups = self._columns.groups()
            self._columns = None
        return self._groups

    def set_columns(self, columns: GroupColumns) -> None:
        """Give an empty report its groups in column form (the native pass's)."""
        if self._groups or self._columns is not None:
            raise ValueError("set_columns needs a report without groups")
        self._columns = columns
        self._index = None

    # ------------------------------------------------------------- building
    def merge_in(self, other: Report, consume: bool = False) -> Report:
        """Add ``other`` into this report. With ``consume`` its groups are
        taken over rather than copied (``other`` must not be used again)."""
        return self.merge_all([other], consume)

    def merge_all(self, others: Iterable[Report], consume: bool = False) -> Report:
        """Add every report of ``others`` into this one, as :meth:`merge_in`
        of each in turn would. When every report holds its groups in column
        form (as :func:`~nkclass.report.aggregate` and unpickling give
        them) the groups merge in one native pass, without a Python object
        per group; otherwise group by group."""
        others = list(others)
        for other in others:
            if (other.bucket, other.by) != (self.bucket, self.by):
                raise ValueError(
                    f"cannot merge a by-{other.by} {other.bucket} report into a "
                    f"by-{self.by} {self.bucket} report"
                )
        self._index = None
        columns = [report._column_form() for report in (self, *others)]
        if all(part is not None for part in columns):
            self._groups, self._columns = {}, GroupColumns.merged(columns)
        else:
            for other in others:
                self._merge_groups(other, consume)
        for other in others:
            self.note_times(other.first_ms, other.last_ms)
            self._add_profiles(other.profiles)
            self._add_upstreams(other.upstreams)
        return self

    def _add_profiles(self, profiles: dict[str, dict[tuple[str, str], np.ndarray]]) -> None:
        """Adds another report's profile rows ((2, width) int64 arrays)."""
        for kind, rows in profiles.items():
            mine = self.profiles[kind]
            for key, pair in rows.items():
                have = mine.get(key)
                mine[key] = pair.copy() if have is None else have + pair

    def _add_upstreams(self, upstreams: dict[tuple[int, str, int], list[int]]) -> None:
        mine = self.upstreams
        for key, (flows, nbytes) in upstreams.items():
            row = mine.get(key)
            if row is None:
                mine[key] = [flows, nbytes]
            else:
                row[0] += flows
                row[1] += nbytes

    def _column_form(self) -> GroupColumns | None:
        """The groups as columns (none: empty ones), or None when they are
        objects."""
        if self._columns is not None:
            return self._columns
        return None if self._groups else _no_columns()

    def _merge_groups(self, other: Report, consume: bool) -> None:
        for key, group in other.groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = group if consume else group.copy()
            else:
                mine.merge(group)

    @classmethod
    def combined(cls, reports: Iterable[Report]) -> Report:
        """``reports[0] + reports[1] + ...`` as a new report (merged in one
        pass; see :meth:`merge_all`); the reports given are left as they
        are.

        >>> import nkclass
        >>> from nkclass.report import aggregate
        >>> clf = nkclass.Classifier(asn=False)
        >>> def one_flow(ts_ms):
        ...     return aggregate(clf.classify({
        ...         "src_ip": ["175.45.176.9"], "dst_ip": ["8.8.8.8"], "src_port": [40000],
        ...         "dst_port": [443], "protocol": [6], "ts_start": [ts_ms],
        ...         "ts_end": [ts_ms + 1000], "packets": [10], "bytes": [1200]}))
        >>> total = Report.combined([one_flow(1_500_000_000_000), one_flow(1_500_000_000_000),
        ...                          one_flow(1_600_000_000_000)])
        >>> len(total), total.total("flows"), total.total("hosts")
        (2, 3, 1)
        """
        reports = list(reports)
        if not reports:
            raise ValueError("Report.combined needs at least one report")
        return cls(reports[0].bucket, reports[0].by).merge_all(reports)

    def __add__(self, other: Report) -> Report:
        return Report.combined([self, other])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Report):
            return NotImplemented
        return (self.bucket, self.by) == (other.bucket, other.by) and self.table().equals(
            other.table()
        )

    def note_times(self, first_ms: int | None, last_ms: int | None) -> None:
        """Widen the covered period to include [first_ms, last_ms]."""
        if first_ms is not None:
            self.first_ms = first_ms if self.first_ms is None else min(self.first_ms, first_ms)
        if last_ms is not None:
            self.last_ms = last_ms if self.last_ms is None else max(self.last_ms, last_ms)

    def add_profile(
        self, kind: str, key: tuple[str, str], flows: np.ndarray, nbytes: np.ndarray
    ) -> None:
        rows = self.profiles[kind]
        pair = np.stack([flows, nbytes]).astype(np.int64)
        rows[key] = rows[key] + pair if key in rows else pair

    def add_upstream(self, key: tuple[int, str, int], flows: int, nbytes: int) -> None:
        row = self.upstreams.setdefault(key, [0, 0])
        row[0] += flows
        row[1] += nbytes

    # -------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self._columns) if self._columns is not None else len(self._groups)

    def rolled_up(self, fields: Sequence[str], watched_only: bool = False) -> dict[tuple, Group]:
        """The groups merged over every bucket by the key ``fields`` kept
        (of "path", "activity" and "extra": the app, service or org),
        exactly: counts add up and address sets unite. Keyed by the kept
        values in the order given; ``watched_only`` leaves out the flows on
        no watched path. A report in column form is rolled up natively and
        stays in column form.

        >>> import nkclass
        >>> from nkclass.report import aggregate
        >>> clf = nkclass.Classifier(asn=False)
        >>> report = aggregate(clf.classify({
        ...     "src_ip": ["175.45.176.9", "175.45.176.9", "10.0.0.1"],
        ...     "dst_ip": ["8.8.8.8", "8.8.4.4", "8.8.8.8"], "src_port": [40000] * 3,
        ...     "dst_port": [443] * 3, "protocol": [6] * 3,
        ...     "ts_start": [0, 90_000_000, 0]}))
        >>> kp = report.rolled_up(["path"])[("kp_range",)]
        >>> kp.flows, kp.distinct("hosts"), kp.distinct("peers")
        (2, 1, 2)
        """
        positions = {"path": 1, "activity": 2, "extra": 3}
        unknown = set(fields) - set(positions)
        if unknown:
            raise ValueError(f"cannot roll up by {', '.join(sorted(unknown))}; use path, "
                             "activity and extra")
        where = [positions[field] for field in fields]
        if self._columns is not None:
            rows = self._columns.paths != "none" if watched_only else None
            groups = self._columns.rolled_up(fields, rows).groups()
            return {tuple(key[k] for k in where): group for key, group in groups.items()}
        out: dict[tuple, Group] = {}
        for key, group in self._groups.items():
            if watched_only and key[1] == "none":
                continue
            kept = tuple(key[k] for k in where)
            mine = out.get(kept)
            if mine is None:
                out[kept] = group.copy()
            else:
                mine.merge(group)
        return out

    def table(self, min_flows: int = 0) -> pa.Table:
        """One row per group: bucket (start, UTC), path, activity, [app or
        service], flows, bytes, packets, hosts, peers (distinct counts)."""
        if self._columns is not None:
            return self._columns.table(self.by, min_flows)
        keys = sorted(k for k, g in self.groups.items() if g.flows >= min_flows)
        groups = [self.groups[k] for k in keys]
        cols = {
            "bucket": pa.array([k[0] for k in keys], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "path": pa.array([k[1] for k in keys], pa.string()),
            "activity": pa.array([k[2] for k in keys], pa.string()),
        }
        if self.by:
            cols[self.by] = pa.array([k[3] for k in keys], pa.string())
        cols["flows"] = pa.array([g.flows for g in groups], pa.uint64())
        cols["bytes"] = pa.array([g.bytes for g in groups], pa.uint64())
        cols["packets"] = pa.array([g.packets for g in groups], pa.uint64())
        cols["hosts"] = pa.array([g.distinct("hosts") for g in groups], pa.uint64())
        cols["peers"] = pa.array([g.distinct("peers") for g in groups], pa.uint64())
        return pa.table(cols)

    def _rows(self, where: dict, lo: float = -math.inf, hi: float = math.inf) -> list[Group]:
        """The groups of one slice whose bucket starts in [lo, hi)."""
        unknown = set(where) - set(KEY_POSITION)
        if unknown:
            raise ValueError(
                f"unknown slice {', '.join(sorted(unknown))}; use path, activity and "
                "app, service or org"
            )
        extra = set(where) - {"path", "activity"}
        if extra and extra != {self.by}:
            raise ValueError(
                f"this report is not by {'/'.join(sorted(extra))} (by={self.by}); "
                "aggregate with by='app' or by='service' (by_organisation for org)"
            )
        index = self._group_index()
        keep = (index.starts >= lo) & (index.starts < hi)
        for name, wanted in where.items():
            values = wanted if isinstance(wanted, list | tuple | set | frozenset) else (wanted,)
            keep &= index.matching(name, values)
        return [index.groups[i] for i in np.flatnonzero(keep).tolist()]

    def _group_index(self) -> _GroupIndex:
        # rebuilt after merges (merge_in resets it) or direct additions to groups
        if self._index is None or len(self._index.groups) != len(self.groups):
            self._index = _GroupIndex(self.groups)
        return self._index

    def total(
        self, metric: str = "flows", start: object = None, end: object = None, **where
    ) -> float:
        """A metric summed (distinct hosts/peers: unioned) over [start, end)."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        lo = parse_time(start) if start is not None else -math.inf
        hi = parse_time(end) if end is not None else math.inf
        return sum_metric(self._rows(where, lo, hi), metric)

    def rebucket(self, bucket: str) -> Report:
        """This report in coarser buckets (hour -> day, week or month; day ->
        week or month), exactly: counts add up and address sets unite, as if
        the flows had been aggregated that way. Weeks do not nest in months,
        so week -> month is refused."""
        if bucket not in BUCKETS:
            raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, got {bucket!r}")
        if bucket == self.bucket:
            return self
        if bucket not in ROLLUPS[self.bucket]:
            raise ValueError(f"{self.bucket} buckets do not roll up into {bucket} buckets")
        out = Report(bucket, self.by)
        out.first_ms, out.last_ms = self.first_ms, self.last_ms
        starts = sorted({k[0] for k in self.groups} | {k[0] for k in self.upstreams})
        new_start = dict(
            zip(
                starts,
                bucket_start_ms(bucket_index(np.array(starts, np.int64), bucket), bucket).tolist(),
                strict=True,
            )
        )
        for key, group in self.groups.items():
            moved = (new_start[key[0]], *key[1:])
            mine = out.groups.get(moved)
            if mine is None:
                out.groups[moved] = group.copy()
            else:
                mine.merge(group)
        for (start, path, asn), (flows, nbytes) in self.upstreams.items():
            out.add_upstream((new_start[start], path, asn), flows, nbytes)
        out._add_profiles(self.profiles)
        return out

    def by_organisation(self, organisations: Mapping[str, str]) -> Report:
        """This by-service report with services grouped by organisation,
        exactly (counts add up, address sets unite): ``organisations`` maps
        a service to its organisation label, as
        :meth:`nkclass.rules.Ruleset.organisations` gives it; a service it
        does not name is its own organisation. The result is by ``org``."""
        if self.by != "service":
            raise ValueError(f"needs a report made with by='service', not by={self.by!r}")
        out = Report(self.bucket, "org")
        out.first_ms, out.last_ms = self.first_ms, self.last_ms
        for (start, path, activity, service), group in self.groups.items():
            key = (start, path, activity, organisations.get(service, service))
            mine = out.groups.get(key)
            if mine is None:
                out.groups[key] = group.copy()
            else:
                mine.merge(group)
        out._add_upstreams(self.upstreams)
        out._add_profiles(self.profiles)
        return out

    def span(self) -> tuple[int, int]:
        """First bucket start and last bucket end (ms)."""
        if not self.groups:
            raise ValueError("the report is empty")
        starts = [k[0] for k in self.groups]
        last = max(starts)
        end = int(bucket_start_ms(bucket_index(np.array([last]), self.bucket) + 1, self.bucket)[0])
        return min(starts), end

    def trend(
        self,
        metric: str = "flows",
        *,
        split: object = None,
        before: tuple | None = None,
        after: tuple | None = None,
        **where,
    ) -> Trend:
        """Compare ``metric`` per day between two periods for one slice
        (``path=``, ``activity=``, ``app=`` / ``service=``; a value or a list).

        Give ``split`` (before = from the first bucket to split, after = from
        split to the end) or explicit ``before=(start, end)`` and
        ``after=(start, end)``.

        >>> report.trend("flows", activity="mining", split="2019-05-01").ratio  # doctest: +SKIP
        10.4
        """
        first, last = self.span()
        if split is not None:
            cut = parse_time(split)
            before = before or (first, cut)
            after = after or (cut, last)
        if before is None or after is None:
            raise ValueError("give split= or both before= and after=")
        b = (parse_time(before[0]), parse_time(before[1]))
        a = (parse_time(after[0]), parse_time(after[1]))
        return Trend(
            metric, where, b, a, self.total(metric, *b, **where), self.total(metric, *a, **where)
        )

    def movers(
        self,
        split: object,
        metric: str = "flows",
        n: int = 10,
        keys: tuple[str, ...] = ("path", "activity"),
        min_total: float = 10,
    ) -> list[Trend]:
        """The slices whose per-day ``metric`` changed most across ``split``,
        by absolute log ratio; slices with under ``min_total`` in both
        periods are left out."""
        index = {"path": 1, "activity": 2, self.by or "_": 3}
        slices = {tuple(k[index[name]] for name in keys) for k in self.groups}
        trends = []
        for values in slices:
            t = self.trend(metric, split=split, **dict(zip(keys, values, strict=True)))
            if max(t.before_total, t.after_total) >= min_total:
                trends.append(t)

        def size(t: Trend) -> float:
            if t.before_per_day == 0 or t.after_per_day == 0:
                return math.inf
            return abs(math.log(t.ratio))

        return sorted(trends, key=lambda t: (size(t), t.after_total), reverse=True)[:n]

    def profile(self, kind: str = "hour", metric: str = "flows", **where) -> np.ndarray:
        """Flows (or bytes) by hour of day (24, UTC) or weekday (7, Monday first)."""
        if kind not in self.profiles:
            raise ValueError("kind must be 'hour' or 'weekday'")
        row = 0 if metric == "flows" else 1
        width = 24 if kind == "hour" else 7
        out = np.zeros(width, np.int64)
        for (path, activity), values in self.profiles[kind].items():
            if where.get("path", path) in (path,) and where.get("activity", activity) in (
                activity,
            ):
                out += values[row]
        return out

    def upstream_share(self, asn: int, path: str | None = None, metric: str = "flows") -> pa.Table:
        """Per bucket: the share of watched traffic whose upstream (the AS on
        the watched side, from exporters set to peer-AS) is ``asn``."""
        col = 0 if metric == "flows" else 1
        totals: dict[int, list[int]] = {}
        for (start, p, a), values in self.upstreams.items():
            if path is not None and p != path:
                continue
            row = totals.setdefault(start, [0, 0])
            row[0] += values[col]
            if a == asn:
                row[1] += values[col]
        starts = sorted(totals)
        return pa.table(
            {
                "bucket": pa.array(starts, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                "total": pa.array([totals[s][0] for s in starts], pa.uint64()),
                "share": pa.array(
                    [totals[s][1] / totals[s][0] if totals[s][0] else 0.0 for s in starts],
                    pa.float64(),
                ),
            }
        )

    # ------------------------------------------------------------ persisting
    def __getstate__(self) -> dict:
        state = {
            "bucket": self.bucket,
            "by": self.by,
            "profiles": self.profiles,
            "upstreams": self.upstreams,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
        }
        # groups still in the native pass's column form travel as they are
        # (a few arrays and one buffer), not as one object per group
        if self._columns is not None:
            state["columns"] = self._columns
        else:
            state["groups"] = self.groups
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        columns = state.pop("columns", None)
        if columns is not None:
            _check_columns(columns)
        self._groups = state.pop("groups", {})
        self._columns = columns
        self.__dict__.update({"first_ms": None, "last_ms": None, **state})
        self._index = None


class _MergeError(Exception):
    def __init__(self, row: int, reason: str) -> None:
        super().__init__(row, reason)
        self.row, self.reason = row, reason


def _merge_rows(starts: np.ndarray, paths: np.ndarray, activities: np.ndarray,
                extras: np.ndarray, sums: np.ndarray, sizes: np.ndarray, offsets: np.ndarray,
                buffer: bytes) -> GroupColumns:
    """Rows of groups (their sets in ``buffer``) merged by key natively:
    keys in the order they first appear. A damaged set is a _MergeError
    naming its row."""
    codes = [_label_codes(names, field, dtype) for names, field, dtype in
             ((paths, "paths", np.uint16), (activities, "activities", np.uint8),
              (extras, "extras", np.uint32))]
    starts = starts.astype(np.int64, copy=False)
    try:
        first, sums, sizes, offsets, buffer = _core.merge_groups(
            starts, *codes, sums.astype(np.uint64, copy=False),
            sizes.astype(np.uint64, copy=False), offsets.astype(np.int64, copy=False), buffer)
    except _core.BuildError as exc:
        raise _MergeError(*exc.args) from None
    return GroupColumns(starts[first], paths[first], activities[first], extras[first], sums,
                        sizes, buffer, offsets)


def _no_columns() -> GroupColumns:
    none = np.empty(0, object)
    return GroupColumns(np.empty(0, np.int64), none, none, none, np.empty((0, 3), np.uint64),
                        np.empty((0, 4), np.uint64), b"", np.empty((0, 5), np.int64))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _label_codes(names: np.ndarray, field: str, dtype: type) -> np.ndarray:
    """Codes of a key column of names (None included), as ``dtype``, for
    the native merge: equal names get equal codes."""
    encoded = pc.dictionary_encode(pa.array(names, pa.string()), null_encoding="encode")
    if len(encoded.dictionary) > np.iinfo(dtype).max + 1:
        raise ValueError(f"cannot merge reports with more than {np.iinfo(dtype).max + 1} "
                         f"distinct {field}")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(dtype)


def _check_columns(columns: object) -> None:
    """Refuse a pickled column form whose parts do not fit together (its
    set bounds must lie in its buffer, in order)."""
    if not isinstance(columns, GroupColumns):
        raise TypeError(f"report state: expected GroupColumns, got {type(columns).__name__}")
    n = len(columns.starts)
    shapes = {"paths": (n,), "activities": (n,), "extras": (n,), "sums": (n, 3),
              "sizes": (n, 4), "offsets": (n, 5)}
    for name, shape in shapes.items():
        value = getattr(columns, name)
        if not isinstance(value, np.ndarray) or value.shape != shape:
            raise ValueError(f"report state: {name} does not match {n} groups")
    offsets = columns.offsets
    if n and (offsets.min() < 0 or offsets.max() > len(columns.buffer)
              or (np.diff(offsets, axis=1) < 0).any()):
        raise ValueError("report state: set bounds outside the buffer or out of order")


def sum_metric(groups: list[Group], metric: str) -> int:
    """``metric`` over groups: counters add up, hosts and peers are the size
    of the union of their address sets."""
    if metric in ("hosts", "peers"):
        if len(groups) == 1:
            return groups[0].distinct(metric)
        v4 = BitMap.union(*(getattr(g, metric) for g in groups)) if groups else BitMap()
        sixes = [x for g in groups if (x := getattr(g, metric + "6")) is not None]
        return len(v4) + (len(BitMap64.union(*sixes)) if sixes else 0)
    return sum(getattr(g, metric) for g in groups)


class _GroupIndex:
    """Column view of a report's group keys, so that slices select with numpy
    instead of a Python test per group."""

    def __init__(self, groups: dict[tuple, Group]) -> None:
        keys = list(groups)
        self.groups = list(groups.values())
        self.starts = np.array([k[0] for k in keys], np.int64)
        self.codes: dict[int, tuple[dict[object, int], np.ndarray]] = {}
        for position in (1, 2, 3):
            names: dict[object, int] = {}
            codes = np.array([names.setdefault(k[position], len(names)) for k in keys], np.int64)
            self.codes[position] = (names, codes)

    def matching(self, field: str, values: object) -> np.ndarray:
        names, codes = self.codes[KEY_POSITION[field]]
        wanted = [names[v] for v in values if v in names]
        return np.isin(codes, wanted)
