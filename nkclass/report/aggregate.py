"""aggregate(): classified flows -> a mergeable Report.

Per time bucket x path x activity (optionally x app or service): flows,
bytes, packets and the distinct watched hosts and outside peers, as roaring
bitmaps so that partial reports merge exactly. The per-flow work runs in the
Cython kernel (nkclass.report._kernel) and numpy; Python only touches groups.
"""

from __future__ import annotations

from array import array
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap, BitMap64

from nkclass.classify import Classified
from nkclass.errors import SchemaValueError
from nkclass.labels import APPS, SIDES
from nkclass.report import _kernel
from nkclass.report.model import BUCKETS, Group, Report, bucket_index, bucket_start_ms
from nkclass.report.select import FlowFilter

# Packed group key: bucket 21 bits | path 12 | activity 8 | extra 22.
BUCKET_BITS, PATH_BITS, ACT_BITS, EXTRA_BITS = 21, 12, 8, 22
BYS = (None, "app", "service")


def aggregate(
    results: object,
    bucket: str = "day",
    by: str | None = None,
    *,
    start: object = None,
    end: object = None,
    path: str | list[str] | None = None,
    activity: str | list[str] | None = None,
) -> Report:
    """Aggregate classified flows into a :class:`Report`.

    ``results`` is a :class:`~nkclass.Classified` result, a classified
    pyarrow Table / RecordBatch (as ``nkclass classify`` writes it), or an
    iterable of either. ``bucket`` is ``hour``, ``day``, ``week`` (ISO,
    Monday first) or ``month``; ``by`` adds ``app`` or ``service`` to the
    group key. Reports add up: ``aggregate(a) + aggregate(b)`` equals
    ``aggregate([a, b])``.

    ``start``/``end`` keep the flows that start in [start, end) (dates or
    datetimes, UTC unless they say otherwise); ``path`` and ``activity``
    keep the flows of those paths and activities (a name or a list).

    >>> report = aggregate(clf.classify(batch), bucket="month", activity="mining")  # doctest: +SKIP
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, got {bucket!r}")
    if by not in BYS:
        raise ValueError(f"by must be 'app', 'service' or None, got {by!r}")
    chosen = FlowFilter.of(start, end, path, activity)
    report = Report(bucket, by)
    items = [results] if isinstance(results, Classified | pa.Table | pa.RecordBatch) else results
    for item in items:
        report.merge_in(_aggregate_one(item, bucket, by, chosen), consume=True)
    return report


class _Labelled:
    """Uniform view of one classified batch: code arrays plus their names.
    With ``peers`` (for top lists), also: ``lookup`` marks DNS flows (app
    ``dns``), whose service is the name looked up rather than the peer's
    own; ``peer_as`` and ``peer_org`` come from the AS stage when the
    classifier ran it (or the classified table carries them)."""

    def __init__(self, item: object, by: str | None, peers: bool = False) -> None:
        self.lookup = self.peer_org = None
        self.peer_org_names: list[str] = []
        if isinstance(item, Classified):
            source = _as_table(item.flows.source)
            self.n = len(item)
            self.path, self.path_names = item.path, list(item.classifier.paths)
            self.activity, self.activity_names = item.activity, list(item._vocabulary("activity"))
            self.side = item.side
            if by is not None:
                self.extra = getattr(item, by).astype(np.uint32)
                self.extra_names = list(item._vocabulary(by))
            self.src, self.dst = item.flows.src_ip, item.flows.dst_ip
            if peers:
                self.lookup = item.app == APPS.index("dns")
                if item._attribution is not None:
                    self.peer_org = item.peer_org_codes.astype(np.int64)
                    self.peer_org_names = list(item.peer_org_names)
        elif isinstance(item, pa.Table | pa.RecordBatch):
            source = item if isinstance(item, pa.Table) else pa.Table.from_batches([item])
            self.n = source.num_rows
            self.path, self.path_names = _codes(source, "path")
            self.activity, self.activity_names = _codes(source, "activity")
            side, side_names = _codes(source, "side")
            remap = np.array([SIDES.index(s) for s in side_names] or [0], np.uint8)
            self.side = remap[side]
            if by is not None:
                codes, names = _codes(source, by)
                self.extra, self.extra_names = codes.astype(np.uint32), names
            from nkclass.flows.batch import address_array

            self.src = address_array(_column(source, "src_ip"), "src_ip")
            self.dst = address_array(_column(source, "dst_ip"), "dst_ip")
            if peers and "app" in source.column_names:
                app, app_names = _codes(source, "app")
                self.lookup = np.array([a == "dns" for a in app_names] or [False])[app]
            if peers and "peer_org" in source.column_names:
                self.peer_org, self.peer_org_names = _codes(source, "peer_org", nulls=True)
        else:
            raise TypeError(
                "aggregate() takes classified results (Classifier.classify output) or classified "
                f"pyarrow tables; got {type(item).__name__}"
            )
        if by is None:
            self.extra = np.zeros(self.n, np.uint32)
            self.extra_names = [None]
        self.ts = _times(source)
        self.bytes = _counter(source, "bytes", self.n)
        self.packets = _counter(source, "packets", self.n)
        self.upstream, self.peer_as = _as_numbers(source, self.side)
        if peers and isinstance(item, Classified) and item._attribution is not None:
            self.peer_as = item.peer_as.astype(np.int64)  # the exporter's, else the table's
        elif peers and "peer_as" in source.column_names:
            self.peer_as = _counter(source, "peer_as", self.n).astype(np.int64)

    ARRAYS = ("path", "activity", "side", "extra", "src", "dst", "ts", "bytes", "packets",
              "upstream", "peer_as", "lookup", "peer_org")

    def keep(self, chosen: FlowFilter | None) -> _Labelled:
        """Only the flows ``chosen`` keeps (this view, narrowed in place)."""
        if chosen is None:
            return self
        mask = chosen.mask(
            self.ts, self.path, self.path_names, self.activity, self.activity_names
        )
        if mask.all():
            return self
        for name in self.ARRAYS:
            values = getattr(self, name)
            if values is not None:
                setattr(self, name, values[mask])
        self.n = int(mask.sum())
        return self


NEEDED_FROM_SOURCE = ("ts_start", "bytes", "packets", "src_as", "dst_as")


def _as_table(source: object) -> pa.Table:
    """The columns aggregation reads from a batch the caller classified."""
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if hasattr(source, "columns") and not isinstance(source, dict):  # pandas
        keep = [c for c in NEEDED_FROM_SOURCE if c in source.columns]
        return pa.Table.from_pandas(source[keep], preserve_index=False)
    return pa.table(
        {
            name: value
            if isinstance(value, pa.Array | pa.ChunkedArray)
            else pa.array(np.asarray(value))
            for name, value in source.items()
            if name in NEEDED_FROM_SOURCE
        }
    )


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        raise SchemaValueError(f"aggregation needs column {name!r}")
    col = table.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _codes(table: pa.Table, name: str, nulls: bool = False) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes and names of a label column (string or dictionary);
    with ``nulls``, missing values read as ""."""
    col = _column(table, name)
    if nulls and col.null_count:
        col = pc.fill_null(col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col, "")
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    if col.null_count:
        raise SchemaValueError(f"column {name!r} has missing labels")
    return (
        col.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        [str(v) for v in col.dictionary.to_pylist()],
    )


def _times(table: pa.Table) -> np.ndarray:
    col = _column(table, "ts_start")
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ms", tz=col.type.tz)).cast(pa.int64())
    elif not pa.types.is_integer(col.type):
        raise SchemaValueError(
            f"column 'ts_start': expected ms since epoch or a timestamp, got {col.type}"
        )
    if col.null_count:
        raise SchemaValueError("column 'ts_start' has missing times")
    ts = col.to_numpy(zero_copy_only=False).astype(np.int64)
    if ts.size and ts.min() < 0:
        raise SchemaValueError("column 'ts_start': times before 1970 are not supported")
    return ts


def _counter(table: pa.Table, name: str, n: int) -> np.ndarray:
    if name not in table.column_names:
        return np.zeros(n, np.uint64)
    col = _column(table, name)
    if col.null_count:
        col = pc.fill_null(col, 0)
    values = col.to_numpy(zero_copy_only=False)
    if values.dtype.kind not in "iu" or (values.size and values.min() < 0):
        raise SchemaValueError(f"column {name!r}: expected non-negative integers")
    return values.astype(np.uint64)


def _as_numbers(
    table: pa.Table, side: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The AS next to the watched side (src_as when the watched host sent,
    dst_as when it received: exporters set to peer-AS report the upstream
    there) and the AS on the outside peer's side; (None, None) when the batch
    has no AS columns."""
    if "src_as" not in table.column_names or "dst_as" not in table.column_names:
        return None, None
    src_as = _counter(table, "src_as", len(side)).astype(np.int64)
    dst_as = _counter(table, "dst_as", len(side)).astype(np.int64)
    dst_watched = side == SIDES.index("dst")
    return np.where(dst_watched, dst_as, src_as), np.where(dst_watched, src_as, dst_as)


def _pack(
    bucket: np.ndarray, path: np.ndarray, activity: np.ndarray, extra: np.ndarray
) -> np.ndarray:
    for values, bits, what in (
        (bucket, BUCKET_BITS, "time buckets since 1970"),
        (path, PATH_BITS, "paths"),
        (activity, ACT_BITS, "activities"),
        (extra, EXTRA_BITS, "apps or services"),
    ):
        if values.size and int(values.max()) >= (1 << bits):
            raise SchemaValueError(f"too many {what} to aggregate (limit {1 << bits})")
    key = bucket.astype(np.int64) << (PATH_BITS + ACT_BITS + EXTRA_BITS)
    key |= path.astype(np.int64) << (ACT_BITS + EXTRA_BITS)
    key |= activity.astype(np.int64) << EXTRA_BITS
    key |= extra.astype(np.int64)
    return key


def _split_addresses(addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(IPv4 values, is-IPv4 mask, IPv6 /64 prefixes or None)."""
    if addrs.dtype == np.uint32:
        return addrs, np.ones(len(addrs), np.uint8), None
    v4 = np.empty(len(addrs), np.uint32)
    is_v4 = np.empty(len(addrs), np.uint8)
    _kernel.ipv4_of_rows(addrs, v4, is_v4)
    if is_v4.all():
        return v4, is_v4, None
    high = addrs[:, :8].copy().view(">u8").ravel().astype(np.uint64)
    return v4, is_v4, high


def _bitmaps(
    group_of: np.ndarray, n_groups: int, use: np.ndarray, values: np.ndarray
) -> list[BitMap]:
    offsets = np.empty(n_groups + 1, np.int64)
    laid = np.empty(max(len(values), 1), np.uint32)
    _kernel.distinct_by_group(group_of, n_groups, use, values, offsets, laid)
    bounds = offsets.tolist()
    return [BitMap(array("I", laid[lo:hi].tobytes())) if hi > lo else BitMap()
            for lo, hi in pairwise(bounds)]


def _bitmaps64(
    group_of: np.ndarray, n_groups: int, use: np.ndarray, values: np.ndarray
) -> dict[int, BitMap64]:
    """IPv6 /64 sets per group (only groups that have IPv6 flows)."""
    rows = np.flatnonzero(use)
    out: dict[int, BitMap64] = {}
    if rows.size == 0:
        return out
    order = rows[np.argsort(group_of[rows], kind="stable")]
    groups = group_of[order]
    cuts = np.flatnonzero(np.diff(groups)) + 1
    for chunk in np.split(order, cuts):
        out[int(group_of[chunk[0]])] = BitMap64(values[chunk].tolist())
    return out


def _aggregate_one(item: object, bucket: str, by: str | None, chosen: FlowFilter | None) -> Report:
    flows = _Labelled(item, by).keep(chosen)
    report = Report(bucket, by)
    if flows.n == 0:
        return report
    report.note_times(int(flows.ts.min()), int(flows.ts.max()))
    buckets = bucket_index(flows.ts, bucket)
    keys = _pack(buckets, flows.path, flows.activity, flows.extra)
    group_of = np.empty(flows.n, np.int64)
    group_keys = np.empty(flows.n, np.int64)
    n_groups = _kernel.group_ids(keys, group_of, group_keys)
    group_keys = group_keys[:n_groups]
    totals = [np.empty(n_groups, np.uint64) for _ in range(3)]
    _kernel.sum_by_group(group_of, n_groups, flows.bytes, flows.packets, *totals)

    # The watched host is the watched side's address (the source when both
    # are watched); the peer is the other endpoint. Flows touching no watched
    # path have neither, so their groups keep counts but no address sets
    # (which also spares the sets of the unwatched background).
    watched = flows.side != SIDES.index("none")
    dst_is_host = flows.side == SIDES.index("dst")
    src4, src_is4, src6 = _split_addresses(flows.src)
    dst4, dst_is4, dst6 = _split_addresses(flows.dst)
    host4 = np.where(dst_is_host, dst4, src4)
    peer4 = np.where(dst_is_host, src4, dst4)
    host_is4 = np.where(dst_is_host, dst_is4, src_is4).astype(bool)
    peer_is4 = np.where(dst_is_host, src_is4, dst_is4).astype(bool)
    hosts = _bitmaps(group_of, n_groups, (host_is4 & watched).view(np.uint8), host4)
    peers = _bitmaps(group_of, n_groups, (peer_is4 & watched).view(np.uint8), peer4)
    hosts6 = peers6 = {}
    if src6 is not None or dst6 is not None:
        zeros = np.zeros(flows.n, np.uint64)  # an all-IPv4 side has no /64s
        src6 = zeros if src6 is None else src6
        dst6 = zeros if dst6 is None else dst6
        host6 = np.where(dst_is_host, dst6, src6)
        peer6 = np.where(dst_is_host, src6, dst6)
        hosts6 = _bitmaps64(group_of, n_groups, ~host_is4 & watched, host6)
        peers6 = _bitmaps64(group_of, n_groups, ~peer_is4 & watched, peer6)

    b_of = (group_keys >> (PATH_BITS + ACT_BITS + EXTRA_BITS)) & ((1 << BUCKET_BITS) - 1)
    p_of = (group_keys >> (ACT_BITS + EXTRA_BITS)) & ((1 << PATH_BITS) - 1)
    a_of = (group_keys >> EXTRA_BITS) & ((1 << ACT_BITS) - 1)
    e_of = group_keys & ((1 << EXTRA_BITS) - 1)
    starts = bucket_start_ms(b_of, bucket)
    for g in range(n_groups):
        key = (
            int(starts[g]),
            flows.path_names[p_of[g]],
            flows.activity_names[a_of[g]],
            flows.extra_names[e_of[g]],
        )
        report.groups[key] = Group(
            int(totals[0][g]),
            int(totals[1][g]),
            int(totals[2][g]),
            hosts[g],
            peers[g],
            hosts6.get(g),
            peers6.get(g),
        )

    _profiles(report, flows)
    if flows.upstream is not None:
        _upstreams(report, flows, buckets)
    return report


def _profiles(report: Report, flows: _Labelled) -> None:
    """Flows and bytes by hour of day and weekday per (path, activity)."""
    hour = (flows.ts // 3_600_000) % 24
    weekday = (flows.ts // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    n_act = len(flows.activity_names)
    pa_key = flows.path.astype(np.int64) * n_act + flows.activity
    for name, slot, width in (("hour", hour, 24), ("weekday", weekday, 7)):
        size = len(flows.path_names) * n_act * width
        idx = pa_key * width + slot
        counts = np.bincount(idx, minlength=size).reshape(-1, width)
        nbytes = np.bincount(idx, weights=flows.bytes.astype(np.float64), minlength=size).reshape(
            -1, width
        )
        for row in np.flatnonzero(counts.sum(axis=1)):
            key = (flows.path_names[row // n_act], flows.activity_names[row % n_act])
            report.add_profile(
                name, key, counts[row].astype(np.int64), nbytes[row].round().astype(np.int64)
            )


def _upstreams(report: Report, flows: _Labelled, buckets: np.ndarray) -> None:
    watched = flows.side != 0
    if not watched.any():
        return
    asn = flows.upstream[watched]
    key = (
        (buckets[watched].astype(np.int64) << 44)
        | (flows.path[watched].astype(np.int64) << 32)
        | asn
    )
    group_of = np.empty(len(key), np.int64)
    group_keys = np.empty(len(key), np.int64)
    n = _kernel.group_ids(key, group_of, group_keys)
    totals = [np.empty(n, np.uint64) for _ in range(3)]
    _kernel.sum_by_group(group_of, n, flows.bytes[watched], flows.packets[watched], *totals)
    starts = bucket_start_ms(group_keys[:n] >> 44, report.bucket)
    for g in range(n):
        k = int(group_keys[g])
        report.add_upstream(
            (int(starts[g]), flows.path_names[(k >> 32) & 0xFFF], k & 0xFFFFFFFF),
            int(totals[0][g]),
            int(totals[1][g]),
        )
